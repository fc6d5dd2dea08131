-- name: activity_by_ip
-- title: Everything one source IP did
-- description: The timeline of a source IP address across identities and regions.
-- tactic: TA0001 Initial Access
-- flags: every event from one source address
-- ignores: nothing: it is a timeline
-- fields: sourceIpAddress, eventTime
-- param: ip  (the source IP address)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, acsRegion, eventName, eventRW, errorCode, userAgent
FROM events
WHERE sourceIpAddress = :ip AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, eventName
