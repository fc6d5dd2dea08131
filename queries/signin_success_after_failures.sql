-- name: signin_success_after_failures
-- title: Successful sign-in after repeated failures
-- description: A console sign-in that succeeded from an IP that failed for the same identity several times in the hour before: a guessed password.
-- tactic: TA0006 Credential Access
-- flags: a successful console sign-in from an address that failed for the same identity at least min_failures times in the hour before
-- ignores: failures not followed by a success
-- fields: eventName, errorCode, responseElements.ConsoleLogin, sourceIpAddress, userIdentity
-- detection: high
-- param: min_failures = 3  (failures in the hour before the success)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
WITH s AS (
  SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, sourceIpAddress AS ip, eventTime, (errorCode IS NOT NULL OR coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') = 'Failure') AS failed
  FROM events WHERE eventName IN ('ConsoleSignin', 'ConsoleLogin') AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
)
SELECT ok.eventTime AS succeeded_at, ok.identity, ok.ip, count(*) AS failures_before,
       min(f.eventTime) AS first_failure
FROM s ok JOIN s f
  ON f.identity = ok.identity AND f.ip = ok.ip AND f.failed
 AND f.eventTime < ok.eventTime AND f.eventTime >= ok.eventTime - INTERVAL '1 hour'
WHERE NOT ok.failed
GROUP BY ok.eventTime, ok.identity, ok.ip
HAVING count(*) >= :min_failures
ORDER BY succeeded_at
