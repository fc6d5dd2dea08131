-- name: trail_tampering
-- title: Trail stopped, deleted or its delivery changed (attempts included)
-- description: Calls that stop an audit trail, delete it, redirect its delivery, or narrow what it records so management events are no longer logged, on CloudTrail and ActionTrail. Denied attempts are included, as telling as successes; the succeeded column says which is which.
-- tactic: TA0005 Defense Evasion
-- flags: cloudtrail and actiontrail StopLogging, DeleteTrail, UpdateTrail; CreateTrail is not listed; cloudtrail PutEventSelectors with includeManagementEvents false, PutAdvancedEventSelectors without a Management eventCategory selector; actiontrail UpdateTrail with EventRW other than All
-- ignores: event selector changes that keep management events; the same names on another service
-- fields: serviceName, eventName, errorCode, requestParameters.name, requestParameters.s3BucketName, requestParameters.OssBucketName, requestParameters.eventSelectors, requestParameters.advancedEventSelectors
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'Name'), json_get_str(requestParameters, 'name'), json_get_str(requestParameters, 'trailName')) AS trail,
       coalesce(json_get_str(requestParameters, 'OssBucketName'), json_get_str(requestParameters, 's3BucketName')) AS new_bucket,
       sourceIpAddress, errorCode, errorCode IS NULL AS succeeded
FROM events
WHERE lower(serviceName) IN ('cloudtrail', 'actiontrail')
  AND (eventName IN ('StopLogging', 'DeleteTrail', 'UpdateTrail')
    OR (eventName = 'PutEventSelectors'
        AND regexp_like(requestParameters, '"includeManagementEvents"\s*:\s*false', 'i'))
    OR (eventName = 'PutAdvancedEventSelectors'
        AND NOT regexp_like(requestParameters, '"eventCategory"[^\]]*"Management"', 'i')))
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
