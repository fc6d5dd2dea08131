-- name: audit_sensitive_data_by_user
-- title: Sensitive data touched, by database user
-- description: Data-audit logs that matched a sensitive-data detection model (ModelName: card numbers, identity cards...), per database user and model: statements, rows, client IPs.
-- tactic: TA0009 Collection
-- flags: audit logs with a ModelName
-- ignores: statements that matched no model
-- fields: audit_logs: LogTime, UserName, ModelName, EffectRow, ClientIp
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT UserName, ModelName, count(*) AS statements, sum(coalesce(EffectRow, 0)) AS total_rows,
       array_to_string(array_sort(array_agg(DISTINCT ClientIp)), ', ') AS client_ips,
       min(LogTime) AS first_time, max(LogTime) AS last_time
FROM audit_logs
WHERE coalesce(ModelName, '') <> ''
  AND LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
GROUP BY UserName, ModelName
ORDER BY total_rows DESC, UserName, ModelName
