-- name: unusual_user_agents
-- title: Unusual user agents for an identity
-- description: Calls made with a kind of client (console, SDK, CLI, Terraform, a cloud service, other such as curl) that an identity with enough history rarely uses.
-- tactic: TA0001 Initial Access
-- flags: calls with a kind of client an identity with enough history rarely uses
-- ignores: identities with little history
-- fields: userAgent, userIdentity
-- param: max_share = 0.05  (a client kind below this share of the identity's events is unusual)
-- param: min_events = 20  (identities with fewer events are not judged)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
WITH c AS (
  SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity, eventTime, eventName, userAgent, sourceIpAddress,
         CASE
           WHEN userAgent IS NULL THEN 'none'
           WHEN userAgent ILIKE '%console%' OR userAgent = 'signin.amazonaws.com' THEN 'console'
           WHEN userAgent ILIKE 'aliyun-cli%' OR userAgent ILIKE 'aws-cli%' THEN 'cli'
           WHEN userAgent ILIKE 'terraform%' OR userAgent ILIKE '%terraform%' THEN 'terraform'
           WHEN userAgent ILIKE '%sdk%' OR userAgent ILIKE 'AlibabaCloud (%' OR userAgent ILIKE 'Boto3%' OR userAgent ILIKE 'botocore%' THEN 'sdk'
           WHEN userAgent ILIKE '%.amazonaws.com' OR userAgent ILIKE '%.aliyuncs.com' OR userAgent ILIKE 'AWS Internal' THEN 'service'
           ELSE 'other'
         END AS client
  FROM events WHERE eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
),
shares AS (
  SELECT identity, client, count(*) AS n,
         sum(count(*)) OVER (PARTITION BY identity) AS total
  FROM c GROUP BY identity, client
)
SELECT c.eventTime, c.identity, c.client, c.userAgent, c.eventName, c.sourceIpAddress,
       s.n AS client_events, s.total AS identity_events
FROM c JOIN shares s ON c.identity = s.identity AND c.client = s.client
WHERE s.total >= :min_events AND CAST(s.n AS DOUBLE) / s.total < :max_share
ORDER BY c.eventTime, c.identity
