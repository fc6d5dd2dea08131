-- name: ip_in_cloud_and_data
-- title: Public IPs acting on both the cloud and its databases
-- description: Joins events with data-audit logs: public client IPs that cloud identities (events) and database users (audit logs) both used in the window, with who they were and what each side did. Ties a database user to the person behind it, and shows an intruder's address reaching the data after the console.
-- tactic: TA0009 Collection
-- flags: public IPs present as events' sourceIpAddress and as audit logs' ClientIp in the window
-- ignores: private and non-IP addresses (service names)
-- fields: events: eventTime, sourceIpAddress, errorCode, userIdentity; audit_logs: LogTime, ClientIp, UserName, EffectRow, WarnLevel
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
WITH cloud AS (
  SELECT sourceIpAddress AS ip, count(*) AS cloud_events, sum(CASE WHEN errorCode IS NULL THEN 0 ELSE 1 END) AS cloud_errors,
         array_to_string(array_sort(array_agg(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId))), ', ') AS identities,
         min(eventTime) AS cloud_first, max(eventTime) AS cloud_last
  FROM events
  WHERE is_ip(sourceIpAddress) AND NOT is_private_ip(sourceIpAddress)
    AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
  GROUP BY sourceIpAddress
),
data AS (
  SELECT a.ClientIp AS ip, count(*) AS statements, sum(coalesce(a.EffectRow, 0)) AS rows_touched,
         sum(CASE WHEN trim(a.WarnLevel) = '3' THEN 1 ELSE 0 END) AS high_alerts,
         array_to_string(array_sort(array_agg(DISTINCT a.UserName)), ', ') AS db_users,
         min(a.LogTime) AS data_first, max(a.LogTime) AS data_last
  FROM audit_logs a
  WHERE a.LogTime >= TIMESTAMP :since AND a.LogTime < TIMESTAMP :until
  GROUP BY a.ClientIp
)
SELECT c.ip, c.identities, d.db_users, c.cloud_events, c.cloud_errors, d.statements, d.rows_touched, d.high_alerts,
       least(c.cloud_first, d.data_first) AS first_time, greatest(c.cloud_last, d.data_last) AS last_time
FROM cloud c JOIN data d ON c.ip = d.ip
ORDER BY d.high_alerts DESC, c.cloud_errors DESC, c.ip
