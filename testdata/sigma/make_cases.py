#!/usr/bin/env python3
"""Write cases.ndjson: CloudTrail events that a public Sigma rule must match (`pos`) or must not
(`neg`), named in the eventID as `<rule file stem>:<pos|neg>:<n>`. The rules themselves are not
copied here (their license asks that author and references travel with them); the test reads
them from ../shared/data/sigma/rules/. Run: python3 testdata/sigma/make_cases.py
"""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.ndjson")
ACCOUNT = "444455556666"
counter = {}
rows = []
# Rules whose file is aws_cloudtrail_<name>.yml; the others are aws_<name>.yml.
CLOUDTRAIL_PREFIXED = {
    "bucket_deleted", "console_login_failed_authentication", "console_login_success_without_mfa",
    "disable_logging", "guardduty_detector_deleted_or_updated", "imds_malicious_usage",
    "new_acl_entries", "new_route_added", "pua_trufflehog", "security_group_change_ingress_egress",
    "ssm_malicious_usage", "vpc_flow_logs_deleted",
}


def stem(rule):
    return ("aws_cloudtrail_" if rule in CLOUDTRAIL_PREFIXED else "aws_") + rule



def ev(rule, kind, source, name, params=None, error=None, identity=None, response=None, agent="aws-cli/2.15.0", extra=None):
    key = (rule, kind)
    counter[key] = counter.get(key, 0) + 1
    n = len(rows)
    ident = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/analyst",
             "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLE", "userName": "analyst"}
    if identity:
        ident.update(identity)
    r = {"eventVersion": "1.08", "userIdentity": ident, "eventTime": f"2024-07-01T08:{n // 60:02d}:{n % 60:02d}Z",
         "eventSource": source, "eventName": name, "awsRegion": "eu-west-1", "sourceIPAddress": "192.0.2.10",
         "userAgent": agent, "requestParameters": params, "responseElements": response,
         "requestID": f"r{n}", "eventID": f"{stem(rule)}:{kind}:{counter[key]}",
         "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT}
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "User is not authorized"
    if extra:
        r.update(extra)
    rows.append(r)


ev("disable_logging", "pos", "cloudtrail.amazonaws.com", "StopLogging", {"name": "t"})
ev("disable_logging", "pos", "cloudtrail.amazonaws.com", "deletetrail", {"name": "t"})  # case-insensitive
ev("disable_logging", "neg", "cloudtrail.amazonaws.com", "StartLogging", {"name": "t"})
ev("disable_logging", "neg", "s3.amazonaws.com", "StopLogging", {"name": "t"})
ev("bucket_deleted", "pos", "s3.amazonaws.com", "DeleteBucket", {"bucketName": "b"})
ev("bucket_deleted", "pos", "s3.amazonaws.com", "DeleteBucket", {"bucketName": "b"}, extra={"errorCode": "Success"})
ev("bucket_deleted", "neg", "s3.amazonaws.com", "DeleteBucket", {"bucketName": "b"}, error="AccessDenied")
ev("console_login_success_without_mfa", "pos", "signin.amazonaws.com", "ConsoleLogin", None,
   response={"ConsoleLogin": "Success"}, extra={"additionalEventData": {"MFAUsed": "No"}})
ev("console_login_success_without_mfa", "neg", "signin.amazonaws.com", "ConsoleLogin", None,
   response={"ConsoleLogin": "Success"}, extra={"additionalEventData": {"MFAUsed": "Yes"}})
ev("console_login_success_without_mfa", "neg", "signin.amazonaws.com", "ConsoleLogin", None,
   response={"ConsoleLogin": "Failure"}, extra={"additionalEventData": {"MFAUsed": "No"}})
ev("console_login_failed_authentication", "pos", "signin.amazonaws.com", "ConsoleLogin", None,
   response={"ConsoleLogin": "Failure"}, extra={"errorMessage": "Failed authentication"})
ev("console_login_failed_authentication", "neg", "signin.amazonaws.com", "ConsoleLogin", None,
   response={"ConsoleLogin": "Success"})
ev("guardduty_detector_deleted_or_updated", "pos", "guardduty.amazonaws.com", "DeleteDetector", {"detectorId": "d"})
ev("guardduty_detector_deleted_or_updated", "pos", "guardduty.amazonaws.com", "UpdateDetector", {"detectorId": "d", "enable": False})
ev("guardduty_detector_deleted_or_updated", "neg", "guardduty.amazonaws.com", "UpdateDetector", {"detectorId": "d", "enable": True})
ev("guardduty_detector_deleted_or_updated", "neg", "guardduty.amazonaws.com", "DeleteDetector", {"detectorId": "d"}, error="AccessDenied")
ev("imds_malicious_usage", "pos", "s3.amazonaws.com", "ListBuckets", None,
   identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/aws:ec2-instance/i-0abc"})
ev("imds_malicious_usage", "neg", "ssm.amazonaws.com", "UpdateInstanceInformation", None,
   identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/aws:ec2-instance/i-0abc"})
ev("imds_malicious_usage", "neg", "s3.amazonaws.com", "ListBuckets", None,
   identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/jo"})
ev("new_acl_entries", "pos", "ec2.amazonaws.com", "CreateNetworkAclEntry", {"networkAclId": "acl-1"})
ev("new_acl_entries", "neg", "ec2.amazonaws.com", "DeleteNetworkAclEntry", {"networkAclId": "acl-1"})
ev("new_route_added", "pos", "ec2.amazonaws.com", "CreateRoute", {"routeTableId": "rtb-1"})
ev("new_route_added", "neg", "ec2.amazonaws.com", "CreateRouteTable", {"vpcId": "vpc-1"})
ev("pua_trufflehog", "pos", "sts.amazonaws.com", "GetCallerIdentity", None, agent="TruffleHog")
ev("pua_trufflehog", "pos", "sts.amazonaws.com", "GetCallerIdentity", None, agent="trufflehog")  # case-insensitive
ev("pua_trufflehog", "neg", "sts.amazonaws.com", "GetCallerIdentity", None, agent="TruffleHog/3.0")  # exact value
ev("security_group_change_ingress_egress", "pos", "ec2.amazonaws.com", "RevokeSecurityGroupEgress", {"groupId": "sg-1"})
ev("security_group_change_ingress_egress", "neg", "ec2.amazonaws.com", "DescribeSecurityGroups", None)
ev("ssm_malicious_usage", "pos", "ssm.amazonaws.com", "SendCommand", {"documentName": "AWS-RunShellScript"})
ev("ssm_malicious_usage", "neg", "ssm.amazonaws.com", "SendCommand", {"documentName": "AWS-RunShellScript"}, error="AccessDenied")
ev("vpc_flow_logs_deleted", "pos", "ec2.amazonaws.com", "DeleteFlowLogs", {"flowLogId": "fl-1"})
ev("vpc_flow_logs_deleted", "neg", "ec2.amazonaws.com", "CreateFlowLogs", {"flowLogId": "fl-1"})
ev("disable_bucket_versioning", "pos", "s3.amazonaws.com", "PutBucketVersioning",
   {"bucketName": "b", "VersioningConfiguration": {"Status": "Suspended"}})
ev("disable_bucket_versioning", "neg", "s3.amazonaws.com", "PutBucketVersioning",
   {"bucketName": "b", "VersioningConfiguration": {"Status": "Enabled"}})
ev("ec2_startup_script_change", "pos", "ec2.amazonaws.com", "ModifyInstanceAttribute", {"instanceId": "i-1", "attribute": "userData"})
ev("ec2_startup_script_change", "neg", "ec2.amazonaws.com", "ModifyInstanceAttribute", {"instanceId": "i-1", "attribute": "instanceType"})
ev("ecs_task_definition_cred_endpoint_query", "pos", "ecs.amazonaws.com", "RegisterTaskDefinition",
   {"family": "f", "containerDefinitions": [{"name": "c", "command": ["sh", "-c", "curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}]})
ev("ecs_task_definition_cred_endpoint_query", "neg", "ecs.amazonaws.com", "RegisterTaskDefinition",
   {"family": "f", "containerDefinitions": [{"name": "c", "command": ["nginx", "-g", "daemon off;"]}]})
ev("enum_buckets", "pos", "s3.amazonaws.com", "ListBuckets", None)
ev("enum_buckets", "neg", "s3.amazonaws.com", "ListBuckets", None,
   identity={"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/x"})
ev("new_lambda_layer_attached", "pos", "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2",
   {"functionName": "f", "layers": ["arn:aws:lambda:eu-west-1:444455556666:layer:evil:1"]})
ev("new_lambda_layer_attached", "neg", "lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2",
   {"functionName": "f", "timeout": 30})
ev("rds_change_master_password", "pos", "rds.amazonaws.com", "ModifyDBInstance", {"dBInstanceIdentifier": "db"},
   response={"pendingModifiedValues": {"masterUserPassword": "****"}})
ev("rds_change_master_password", "neg", "rds.amazonaws.com", "ModifyDBInstance", {"dBInstanceIdentifier": "db"},
   response={"pendingModifiedValues": {"allocatedStorage": 100}})
ev("rds_public_db_restore", "pos", "rds.amazonaws.com", "RestoreDBInstanceFromDBSnapshot", {"dBInstanceIdentifier": "db"},
   response={"publiclyAccessible": True})
ev("rds_public_db_restore", "neg", "rds.amazonaws.com", "RestoreDBInstanceFromDBSnapshot", {"dBInstanceIdentifier": "db"},
   response={"publiclyAccessible": False})
ev("root_account_usage", "pos", "iam.amazonaws.com", "ListUsers", None,
   identity={"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root"})
ev("root_account_usage", "neg", "iam.amazonaws.com", "ListUsers", None,
   identity={"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root"}, extra={"eventType": "AwsServiceEvent"})
ev("sts_assumerole_misuse", "pos", "s3.amazonaws.com", "GetObject", None,
   identity={"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "app"}}})
ev("sts_assumerole_misuse", "neg", "s3.amazonaws.com", "GetObject", None,
   identity={"type": "IAMUser"})
ev("susp_saml_activity", "pos", "sts.amazonaws.com", "AssumeRoleWithSAML", None)
ev("susp_saml_activity", "pos", "iam.amazonaws.com", "UpdateSAMLProvider", None)
ev("susp_saml_activity", "neg", "sts.amazonaws.com", "AssumeRole", None)
ev("sts_getsessiontoken_misuse", "pos", "sts.amazonaws.com", "GetSessionToken", None)
ev("sts_getsessiontoken_misuse", "neg", "sts.amazonaws.com", "GetSessionToken", None,
   identity={"type": "AssumedRole"})
ev("iam_s3browser_user_or_accesskey_creation", "pos", "iam.amazonaws.com", "CreateUser", {"userName": "x"},
   agent="S3 Browser 11.5.7 https://s3browser.com")
ev("iam_s3browser_user_or_accesskey_creation", "neg", "iam.amazonaws.com", "CreateUser", {"userName": "x"})
ev("iam_s3browser_templated_s3_bucket_policy_creation", "pos", "iam.amazonaws.com", "PutUserPolicy",
   {"userName": "x", "policyName": "p", "policyDocument": "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::<YOUR-BUCKET-NAME>/*\"}]}"},
   agent="S3 Browser 11.5.7")
ev("iam_s3browser_templated_s3_bucket_policy_creation", "neg", "iam.amazonaws.com", "PutUserPolicy",
   {"userName": "x", "policyName": "p", "policyDocument": "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::real-bucket/*\"}]}"},
   agent="S3 Browser 11.5.7")
ev("ec2_vm_export_failure", "pos", "ec2.amazonaws.com", "CreateInstanceExportTask", {"instanceId": "i-1"})
ev("ec2_vm_export_failure", "neg", "ec2.amazonaws.com", "CreateInstanceExportTask", {"instanceId": "i-1"}, error="AccessDenied")

with open(OUT, "w") as f:
    for r in rows:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
print(f"wrote {len(rows)} events to {OUT}")
