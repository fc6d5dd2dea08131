-- name: audit_outside_business_hours
-- title: Database access outside business hours
-- description: Data-audit logs per database user at night or at weekends, in the time zone given by utc_offset_hours: statements, failures, rows.
-- tactic: TA0010 Exfiltration
-- flags: per database user, statements at night or at weekends in the given time zone
-- ignores: statements within business hours on weekdays
-- fields: audit_logs: LogTime, UserName, ClientIp, EffectRow, ExecuteStatus
-- param: utc_offset_hours = 0  (local time = UTC + this)
-- param: start_hour = 8  (business day starts, local hour)
-- param: end_hour = 19  (business day ends, local hour)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
WITH local AS (
  SELECT UserName, ClientIp, EffectRow, ExecuteStatus, LogTime,
         to_timestamp_seconds(to_unixtime(LogTime) + :utc_offset_hours * 3600) AS local_time
  FROM audit_logs
  WHERE LogTime >= TIMESTAMP :since AND LogTime < TIMESTAMP :until
)
SELECT UserName, count(*) AS statements,
       sum(CASE WHEN ExecuteStatus = 0 THEN 1 ELSE 0 END) AS failed,
       sum(coalesce(EffectRow, 0)) AS total_rows,
       array_to_string(array_sort(array_agg(DISTINCT ClientIp)), ', ') AS client_ips,
       min(LogTime) AS first_time, max(LogTime) AS last_time
FROM local
WHERE date_part('dow', local_time) IN (0, 6)
   OR date_part('hour', local_time) < :start_hour OR date_part('hour', local_time) >= :end_hour
GROUP BY UserName
ORDER BY statements DESC, UserName
