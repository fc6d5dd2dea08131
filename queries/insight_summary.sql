-- name: insight_summary
-- title: Insights, one line each
-- description: Each insight found by `trail insight` as one row: type, what was unusual, who or which account, when it started and ended, how many operations, and the rate against its baseline.
-- tactic: TA0001 Initial Access
-- flags: each stored insight, one line
-- ignores: nothing: it is a list
-- fields: insights.insightDetails
-- param: since = 1970-01-01 00:00:00  (insights starting at or after, UTC)
-- param: until = 2200-01-01 00:00:00  (insights starting before, UTC)
SELECT s.eventTime AS started, e.eventTime AS ended,
       json_get_str(s.insightDetails, 'insightType') AS insight,
       s.acsRegion AS region,
       json_get_str(s.insightDetails, 'insightObject') AS object,
       coalesce(s.userIdentity.userName, s.userIdentity.principalId, s.recipientAccountId) AS subject,
       json_get_int(s.insightDetails, 'insightContext', 'statistics', 'insightCount') AS operations,
       json_get_float(s.insightDetails, 'insightContext', 'statistics', 'insight') AS per_minute,
       json_get_float(s.insightDetails, 'insightContext', 'statistics', 'baseline') AS baseline_per_minute
FROM insights s
JOIN insights e ON e.sharedEventId = s.sharedEventId AND json_get_str(e.insightDetails, 'state') = 'End'
WHERE json_get_str(s.insightDetails, 'state') = 'Start'
  AND s.eventTime >= TIMESTAMP :since AND s.eventTime < TIMESTAMP :until
ORDER BY started, insight, object
