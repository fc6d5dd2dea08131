-- name: failed_signin_burst_by_ip
-- title: Failed console sign-in bursts per source IP
-- description: Source IPs with many failed console sign-ins within a 10-minute window (password guessing or spraying); lists the identities tried.
-- tactic: TA0006 Credential Access
-- flags: source addresses with many failed console sign-ins in a 10-minute window, with the identities tried
-- ignores: successful sign-ins
-- fields: eventName, errorCode, responseElements.ConsoleLogin, sourceIpAddress
-- detection: high
-- param: min_failures = 5  (failures in one 10-minute window)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT date_bin(INTERVAL '10 minutes', eventTime) AS window_start, sourceIpAddress,
       count(*) AS failures, count(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)) AS identities,
       array_to_string(array_sort(array_agg(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId))), ', ') AS tried
FROM events
WHERE eventName IN ('ConsoleSignin', 'ConsoleLogin') AND (errorCode IS NOT NULL OR coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') = 'Failure') AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY 1, 2
HAVING count(*) >= :min_failures OR count(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)) >= 3
ORDER BY window_start, sourceIpAddress
