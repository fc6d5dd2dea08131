-- name: bulk_read_after_cloud_change
-- title: Bulk read from a new client IP shortly after an access key or an open security group
-- description: Joins data-audit logs with events: a bulk read (at least min_rows rows) by a database user from a client IP it had not used before, within window_hours after an access key was created or a security group was opened to the world. The order an intruder often follows: gain a credential or a way in, then take the data.
-- tactic: TA0010 Exfiltration
-- flags: pairs of (successful CreateAccessKey, or an inbound rule for 0.0.0.0/0 or ::/0) then, within window_hours, a read with EffectRow >= min_rows whose (user, client IP) has no earlier audit log
-- ignores: reads from a client IP the user had used before; failed cloud calls; smaller reads
-- fields: events: eventTime, eventName, errorCode, requestParameters, sourceIpAddress, userIdentity; audit_logs: LogTime, UserName, ClientIp, InstanceName, OperateType, SqlText, EffectRow, ExecuteStatus
-- param: min_rows = 10000  (rows a read must return)
-- param: window_hours = 2  (how long after the change the read comes)
WITH changes AS (
  SELECT eventTime, eventName, sourceIpAddress,
         coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor
  FROM events
  WHERE errorCode IS NULL
    AND (eventName = 'CreateAccessKey'
         OR (eventName IN ('AuthorizeSecurityGroup', 'AuthorizeSecurityGroupIngress', 'ModifySecurityGroupRule', 'ModifySecurityGroupRules')
             AND (requestParameters LIKE '%0.0.0.0/0%' OR requestParameters LIKE '%"::/0"%')))
),
first_use AS (
  SELECT a.UserName AS db_user, a.ClientIp AS client_ip, min(a.LogTime) AS first_seen
  FROM audit_logs a GROUP BY a.UserName, a.ClientIp
),
reads AS (
  SELECT a.LogTime, a.UserName, a.ClientIp, a.InstanceName, a.EffectRow
  FROM audit_logs a JOIN first_use f ON a.UserName = f.db_user AND a.ClientIp = f.client_ip
  WHERE (lower(a.OperateType) = 'select' OR regexp_like(a.SqlText, '^\s*select\b', 'i'))
    AND a.EffectRow >= :min_rows AND coalesce(a.ExecuteStatus, 1) <> 0
    AND a.LogTime = f.first_seen
)
SELECT r.LogTime AS read_time, r.UserName AS db_user, r.ClientIp AS client_ip, r.InstanceName, r.EffectRow AS rows_read,
       c.eventTime AS change_time, c.eventName AS change, c.actor, c.sourceIpAddress AS change_ip,
       CAST((to_unixtime(r.LogTime) - to_unixtime(c.eventTime)) / 60 AS BIGINT) AS minutes_after
FROM reads r JOIN changes c
  ON c.eventTime <= r.LogTime AND to_unixtime(r.LogTime) - to_unixtime(c.eventTime) <= :window_hours * 3600
ORDER BY read_time, change_time, change
