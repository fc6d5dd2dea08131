-- name: dormant_identity_reactivated
-- title: Long-unused identities active again
-- description: The first event of an identity after a long silence: forgotten users and keys are a favourite way in.
-- tactic: TA0001 Initial Access
-- flags: the first event of an identity after at least idle_days without any
-- ignores: identities first seen in the window (no earlier activity to compare); cloud services (userIdentity.type AWSService)
-- fields: eventTime, userIdentity
-- param: idle_days = 21  (days of silence before an identity counts as dormant)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime AS returned_at, identity, previous_activity,
       CAST((to_unixtime(eventTime) - to_unixtime(previous_activity)) / 86400 AS BIGINT) AS idle_days,
       eventName, sourceIpAddress, errorCode
FROM (
  SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, eventTime, eventName, sourceIpAddress, errorCode,
         lag(eventTime) OVER (PARTITION BY coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) ORDER BY eventTime) AS previous_activity
  FROM events
  WHERE lower(coalesce(userIdentity.type, '')) NOT IN ('awsservice', 'service')
)
WHERE previous_activity IS NOT NULL
  AND to_unixtime(eventTime) - to_unixtime(previous_activity) >= :idle_days * 86400
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY returned_at
