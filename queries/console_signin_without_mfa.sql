-- name: console_signin_without_mfa
-- title: Console sign-ins without MFA
-- description: Successful console sign-ins where no MFA device was used (ActionTrail ConsoleSignin with additionalEventData.MFAUsed false, CloudTrail ConsoleLogin with MFAUsed No).
-- tactic: TA0001 Initial Access
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, userIdentity.type AS identity_type, sourceIpAddress, acsRegion
FROM events
WHERE eventName IN ('ConsoleSignin', 'ConsoleLogin')
  AND NOT (errorCode IS NOT NULL OR coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') = 'Failure')
  AND lower(json_get_str(additionalEventData, 'MFAUsed')) IN ('false', 'no')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, identity
