-- name: enumeration_burst
-- title: Enumeration bursts (many List, Describe, Get calls)
-- description: Identities making many read calls across services within 10 minutes: discovery after a credential is taken.
-- tactic: TA0007 Discovery
-- flags: identities making many List*, Describe*, Get* calls within 10 minutes
-- ignores: calls by cloud services (userIdentity.type AWSService)
-- fields: eventName, eventTime, userIdentity
-- param: min_calls = 20  (read calls in one 10-minute window)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT date_bin(INTERVAL '10 minutes', eventTime) AS window_start, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity,
       count(*) AS calls, count(DISTINCT eventName) AS distinct_calls,
       count(DISTINCT serviceName) AS services
FROM events
WHERE lower(coalesce(userIdentity.type, '')) NOT IN ('awsservice', 'service') AND regexp_like(eventName, '^(List|Describe|Get)') AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY 1, 2
HAVING count(*) >= :min_calls
ORDER BY window_start, identity
