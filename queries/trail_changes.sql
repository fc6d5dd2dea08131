-- name: trail_changes
-- title: Every change to a trail
-- description: The history of the trails themselves, from the events: created, updated (with the bucket and key prefix it now delivers to, and what it records), started, stopped, deleted, on ActionTrail and CloudTrail, denied attempts included. Where trail_tampering flags what weakens auditing, this is the full record an auditor asks for.
-- tactic: TA0005 Defense Evasion
-- flags: cloudtrail and actiontrail CreateTrail, UpdateTrail, StartLogging, StopLogging, DeleteTrail, successful or not
-- ignores: calls that only read trails (DescribeTrails, GetTrailStatus, LookupEvents)
-- fields: serviceName, eventName, errorCode, requestParameters.Name, requestParameters.name, requestParameters.OssBucketName, requestParameters.s3BucketName, requestParameters.OssKeyPrefix, requestParameters.s3KeyPrefix, requestParameters.EventRW
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'Name'), json_get_str(requestParameters, 'name'), json_get_str(requestParameters, 'trailName')) AS trail,
       coalesce(json_get_str(requestParameters, 'OssBucketName'), json_get_str(requestParameters, 's3BucketName')) AS bucket,
       coalesce(json_get_str(requestParameters, 'OssKeyPrefix'), json_get_str(requestParameters, 's3KeyPrefix')) AS key_prefix,
       json_get_str(requestParameters, 'EventRW') AS event_rw,
       sourceIpAddress, errorCode, errorCode IS NULL AS succeeded
FROM events
WHERE lower(serviceName) IN ('cloudtrail', 'actiontrail')
  AND eventName IN ('CreateTrail', 'UpdateTrail', 'StartLogging', 'StopLogging', 'DeleteTrail')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, eventName
