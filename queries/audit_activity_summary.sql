-- name: audit_activity_summary
-- title: Data-audit activity per instance and database
-- description: Data-audit logs per data asset instance and database: statements, users, client IPs, rows, failures, alerts at each risk level, first and last log.
-- flags: nothing; an overview of every instance and database in the audit logs
-- ignores: nothing in the window
-- fields: audit_logs: LogTime, InstanceName, DatabaseName, UserName, ClientIp, EffectRow, ExecuteStatus, WarnLevel
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT InstanceName, DatabaseName, count(*) AS statements, count(DISTINCT UserName) AS users,
       count(DISTINCT ClientIp) AS client_ips, sum(coalesce(EffectRow, 0)) AS total_rows,
       sum(CASE WHEN ExecuteStatus = 0 THEN 1 ELSE 0 END) AS failed,
       sum(CASE WHEN trim(WarnLevel) = '3' THEN 1 ELSE 0 END) AS high,
       sum(CASE WHEN trim(WarnLevel) = '2' THEN 1 ELSE 0 END) AS medium,
       sum(CASE WHEN trim(WarnLevel) = '1' THEN 1 ELSE 0 END) AS low,
       min(LogTime) AS first_time, max(LogTime) AS last_time
FROM audit_logs
WHERE LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
GROUP BY InstanceName, DatabaseName
ORDER BY statements DESC, InstanceName, DatabaseName
