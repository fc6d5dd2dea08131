-- name: root_account_use
-- title: Root account activity
-- description: Every operation made with the account's root identity (ActionTrail `root-account`, CloudTrail `Root`). The root identity should not be used for daily work; each use deserves a reason.
-- tactic: TA0004 Privilege Escalation
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, acsRegion, eventName, sourceIpAddress, userAgent, errorCode
FROM events
WHERE lower(userIdentity.type) IN ('root-account', 'root')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, eventName
