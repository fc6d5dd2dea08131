-- name: new_region_for_identity
-- title: API calls from a region new for the identity
-- description: Regions an identity used for the first time in the last days of the store, when it had history before that: an attacker setting up where nobody looks.
-- tactic: TA0005 Defense Evasion
-- flags: regions an identity with earlier history used for the first time in the last days
-- ignores: identities with no earlier history; events without a region
-- fields: acsRegion, eventTime, userIdentity
-- param: days = 1  (the recent window, in days before the newest event)
WITH ev AS (
  SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, acsRegion, eventTime FROM events WHERE acsRegion IS NOT NULL
),
bounds AS (SELECT to_unixtime(max(eventTime)) - :days * 86400 AS cutoff FROM events),
firsts AS (
  SELECT identity, acsRegion, min(eventTime) AS first_seen, count(*) AS events
  FROM ev GROUP BY identity, acsRegion
),
history AS (SELECT identity, min(eventTime) AS active_since FROM ev GROUP BY identity)
SELECT f.identity, f.acsRegion, f.first_seen, f.events, h.active_since
FROM firsts f JOIN history h ON f.identity = h.identity CROSS JOIN bounds b
WHERE to_unixtime(f.first_seen) >= b.cutoff AND to_unixtime(h.active_since) < b.cutoff
ORDER BY f.first_seen
