#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Trails on the local store: CreateTrail's rules with the vendor's error codes, checked before
//! anything is written, and the trail API family (describe, update, start, stop, status,
//! delete) with its response shapes.

mod common;

use common::*;

fn trails(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["trails"];
    all.extend_from_slice(args);
    run_on(store, &all)
}

/// A store to manage trails in (trails need no events, but a store).
fn store_with_events(dir: &std::path::Path) -> std::path::PathBuf {
    let store = dir.join("store");
    ingest(&store, &[&testdata()]);
    store
}

#[test]
fn every_rule_is_checked_with_the_vendors_code_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path());
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir(&bucket_dir).unwrap();
    let missing = dir.path().join("no-such-dir");
    let (b, m) = (bucket_dir.to_str().unwrap(), missing.to_str().unwrap());
    let long = |n: usize| "a".repeat(n);
    let (n5, n6, n36, n37) = (long(5), long(6), long(36), long(37));
    let (p5, p32, p33) = (
        format!("P{}", long(4)),
        format!("P{}", long(31)),
        format!("P{}", long(32)),
    );
    let (b63, b64) = (long(63), long(64));
    // (arguments after `create`, the code, or "ok")
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--name", &n5, "--dir", b], "InvalidTrailNameException"),
        (
            vec!["--name", "1abcdef", "--dir", b],
            "InvalidTrailNameException",
        ),
        (
            vec!["--name", "Abcdef", "--dir", b],
            "InvalidTrailNameException",
        ),
        (
            vec!["--name", "abc.def", "--dir", b],
            "InvalidTrailNameException",
        ),
        (
            vec!["--name", "abc def", "--dir", b],
            "InvalidTrailNameException",
        ),
        (
            vec!["--name", &n37, "--dir", b],
            "InvalidTrailNameException",
        ),
        (
            vec!["--name", "ab", "--oss-bucket", "ab"],
            "InvalidTrailNameException",
        ),
        (
            vec!["--name", "trail-a"],
            "InvalidDeliveryConfigurationException",
        ),
        (
            vec!["--name", "trail-a", "--oss-bucket", "ab"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--oss-bucket", &b64],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--oss-bucket=-bucket"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--oss-bucket", "Bucket"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--oss-bucket", "my_bucket"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--dir", b, "--oss-key-prefix", &p5],
            "InvalidPrefixException",
        ),
        (
            vec!["--name", "trail-a", "--dir", b, "--oss-key-prefix", &p33],
            "InvalidPrefixException",
        ),
        (
            vec![
                "--name",
                "trail-a",
                "--dir",
                b,
                "--oss-key-prefix",
                "1prefix",
            ],
            "InvalidPrefixException",
        ),
        (
            vec![
                "--name",
                "trail-a",
                "--dir",
                b,
                "--oss-key-prefix",
                "pre.fix",
            ],
            "InvalidPrefixException",
        ),
        (
            vec!["--name", "trail-a", "--dir", b, "--event-rw", "write"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--dir", b, "--trail-region", "mars-1"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--dir", b, "--home-region", "mars-1"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--sls-project-arn", "arn:nope"],
            "InvalidQueryParameter",
        ),
        (
            vec!["--name", "trail-a", "--dir", m],
            "BucketDoesNotExistException",
        ),
        // Now the ones that hold: the boundaries themselves.
        (
            vec![
                "--name",
                &n6,
                "--oss-bucket",
                "abc",
                "--oss-key-prefix",
                "Prefix",
            ],
            "ok",
        ),
        (
            vec![
                "--name",
                &n36,
                "--oss-bucket",
                &b63,
                "--oss-key-prefix",
                &p32,
            ],
            "ok",
        ),
        (
            vec![
                "--name",
                "trail-dir",
                "--dir",
                b,
                "--oss-key-prefix",
                "A-b/c_9",
                "--event-rw",
                "All",
                "--trail-region",
                "cn-hangzhou,us-west-1",
            ],
            "ok",
        ),
        (
            vec!["--name", &n6, "--oss-bucket", "other"],
            "TrailAlreadyExistsException",
        ),
        (
            vec!["--name", "trail-b", "--oss-bucket", "abc"],
            "RepeatOssBucket",
        ),
        (vec!["--name", "trail-b", "--dir", b], "RepeatOssBucket"),
        (
            vec![
                "--name",
                "org-trail",
                "--sls-project-arn",
                "acs:log:cn-shanghai:1:project/p",
                "--organization",
            ],
            "ok",
        ),
        (
            vec![
                "--name",
                "org-trail-2",
                "--oss-bucket",
                "org2",
                "--organization",
            ],
            "MaximumNumberOfOrganizationTrailExceeded",
        ),
        (vec!["--name", "trail-four", "--oss-bucket", "b-four"], "ok"),
        (vec!["--name", "trail-five", "--oss-bucket", "b-five"], "ok"),
        (
            vec!["--name", "trail-six", "--oss-bucket", "b-six"],
            "MaximumNumberOfTrailsExceededException",
        ),
        (
            vec![
                "--name",
                "trail-six",
                "--oss-bucket",
                "b-six",
                "--home-region",
                "cn-shanghai",
            ],
            "ok",
        ),
    ];
    for (args, want) in &cases {
        let before = std::fs::read(store.join("_trail/trails.json")).ok();
        let mut all = vec!["create", "--output", "json"];
        all.extend_from_slice(args);
        let o = trails(&store, &all);
        let v = json(&o);
        if *want == "ok" {
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
            assert_eq!(v["Name"], args[1], "{v}");
            assert!(v["RequestId"].is_string(), "{v}");
        } else {
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
            assert_eq!(v["Code"], *want, "{args:?}: {v}");
            assert!(v["Message"].as_str().unwrap().len() > 10, "{v}");
            assert!(stderr(&o).contains(want), "{}", stderr(&o));
            // Nothing written.
            assert_eq!(
                std::fs::read(store.join("_trail/trails.json")).ok(),
                before,
                "{args:?}"
            );
        }
    }
    let list = json(&trails(&store, &["list", "--output", "json"]));
    assert_eq!(list["TrailList"].as_array().unwrap().len(), 7, "{list}");
    // The error for people names the code, the message and the value.
    let o = trails(&store, &["create", "--name", "Bad.Name", "--dir", b]);
    let err = stderr(&o);
    assert!(
        err.contains(
            "InvalidTrailNameException: The specified Trail name is invalid. (Name: `Bad.Name`)"
        ),
        "{err}"
    );
}

#[test]
fn a_trail_is_described_updated_started_stopped_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path());
    let out = dir.path().join("archive");
    std::fs::create_dir(&out).unwrap();
    let o = trails(
        &store,
        &[
            "create",
            "--output",
            "json",
            "--name",
            "trail-test",
            "--dir",
            out.to_str().unwrap(),
            "--oss-bucket",
            "audit-log",
            "--oss-key-prefix",
            "at-product-account-audit-B",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    // CreateTrail's response fields.
    for (k, want) in [
        ("Name", "trail-test"),
        ("HomeRegion", "cn-hangzhou"),
        ("OssBucketName", "audit-log"),
        ("OssKeyPrefix", "at-product-account-audit-B"),
        ("EventRW", "Write"),
        ("TrailRegion", "All"),
    ] {
        assert_eq!(v[k], want, "{k}: {v}");
    }
    let status = |store: &std::path::Path| {
        json(&trails(
            store,
            &["status", "trail-test", "--output", "json"],
        ))
    };
    assert_eq!(status(&store)["IsLogging"], false);
    assert!(trails(&store, &["start", "trail-test"]).status.success());
    let s = status(&store);
    assert_eq!(s["IsLogging"], true, "{s}");
    assert!(s["StartLoggingTime"].is_string(), "{s}");
    assert!(s.get("LatestDeliveryTime").is_some(), "{s}");

    let o = trails(
        &store,
        &[
            "update",
            "trail-test",
            "--output",
            "json",
            "--event-rw",
            "All",
            "--trail-region",
            "cn-hangzhou,cn-shanghai",
            "--oss-key-prefix",
            "",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = json(&trails(
        &store,
        &["describe", "trail-test", "--output", "json"],
    ));
    let t = &d["TrailList"][0];
    assert_eq!(t["EventRW"], "All", "{d}");
    assert_eq!(t["TrailRegion"], "cn-hangzhou,cn-shanghai", "{d}");
    assert!(t["OssKeyPrefix"].is_null(), "cleared: {d}");
    assert_eq!(t["Status"], "Enable", "{d}");
    // A bad update changes nothing.
    let o = trails(&store, &["update", "trail-test", "--oss-key-prefix", "bad"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("InvalidPrefixException"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        json(&trails(
            &store,
            &["describe", "trail-test", "--output", "json"]
        ))["TrailList"][0]["EventRW"],
        "All"
    );

    assert!(trails(&store, &["stop", "trail-test"]).status.success());
    assert_eq!(status(&store)["IsLogging"], false);
    // The table for people.
    let text = stdout(&trails(&store, &["describe", "trail-test"]));
    assert!(
        text.contains("Name") && text.contains("trail-test"),
        "{text}"
    );

    assert!(trails(&store, &["delete", "trail-test"]).status.success());
    for cmd in ["describe", "status", "start", "stop", "delete"] {
        let o = trails(&store, &[cmd, "trail-test", "--output", "json"]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        assert_eq!(json(&o)["Code"], "TrailNotFoundException", "{cmd}");
    }
    assert!(stdout(&trails(&store, &["list"])).contains("no trails"));
}

fn raws(store: &std::path::Path, sql: &str) -> Vec<String> {
    let o = ok_on(store, &["sql", "--format", "json", "-c", sql]);
    let mut v: Vec<String> = json(&o)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["raw"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// Ingest a trail's delivered tree into a fresh store; its records, sorted.
fn delivered(dir: &std::path::Path, out: &std::path::Path) -> Vec<String> {
    let fresh = dir.join(format!(
        "fresh-{}",
        out.file_name().unwrap().to_str().unwrap()
    ));
    let _ = std::fs::remove_dir_all(&fresh);
    let o = run_on(&fresh, &["ingest", "--json", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        json(&o)["duplicates"],
        0,
        "a delivered tree holds each event once"
    );
    raws(&fresh, "SELECT raw FROM events")
}

#[test]
fn trails_deliver_exactly_what_they_select_once_in_the_vendors_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ingest(&store, &[&security("actiontrail.ndjson")]);
    let outs: Vec<std::path::PathBuf> = ["w", "hz", "org"]
        .iter()
        .map(|n| {
            let p = dir.path().join(n);
            std::fs::create_dir(&p).unwrap();
            p
        })
        .collect();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    for args in [
        vec!["--name", "trail-write", "--dir", &s(&outs[0])],
        vec![
            "--name",
            "trail-all-hz",
            "--dir",
            &s(&outs[1]),
            "--event-rw",
            "All",
            "--trail-region",
            "cn-hangzhou",
            "--oss-key-prefix",
            "archive/at",
        ],
        vec![
            "--name",
            "trail-org",
            "--dir",
            &s(&outs[2]),
            "--event-rw",
            "Read",
            "--organization",
        ],
    ] {
        let mut all = vec!["create"];
        all.extend_from_slice(&args);
        assert!(trails(&store, &all).status.success());
        assert!(trails(&store, &["start", args[1]]).status.success());
    }
    let selects = [
        "SELECT raw FROM events WHERE eventRW = 'Write'",
        "SELECT raw FROM events WHERE coalesce(isGlobal, false) OR acsRegion IS NULL \
         OR acsRegion = 'cn-hangzhou'",
        "SELECT raw FROM events WHERE eventRW = 'Read'",
    ];
    let check = |what: &str| {
        for (out, sql) in outs.iter().zip(selects) {
            let want = raws(&store, sql);
            assert!(!want.is_empty());
            assert_eq!(
                delivered(dir.path(), out),
                want,
                "{what}: {}",
                out.display()
            );
        }
    };
    let o = ok_on(&store, &["deliver", "--json"]);
    let d = json(&o);
    assert_eq!(d.as_array().unwrap().len(), 3, "{d}");
    check("first delivery");
    // The vendor's layout: single-account by region and day, multi-account by account too.
    assert!(
        outs[1]
            .join("archive/at/AliyunLogs/Actiontrail/cn-hangzhou/2024/05/01")
            .is_dir()
    );
    assert!(
        !outs[1]
            .join("archive/at/AliyunLogs/Actiontrail/ap-southeast-1")
            .exists()
    );
    assert!(
        outs[2]
            .join("AliyunLogs/Actiontrail/rd-local/1234567890123456/cn-hangzhou/2024/04/01")
            .is_dir()
    );

    // Nothing new: nothing written.
    let d = json(&ok_on(&store, &["deliver", "--json"]));
    assert!(
        d.as_array().unwrap().iter().all(|t| t["events"] == 0),
        "{d}"
    );

    // New events arrive (a day that was delivered and a new one): the ingest delivers them.
    let new = dir.path().join("new.ndjson");
    let text = std::fs::read_to_string(security("actiontrail.ndjson")).unwrap();
    let more: Vec<String> = text
        .lines()
        .filter(|l| l.contains("\"2024-05-01T1"))
        .map(|l| {
            l.replace("\"eventId\":\"", "\"eventId\":\"again-")
                .replace("2024-05-01T1", "2024-05-03T1")
        })
        .chain(
            text.lines()
                .filter(|l| l.contains("\"2024-05-02T0"))
                .map(|l| l.replace("\"eventId\":\"", "\"eventId\":\"late-")),
        )
        .collect();
    assert!(more.len() > 10);
    std::fs::write(&new, more.join("\n")).unwrap();
    let o = run_on(&store, &["ingest", new.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("trail trail-write:"), "{}", stderr(&o));
    check("after an ingest");

    // A delivery that stopped before it recorded its progress, then one that lost files
    // before writing them: run again, each writes exactly what is missing.
    let state = store.join("_trail/trails.json");
    let reset = |state: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
        for t in v["trails"].as_array_mut().unwrap() {
            t["DeliveredGeneration"] = serde_json::Value::Null;
        }
        std::fs::write(state, v.to_string()).unwrap();
    };
    reset(&state);
    let d = json(&ok_on(&store, &["deliver", "--json"]));
    assert!(
        d.as_array().unwrap().iter().all(|t| t["events"] == 0),
        "{d}"
    );
    let day = outs[0].join("AliyunLogs/Actiontrail/cn-hangzhou/2024/05/01");
    for f in std::fs::read_dir(&day).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    reset(&state);
    let d = json(&ok_on(
        &store,
        &["deliver", "--json", "--trail", "trail-write"],
    ));
    assert!(d[0]["events"].as_u64().unwrap() > 0, "{d}");
    check("after resuming");

    // A stopped trail delivers nothing; status says when it last delivered.
    assert!(trails(&store, &["stop", "trail-org"]).status.success());
    let d = json(&ok_on(&store, &["deliver", "--json"]));
    assert_eq!(d.as_array().unwrap().len(), 2, "{d}");
    let st = json(&trails(
        &store,
        &["status", "trail-org", "--output", "json"],
    ));
    assert!(st["LatestDeliveryTime"].is_string(), "{st}");
    assert!(st["LatestDeliveryError"].is_null(), "{st}");
}

#[test]
fn insight_events_and_one_accounts_events_are_delivered_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ingest(&store, &[&security("actiontrail.ndjson")]);
    let (ins, other) = (dir.path().join("ins"), dir.path().join("other"));
    std::fs::create_dir(&ins).unwrap();
    std::fs::create_dir(&other).unwrap();
    for args in [
        vec![
            "--name",
            "trail-insights",
            "--dir",
            ins.to_str().unwrap(),
            "--event-rw",
            "All",
            "--insights",
            "--account",
            "1234567890123456",
        ],
        vec![
            "--name",
            "trail-other",
            "--dir",
            other.to_str().unwrap(),
            "--account",
            "999",
        ],
    ] {
        let mut all = vec!["create"];
        all.extend_from_slice(&args);
        let o = trails(&store, &all);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(trails(&store, &["start", args[1]]).status.success());
    }
    // The insight job delivers by itself once it has written its findings.
    let o = run_on(&store, &["insight", "ip"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("trail trail-insights:"),
        "{}",
        stderr(&o)
    );
    let insights = raws(&store, "SELECT raw FROM insights");
    assert!(!insights.is_empty());
    let tree = ins.join("AliyunLogs/Actiontrail-Insight");
    assert!(tree.join("cn-hangzhou").is_dir(), "{}", tree.display());
    // Every insight record, byte for byte, once (ingest skips insight trees, so the files are
    // read here).
    let mut got: Vec<String> = Vec::new();
    let mut stack = vec![tree.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
                &mut text,
            )
            .unwrap();
            let records: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_str(&text).unwrap();
            got.extend(records.iter().map(|r| r.get().to_owned()));
        }
    }
    got.sort();
    assert_eq!(got, insights);
    // Events of the trail's account all arrived; the other account's trail got none.
    assert_eq!(
        delivered(dir.path(), &ins.join("AliyunLogs/Actiontrail")),
        raws(&store, "SELECT raw FROM events")
    );
    assert!(!other.join("AliyunLogs").exists());
}
