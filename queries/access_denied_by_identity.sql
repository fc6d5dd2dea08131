-- name: access_denied_by_identity
-- title: Access denied, per identity
-- description: Calls refused for lack of permission (AccessDenied*, NoPermission*, Forbidden*, UnauthorizedOperation): who is trying what they may not do.
-- tactic: TA0007 Discovery
-- flags: per identity, calls refused for lack of permission (errorCode AccessDenied*, NoPermission*, Forbidden*, UnauthorizedOperation, Client.UnauthorizedOperation), with the operations tried
-- ignores: other errors (throttling, invalid parameters); calls by AWS services (userIdentity.type AWSService)
-- fields: errorCode, eventName, userIdentity
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, count(*) AS denied, count(DISTINCT eventName) AS operations,
       array_to_string(array_sort(array_agg(DISTINCT eventName)), ', ') AS names,
       min(eventTime) AS first_time, max(eventTime) AS last_time
FROM events
WHERE lower(coalesce(userIdentity.type, '')) NOT IN ('awsservice', 'service') AND regexp_like(errorCode, '^(AccessDenied|NoPermission|Forbidden|UnauthorizedOperation|Client\.UnauthorizedOperation)')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY 1
ORDER BY denied DESC, identity
