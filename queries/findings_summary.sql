-- name: findings_summary
-- title: Detection findings, one line each
-- description: What `trail detect` found (Sigma rules and analyses marked as detections): the latest version of each finding, most severe first, with who, from where, when and how many events.
-- flags: every stored finding in the window (by first seen), at or above min_level
-- ignores: nothing else
-- fields: findings table
-- param: min_level = informational  (informational, low, medium, high or critical)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT level, "ruleTitle" AS rule, "firstSeen" AS first_seen, "lastSeen" AS last_seen, identity, "sourceIpAddress", account, region, events, "ruleKind" AS kind, "ruleId" AS rule_id, "findingId" AS finding_id
FROM findings
WHERE "firstSeen" >= TIMESTAMP :since AND "firstSeen" < TIMESTAMP :until
  AND CASE level WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END
      >= CASE lower(:min_level) WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END
ORDER BY CASE level WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END DESC, first_seen, rule, finding_id
