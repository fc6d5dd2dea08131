-- name: policy_attached
-- title: Policies attached to users, groups or roles
-- description: Permission grants (ActionTrail AttachPolicyTo*, CloudTrail Attach*Policy and Put*Policy); privileged marks administrator and full-access policies.
-- tactic: TA0004 Privilege Escalation
-- flags: successful ram and iam attachments and inline policies for users, groups and roles; privileged marks AdministratorAccess and *FullAccess
-- ignores: failed calls; policy detachments; the same names on another service
-- fields: serviceName, eventName, errorCode, requestParameters.UserName, RoleName, GroupName, PolicyName, policyArn
-- detection: medium
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'RoleName'), json_get_str(requestParameters, 'GroupName'),
                json_get_str(requestParameters, 'userName'), json_get_str(requestParameters, 'roleName'), json_get_str(requestParameters, 'groupName')) AS target,
       coalesce(json_get_str(requestParameters, 'PolicyName'), json_get_str(requestParameters, 'policyArn'), json_get_str(requestParameters, 'policyName')) AS policy,
       regexp_like(coalesce(json_get_str(requestParameters, 'PolicyName'), json_get_str(requestParameters, 'policyArn'), json_get_str(requestParameters, 'policyName'), ''), '(AdministratorAccess|FullAccess)', 'i') AS privileged,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('ram', 'iam')
  AND eventName IN ('AttachPolicyToUser', 'AttachPolicyToRole', 'AttachPolicyToGroup',
                    'AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy',
                    'PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
