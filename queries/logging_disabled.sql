-- name: logging_disabled
-- title: Logging and monitoring disabled
-- description: Access logging, flow logs, log stores and configuration recording switched off or deleted (outside the trail itself, which trail_tampering covers).
-- tactic: TA0005 Defense Evasion
-- param: since = 1970-01-01 00:00:00  (start of the window, UTC)
-- param: until = 2200-01-01 00:00:00  (end of the window, UTC, exclusive)
SELECT eventTime, coalesce(userIdentity.userName, userIdentity.sessionContext.sessionIssuer.userName, userIdentity.principalId) AS actor, eventName, serviceName, eventSource,
       coalesce(json_get_str(requestParameters, 'BucketName'), json_get_str(requestParameters, 'bucketName'),
                json_get_str(requestParameters, 'ProjectName'), json_get_str(requestParameters, 'logstoreName')) AS target,
       sourceIpAddress, errorCode
FROM events
WHERE eventName IN ('DeleteBucketLogging', 'DeleteFlowLog', 'DeleteFlowLogs', 'DeactivateFlowLog',
                    'DeleteLogStore', 'DeleteLogstore', 'StopConfigurationRecorder',
                    'DeleteConfigurationRecorder', 'DeleteDeliveryChannel', 'DeleteDetector',
                    'DisableSecurityHub')
  AND eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
ORDER BY eventTime
