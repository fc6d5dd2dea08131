#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Data-audit logs (`DescribeAuditLogs` records): recognized by content in a mixed delivery,
//! typed as the API documents, stored once in `audit_logs`, queryable in any case.

mod common;

use common::*;

fn audit_testdata() -> std::path::PathBuf {
    repo().join("testdata/audit_logs")
}

fn sql_json(store: &std::path::Path, sql: &str) -> Vec<serde_json::Value> {
    let o = ok_on(store, &["sql", "--format", "json", "-c", sql]);
    json(&o).as_array().cloned().unwrap_or_default()
}

#[test]
fn a_mixed_delivery_ingests_both_kinds_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let events = testdata();
    let audit = audit_testdata();
    let o = ok_on(
        &store,
        &[
            "ingest",
            "--json",
            events.to_str().unwrap(),
            audit.to_str().unwrap(),
        ],
    );
    let s = json(&o);
    assert_eq!(s["ingested"], 14, "{s}");
    assert_eq!(s["audit_logs_ingested"], 5, "{s}");
    assert_eq!(s["quarantined"], 0, "{s}");

    let info = json(&ok_on(&store, &["info", "--json"]));
    assert_eq!(info["audit_logs"], 5, "{info}");
    assert_eq!(info["events"], 14, "{info}");

    // One partition per UTC date of LogTime, inside the store's audit_logs directory.
    for day in ["2025-07-07", "2025-07-08"] {
        let part = store.join(format!("audit_logs/logDate={day}"));
        assert!(part.is_dir(), "{}", part.display());
    }

    // Types as documented: times from milliseconds, integers, a boolean.
    let rows = sql_json(
        &store,
        "SELECT LogTime, CreationTime, UserName, ClientIp, EffectRow, ExecuteStatus, \
         ProductId, InWhiteList, WarnLevelName, logDate FROM audit_logs ORDER BY LogTime",
    );
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["LogTime"], "2025-07-07T06:43:12Z", "{}", rows[0]);
    assert_eq!(
        rows[0]["CreationTime"], "2025-07-07T06:43:13.500Z",
        "{}",
        rows[0]
    );
    assert_eq!(rows[1]["EffectRow"], 48213);
    assert_eq!(rows[1]["ProductId"], 5);
    assert_eq!(rows[2]["UserName"], "dba_li");
    assert_eq!(rows[4]["ExecuteStatus"], 0);
    assert_eq!(rows[4]["InWhiteList"], true);
    assert_eq!(rows[4]["logDate"], "2025-07-08");

    // A field the API does not document is kept in raw.
    let raw = sql_json(
        &store,
        "SELECT json_get_str(raw, 'TraceId') AS t FROM audit_logs WHERE raw LIKE '%TraceId%'",
    );
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0]["t"], "t-9f2");

    // Names in any case.
    let n = sql_json(
        &store,
        "SELECT username, count(*) AS n FROM audit_logs WHERE effectrow > 100 GROUP BY username \
         ORDER BY username",
    );
    assert_eq!(
        n,
        vec![
            serde_json::json!({"UserName": "app_ro", "n": 1}),
            serde_json::json!({"UserName": "dba_li", "n": 1}),
        ]
    );

    // The same delivery read again stores nothing.
    let o = ok_on(
        &store,
        &[
            "ingest",
            "--json",
            "--reread",
            events.to_str().unwrap(),
            audit.to_str().unwrap(),
        ],
    );
    let s = json(&o);
    assert_eq!(s["ingested"], 0, "{s}");
    assert_eq!(s["audit_logs_ingested"], 0, "{s}");
    assert_eq!(s["audit_log_duplicates"], 5, "{s}");
    assert_eq!(sql_json(&store, "SELECT * FROM audit_logs").len(), 5);

    // The same alert fetched again in another language, after a whitelist change, is the
    // same alert; a different row count is not.
    let page = std::fs::read_to_string(audit.join("DescribeAuditLogs-page1.json")).unwrap();
    let again = page
        .replace("\"High\"", "\"高危\"")
        .replace("\"InWhiteList\": false", "\"InWhiteList\": true");
    let changed = page.replace("\"EffectRow\": 48213", "\"EffectRow\": 48214");
    std::fs::write(dir.path().join("again.json"), again).unwrap();
    std::fs::write(dir.path().join("changed.json"), changed).unwrap();
    let o = ok_on(
        &store,
        &[
            "ingest",
            "--json",
            dir.path().join("again.json").to_str().unwrap(),
            dir.path().join("changed.json").to_str().unwrap(),
        ],
    );
    let s = json(&o);
    assert_eq!(s["audit_logs_ingested"], 1, "{s}");
    assert_eq!(s["audit_log_duplicates"], 5, "{s}");

    // Events are untouched by all this.
    let n = sql_json(&store, "SELECT count(*) AS n FROM events");
    assert_eq!(n[0]["n"], 14);
}

#[test]
fn every_shape_of_delivery_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let item = |t: u64, user: &str| {
        serde_json::json!({"LogTime": t, "UserName": user, "ClientIp": "192.0.2.7",
            "SqlText": "SELECT 1", "EffectRow": 1, "ExecuteStatus": 1})
    };
    let page = |n: u64| {
        serde_json::json!({"RequestId": format!("r{n}"), "CurrentPage": n, "PageSize": 2,
            "TotalCount": 6, "Items": [item(1_700_000_000_000 + n * 10, "a"),
            item(1_700_000_000_001 + n * 10, "b")]})
    };
    // Many pages in one file, one per line; an array of pages; a bare array of items.
    let lines = format!("{}\n{}\n", page(1), page(2));
    std::fs::write(dir.path().join("pages.ndjson"), lines).unwrap();
    std::fs::write(
        dir.path().join("pages.json"),
        serde_json::json!([page(3)]).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("items.json"),
        serde_json::json!([item(1_700_000_000_100, "c")]).to_string(),
    )
    .unwrap();
    let store = dir.path().join("store");
    let o = ok_on(&store, &["ingest", "--json", dir.path().to_str().unwrap()]);
    let s = json(&o);
    assert_eq!(s["audit_logs_ingested"], 7, "{s}");
    assert_eq!(s["records"], 7, "pages are not records themselves: {s}");
    assert_eq!(s["quarantined"], 0, "{s}");
    let rows = sql_json(&store, "SELECT UserName FROM audit_logs ORDER BY LogTime");
    assert_eq!(rows.len(), 7);
}

#[test]
fn unusable_audit_logs_are_quarantined_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.ndjson");
    std::fs::write(
        &file,
        concat!(
            "{\"LogTime\": 1751870592000, \"UserName\": \"ok\"}\n",
            "{\"LogTime\": 1751870592000, \"UserName\": \"x\", \"EffectRow\": \"many\"}\n",
            "{\"LogTime\": \"last tuesday\", \"UserName\": \"y\"}\n",
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let o = run_on(&store, &["ingest", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("bad.ndjson:2") && err.contains("`EffectRow` is a string (\"many\")"),
        "{err}"
    );
    assert!(
        err.contains("bad.ndjson:3") && err.contains("not a UNIX time in milliseconds"),
        "{err}"
    );
    let rows = sql_json(&store, "SELECT UserName FROM audit_logs");
    assert_eq!(rows, vec![serde_json::json!({"UserName": "ok"})]);
}

#[test]
fn an_event_store_without_audit_logs_has_an_empty_table() {
    let rows = sql_json(
        fixture_store(),
        "SELECT count(*) AS n FROM audit_logs WHERE logDate >= DATE '2020-01-01'",
    );
    assert_eq!(rows[0]["n"], 0);
}

/// The documented example response of DescribeAuditLogs, as the API returns it.
const SEED_RESPONSE: &str = r#"{
  "AsyncRequestId": "CE4681BA-8019-5BE1-9F4B-8973BEA9CF57\n",
  "CurrentPage": 1,
  "PageSize": 10,
  "RequestId": "A7021857-AFD9-5AD6-979D-AA7DFC5AFADF",
  "TotalCount": 12,
  "Items": [
    {
      "CreationTime": 1536751124000,
      "WarnLevel": "2",
      "ClientPort": "35756",
      "TableName": "it_table",
      "EffectRow": 10,
      "PackageName": "test01",
      "UserId": "19********94",
      "Message": "success",
      "RuleId": "9952275",
      "OperateType": "Drop",
      "LogTime": 1751870592000,
      "WarnLevelName": "高危",
      "InstanceName": "rm-1234",
      "DatabaseName": "chngc_b2b_migration_sh",
      "OssObjectKey": "oss-key1",
      "ExecuteStatus": 1,
      "ProductId": 5,
      "ExecuteTime": 1751870592000,
      "UserName": "admin",
      "InstanceDescription": "instance dscription",
      "RuleName": "name",
      "ColumnName": "hide14",
      "ClientIp": "139.*.*.57",
      "ClientUa": "mysql",
      "ProductCode": "RDS",
      "SqlText": "select * from test03\n",
      "InWhiteList": true,
      "MemberAccount": "**********8103",
      "RuleCategory": "10",
      "IpType": "aliyun",
      "ModelName": "Identity Card",
      "DataSet": "plan_id ~ application_id ~ plan_type ~ plan_name ~ plan_value_id",
      "LogSource": "SLOW_SQL",
      "InstanceAuditStatus": "2",
      "DbType": "MySQL",
      "RamConsoleLink": ""
    }
  ]
}"#;

fn audit_page(store: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["audit-logs", "--output", "json"];
    all.extend_from_slice(args);
    json(&ok_on(store, &all))
}

#[test]
fn the_api_example_round_trips_through_ingest_and_the_api_shape() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("DescribeAuditLogs.json");
    std::fs::write(&file, SEED_RESPONSE).unwrap();
    let store = dir.path().join("store");
    ok_on(&store, &["ingest", file.to_str().unwrap()]);
    let page = audit_page(&store, &[]);
    let seed: serde_json::Value = serde_json::from_str(SEED_RESPONSE).unwrap();
    assert_eq!(page["Items"], seed["Items"], "{page}");
    assert_eq!(page["CurrentPage"], 1);
    assert_eq!(page["PageSize"], 10);
    assert_eq!(page["TotalCount"], 1);
    assert!(page["RequestId"].is_string(), "{page}");
    // The masked address of the example is found by the same mask.
    let page = audit_page(&store, &["--client-ip", "139.*.*.57", "--lang", "en_us"]);
    assert_eq!(page["TotalCount"], 1, "{page}");
    assert_eq!(
        page["Items"][0]["WarnLevelName"], "Medium",
        "from WarnLevel 2"
    );
}

/// Four logs that each filter tells apart; `Label` (not an API field) names them.
fn filter_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    const T: u64 = 1_751_870_592_000;
    let items = serde_json::json!([
        {"Label": "L1", "UserName": "admin", "ClientIp": "10.1.2.94", "ClientUa": "MySQL-Connector",
         "InstanceName": "rm-a", "DatabaseName": "db1", "LogTime": T + 1000, "ProductCode": "RDS",
         "ProductId": 5, "SqlText": "SELECT * FROM test03", "ExecuteTime": 1500, "EffectRow": 10,
         "RuleId": "994007", "RuleName": "test_rule", "OperateType": "Select", "WarnLevel": "1",
         "RuleCategory": "10", "LogSource": "SLOW_SQL", "MemberAccount": "111", "IpType": "aliyun",
         "Message": "success", "OssObjectKey": ""},
        {"Label": "L2", "UserName": "Admin", "ClientIp": "10.1.3.95", "ClientUa": "psql",
         "InstanceName": "rm-b", "DatabaseName": "db2", "LogTime": T + 2000, "ProductCode": "rds",
         "ProductId": 8, "SqlText": "insert into t values (1)", "ExecuteTime": 3000,
         "EffectRow": 1, "RuleId": "867028", "RuleName": "Bulk_Insert", "OperateType": "INSERT",
         "WarnLevel": "2", "RuleCategory": "11", "LogSource": "RDS_AUDIT", "MemberAccount": "222",
         "IpType": "default", "Message": "permission denied", "OssObjectKey": ""},
        {"Label": "L3", "UserName": "etl", "ClientIp": "139.*.*.57", "ClientUa": "",
         "InstanceName": "bucket-x", "LogTime": T + 3000, "ProductCode": "OSS", "ProductId": 2,
         "RuleId": "5", "RuleName": "oss get", "OperateType": "Get", "WarnLevel": "3",
         "RuleCategory": "10", "LogSource": "oss_log", "MemberAccount": "111",
         "Message": "GetObject ok", "OssObjectKey": "finance/2025/q1.csv"},
        {"Label": "L4", "UserName": "admin", "ClientIp": "2001:db8::7", "ClientUa": "mysql",
         "InstanceName": "rm-a", "DatabaseName": "db1", "LogTime": T + 4000, "ProductCode": "RDS",
         "ProductId": 5, "SqlText": "DROP TABLE test03", "ExecuteTime": 1000, "EffectRow": 33,
         "RuleId": "994007", "RuleName": "drop", "OperateType": "Drop", "WarnLevel": "3",
         "RuleCategory": "12", "LogSource": "SLOW_SQL", "MemberAccount": "333",
         "IpType": "default", "Message": "success", "OssObjectKey": ""}
    ]);
    let file = dir.join("items.json");
    std::fs::write(&file, items.to_string()).unwrap();
    let store = dir.join("store");
    ok_on(&store, &["ingest", file.to_str().unwrap()]);
    store
}

fn labels(page: &serde_json::Value) -> Vec<String> {
    let mut l: Vec<String> = page["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Label"].as_str().unwrap().to_owned())
        .collect();
    l.sort();
    l
}

#[test]
fn every_filter_matches_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let store = filter_fixture(dir.path());
    let t = |s: u64| (1_751_870_592_000u64 + s * 1000).to_string();
    let (t2, t3) = (t(2), t(3));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "L1 L2 L3 L4"),
        (vec!["--user-name", "admin"], "L1 L4"),
        (vec!["--client-ip", "10.1.2.94"], "L1"),
        (vec!["--client-ip", "10.0.0.0/8"], "L1 L2"),
        (vec!["--client-ip", "10.*.*.94"], "L1"),
        (vec!["--client-ip", "139.*.*.57"], "L3"),
        (vec!["--client-ip", "2001:db8::/32"], "L4"),
        (vec!["--client-ua", "mysql"], "L1 L4"),
        (vec!["--instance-name", "rm-a"], "L1 L4"),
        (vec!["--database-name", "db2"], "L2"),
        (vec!["--start-time", &t2, "--end-time", &t3], "L2 L3"),
        (vec!["--start-time", "2025-07-07T06:43:16Z"], "L4"),
        (vec!["--end-time", "2025-07-07T06:43:13.999Z"], "L1"),
        (vec!["--product-code", "rds"], "L1 L2 L4"),
        (vec!["--product-id", "2"], "L3"),
        (vec!["--sql-text", "TEST03"], "L1 L4"),
        (vec!["--execute-time-range", "in[1000 2000]"], "L1 L4"),
        (vec!["--effect-row-range", "in[1 33]"], "L1 L2 L4"),
        (vec!["--effect-row-range", "in[11 33]"], "L4"),
        (vec!["--rule-id", "994007"], "L1 L4"),
        (vec!["--rule-name", "bulk"], "L2"),
        (vec!["--operate-type", "insert"], "L2"),
        (vec!["--warn-level", "high"], "L3 L4"),
        (vec!["--warn-level", "2"], "L2"),
        (vec!["--rule-category", "10"], "L1 L3"),
        (vec!["--log-source", "slow_sql"], "L1 L4"),
        (vec!["--member-account", "111"], "L1 L3"),
        (vec!["--ip-type", "default"], "L2 L3 L4"),
        (vec!["--ip-type", "aliyun"], "L1"),
        (vec!["--message", "DENIED"], "L2"),
        (vec!["--oss-object-key", "finance/"], "L3"),
        (vec!["--user-name", "admin", "--sql-text", "drop"], "L4"),
        (
            vec![
                "--effect-row-range",
                "in[1 33]",
                "--log-query-op-json",
                r#"[{"queryKey": "effectRowRange", "isContain": false}]"#,
            ],
            "L3",
        ),
        (
            vec![
                "--user-name",
                "admin",
                "--client-ip",
                "10.0.0.0/8",
                "--log-query-op-json",
                r#"[{"isContain": false, "queryKey": "remoteClientIp"},
                    {"isContain": true, "queryKey": "userName"}]"#,
            ],
            "L4",
        ),
    ];
    for (args, want) in cases {
        let page = audit_page(&store, &args);
        assert_eq!(labels(&page).join(" "), want, "{args:?}: {page}");
        assert_eq!(
            page["TotalCount"],
            want.split(' ').count(),
            "{args:?}: {page}"
        );
    }
    // The level's name in the language asked for, and as delivered without one.
    let page = audit_page(&store, &["--warn-level", "3", "--lang", "zh_cn"]);
    assert!(
        page["Items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["WarnLevelName"] == "高危"),
        "{page}"
    );
    let page = audit_page(&store, &["--warn-level", "3"]);
    assert!(page["Items"][0].get("WarnLevelName").is_none(), "{page}");
    // Newest first.
    let page = audit_page(&store, &[]);
    let order: Vec<&str> = page["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Label"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["L4", "L3", "L2", "L1"]);
    // The table names the page and how to get the next one.
    let o = ok_on(&store, &["audit-logs", "--page-size", "3"]);
    let text = stdout(&o);
    assert!(text.contains("page 1 of 2, 4 audit logs match"), "{text}");
    assert!(text.contains("--current-page 2 --generation 1"), "{text}");
}

#[test]
fn malformed_parameters_are_usage_errors_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let store = filter_fixture(dir.path());
    let cases: [(&[&str], &str); 12] = [
        (&["--effect-row-range", "in[2 1]"], "in[LOW HIGH]"),
        (&["--execute-time-range", "1000-2000"], "ExecuteTimeRange"),
        (&["--page-size", "0"], "--page-size"),
        (&["--page-size", "51"], "1..=50"),
        (&["--current-page", "0"], "--current-page"),
        (&["--product-id", "12"], "25 Redis"),
        (&["--warn-level", "4"], "3 (high)"),
        (&["--ip-type", "internal"], "default or aliyun"),
        (&["--start-time", "yesterday"], "UNIX milliseconds"),
        (&["--client-ip", "10.*.94"], "masked address"),
        (
            &[
                "--log-query-op-json",
                r#"[{"queryKey": "colour", "isContain": true}]"#,
            ],
            "not a DescribeAuditLogs query parameter",
        ),
        (&["--generation", "99"], "newer than the store"),
    ];
    for (args, says) in cases {
        let mut all = vec!["audit-logs"];
        all.extend_from_slice(args);
        let o = run_on(&store, &all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn pages_cover_every_log_once_while_the_store_grows() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, from: u64, n: u64| {
        // Pairs of logs share a LogTime, so the order needs its tie-breakers.
        let items: Vec<serde_json::Value> = (from..from + n)
            .map(|i| {
                serde_json::json!({"LogTime": 1_751_870_592_000u64 + (i / 2) * 1000,
                    "UserName": format!("u{i}"), "SqlText": "SELECT 1", "Seq": i})
            })
            .collect();
        let file = dir.path().join(name);
        std::fs::write(&file, serde_json::Value::from(items).to_string()).unwrap();
        file
    };
    let store = dir.path().join("store");
    ok_on(
        &store,
        &["ingest", write("first.json", 100, 23).to_str().unwrap()],
    );
    let first = audit_page(&store, &["--page-size", "5"]);
    let generation = first["Generation"].to_string();
    let mut seen: Vec<u64> = Vec::new();
    for page in 1..=5 {
        if page == 3 {
            // Newer and older logs arrive between pages.
            ok_on(
                &store,
                &["ingest", write("late.json", 0, 4).to_str().unwrap()],
            );
            ok_on(
                &store,
                &["ingest", write("new.json", 200, 4).to_str().unwrap()],
            );
        }
        let p = audit_page(
            &store,
            &[
                "--page-size",
                "5",
                "--current-page",
                &page.to_string(),
                "--generation",
                &generation,
            ],
        );
        assert_eq!(p["TotalCount"], 23, "{p}");
        seen.extend(
            p["Items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["Seq"].as_u64().unwrap()),
        );
    }
    // The order of one page holding them all, at that generation: newest first, ties broken
    // the same way every time.
    let whole = audit_page(&store, &["--page-size", "50", "--generation", &generation]);
    let order: Vec<u64> = whole["Items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, order);
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (100..123).collect::<Vec<u64>>(), "each once");
    assert!(
        seen.windows(2).all(|w| w[0] / 2 >= w[1] / 2),
        "newest first: {seen:?}"
    );
    let latest = audit_page(&store, &[]);
    assert_eq!(latest["TotalCount"], 31, "{latest}");
    // Past the last page: an empty page, not an error.
    let p = audit_page(&store, &["--current-page", "9"]);
    assert_eq!(p["Items"], serde_json::json!([]));
}

/// The security scenario: events and data-audit logs of the same two months.
fn security_store(dir: &std::path::Path) -> std::path::PathBuf {
    let store = dir.join("store");
    ok_on(
        &store,
        &[
            "ingest",
            security("actiontrail.ndjson").to_str().unwrap(),
            security("audit_logs.ndjson").to_str().unwrap(),
        ],
    );
    store
}

#[test]
fn ip_insight_judges_database_users_with_the_same_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = security_store(dir.path());
    let o = ok_on(
        &store,
        &["insight", "ip", "--table", "audit_logs", "--json"],
    );
    let r = json(&o);
    assert_eq!(r["job"], "ip-audit_logs", "{r}");
    assert_eq!(r["counts"]["events"], 126, "every audit log judged: {r}");
    let records = r["records"].as_array().unwrap();
    // Start and end records of the two bulk reads from the intruder's address; the failed
    // root logins from 203.0.113.77 are near it (same /24) and so not reported.
    let starts: Vec<&serde_json::Value> = records
        .iter()
        .filter(|x| x["insightDetails"]["state"] == "Start")
        .collect();
    assert_eq!(starts.len(), 2, "{r}");
    for s in starts {
        assert_eq!(s["insightDetails"]["insightObject"], "203.0.113.66");
        assert_eq!(s["userIdentity"]["principalId"], "rm-orders01/app_ro");
        assert_eq!(s["userIdentity"]["type"], "database-user");
        assert_eq!(s["insightDetails"]["insightContext"]["table"], "audit_logs");
    }
    // Judged and written once: a second run has nothing new to judge...
    let again = json(&ok_on(
        &store,
        &["insight", "ip", "--table", "audit_logs", "--json"],
    ));
    assert_eq!(again["insights"], 0, "{again}");
    // ...and the events job keeps its own state: it still judges every day of events.
    let events = json(&ok_on(&store, &["insight", "ip", "--json"]));
    assert_eq!(events["job"], "ip");
    assert_eq!(events["counts"]["events"], 303, "{events}");
    let n = sql_json(
        &store,
        "SELECT count(*) AS n FROM insights WHERE userIdentity.type = 'database-user'",
    );
    assert_eq!(n[0]["n"], 4, "two insights, a start and an end record each");
}

#[test]
fn the_joined_analyses_find_the_planted_intrusion() {
    let dir = tempfile::tempdir().unwrap();
    let store = security_store(dir.path());
    let o = ok_on(
        &store,
        &["run", "bulk_read_after_cloud_change", "--format", "json"],
    );
    let rows = json(&o);
    let rows = rows.as_array().unwrap();
    // The 250,000-row read of card numbers from the intruder's address, 80 minutes after bob
    // created an access key for alice and 30 after eve opened SSH to the world.
    assert!(
        rows.iter().all(|r| r["client_ip"] == "203.0.113.66"),
        "{rows:?}"
    );
    let changes: Vec<(&str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["change"].as_str().unwrap(),
                r["minutes_after"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("CreateAccessKey", 100),
            ("CreateAccessKey", 80),
            ("AuthorizeSecurityGroup", 30)
        ]
    );
    let o = ok_on(&store, &["run", "ip_in_cloud_and_data", "--format", "json"]);
    let rows = json(&o);
    let first = &rows.as_array().unwrap()[0];
    assert_eq!(first["ip"], "198.51.100.10", "{rows}");
    let intruder = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ip"] == "203.0.113.66")
        .unwrap();
    assert_eq!(intruder["identities"], "alice");
    assert_eq!(intruder["db_users"], "app_ro");
    assert_eq!(
        intruder["cloud_errors"], 6,
        "the failed sign-ins before the takeover"
    );
}

#[test]
fn generated_audit_logs_carry_labelled_anomalies_that_the_analyses_find() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let labels_path = dir.path().join("labels.json");
    let o = run(&[
        "gen",
        "--out",
        tree.to_str().unwrap(),
        "--events",
        "2000",
        "--days",
        "20",
        "--audit-logs",
        "20000",
        "--anomalies",
        "1",
        "--labels",
        labels_path.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g = json(&o);
    assert_eq!(g["audit_logs"], 20_000 + 16, "{g}");
    let labels: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&labels_path).unwrap()).unwrap();
    let audit: Vec<&serde_json::Value> = labels
        .iter()
        .filter(|l| l["table"] == "audit_logs")
        .collect();
    assert_eq!(audit.len(), 4);
    let label = |kind: &str| *audit.iter().find(|l| l["kind"] == kind).unwrap();

    let store = dir.path().join("store");
    let s = json(&ok_on(
        &store,
        &["ingest", "--json", tree.to_str().unwrap()],
    ));
    assert_eq!(s["audit_logs_ingested"], 20_016, "{s}");
    assert_eq!(s["ingested"], g["events"], "{s}");

    // IpInsight over audit logs finds the two foreign addresses and nothing else.
    let r = json(&ok_on(
        &store,
        &["insight", "ip", "--table", "audit_logs", "--json"],
    ));
    let mut found: Vec<(String, String)> = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["insightDetails"]["state"] == "Start")
        .map(|x| {
            (
                x["userIdentity"]["principalId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                x["insightDetails"]["insightObject"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    let mut want: Vec<(String, String)> = ["new_client_ip", "failed_burst"]
        .iter()
        .map(|k| {
            let l = label(k);
            (
                format!(
                    "{}/{}",
                    l["InstanceName"].as_str().unwrap(),
                    l["UserName"].as_str().unwrap()
                ),
                l["ClientIp"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(found, want, "{r}");

    // Each analysis finds its planted statement, and only it.
    for (query, kind, column) in [
        ("audit_bulk_reads", "bulk_read", "ClientIp"),
        ("audit_destructive_statements", "destructive", "ClientIp"),
        ("audit_failed_statement_burst", "failed_burst", "ClientIp"),
    ] {
        let rows = json(&ok_on(&store, &["run", query, "--format", "json"]));
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{query}: {rows:?}");
        let l = label(kind);
        assert_eq!(rows[0][column], l["ClientIp"], "{query}: {rows:?}");
        assert_eq!(rows[0]["UserName"], l["UserName"], "{query}: {rows:?}");
    }
}
