-- name: security_group_open_to_world
-- title: Security group opened to 0.0.0.0/0
-- description: Successful inbound rules that admit any address (0.0.0.0/0 or ::/0): ActionTrail AuthorizeSecurityGroup and ModifySecurityGroupRule (ecs), CloudTrail AuthorizeSecurityGroupIngress and ModifySecurityGroupRules (ec2).
-- tactic: TA0005 Defense Evasion
-- flags: ecs AuthorizeSecurityGroup, ModifySecurityGroupRule and ec2 AuthorizeSecurityGroupIngress, ModifySecurityGroupRules whose request names 0.0.0.0/0 or ::/0
-- ignores: failed calls; egress rules; rules for narrower ranges
-- fields: serviceName, eventName, errorCode, requestParameters (SourceCidrIp, ipPermissions ipRanges, Ipv6CidrIp)
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'SecurityGroupId'), json_get_str(requestParameters, 'groupId')) AS security_group,
       coalesce(json_get_str(requestParameters, 'PortRange'),
                CAST(json_get_int(requestParameters, 'ipPermissions', 'items', 0, 'fromPort') AS VARCHAR)) AS ports,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('ecs', 'ec2')
  AND eventName IN ('AuthorizeSecurityGroup', 'AuthorizeSecurityGroupIngress', 'ModifySecurityGroupRule', 'ModifySecurityGroupRules')
  AND (requestParameters LIKE '%0.0.0.0/0%' OR requestParameters LIKE '%"::/0"%')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
