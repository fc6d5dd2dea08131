-- name: audit_high_risk_alerts_by_rule
-- title: High-risk data-audit alerts by rule
-- description: Data-audit logs at risk level 3 (high), per audit rule: how many, by how many database users, on which instances, from how many client IPs, and when.
-- tactic: TA0009 Collection
-- flags: audit logs with WarnLevel 3
-- ignores: low and medium levels
-- fields: audit_logs: LogTime, WarnLevel, RuleId, RuleName, UserName, InstanceName, ClientIp
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT RuleId, RuleName, count(*) AS alerts, count(DISTINCT UserName) AS users,
       array_to_string(array_sort(array_agg(DISTINCT InstanceName)), ', ') AS instances,
       count(DISTINCT ClientIp) AS client_ips, min(LogTime) AS first_time, max(LogTime) AS last_time
FROM audit_logs
WHERE trim(WarnLevel) = '3'
  AND LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
GROUP BY RuleId, RuleName
ORDER BY alerts DESC, RuleId, RuleName
