-- name: errors_by_user_for_day
-- title: Errors by user for one day
-- description: For one UTC day, each identity's failed calls by error code (a failed console sign-in without an error code counts as ConsoleLoginFailure).
-- flags: for one day, each identity's failed calls by error code
-- ignores: successful calls
-- fields: errorCode, responseElements.ConsoleLogin, eventDate, userIdentity
-- param: day  (the UTC date, YYYY-MM-DD)
SELECT coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS identity,
       coalesce(errorCode, 'ConsoleLoginFailure') AS errorCode, count(*) AS errors,
       array_to_string(array_sort(array_agg(DISTINCT eventName)), ', ') AS names
FROM events
WHERE eventDate = CAST(:day AS DATE)
  AND (errorCode IS NOT NULL OR coalesce(json_get_str(responseElements, 'ConsoleLogin'), '') = 'Failure')
GROUP BY 1, 2
ORDER BY errors DESC, identity, errorCode
