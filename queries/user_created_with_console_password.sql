-- name: user_created_with_console_password
-- title: User created and given a console password
-- description: A new user that was given a console login profile soon after: a backdoor account.
-- tactic: TA0003 Persistence
-- flags: a successful CreateUser followed within within_hours by a successful CreateLoginProfile for the same user
-- ignores: failed calls; login profiles for users created earlier
-- fields: eventName, errorCode, requestParameters.UserName
-- detection: high
-- param: within_hours = 24  (login profile at most this long after the user was created)
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
WITH created AS (
  SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor,
         coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'userName')) AS new_user
  FROM events WHERE eventName = 'CreateUser' AND errorCode IS NULL AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
),
profile AS (
  SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor,
         coalesce(json_get_str(requestParameters, 'UserName'), json_get_str(requestParameters, 'userName')) AS new_user
  FROM events WHERE eventName = 'CreateLoginProfile' AND errorCode IS NULL
)
SELECT c.new_user, c.eventTime AS created_at, c.actor AS created_by,
       p.eventTime AS login_profile_at, p.actor AS login_profile_by
FROM created c JOIN profile p ON c.new_user = p.new_user
WHERE p.eventTime >= c.eventTime
  AND to_unixtime(p.eventTime) - to_unixtime(c.eventTime) <= :within_hours * 3600
ORDER BY created_at
