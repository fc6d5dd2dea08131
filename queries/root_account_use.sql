-- name: root_account_use
-- title: Root account activity
-- description: Every operation made with the account's root identity (ActionTrail `root-account`, CloudTrail `Root`). The root identity should not be used for daily work; each use deserves a reason.
-- tactic: TA0004 Privilege Escalation
-- flags: every call made with the account's root identity (root-account, Root), attempts included; succeeded says which worked
-- ignores: calls a cloud service made on root's behalf (userIdentity.invokedBy)
-- fields: userIdentity.type, userIdentity.invokedBy, errorCode
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, acsRegion, eventName, sourceIpAddress, userAgent, errorCode, errorCode IS NULL AS succeeded
FROM events
WHERE lower(userIdentity.type) IN ('root-account', 'root')
  AND userIdentity.invokedBy IS NULL
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, eventName
