-- name: ip_many_identities
-- title: One IP used by many identities
-- description: Public source IPs used by several identities: a shared jump host, or one attacker holding many credentials.
-- tactic: TA0006 Credential Access
-- flags: public source addresses used by many identities
-- ignores: private addresses; sources that are not addresses; cloud services (userIdentity.type AWSService)
-- fields: sourceIpAddress, userIdentity
-- param: min_identities = 3  (distinct identities behind one IP)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT sourceIpAddress, count(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)) AS identities, count(*) AS events,
       array_to_string(array_sort(array_agg(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId))), ', ') AS names,
       min(eventTime) AS first_time, max(eventTime) AS last_time
FROM events
WHERE lower(coalesce(userIdentity.type, '')) NOT IN ('awsservice', 'service') AND is_ip(sourceIpAddress) AND NOT is_private_ip(sourceIpAddress) AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY 1
HAVING count(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)) >= :min_identities
ORDER BY identities DESC, sourceIpAddress
