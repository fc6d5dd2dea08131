#!/usr/bin/env python3
"""Write cases.ndjson: labelled single events for the saved analyses' behaviours.

Each case is one CloudTrail or ActionTrail record whose marker (the user name, or the user
agent for root's calls) says what the analysis must do with it: `p-<analysis>-<case>` must be
reported, `n-<analysis>-<case>` must not. Negative cases are the near-misses: a failed call,
the same name on another service, a federated sign-in, an MFA session, a policy an
organization condition limits. Run: python3 testdata/detections/make_cases.py
"""
import hashlib
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.ndjson")
ACCOUNT = "111122223333"
AT_ACCOUNT = "1234567890123456"
n = 0


def ct(marker, source, name, params=None, error=None, identity=None, response=None, extra=None, agent="aws-cli/2.15"):
    global n
    n += 1
    ident = {"type": "IAMUser", "principalId": "AIDA" + marker.upper().replace("-", "")[:16],
             "arn": f"arn:aws:iam::{ACCOUNT}:user/{marker}", "accountId": ACCOUNT,
             "accessKeyId": "AKIAEXAMPLE", "userName": marker}
    if identity:
        ident.update(identity)
    r = {"eventVersion": "1.08", "userIdentity": ident, "eventTime": f"2024-06-01T10:{n // 60:02d}:{n % 60:02d}Z",
         "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
         "sourceIPAddress": "198.51.100.50", "userAgent": agent, "requestParameters": params,
         "responseElements": response, "requestID": f"req-{n}", "eventID": f"case-{n:04d}",
         "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True,
         "recipientAccountId": ACCOUNT}
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "denied"
    if extra:
        r.update(extra)
    return r


def at(marker, service, name, params=None, error=None, identity=None, extra=None, agent="aliyun-cli/3.0"):
    global n
    n += 1
    ident = {"type": "ram-user", "principalId": "2" + str(int(hashlib.sha1(marker.encode()).hexdigest(), 16) % 10**15).rjust(15, "0"),
             "accountId": AT_ACCOUNT, "userName": marker, "accessKeyId": "LTAIEXAMPLE"}
    if identity:
        ident.update(identity)
    r = {"eventId": f"case-{n:04d}", "eventVersion": 1, "eventSource": f"{service.lower()}.aliyuncs.com",
         "serviceName": service, "eventName": name, "eventType": "ApiCall", "eventCategory": "Management",
         "eventTime": f"2024-06-01T11:{n // 60:02d}:{n % 60:02d}Z", "acsRegion": "cn-hangzhou",
         "sourceIpAddress": "203.0.113.50", "userAgent": agent, "userIdentity": ident,
         "requestParameters": params, "requestId": f"req-{n}", "recipientAccountId": AT_ACCOUNT}
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "denied"
    if extra:
        r.update(extra)
    return r


cases = [
    # logging_disabled
    ct("p-logging_disabled-s3-delete", "s3.amazonaws.com", "DeleteBucketLogging", {"bucketName": "logs-a"}),
    ct("p-logging_disabled-s3-put-empty", "s3.amazonaws.com", "PutBucketLogging",
       {"bucketName": "logs-b", "BucketLoggingStatus": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}}),
    ct("n-logging_disabled-s3-put-enable", "s3.amazonaws.com", "PutBucketLogging",
       {"bucketName": "logs-c", "BucketLoggingStatus": {"LoggingEnabled": {"TargetBucket": "t", "TargetPrefix": "p/"}}}),
    ct("n-logging_disabled-s3-failed", "s3.amazonaws.com", "DeleteBucketLogging", {"bucketName": "logs-d"}, error="AccessDenied"),
    ct("p-logging_disabled-rds-stream", "rds.amazonaws.com", "StopActivityStream", {"resourceArn": "arn:aws:rds:us-east-1:111122223333:cluster:db1"}),
    ct("p-logging_disabled-resolver", "route53resolver.amazonaws.com", "DeleteResolverQueryLogConfig", {"resolverQueryLogConfigId": "rqlc-1"}),
    ct("p-logging_disabled-bedrock", "bedrock.amazonaws.com", "DeleteModelInvocationLoggingConfiguration", {}),
    ct("p-logging_disabled-guardduty-disable", "guardduty.amazonaws.com", "UpdateDetector", {"detectorId": "d1", "enable": False}),
    ct("n-logging_disabled-guardduty-enable", "guardduty.amazonaws.com", "UpdateDetector", {"detectorId": "d1", "enable": True}),
    ct("p-logging_disabled-guardduty-delete", "guardduty.amazonaws.com", "DeleteDetector", {"detectorId": "d2"}),
    ct("p-logging_disabled-flowlogs", "ec2.amazonaws.com", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1"}}}),
    ct("p-logging_disabled-loggroup", "logs.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/app"}),
    ct("p-logging_disabled-config", "config.amazonaws.com", "StopConfigurationRecorder", {"configurationRecorderName": "default"}),
    ct("n-logging_disabled-wrong-source", "appsync.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/x"}),
    at("p-logging_disabled-oss-delete", "Oss", "DeleteBucketLogging", {"BucketName": "at-logs"}),
    at("p-logging_disabled-sls-logstore", "Sls", "DeleteLogStore", {"ProjectName": "audit", "logstoreName": "trail"}),
    at("p-logging_disabled-vpc-flowlog", "Vpc", "DeactivateFlowLog", {"FlowLogId": "fl-2"}),
    at("n-logging_disabled-oss-failed", "Oss", "DeleteBucketLogging", {"BucketName": "at-logs"}, error="Forbidden.RAM"),
    # trail_tampering
    ct("p-trail_tampering-stop", "cloudtrail.amazonaws.com", "StopLogging", {"name": "org-trail"}),
    ct("p-trail_tampering-stop-denied", "cloudtrail.amazonaws.com", "StopLogging", {"name": "org-trail"}, error="AccessDenied"),
    ct("p-trail_tampering-selectors-drop", "cloudtrail.amazonaws.com", "PutEventSelectors",
       {"trailName": "org-trail", "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": False}]}),
    ct("n-trail_tampering-selectors-keep", "cloudtrail.amazonaws.com", "PutEventSelectors",
       {"trailName": "org-trail", "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True}]}),
    ct("p-trail_tampering-advanced-data-only", "cloudtrail.amazonaws.com", "PutAdvancedEventSelectors",
       {"trailName": "org-trail", "advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Data"]}]}]}),
    ct("n-trail_tampering-advanced-management", "cloudtrail.amazonaws.com", "PutAdvancedEventSelectors",
       {"trailName": "org-trail", "advancedEventSelectors": [{"fieldSelectors": [{"field": "eventCategory", "equals": ["Management"]}]}]}),
    ct("n-trail_tampering-other-service", "workspaces.amazonaws.com", "StopLogging", {"name": "x"}),
    at("p-trail_tampering-at-delete", "Actiontrail", "DeleteTrail", {"Name": "main-trail"}),
    # bucket_made_public
    ct("p-bucket_made_public-acl", "s3.amazonaws.com", "PutBucketAcl", {"bucketName": "pub-a", "x-amz-acl": ["public-read"], "acl": [""]}),
    ct("n-bucket_made_public-acl-private", "s3.amazonaws.com", "PutBucketAcl", {"bucketName": "pub-b", "x-amz-acl": ["private"], "acl": [""]}),
    ct("n-bucket_made_public-acl-failed", "s3.amazonaws.com", "PutBucketAcl", {"bucketName": "pub-c", "x-amz-acl": ["public-read"]}, error="AccessDenied"),
    ct("p-bucket_made_public-policy", "s3.amazonaws.com", "PutBucketPolicy",
       {"bucketName": "pub-d", "bucketPolicy": {"Version": "2012-10-17", "Statement": [
           {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pub-d/*"}]}}),
    ct("n-bucket_made_public-policy-org", "s3.amazonaws.com", "PutBucketPolicy",
       {"bucketName": "pub-e", "bucketPolicy": {"Version": "2012-10-17", "Statement": [
           {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pub-e/*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}]}}),
    ct("p-bucket_made_public-pab", "s3.amazonaws.com", "DeleteBucketPublicAccessBlock", {"bucketName": "pub-f"}),
    at("p-bucket_made_public-oss-acl", "Oss", "PutBucketAcl", {"BucketName": "at-pub", "x-oss-acl": "public-read-write"}),
    # console_signin_without_mfa
    ct("p-console_signin_without_mfa-iam", "signin.amazonaws.com", "ConsoleLogin", None,
       response={"ConsoleLogin": "Success"}, extra={"additionalEventData": {"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com/"}}),
    ct("n-console_signin_without_mfa-failed", "signin.amazonaws.com", "ConsoleLogin", None,
       response={"ConsoleLogin": "Failure"}, extra={"additionalEventData": {"MFAUsed": "No"}}),
    ct("n-console_signin_without_mfa-saml", "signin.amazonaws.com", "ConsoleLogin", None,
       identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/n-console_signin_without_mfa-saml"},
       response={"ConsoleLogin": "Success"},
       extra={"additionalEventData": {"MFAUsed": "No", "SamlProviderArn": f"arn:aws:iam::{ACCOUNT}:saml-provider/Okta"}}),
    ct("n-console_signin_without_mfa-sso", "signin.amazonaws.com", "ConsoleLogin", None,
       identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123/n-console_signin_without_mfa-sso"},
       response={"ConsoleLogin": "Success"}, extra={"additionalEventData": {"MFAUsed": "No"}}),
    ct("n-console_signin_without_mfa-mfa", "signin.amazonaws.com", "ConsoleLogin", None,
       response={"ConsoleLogin": "Success"}, extra={"additionalEventData": {"MFAUsed": "Yes"}}),
    at("p-console_signin_without_mfa-at", "Ims", "ConsoleSignin", None, extra={"additionalEventData": {"MFAUsed": "false"}, "eventType": "ConsoleSignin"}),
    at("n-console_signin_without_mfa-at-failed", "Ims", "ConsoleSignin", None, error="InvalidPassword",
       extra={"additionalEventData": {"MFAUsed": "false"}, "eventType": "ConsoleSignin"}),
    # security_group_open_to_world
    ct("p-security_group_open_to_world-ingress", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
       {"groupId": "sg-1", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
    ct("n-security_group_open_to_world-narrow", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
       {"groupId": "sg-2", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}}),
    ct("n-security_group_open_to_world-failed", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
       {"groupId": "sg-3", "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}, error="Client.UnauthorizedOperation"),
    at("p-security_group_open_to_world-at", "Ecs", "AuthorizeSecurityGroup", {"SecurityGroupId": "sg-at", "SourceCidrIp": "0.0.0.0/0", "PortRange": "22/22"}),
    # root_account_use (marker in the user agent)
    ct("p-root_account_use-ct", "iam.amazonaws.com", "ListUsers", None,
       identity={"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "userName": None}, agent="p-root_account_use-ct"),
    ct("n-root_account_use-invoked", "iam.amazonaws.com", "ListUsers", None,
       identity={"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "userName": None, "invokedBy": "support.amazonaws.com"},
       agent="n-root_account_use-invoked"),
    at("p-root_account_use-at", "Ram", "ListUsers", None, identity={"type": "root-account", "userName": "root"}, agent="p-root_account_use-at"),
    # access_key_created_for_other_user
    ct("p-access_key_created_for_other_user-ct", "iam.amazonaws.com", "CreateAccessKey", {"userName": "victim-bob"}),
    ct("n-access_key_created_for_other_user-self", "iam.amazonaws.com", "CreateAccessKey", {"userName": "n-access_key_created_for_other_user-self"}),
    ct("n-access_key_created_for_other_user-failed", "iam.amazonaws.com", "CreateAccessKey", {"userName": "victim-carol"}, error="AccessDenied"),
    at("p-access_key_created_for_other_user-at", "Ram", "CreateAccessKey", {"UserName": "victim-dave"}),
    # mfa_device_removed, policy_attached, password_policy_changed, access_key_changes
    ct("p-mfa_device_removed-ct", "iam.amazonaws.com", "DeactivateMFADevice", {"userName": "victim-erin", "serialNumber": "arn:aws:iam::111122223333:mfa/erin"}),
    ct("n-mfa_device_removed-failed", "iam.amazonaws.com", "DeactivateMFADevice", {"userName": "victim-erin"}, error="AccessDenied"),
    ct("p-policy_attached-ct", "iam.amazonaws.com", "AttachUserPolicy", {"userName": "victim-fay", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    ct("n-policy_attached-failed", "iam.amazonaws.com", "AttachUserPolicy", {"userName": "victim-fay", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, error="AccessDenied"),
    ct("p-password_policy_changed-ct", "iam.amazonaws.com", "UpdateAccountPasswordPolicy", {"minimumPasswordLength": 6}),
    ct("n-password_policy_changed-failed", "iam.amazonaws.com", "UpdateAccountPasswordPolicy", {"minimumPasswordLength": 6}, error="AccessDenied"),
    ct("p-access_key_changes-ct", "iam.amazonaws.com", "UpdateAccessKey", {"userName": "victim-gus", "status": "Active", "accessKeyId": "AKIAOTHER"}),
    ct("n-access_key_changes-failed", "iam.amazonaws.com", "DeleteAccessKey", {"userName": "victim-gus", "accessKeyId": "AKIAOTHER"}, error="AccessDenied"),
]

with open(OUT, "w") as f:
    for c in cases:
        f.write(json.dumps(c, separators=(",", ":")) + "\n")
print(f"wrote {len(cases)} cases to {OUT}")
