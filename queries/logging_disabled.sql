-- name: logging_disabled
-- title: Logging and monitoring disabled
-- description: Successful calls that switch off or delete an audit, access or activity log, a flow log, a log store, configuration recording or a threat detector, on AWS and Alibaba Cloud (the trail itself is trail_tampering's).
-- tactic: TA0005 Defense Evasion
-- flags: by service (serviceName, the first label of a CloudTrail eventSource): s3 DeleteBucketLogging and PutBucketLogging without LoggingEnabled; ec2 DeleteFlowLogs; logs DeleteLogGroup, DeleteLogStream; config StopConfigurationRecorder, DeleteConfigurationRecorder, DeleteDeliveryChannel; guardduty DeleteDetector and UpdateDetector with enable false; securityhub DisableSecurityHub; rds StopActivityStream; route53resolver DeleteResolverQueryLogConfig, DisassociateResolverQueryLogConfig; bedrock DeleteModelInvocationLoggingConfiguration; Alibaba Cloud oss DeleteBucketLogging and PutBucketLogging without LoggingEnabled, vpc DeleteFlowLog, DeactivateFlowLog, sls DeleteLogStore, DeleteProject, DeleteIndex
-- ignores: calls that failed (an errorCode); the same names on another service; trail changes (trail_tampering)
-- fields: serviceName, eventName, errorCode, requestParameters.BucketLoggingStatus.LoggingEnabled, requestParameters.enable
-- detection: high
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName, serviceName, eventSource,
       coalesce(json_get_str(requestParameters, 'BucketName'), json_get_str(requestParameters, 'bucketName'),
                json_get_str(requestParameters, 'ProjectName'), json_get_str(requestParameters, 'projectName'),
                json_get_str(requestParameters, 'logstoreName'), json_get_str(requestParameters, 'logGroupName'),
                json_get_str(requestParameters, 'detectorId'), json_get_str(requestParameters, 'resourceArn'),
                json_get_str(requestParameters, 'FlowLogId')) AS target,
       sourceIpAddress
FROM events
WHERE errorCode IS NULL
  AND ((lower(serviceName) IN ('s3', 'oss') AND (eventName = 'DeleteBucketLogging'
         OR (eventName = 'PutBucketLogging'
             AND json_get_json(requestParameters, 'BucketLoggingStatus', 'LoggingEnabled') IS NULL)))
    OR (lower(serviceName) = 'ec2' AND eventName = 'DeleteFlowLogs')
    OR (lower(serviceName) = 'vpc' AND eventName IN ('DeleteFlowLog', 'DeactivateFlowLog'))
    OR (lower(serviceName) = 'logs' AND eventName IN ('DeleteLogGroup', 'DeleteLogStream'))
    OR (lower(serviceName) = 'config' AND eventName IN ('StopConfigurationRecorder', 'DeleteConfigurationRecorder', 'DeleteDeliveryChannel'))
    OR (lower(serviceName) = 'guardduty' AND (eventName = 'DeleteDetector'
         OR (eventName = 'UpdateDetector' AND json_get_bool(requestParameters, 'enable') = false)))
    OR (lower(serviceName) = 'securityhub' AND eventName = 'DisableSecurityHub')
    OR (lower(serviceName) = 'rds' AND eventName = 'StopActivityStream')
    OR (lower(serviceName) = 'route53resolver' AND eventName IN ('DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig'))
    OR (lower(serviceName) = 'bedrock' AND eventName = 'DeleteModelInvocationLoggingConfiguration')
    OR (lower(serviceName) IN ('sls', 'log') AND eventName IN ('DeleteLogStore', 'DeleteLogstore', 'DeleteProject', 'DeleteIndex')))
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
