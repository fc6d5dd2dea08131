-- name: access_key_created_for_other_user
-- title: Access key created for another user
-- description: An identity created an access key for a different user: a common way to keep access through someone else's account.
-- tactic: TA0003 Persistence
-- flags: successful ram and iam CreateAccessKey whose requestParameters.UserName differs from the caller
-- ignores: failed calls; keys a user creates for themselves; calls by cloud services (userIdentity.type AWSService)
-- fields: serviceName, eventName, errorCode, requestParameters.UserName, userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor,
       coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'userName')) AS key_owner,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('ram', 'iam')
  AND lower(coalesce(userIdentity.type, '')) NOT IN ('awsservice', 'service')
  AND eventName = 'CreateAccessKey'
  AND coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'userName')) <> coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
