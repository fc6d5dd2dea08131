-- name: identity_many_ips
-- title: One identity from many IPs in a day
-- description: Identities seen from many distinct source IP addresses on one day (non-IP sources such as Internal or service names are not counted): shared or stolen credentials.
-- tactic: TA0001 Initial Access
-- flags: identities seen from many distinct IP addresses on one day
-- ignores: sources that are not addresses (Internal, service host names such as ecs.aliyuncs.com or *.amazonaws.com); cloud services (userIdentity.type AWSService)
-- fields: sourceIpAddress, userIdentity, eventTime
-- param: min_ips = 5  (distinct IPs in a day)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventDate, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, count(DISTINCT sourceIpAddress) AS source_ips, count(*) AS events,
       array_to_string(array_sort(array_agg(DISTINCT sourceIpAddress)), ', ') AS ips
FROM events
WHERE lower(coalesce(userIdentity.type, '')) NOT IN ('awsservice', 'service') AND is_ip(sourceIpAddress) AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY 1, 2
HAVING count(DISTINCT sourceIpAddress) >= :min_ips
ORDER BY eventDate, identity
