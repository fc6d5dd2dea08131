-- name: identity_timeline
-- title: Everything one identity did
-- description: The timeline of one identity (user name, role session issuer or principal id) with source IPs and errors.
-- flags: every event of one identity
-- ignores: nothing: it is a timeline
-- fields: userIdentity, eventTime
-- param: user  (user name, role name or principal id)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, acsRegion, eventName, eventRW, sourceIpAddress, userAgent, errorCode
FROM events
WHERE coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) = :user AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, eventName
