-- name: audit_new_client_ip
-- title: A database user from a new client IP
-- description: Client IPs a database user used on an instance for the first time in the last days of the audit logs, when the user had history on that instance before.
-- tactic: TA0001 Initial Access
-- flags: (database user, instance, client IP) first seen within the last days, for a user with earlier logs on that instance
-- ignores: users with no earlier history on the instance (a new user is not a new address)
-- fields: audit_logs: LogTime, UserName, InstanceName, ClientIp, EffectRow
-- param: days = 2  (the recent window, in days before the newest audit log)
WITH bounds AS (SELECT to_unixtime(max(LogTime)) - :days * 86400 AS cutoff FROM audit_logs),
firsts AS (
  SELECT UserName, InstanceName, ClientIp, min(LogTime) AS first_seen, count(*) AS statements,
         sum(coalesce(EffectRow, 0)) AS total_rows
  FROM audit_logs GROUP BY UserName, InstanceName, ClientIp
),
history AS (
  SELECT UserName, InstanceName, min(LogTime) AS active_since, count(DISTINCT ClientIp) AS known_ips
  FROM audit_logs GROUP BY UserName, InstanceName
)
SELECT f.UserName, f.InstanceName, f.ClientIp, f.first_seen, f.statements, f.total_rows, h.active_since, h.known_ips - 1 AS other_ips
FROM firsts f JOIN history h ON f.UserName = h.UserName AND f.InstanceName = h.InstanceName CROSS JOIN bounds b
WHERE to_unixtime(f.first_seen) >= b.cutoff AND to_unixtime(h.active_since) < b.cutoff
ORDER BY f.first_seen, f.UserName, f.ClientIp
