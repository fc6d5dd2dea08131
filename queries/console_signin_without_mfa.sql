-- name: console_signin_without_mfa
-- title: Console sign-ins without MFA
-- description: Successful console sign-ins of users whose sign-in used no MFA device (ActionTrail ConsoleSignin with additionalEventData.MFAUsed false, CloudTrail ConsoleLogin with MFAUsed No). A sign-in through SAML, SSO or another identity provider had its MFA there, and is not listed.
-- tactic: TA0001 Initial Access
-- flags: ims ConsoleSignin and signin ConsoleLogin that succeeded with MFAUsed false or No, by a user (ram-user, IAMUser, root)
-- ignores: failed sign-ins (errorCode, or responseElements.ConsoleLogin Failure); federated sign-ins: userIdentity.type AssumedRole, FederatedUser, SAMLUser or assumed-role, an AWSReservedSSO_ role, additionalEventData.SamlProviderArn, a sign-in to an SSO portal (LoginTo *.awsapps.com)
-- fields: serviceName, eventName, errorCode, responseElements.ConsoleLogin, additionalEventData.MFAUsed, additionalEventData.SamlProviderArn, additionalEventData.LoginTo, userIdentity.type, userIdentity.arn
-- detection: medium
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, userIdentity.type AS identity_type, sourceIpAddress, acsRegion
FROM events
WHERE eventName IN ('ConsoleSignin', 'ConsoleLogin')
  AND lower(serviceName) IN ('ims', 'signin')
  AND errorCode IS NULL AND coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') <> 'Failure'
  AND lower(json_get_str(additionalEventData, 'MFAUsed')) IN ('false', 'no')
  AND lower(coalesce(userIdentity.type, '')) NOT IN ('assumedrole', 'assumed-role', 'federateduser', 'samluser')
  AND coalesce(userIdentity.arn, '') NOT LIKE '%AWSReservedSSO\_%' ESCAPE '\'
  AND json_get_str(additionalEventData, 'SamlProviderArn') IS NULL
  AND coalesce(json_get_str(additionalEventData, 'LoginTo'), '') NOT LIKE '%.awsapps.com%'
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime, identity
