-- name: access_key_changes
-- title: Access keys created, disabled or deleted
-- description: Every change to an access key: created (a new long-lived credential), disabled or enabled (UpdateAccessKey status), deleted. The owner is the user named in the request, else the caller.
-- tactic: TA0003 Persistence
-- flags: successful ram and iam CreateAccessKey, UpdateAccessKey (with the new status) and DeleteAccessKey
-- ignores: failed calls; the same names on another service
-- fields: serviceName, eventName, errorCode, requestParameters.UserName, requestParameters.Status
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor,
       coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'userName'), coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)) AS key_owner,
       CASE eventName WHEN 'CreateAccessKey' THEN 'created' WHEN 'DeleteAccessKey' THEN 'deleted'
         ELSE 'status ' || coalesce(json_get_str(requestParameters, 'Status'), json_get_str(requestParameters, 'status'), '?') END AS action,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('ram', 'iam')
  AND eventName IN ('CreateAccessKey', 'UpdateAccessKey', 'DeleteAccessKey') AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
