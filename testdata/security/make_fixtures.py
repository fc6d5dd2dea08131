#!/usr/bin/env python3
"""Write the security fixtures: one scenario, told once in ActionTrail's words and once in
CloudTrail's, for the saved-query snapshot tests.

    python3 testdata/security/make_fixtures.py

Output (committed; re-running rewrites them identically):
    testdata/security/actiontrail.ndjson      ActionTrail records, one per line
    testdata/security/cloudtrail.json         CloudTrail {"Records": [...]}

A month of ordinary history (2024-04-01 .. 2024-04-30) for four identities, then two days of
incidents (2024-05-01 .. 2024-05-02): root use, sign-in without MFA, failed sign-in bursts
(one ending in success), access keys created/disabled/deleted (one for another user), MFA
unbound, password policy weakened, admin policy attached, trail stopped/deleted/changed, logging
disabled, SSH opened to 0.0.0.0/0, a bucket made public, a deletion burst, an enumeration burst,
a new region, a dormant identity waking, one identity from many IPs, one IP used by many
identities, odd user agents, access denied, a user created with a console password.

The same two months as data-audit logs (DescribeAuditLogs items), for both stores:
    testdata/security/audit_logs.ndjson
Ordinary reads and writes by three database users from their usual clients, then on
2024-05-01/02: bulk reads of card and identity numbers from 203.0.113.66 (the address that
broke into alice's console account) shortly after an access key was created for alice and SSH
was opened to the world, one of them at night; destructive statements (DROP, TRUNCATE, DELETE
without WHERE); a burst of failed logins from 203.0.113.77.
"""
import json
import os
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ACCOUNT = "1234567890123456"
AWS_ACCOUNT = "123456789012"

CONSOLE_AT = "AlibabaCloud Console"
CONSOLE_CT = "signin.amazonaws.com"
SDK_AT = "AlibabaCloud (Linux 5.10) Java8 Core/4.5.2"
SDK_CT = "aws-sdk-java/1.12.400 Linux/5.10 OpenJDK_64-Bit_Server_VM/17"
CLI_AT = "aliyun-cli/3.0.180"
CLI_CT = "aws-cli/2.13.0 Python/3.11.4 Linux/5.10"


def t(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def iso(d):
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


# identity -> (AT type, CT type, usual IP, usual agent kind, usual region index)
IDENTITIES = {
    "alice": ("ram-user", "IAMUser", "198.51.100.10", "console", 0),
    "bob": ("ram-user", "IAMUser", "198.51.100.11", "console", 0),
    "ci-bot": ("ram-user", "IAMUser", "10.0.8.15", "sdk", 0),
    "eve": ("ram-user", "IAMUser", "198.51.100.13", "cli", 0),
    "svc-legacy": ("ram-user", "IAMUser", "198.51.100.14", "sdk", 0),
}
REGIONS_AT = ["cn-hangzhou", "ap-southeast-1"]
REGIONS_CT = ["us-east-1", "eu-west-3"]

# Event names: (ActionTrail service, AT name, CloudTrail source, CT name, read-only)
N = {
    "describe": ("Ecs", "DescribeInstances", "ec2.amazonaws.com", "DescribeInstances", True),
    "list_users": ("Ram", "ListUsers", "iam.amazonaws.com", "ListUsers", True),
    "get_user": ("Ram", "GetUser", "iam.amazonaws.com", "GetUser", True),
    "list_buckets": ("Oss", "ListBuckets", "s3.amazonaws.com", "ListBuckets", True),
    "run": ("Ecs", "RunInstances", "ec2.amazonaws.com", "RunInstances", False),
    "delete_instance": ("Ecs", "DeleteInstance", "ec2.amazonaws.com", "TerminateInstances", False),
    "signin": ("Ims", "ConsoleSignin", "signin.amazonaws.com", "ConsoleLogin", False),
    "create_key": ("Ram", "CreateAccessKey", "iam.amazonaws.com", "CreateAccessKey", False),
    "update_key": ("Ram", "UpdateAccessKey", "iam.amazonaws.com", "UpdateAccessKey", False),
    "delete_key": ("Ram", "DeleteAccessKey", "iam.amazonaws.com", "DeleteAccessKey", False),
    "unbind_mfa": ("Ram", "UnbindMFADevice", "iam.amazonaws.com", "DeactivateMFADevice", False),
    "password_policy": ("Ram", "SetPasswordPolicy", "iam.amazonaws.com", "UpdateAccountPasswordPolicy", False),
    "attach_user": ("Ram", "AttachPolicyToUser", "iam.amazonaws.com", "AttachUserPolicy", False),
    "attach_role": ("Ram", "AttachPolicyToRole", "iam.amazonaws.com", "AttachRolePolicy", False),
    "stop_logging": ("Actiontrail", "StopLogging", "cloudtrail.amazonaws.com", "StopLogging", False),
    "delete_trail": ("Actiontrail", "DeleteTrail", "cloudtrail.amazonaws.com", "DeleteTrail", False),
    "update_trail": ("Actiontrail", "UpdateTrail", "cloudtrail.amazonaws.com", "UpdateTrail", False),
    "delete_logging": ("Oss", "DeleteBucketLogging", "s3.amazonaws.com", "DeleteBucketLogging", False),
    "open_sg": ("Ecs", "AuthorizeSecurityGroup", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False),
    "bucket_acl": ("Oss", "PutBucketAcl", "s3.amazonaws.com", "PutBucketAcl", False),
    "create_user": ("Ram", "CreateUser", "iam.amazonaws.com", "CreateUser", False),
    "login_profile": ("Ram", "CreateLoginProfile", "iam.amazonaws.com", "CreateLoginProfile", False),
}


class Scenario:
    def __init__(self):
        self.events = []  # neutral records
        self.seq = 0

    def add(self, when, who, kind, ip=None, region=0, agent=None, error=None, params=None,
            extra=None, response=None):
        self.seq += 1
        self.events.append(dict(seq=self.seq, when=when, who=who, kind=kind, ip=ip,
                                region=region, agent=agent, error=error, params=params or {},
                                extra=extra, response=response))


def build():
    s = Scenario()
    # A month of ordinary history: each identity reads a few times a day from its usual IP.
    day = t("2024-04-01T00:00:00Z")
    while day < t("2024-05-01T00:00:00Z"):
        for i, (who, (_, _, ip, agent, region)) in enumerate(IDENTITIES.items()):
            if who == "svc-legacy" and day > t("2024-04-03T00:00:00Z"):
                continue  # goes dormant after its first days
            base = day + timedelta(hours=9 + i, minutes=7 * i)
            if base.weekday() >= 5 and who != "ci-bot":
                continue
            s.add(base, who, "describe", ip, region, agent)
            s.add(base + timedelta(minutes=20), who, "list_buckets", ip, region, agent)
            if who == "alice":
                s.add(base - timedelta(minutes=5), who, "signin", ip, region, "console",
                      extra={"mfa": True})
        day += timedelta(days=1)

    d1 = "2024-05-01T"
    # Root use.
    s.add(t(d1 + "02:10:00Z"), "root", "signin", "198.51.100.20", agent="console",
          extra={"mfa": False})
    s.add(t(d1 + "02:12:00Z"), "root", "describe", "198.51.100.20", agent="console")
    # Console sign-in without MFA (bob), with MFA (alice).
    s.add(t(d1 + "08:30:00Z"), "bob", "signin", "198.51.100.11", agent="console",
          extra={"mfa": False})
    s.add(t(d1 + "08:31:00Z"), "alice", "signin", "198.51.100.10", agent="console",
          extra={"mfa": True})
    # Failed sign-in burst against alice from one IP, ending in a success.
    for k in range(6):
        s.add(t(d1 + "03:00:00Z") + timedelta(seconds=40 * k), "alice", "signin",
              "203.0.113.66", agent="console", error="InvalidPassword", extra={"mfa": False})
    s.add(t(d1 + "03:05:00Z"), "alice", "signin", "203.0.113.66", agent="console",
          extra={"mfa": False})
    # Failed sign-ins against several users from another IP (a spray).
    for k, who in enumerate(["bob", "eve", "ci-bot", "svc-legacy"]):
        s.add(t(d1 + "03:20:00Z") + timedelta(seconds=30 * k), who, "signin", "203.0.113.77",
              agent="console", error="InvalidPassword", extra={"mfa": False})
    # Access key lifecycle; one key created by bob for alice.
    s.add(t(d1 + "09:00:00Z"), "bob", "create_key", "198.51.100.11", agent="console",
          params={"UserName": "bob"})
    s.add(t(d1 + "09:05:00Z"), "bob", "update_key", "198.51.100.11", agent="console",
          params={"UserName": "bob", "UserAccessKeyId": "LTAI4Gexample", "Status": "Inactive"})
    s.add(t(d1 + "09:10:00Z"), "bob", "delete_key", "198.51.100.11", agent="console",
          params={"UserName": "bob", "UserAccessKeyId": "LTAI4Gexample"})
    s.add(t(d1 + "09:20:00Z"), "bob", "create_key", "198.51.100.11", agent="console",
          params={"UserName": "alice"})
    # MFA unbound, password policy weakened, admin policy attached.
    s.add(t(d1 + "09:30:00Z"), "bob", "unbind_mfa", "198.51.100.11", agent="console",
          params={"UserName": "alice"})
    s.add(t(d1 + "09:40:00Z"), "bob", "password_policy", "198.51.100.11", agent="console",
          params={"MinimumPasswordLength": 6, "RequireSymbols": False})
    s.add(t(d1 + "09:45:00Z"), "bob", "attach_user", "198.51.100.11", agent="console",
          params={"UserName": "eve", "PolicyName": "AdministratorAccess", "PolicyType": "System"})
    s.add(t(d1 + "09:46:00Z"), "bob", "attach_role", "198.51.100.11", agent="console",
          params={"RoleName": "ops", "PolicyName": "ReadOnlyAccess", "PolicyType": "System"})
    # Trail tampering and logging disabled (eve), one attempt denied.
    s.add(t(d1 + "10:00:00Z"), "eve", "update_trail", "198.51.100.13", agent="cli",
          params={"Name": "org-trail", "OssBucketName": "attacker-bucket"})
    s.add(t(d1 + "10:01:00Z"), "eve", "stop_logging", "198.51.100.13", agent="cli",
          params={"Name": "org-trail"})
    s.add(t(d1 + "10:02:00Z"), "eve", "delete_trail", "198.51.100.13", agent="cli",
          params={"Name": "org-trail"}, error="NoPermission")
    s.add(t(d1 + "10:03:00Z"), "eve", "delete_logging", "198.51.100.13", agent="cli",
          params={"BucketName": "audit-logs"})
    # SSH opened to the world; a bucket made public.
    s.add(t(d1 + "10:10:00Z"), "eve", "open_sg", "198.51.100.13", agent="cli",
          params={"SecurityGroupId": "sg-1", "IpProtocol": "tcp", "PortRange": "22/22",
                  "SourceCidrIp": "0.0.0.0/0"})
    s.add(t(d1 + "10:12:00Z"), "eve", "bucket_acl", "198.51.100.13", agent="cli",
          params={"BucketName": "customer-data", "x-oss-acl": "public-read"})
    # Enumeration burst (eve) and a deletion burst (ci-bot).
    for k in range(24):
        kind = ["describe", "list_users", "get_user", "list_buckets"][k % 4]
        s.add(t(d1 + "11:00:00Z") + timedelta(seconds=5 * k), "eve", kind, "198.51.100.13",
              agent="cli")
    for k in range(12):
        s.add(t(d1 + "12:00:00Z") + timedelta(seconds=30 * k), "ci-bot", "delete_instance",
              "10.0.8.15", agent="sdk", params={"InstanceId": f"i-{k:04d}"})
    # User created with a console password (persistence).
    s.add(t(d1 + "13:00:00Z"), "eve", "create_user", "198.51.100.13", agent="cli",
          params={"UserName": "backup-admin"})
    s.add(t(d1 + "13:01:00Z"), "eve", "login_profile", "198.51.100.13", agent="cli",
          params={"UserName": "backup-admin"})
    # Access denied, repeatedly, for eve.
    for k in range(3):
        s.add(t(d1 + "13:10:00Z") + timedelta(minutes=k), "eve", "run", "198.51.100.13",
              agent="cli", error="Forbidden.RAM")

    d2 = "2024-05-02T"
    # alice works from a new region, at night, with an unusual agent.
    s.add(t(d2 + "01:30:00Z"), "alice", "run", "198.51.100.10", region=1, agent="curl/8.4.0")
    s.add(t(d2 + "01:31:00Z"), "alice", "describe", "198.51.100.10", region=1, agent="console")
    # The dormant identity wakes up.
    s.add(t(d2 + "10:00:00Z"), "svc-legacy", "describe", "198.51.100.14", agent="sdk")
    # eve from many IPs within the day.
    for k in range(6):
        s.add(t(d2 + "14:00:00Z") + timedelta(minutes=10 * k), "eve", "describe",
              f"192.0.2.{10 + k}", agent="cli")
    # One IP used by many identities.
    for k, who in enumerate(["alice", "bob", "eve", "ci-bot"]):
        s.add(t(d2 + "15:00:00Z") + timedelta(minutes=k), who, "list_buckets", "203.0.113.99",
              agent=IDENTITIES[who][3])
    return s.events


def agent_string(kind, ct):
    return {
        "console": CONSOLE_CT if ct else CONSOLE_AT,
        "sdk": SDK_CT if ct else SDK_AT,
        "cli": CLI_CT if ct else CLI_AT,
    }.get(kind, kind)


def to_actiontrail(e):
    svc, name, _, _, ro = N[e["kind"]]
    who = e["who"]
    region = REGIONS_AT[e["region"]]
    if who == "root":
        ident = {"type": "root-account", "principalId": ACCOUNT, "accountId": ACCOUNT,
                 "userName": "root"}
    else:
        ident = {"type": IDENTITIES[who][0], "principalId": f"2{abs(hash_name(who)):015d}",
                 "accountId": ACCOUNT, "userName": who,
                 "accessKeyId": f"LTAI{who.upper().replace('-', '')}KEY"}
        if e["kind"] == "signin":
            del ident["accessKeyId"]
    rec = {
        "eventId": f"AT-{e['seq']:06d}",
        "eventVersion": 1,
        "eventSource": f"{svc.lower()}.aliyuncs.com",
        "eventName": name,
        "eventType": "ConsoleSignin" if e["kind"] == "signin" else "ApiCall",
        "eventCategory": "Management",
        "eventRW": "Read" if ro else "Write",
        "eventTime": iso(e["when"]),
        "acsRegion": region,
        "serviceName": svc,
        "requestId": f"REQ-{e['seq']:06d}",
        "sourceIpAddress": e["ip"],
        "userAgent": agent_string(e["agent"], False),
        "userIdentity": ident,
        "recipientAccountId": ACCOUNT,
    }
    if e["params"]:
        rec["requestParameters"] = dict(e["params"])
    if e["kind"] == "signin":
        rec["additionalEventData"] = {
            "loginAccount": f"{who}@example.onaliyun.com",
            "MFAUsed": "true" if (e["extra"] or {}).get("mfa") else "false",
        }
    if e["error"]:
        rec["errorCode"] = e["error"]
        rec["errorMessage"] = "The request was denied." if e["kind"] != "signin" \
            else "The password is wrong."
    return rec


def hash_name(s):
    h = 7
    for c in s:
        h = (h * 31 + ord(c)) % 10**15
    return h


CT_PARAMS = {
    "password_policy": lambda p: {"minimumPasswordLength": 6, "requireSymbols": False},
    "attach_user": lambda p: {"userName": p["UserName"],
                              "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
    "attach_role": lambda p: {"roleName": p["RoleName"],
                              "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
    "open_sg": lambda p: {"groupId": p["SecurityGroupId"], "ipPermissions": {"items": [
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
         "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
    "bucket_acl": lambda p: {"bucketName": p["BucketName"], "x-amz-acl": ["public-read"]},
    "update_trail": lambda p: {"name": p["Name"], "s3BucketName": p["OssBucketName"]},
    "stop_logging": lambda p: {"name": p["Name"]},
    "delete_trail": lambda p: {"name": p["Name"]},
    "delete_logging": lambda p: {"bucketName": p["BucketName"]},
    "delete_instance": lambda p: {"instancesSet": {"items": [{"instanceId": p["InstanceId"]}]}},
    "update_key": lambda p: {"userName": p["UserName"], "accessKeyId": p["UserAccessKeyId"],
                             "status": p["Status"]},
    "delete_key": lambda p: {"userName": p["UserName"], "accessKeyId": p["UserAccessKeyId"]},
    "create_key": lambda p: {"userName": p["UserName"]},
    "unbind_mfa": lambda p: {"userName": p["UserName"],
                             "serialNumber": f"arn:aws:iam::{AWS_ACCOUNT}:mfa/{p['UserName']}"},
    "create_user": lambda p: {"userName": p["UserName"]},
    "login_profile": lambda p: {"userName": p["UserName"], "passwordResetRequired": False},
}


def to_cloudtrail(e):
    _, _, source, name, ro = N[e["kind"]]
    who = e["who"]
    region = REGIONS_CT[e["region"]]
    if who == "root":
        ident = {"type": "Root", "principalId": AWS_ACCOUNT,
                 "arn": f"arn:aws:iam::{AWS_ACCOUNT}:root", "accountId": AWS_ACCOUNT}
    else:
        ident = {"type": "IAMUser", "principalId": f"AIDA{who.upper().replace('-', '')}",
                 "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{who}", "accountId": AWS_ACCOUNT,
                 "userName": who, "accessKeyId": f"AKIA{who.upper().replace('-', '')}KEY"}
        if e["kind"] == "signin":
            del ident["accessKeyId"]
    rec = {
        "eventVersion": "1.08",
        "userIdentity": ident,
        "eventTime": iso(e["when"]),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": e["ip"],
        "userAgent": agent_string(e["agent"], True),
        "requestParameters": CT_PARAMS[e["kind"]](e["params"]) if e["kind"] in CT_PARAMS
        else None,
        "responseElements": None,
        "requestID": f"REQ-{e['seq']:06d}",
        "eventID": f"CT-{e['seq']:06d}",
        "readOnly": ro,
        "eventType": "AwsConsoleSignIn" if e["kind"] == "signin" else "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": AWS_ACCOUNT,
        "eventCategory": "Management",
    }
    if e["kind"] == "signin":
        rec["additionalEventData"] = {
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if (e["extra"] or {}).get("mfa") else "No",
        }
        rec["responseElements"] = {"ConsoleLogin": "Failure" if e["error"] else "Success"}
        if e["error"]:
            rec["errorMessage"] = "Failed authentication"
    elif e["error"]:
        rec["errorCode"] = "Client.UnauthorizedOperation" if e["kind"] == "run" else "AccessDenied"
        rec["errorMessage"] = "User is not authorized to perform this operation"
    return rec


AUDIT_BASE = {
    "ClientPort": "51234", "ClientUa": "mysql-connector-j", "IpType": "default",
    "InstanceName": "rm-orders01", "InstanceDescription": "orders primary",
    "DatabaseName": "shop", "DbType": "MySQL", "ProductCode": "RDS", "ProductId": 5,
    "ExecuteTime": 12, "ExecuteStatus": 1, "Message": "success", "DataSet": "",
    "ColumnName": "", "PackageName": "", "OssObjectKey": "", "InWhiteList": False,
    "MemberAccount": ACCOUNT, "RuleCategory": "10", "LogSource": "RDS_AUDIT",
    "InstanceAuditStatus": "2", "RamConsoleLink": "", "ModelName": "",
}
LEVEL_NAMES = {"1": "Low", "2": "Medium", "3": "High"}
# database user -> (usual client IP, UserId)
DB_USERS = {
    "app_ro": ("10.0.9.20", "2741000000000061"),
    "dba_li": ("198.51.100.10", "2741000000000062"),
    "report": ("198.51.100.11", "2741000000000063"),
    "root": ("10.0.9.1", "2741000000000001"),
}


def audit_log(when, user, sql, operate, table, rows=1, level="1", rule=("r-100", "all statements"),
              ip=None, model="", status=1, message="success"):
    ms = int(when.timestamp() * 1000)
    item = dict(AUDIT_BASE)
    item.update({
        "LogTime": ms, "CreationTime": ms + 1500, "UserName": user, "UserId": DB_USERS[user][1],
        "ClientIp": ip or DB_USERS[user][0], "SqlText": sql, "OperateType": operate,
        "TableName": table, "EffectRow": rows, "WarnLevel": level,
        "WarnLevelName": LEVEL_NAMES[level], "RuleId": rule[0], "RuleName": rule[1],
        "ModelName": model, "ExecuteStatus": status, "Message": message,
    })
    return item


def build_audit_logs():
    logs = []
    day = t("2024-04-01T00:00:00Z")
    k = 0
    while day < t("2024-05-01T00:00:00Z"):
        if day.weekday() < 5:
            for h in range(10, 17, 2):
                k += 1
                logs.append(audit_log(day + timedelta(hours=h, minutes=k % 7), "app_ro",
                                      f"SELECT * FROM orders WHERE id = {k}", "Select", "orders",
                                      rows=1 + k % 40))
            logs.append(audit_log(day + timedelta(hours=11), "report",
                                  "SELECT region, sum(total) FROM orders GROUP BY region",
                                  "Select", "orders", rows=500))
            if day.weekday() == 2:
                logs.append(audit_log(day + timedelta(hours=10, minutes=30), "dba_li",
                                      "UPDATE products SET price = price * 1.02 WHERE id < 100",
                                      "Update", "products", rows=99, level="2",
                                      rule=("r-150", "bulk update")))
        day += timedelta(days=1)
    d1 = "2024-05-01T"
    bulk = ("r-201", "bulk read of sensitive columns")
    # Bulk reads from the address that took over alice's console account, after bob created an
    # access key for alice (09:20) and eve opened SSH to the world (10:10); one at night.
    logs.append(audit_log(t(d1 + "10:40:00Z"), "app_ro", "SELECT card_no, cvv FROM orders",
                          "Select", "orders", rows=250000, level="3", rule=bulk,
                          ip="203.0.113.66", model="Bank Card"))
    logs.append(audit_log(t(d1 + "23:30:00Z"), "app_ro", "SELECT * FROM customers",
                          "Select", "customers", rows=120000, level="3", rule=bulk,
                          ip="203.0.113.66", model="Identity Card"))
    # Destructive statements by the DBA account, and one that is not.
    destructive = ("r-300", "destructive statement")
    logs.append(audit_log(t(d1 + "12:30:00Z"), "dba_li", "DROP TABLE orders_archive", "Drop",
                          "orders_archive", rows=0, level="3", rule=destructive))
    logs.append(audit_log(t(d1 + "12:31:00Z"), "dba_li", "DELETE FROM customers", "Delete",
                          "customers", rows=1200, level="3", rule=("r-301", "DELETE without WHERE")))
    logs.append(audit_log(t(d1 + "12:32:00Z"), "dba_li", "truncate table audit_trail",
                          "Truncate", "audit_trail", rows=0, level="3", rule=destructive))
    logs.append(audit_log(t(d1 + "12:33:00Z"), "dba_li", "DELETE FROM orders WHERE id = 7",
                          "Delete", "orders", rows=1, level="1"))
    # Failed logins as root from the address that sprayed console passwords.
    d2 = "2024-05-02T"
    for k in range(6):
        logs.append(audit_log(t(d2 + "02:00:00Z") + timedelta(seconds=25 * k), "root",
                              "login", "Login", "", rows=0, level="2",
                              rule=("r-400", "failed login"), ip="203.0.113.77", status=0,
                              message="Access denied for user 'root'"))
    return logs


def main():
    logs = build_audit_logs()
    with open(os.path.join(HERE, "audit_logs.ndjson"), "w") as f:
        for item in logs:
            f.write(json.dumps(item, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"{len(logs)} data-audit logs")
    events = build()
    with open(os.path.join(HERE, "actiontrail.ndjson"), "w") as f:
        for e in events:
            f.write(json.dumps(to_actiontrail(e), separators=(",", ":")) + "\n")
    with open(os.path.join(HERE, "cloudtrail.json"), "w") as f:
        json.dump({"Records": [to_cloudtrail(e) for e in events]}, f, indent=1)
        f.write("\n")
    print(f"{len(events)} events in each dialect")


if __name__ == "__main__":
    main()
