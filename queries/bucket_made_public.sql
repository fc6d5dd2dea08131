-- name: bucket_made_public
-- title: Bucket made public
-- description: Bucket ACLs granting public read or write (x-oss-acl / x-amz-acl public-read, AllUsers grants), bucket policies for any principal, public access blocks removed.
-- tactic: TA0010 Exfiltration
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'BucketName'), json_get_str(requestParameters, 'bucketName')) AS bucket,
       sourceIpAddress, errorCode
FROM events
WHERE ((eventName = 'PutBucketAcl' AND (requestParameters ILIKE '%public-read%' OR requestParameters LIKE '%AllUsers%'))
    OR (eventName = 'PutBucketPolicy' AND regexp_like(requestParameters, '"Principal"\s*:\s*(\{\s*"AWS"\s*:\s*)?"\*"'))
    OR eventName IN ('DeleteBucketPublicAccessBlock', 'DeletePublicAccessBlock'))
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
