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

    // The same delivery again stores nothing.
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
