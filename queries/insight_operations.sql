-- name: insight_operations
-- title: Insights with the operations they cover
-- description: Every insight found by `trail insight` (IpInsight, ApiCallRateInsight, ApiErrorRateInsight) with each operation it covers, for review: who, what, from where.
-- tactic: TA0001 Initial Access
-- flags: each stored insight with the operations it covers
-- ignores: events no insight covers
-- fields: insights.insightDetails.coveredEventIds, events.eventId
-- param: since = 1970-01-01 00:00:00  (insights starting at or after, UTC)
-- param: until = 2200-01-01 00:00:00  (insights starting before, UTC)
WITH started AS (
  SELECT sharedEventId, eventTime AS started, eventDate AS day,
         json_get_str(insightDetails, 'insightType') AS insight,
         json_get_str(insightDetails, 'insightObject') AS object,
         coalesce(userIdentity.userName, userIdentity.principalId, recipientAccountId) AS subject,
         unnest(string_to_array(btrim(json_get_json(insightDetails, 'coveredEventIds'), '[]'), ',')) AS covered
  FROM insights
  WHERE json_get_str(insightDetails, 'state') = 'Start'
    AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
)
SELECT s.started, s.insight, s.object, s.subject, e.eventTime, e.eventName, e.acsRegion,
       e.sourceIpAddress, e.errorCode, e.eventId
FROM started s
JOIN events e ON e.eventId = btrim(s.covered, '"')
  AND e.eventDate >= s.day AND e.eventDate <= s.day + INTERVAL '1' DAY
ORDER BY s.started, s.sharedEventId, e.eventTime, e.eventId
