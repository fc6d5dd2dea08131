-- name: audit_destructive_statements
-- title: Destructive SQL statements
-- description: Data-audit logs of statements that destroy data wholesale: DROP, TRUNCATE, and DELETE without a WHERE clause.
-- tactic: TA0040 Impact
-- flags: successful statements whose OperateType is Drop or Truncate, or whose text starts with DROP or TRUNCATE, or starts with DELETE and has no WHERE
-- ignores: failed statements (ExecuteStatus 0); DELETE with a WHERE clause
-- fields: audit_logs: LogTime, UserName, ClientIp, InstanceName, DatabaseName, OperateType, SqlText, EffectRow, ExecuteStatus
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT LogTime, UserName, ClientIp, InstanceName, DatabaseName,
       CASE WHEN lower(OperateType) = 'drop' OR regexp_like(SqlText, '^\s*drop\b', 'i') THEN 'DROP'
            WHEN lower(OperateType) = 'truncate' OR regexp_like(SqlText, '^\s*truncate\b', 'i') THEN 'TRUNCATE'
            ELSE 'DELETE without WHERE' END AS kind,
       EffectRow, SqlText
FROM audit_logs
WHERE coalesce(ExecuteStatus, 1) <> 0
  AND (lower(OperateType) IN ('drop', 'truncate')
       OR regexp_like(SqlText, '^\s*(drop|truncate)\b', 'i')
       OR (regexp_like(SqlText, '^\s*delete\b', 'i') AND NOT regexp_like(SqlText, '\bwhere\b', 'i')))
  AND LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
ORDER BY LogTime, UserName, SqlText
