-- name: mfa_device_removed
-- title: MFA device unbound, disabled or deleted
-- description: Removal of a multi-factor device (ActionTrail UnbindMFADevice, DisableVirtualMFA, DeleteVirtualMFADevice; CloudTrail DeactivateMFADevice, DeleteVirtualMFADevice) weakens sign-in for that user.
-- tactic: TA0005 Defense Evasion
-- flags: successful ims, ram and iam UnbindMFADevice, DisableVirtualMFA, DeleteVirtualMFADevice, DeactivateMFADevice
-- ignores: failed calls; the same names on another service
-- fields: serviceName, eventName, errorCode, requestParameters.UserName
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'userName')) AS target_user,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('ims', 'ram', 'iam')
  AND eventName IN ('UnbindMFADevice', 'DisableVirtualMFA', 'DeleteVirtualMFADevice', 'DeactivateMFADevice')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
