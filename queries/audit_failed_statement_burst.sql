-- name: audit_failed_statement_burst
-- title: Bursts of failed statements
-- description: Data-audit logs: a database user and client IP with at least min_failures failed statements or logins (ExecuteStatus 0) in 10 minutes: password guessing, or probing for tables.
-- tactic: TA0006 Credential Access
-- flags: per database user, client IP and instance, >= min_failures audit logs with ExecuteStatus 0 in a fixed 10-minute bucket
-- ignores: successful statements; fewer failures
-- fields: audit_logs: LogTime, UserName, ClientIp, InstanceName, ExecuteStatus, Message
-- param: min_failures = 5  (failures in 10 minutes)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT date_bin(INTERVAL '10 minutes', LogTime, TIMESTAMP '1970-01-01 00:00:00') AS window_start,
       UserName, ClientIp, InstanceName, count(*) AS failures,
       array_to_string(array_sort(array_agg(DISTINCT Message)), ' | ') AS messages
FROM audit_logs
WHERE ExecuteStatus = 0
  AND LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
GROUP BY window_start, UserName, ClientIp, InstanceName
HAVING count(*) >= :min_failures
ORDER BY window_start, failures DESC, UserName, ClientIp
