-- name: failed_signin_burst_by_user
-- title: Failed console sign-in bursts per user
-- description: Identities with many failed console sign-ins within a 10-minute window, from any number of IPs.
-- tactic: TA0006 Credential Access
-- flags: identities with many failed console sign-ins in a 10-minute window, from any addresses
-- ignores: successful sign-ins
-- fields: eventName, errorCode, responseElements.ConsoleLogin, userIdentity
-- detection: medium
-- param: min_failures = 5  (failures in one 10-minute window)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT date_bin(INTERVAL '10 minutes', eventTime) AS window_start, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity,
       count(*) AS failures, count(DISTINCT sourceIpAddress) AS source_ips
FROM events
WHERE eventName IN ('ConsoleSignin', 'ConsoleLogin') AND (errorCode IS NOT NULL OR coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') = 'Failure') AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY 1, 2
HAVING count(*) >= :min_failures
ORDER BY window_start, identity
