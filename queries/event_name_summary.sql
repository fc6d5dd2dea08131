-- name: event_name_summary
-- title: Top event names
-- description: The most frequent operations with their error counts and how many identities and IPs made them: the first look at any store.
-- flags: the most frequent operations with error counts, identities and addresses
-- ignores: nothing: it is an overview
-- fields: eventName, errorCode, userIdentity, sourceIpAddress
-- param: top = 20  (rows)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventName, count(*) AS events, count(errorCode) AS errors,
       count(DISTINCT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId)) AS identities, count(DISTINCT sourceIpAddress) AS source_ips
FROM events
WHERE eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
GROUP BY eventName
ORDER BY events DESC, eventName
LIMIT :top
