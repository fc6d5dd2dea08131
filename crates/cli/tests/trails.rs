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
