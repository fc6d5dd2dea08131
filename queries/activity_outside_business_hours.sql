-- name: activity_outside_business_hours
-- title: Activity outside business hours
-- description: Per identity, write operations and sign-ins at night or on weekends, in the time zone given by utc_offset_hours.
-- tactic: TA0001 Initial Access
-- flags: per identity, write calls and console sign-ins at night or at weekends in the given time zone
-- ignores: reads; events without an identity
-- fields: eventTime, eventRW, eventName, userIdentity
-- param: utc_offset_hours = 0  (local time = UTC + this)
-- param: start_hour = 8  (business day starts, local hour)
-- param: end_hour = 19  (business day ends, local hour)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
WITH local AS (
  SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, eventName, eventTime,
         to_timestamp_seconds(to_unixtime(eventTime) + :utc_offset_hours * 3600) AS local_time
  FROM events
  WHERE (eventRW = 'Write' OR eventName IN ('ConsoleSignin', 'ConsoleLogin')) AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
)
SELECT identity, count(*) AS events,
       sum(CASE WHEN date_part('dow', local_time) IN (0, 6) THEN 1 ELSE 0 END) AS weekend,
       sum(CASE WHEN date_part('hour', local_time) < :start_hour OR date_part('hour', local_time) >= :end_hour THEN 1 ELSE 0 END) AS night,
       min(eventTime) AS first_time, max(eventTime) AS last_time
FROM local
WHERE date_part('dow', local_time) IN (0, 6)
   OR date_part('hour', local_time) < :start_hour OR date_part('hour', local_time) >= :end_hour
GROUP BY identity
ORDER BY events DESC, identity
