-- name: audit_bulk_reads
-- title: Bulk reads by database user and client
-- description: Data-audit logs: per database user, client IP and instance, reads that returned at least min_rows rows, with the largest, the total and the sensitive-data models they touched.
-- tactic: TA0010 Exfiltration
-- flags: audit logs of successful reads (OperateType Select, or a statement starting with SELECT) with EffectRow >= min_rows
-- ignores: failed statements (ExecuteStatus 0); smaller reads; writes
-- fields: audit_logs: LogTime, UserName, ClientIp, InstanceName, OperateType, SqlText, EffectRow, ExecuteStatus, ModelName
-- param: min_rows = 10000  (rows a read must return)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT UserName, ClientIp, InstanceName, count(*) AS reads, sum(EffectRow) AS total_rows, max(EffectRow) AS largest,
       array_to_string(array_sort(array_agg(DISTINCT ModelName) FILTER (WHERE ModelName <> '')), ', ') AS models,
       min(LogTime) AS first_time, max(LogTime) AS last_time
FROM audit_logs
WHERE (lower(OperateType) = 'select' OR regexp_like(SqlText, '^\s*select\b', 'i'))
  AND EffectRow >= :min_rows AND coalesce(ExecuteStatus, 1) <> 0
  AND LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
GROUP BY UserName, ClientIp, InstanceName
ORDER BY total_rows DESC, UserName, ClientIp, InstanceName
