-- name: bucket_made_public
-- title: Bucket made public
-- description: Successful calls that open an S3 or OSS bucket to everyone: a public-read or public-read-write ACL or a grant to AllUsers or AuthenticatedUsers, a bucket policy for any principal that no organization or account condition narrows, a public access block removed.
-- tactic: TA0010 Exfiltration
-- flags: s3 and oss PutBucketAcl with a public canned ACL (x-amz-acl, x-oss-acl, public-read, public-read-write) or an AllUsers/AuthenticatedUsers grant; PutBucketPolicy whose policy names Principal "*" or {"AWS": "*"}; s3 DeleteBucketPublicAccessBlock, s3control DeletePublicAccessBlock, oss DeleteBucketPublicAccessBlock
-- ignores: failed calls; policies for any principal limited by aws:PrincipalOrgID, aws:PrincipalOrgPaths, aws:SourceOrgID, aws:PrincipalAccount or aws:SourceAccount (not public); private ACLs; the same names on another service
-- fields: serviceName, eventName, errorCode, requestParameters (the ACL headers and grants, bucketPolicy)
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName,
       coalesce(json_get_str(requestParameters, 'BucketName'), json_get_str(requestParameters, 'bucketName')) AS bucket,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND lower(serviceName) IN ('s3', 's3control', 'oss')
  AND ((eventName = 'PutBucketAcl'
        AND (regexp_like(requestParameters, '"(x-amz-acl|x-oss-acl|acl|ACL)"\s*:\s*\[?\s*"public-read', 'i')
             OR regexp_like(requestParameters, 'acs\.amazonaws\.com/groups/global/(AllUsers|AuthenticatedUsers)')))
    OR (eventName = 'PutBucketPolicy'
        AND regexp_like(requestParameters, '\\?"Principal\\?"\s*:\s*(\{\s*\\?"AWS\\?"\s*:\s*)?\\?"\*\\?"')
        AND NOT regexp_like(requestParameters, '(aws:PrincipalOrgID|aws:PrincipalOrgPaths|aws:SourceOrgID|aws:PrincipalAccount|aws:SourceAccount)', 'i'))
    OR eventName IN ('DeleteBucketPublicAccessBlock', 'DeletePublicAccessBlock'))
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
