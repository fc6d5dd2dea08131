-- name: top_error_codes_per_identity
-- title: Top error codes per identity
-- description: The most frequent error codes of each identity (a failed console sign-in counts as ConsoleLoginFailure): permission probing and broken automation stand out.
-- tactic: TA0007 Discovery
-- flags: each identity's most frequent error codes
-- ignores: successful calls
-- fields: errorCode, userIdentity
-- param: top = 3  (error codes per identity)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT identity, error, errors, rank FROM (
  SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity,
         coalesce(errorCode, CASE WHEN json_get_str(responseElements, 'ConsoleLogin') = 'Failure' THEN 'ConsoleLoginFailure' END) AS error,
         count(*) AS errors,
         row_number() OVER (PARTITION BY coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) ORDER BY count(*) DESC,
           coalesce(errorCode, CASE WHEN json_get_str(responseElements, 'ConsoleLogin') = 'Failure' THEN 'ConsoleLoginFailure' END)) AS rank
  FROM events
  WHERE (errorCode IS NOT NULL OR coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') = 'Failure') AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
  GROUP BY 1, 2
) WHERE rank <= :top
ORDER BY identity, rank
