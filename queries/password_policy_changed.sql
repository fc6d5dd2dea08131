-- name: password_policy_changed
-- title: Password policy changed or weakened
-- description: Changes to the account password policy; weakened when the minimum length drops below the threshold or the policy is deleted.
-- tactic: TA0005 Defense Evasion
-- flags: successful ram and iam SetPasswordPolicy, UpdateAccountPasswordPolicy, DeleteAccountPasswordPolicy; weakened when the minimum length falls below min_length or the policy is deleted
-- ignores: failed calls
-- fields: serviceName, eventName, errorCode, requestParameters.MinimumPasswordLength
-- detection: medium
-- param: min_length = 8  (a minimum password length below this is weak)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_int(requestParameters, 'MinimumPasswordLength'), json_get_int(requestParameters, 'minimumPasswordLength')) AS minimum_length,
       (eventName = 'DeleteAccountPasswordPolicy'
        OR coalesce(json_get_int(requestParameters, 'MinimumPasswordLength'), json_get_int(requestParameters, 'minimumPasswordLength')) < :min_length) AS weakened,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('ram', 'iam')
  AND eventName IN ('SetPasswordPolicy', 'UpdateAccountPasswordPolicy', 'DeleteAccountPasswordPolicy')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
