-- name: trail_tampering
-- title: Trail stopped, deleted or its delivery changed
-- description: Operations that stop audit logging or redirect it (StopLogging, DeleteTrail, UpdateTrail, PutEventSelectors), including denied attempts, which are as telling.
-- tactic: TA0005 Defense Evasion
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'Name'), json_get_str(requestParameters, 'name')) AS trail,
       coalesce(json_get_str(requestParameters, 'OssBucketName'), json_get_str(requestParameters, 's3BucketName')) AS new_bucket,
       sourceIpAddress, errorCode
FROM events
WHERE eventName IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
