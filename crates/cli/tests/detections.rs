#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Detections analysts can trust: the saved analyses on labelled near-miss cases, Sigma's
//! semantics rule by rule, the public CloudTrail Sigma rules (each compiles or says why not,
//! and 26 of them on hand-written positive and negative events), and `trail detect`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

mod common;
use common::*;

fn store_of(path: &Path) -> &'static Path {
    static STORES: OnceLock<std::sync::Mutex<Vec<(PathBuf, &'static Path)>>> = OnceLock::new();
    let stores = STORES.get_or_init(Default::default);
    let mut list = stores.lock().unwrap();
    if let Some((_, s)) = list.iter().find(|(p, _)| p == path) {
        return s;
    }
    let dir: &'static tempfile::TempDir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    ingest(dir.path(), &[path]);
    list.push((path.to_path_buf(), dir.path()));
    dir.path()
}

fn markers(text: &str, prefix: &str) -> BTreeSet<String> {
    let re = |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_');
    text.split(re)
        .filter(|w| w.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Every saved analysis with labelled cases reports its positives and none of its near-misses.
#[test]
fn analyses_report_what_they_say_and_not_the_near_misses() {
    let cases = repo().join("testdata/detections/cases.ndjson");
    let store = store_of(&cases);
    let all = std::fs::read_to_string(&cases).unwrap();
    // The analysis of a marker `p-<analysis>-<case>`: analysis names hold no `-`.
    let analyses: BTreeSet<String> = markers(&all, "p-")
        .into_iter()
        .chain(markers(&all, "n-"))
        .map(|m| m[2..].split_once('-').unwrap().0.to_owned())
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for name in &analyses {
        let pos: BTreeSet<String> = markers(&all, &format!("p-{name}-"));
        let neg: BTreeSet<String> = markers(&all, &format!("n-{name}-"));
        if pos.is_empty() {
            continue;
        }
        let o = run_on(store, &["run", name, "--format", "csv"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let out = stdout(&o);
        let found = markers(&out, &format!("p-{name}-"));
        let wrong = markers(&out, &format!("n-{name}-"));
        for p in pos.difference(&found) {
            failures.push(format!("{name}: missed {p}"));
        }
        for n in &wrong {
            failures.push(format!("{name}: reported the near-miss {n}"));
        }
        checked += pos.len() + neg.len();
    }
    let known = known_analyses();
    for a in &analyses {
        assert!(
            known.contains(a),
            "cases name `{a}`, which is no saved analysis"
        );
    }
    assert!(checked >= 50, "{checked} cases checked");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // Attempts are reported where the title says so, with a column that tells them apart.
    let o = run_on(store, &["run", "trail_tampering", "--format", "csv"]);
    let out = stdout(&o);
    let denied = out
        .lines()
        .find(|l| l.contains("p-trail_tampering-stop-denied"))
        .unwrap();
    assert!(denied.ends_with(",false"), "{denied}");
}

fn known_analyses() -> Vec<String> {
    let o = run(&["queries", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every analysis says what it flags, what it ignores and which fields it relies on.
#[test]
fn every_analysis_documents_its_verdicts() {
    let o = run(&["queries", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for q in v.as_array().unwrap() {
        for k in ["flags", "ignores"] {
            assert!(
                q[k].as_str().is_some_and(|s| s.len() > 10),
                "{} has no `{k}`",
                q["name"]
            );
        }
        assert!(
            !q["fields"].as_array().unwrap().is_empty(),
            "{} lists no fields",
            q["name"]
        );
    }
}

fn sigma_rules() -> Option<PathBuf> {
    shared_data().map(|d| d.join("sigma/rules"))
}

/// Each of the public CloudTrail rules compiles or is skipped with a reason.
#[test]
fn public_sigma_rules_compile_or_say_why_not() {
    let Some(rules) = sigma_rules() else { return };
    let o = run(&["sigma", "check", "--json", rules.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let compiled = v["compiled"].as_array().unwrap();
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(compiled.len() + skipped.len(), 57, "{v:#}");
    for s in skipped {
        assert!(s["reason"].as_str().unwrap().len() > 10, "{s}");
    }
    eprintln!("{} of 57 public rules compile; skipped:", compiled.len());
    for s in skipped {
        eprintln!("  {}: {}", s["path"], s["reason"]);
    }
    assert!(compiled.len() >= 50, "{v:#}");
    // The human summary says the same.
    let o = run(&["sigma", "check", rules.to_str().unwrap()]);
    assert!(
        stdout(&o).contains(&format!("{} of 57 rules compile", compiled.len())),
        "{}",
        stdout(&o)
    );
}

/// Public rules on hand-written events: each matches its positives and none of its negatives.
#[test]
fn public_sigma_rules_on_labelled_events() {
    let Some(rules) = sigma_rules() else { return };
    let cases = repo().join("testdata/sigma/cases.ndjson");
    let store = store_of(&cases);
    let text = std::fs::read_to_string(&cases).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["eventID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let stems: BTreeSet<&str> = ids.iter().map(|i| i.split(':').next().unwrap()).collect();
    assert!(stems.len() >= 20, "{} rules with cases", stems.len());
    let mut failures = Vec::new();
    for stem in &stems {
        let rule = rules.join(format!("{stem}.yml"));
        let o = run_on(store, &["sigma", "run", "--json", rule.to_str().unwrap()]);
        assert!(o.status.success(), "{stem}: {}", stderr(&o));
        let matched: BTreeSet<String> = stdout(&o)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["event"]["eventID"].as_str().unwrap().to_owned()
            })
            .collect();
        for id in ids.iter().filter(|i| i.starts_with(&format!("{stem}:"))) {
            let want = id.contains(":pos:");
            if matched.contains(id) != want {
                failures.push(format!(
                    "{id}: {}",
                    if want { "not matched" } else { "matched" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Sigma's semantics, one modifier and condition form at a time, on crafted events.
#[test]
fn sigma_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.ndjson");
    let lines = [
        r#"{"eventID":"e1","eventTime":"2024-08-01T03:04:05Z","awsRegion":"us-east-1","eventSource":"iam.amazonaws.com","eventName":"CreateUser","userAgent":"Boto3/1.2 Python","sourceIPAddress":"10.1.2.3","userIdentity":{"type":"IAMUser","userName":"Alice","arn":"arn:aws:iam::1:user/Alice"},"requestParameters":{"userName":"alice","tags":[{"key":"env","value":"prod"}],"count":7,"cmd":"powershell -enc aGVsbG8gd29ybGQ="}}"#,
        r#"{"eventID":"e2","eventTime":"2024-08-01T15:00:00Z","awsRegion":"us-east-1","eventSource":"iam.amazonaws.com","eventName":"DeleteUser","userAgent":"aws-cli/2","sourceIPAddress":"203.0.113.9","errorCode":"AccessDenied","userIdentity":{"type":"IAMUser","userName":"bob"},"requestParameters":{"userName":"carol","count":2,"cmd":"cmd /c whoami"}}"#,
        r#"{"eventID":"e3","eventTime":"2024-08-02T03:00:00Z","awsRegion":"us-east-1","eventSource":"s3.amazonaws.com","eventName":"GetObject*","userAgent":"x","sourceIPAddress":"s3.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}"#,
    ];
    std::fs::write(&events, lines.join("\n")).unwrap();
    let store = dir.path().join("store");
    ingest(&store, &[&events]);
    let check = |detection: &str, want: &[&str]| {
        let rule = dir.path().join("r.yml");
        std::fs::write(
            &rule,
            format!(
                "title: t\nid: r\nlevel: high\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n{detection}\n"
            ),
        )
        .unwrap();
        let o = run_on(&store, &["sigma", "run", "--json", rule.to_str().unwrap()]);
        assert!(o.status.success(), "{detection}\n{}", stderr(&o));
        let got: Vec<String> = stdout(&o)
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["event"]["eventID"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(got, want, "{detection}\n{}", stderr(&o));
    };
    // Plain values: case-insensitive, whole value; lists are ORed, maps ANDed.
    check("  s:\n    eventName: createuser\n  condition: s", &["e1"]);
    check("  s:\n    eventName: Create\n  condition: s", &[]);
    check(
        "  s:\n    eventName:\n      - CreateUser\n      - DeleteUser\n  condition: s",
        &["e1", "e2"],
    );
    check(
        "  s:\n    eventName: DeleteUser\n    userIdentity.userName: alice\n  condition: s",
        &[],
    );
    check(
        "  s:\n    - eventName: DeleteUser\n    - userIdentity.userName: alice\n  condition: s",
        &["e1", "e2"],
    );
    // Wildcards and their escape.
    check(
        "  s:\n    eventName: '*User'\n  condition: s",
        &["e1", "e2"],
    );
    check("  s:\n    eventName: 'Cr?ateUser'\n  condition: s", &["e1"]);
    check(
        "  s:\n    eventName: 'GetObject\\*'\n  condition: s",
        &["e3"],
    );
    check("  s:\n    eventName: 'GetObjectX\\*'\n  condition: s", &[]);
    // contains, startswith, endswith, all, cased.
    check(
        "  s:\n    userAgent|contains: boto3\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    userAgent|startswith: AWS-\n  condition: s",
        &["e2"],
    );
    check(
        "  s:\n    userAgent|endswith: python\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    userAgent|contains|all:\n      - Boto3\n      - Python\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    userAgent|contains|all:\n      - Boto3\n      - Java\n  condition: s",
        &[],
    );
    check(
        "  s:\n    userIdentity.userName|cased: alice\n  condition: s",
        &[],
    );
    check(
        "  s:\n    userIdentity.userName|cased: Alice\n  condition: s",
        &["e1"],
    );
    // re (case-sensitive unless i), cidr, exists, null, numbers, neq, fieldref.
    check(
        "  s:\n    userAgent|re: '^Boto3/\\d'\n  condition: s",
        &["e1"],
    );
    check("  s:\n    userAgent|re: '^boto3'\n  condition: s", &[]);
    check(
        "  s:\n    userAgent|re|i: '^boto3'\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    sourceIPAddress|cidr: 10.0.0.0/8\n  condition: s",
        &["e1"],
    );
    check("  s:\n    errorCode|exists: true\n  condition: s", &["e2"]);
    check("  s:\n    errorCode: null\n  condition: s", &["e1", "e3"]);
    check(
        "  s:\n    requestParameters.count|gt: 5\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    requestParameters.count|lte: 2\n  condition: s",
        &["e2"],
    );
    check(
        "  s:\n    eventSource: iam.amazonaws.com\n    userAgent|neq: aws-cli/2\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    userIdentity.userName|fieldref: requestParameters.userName\n  condition: s",
        &["e1"],
    );
    // JSON paths reach into arrays; windash and base64offset expand values.
    check(
        "  s:\n    requestParameters.tags.value: prod\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    requestParameters.cmd|windash|contains: ' -enc '\n  condition: s",
        &["e1"],
    );
    check(
        "  s:\n    requestParameters.cmd|windash|contains: ' /c '\n  condition: s",
        &["e2"],
    );
    check(
        "  s:\n    requestParameters.cmd|base64offset|contains: world\n  condition: s",
        &["e1"],
    );
    // Keywords search the whole record.
    check("  keywords:\n    - WHOAMI\n  condition: keywords", &["e2"]);
    // Conditions: not (a missing field is not a match), 1 of, all of, them, parentheses.
    check(
        "  s:\n    eventSource: iam.amazonaws.com\n  f:\n    errorCode: AccessDenied\n  condition: s and not f",
        &["e1"],
    );
    check(
        "  sel_a:\n    eventName: CreateUser\n  sel_b:\n    eventName: DeleteUser\n  condition: 1 of sel_*",
        &["e1", "e2"],
    );
    check(
        "  sel_a:\n    eventSource: iam.amazonaws.com\n  sel_b:\n    eventName: DeleteUser\n  condition: all of sel_*",
        &["e2"],
    );
    check(
        "  a:\n    eventName: CreateUser\n  _b:\n    eventName: DeleteUser\n  condition: 1 of them",
        &["e1"],
    );
    check(
        "  a:\n    eventName: CreateUser\n  b:\n    eventName: DeleteUser\n  c:\n    eventSource: s3.amazonaws.com\n  condition: (a or b) and not c",
        &["e1", "e2"],
    );
    check(
        "  a:\n    eventName: CreateUser\n  b:\n    eventName: DeleteUser\n  condition:\n    - a\n    - b",
        &["e1", "e2"],
    );
    // Time modifiers on eventTime.
    check("  s:\n    eventTime|hour: 3\n  condition: s", &["e1", "e3"]);
}

/// Rules that use what trail does not support are refused with the reason, not compiled into
/// something that matches differently.
#[test]
fn unsupported_rules_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "detection:\n  s:\n    status: success\n  condition: s",
            "field `status` has no mapping",
        ),
        (
            "detection:\n  s:\n    eventName|utf16le: x\n  condition: s",
            "UTF-16",
        ),
        (
            "detection:\n  s:\n    eventName|nosuchmod: x\n  condition: s",
            "unknown modifier `nosuchmod`",
        ),
        (
            "detection:\n  s:\n    eventName|expand: '%admins%'\n  condition: s",
            "placeholders",
        ),
        (
            "detection:\n  s:\n    eventName: x\n  condition: s | count() > 5",
            "aggregation",
        ),
        (
            "detection:\n  s:\n    eventName: x\n  condition: 2 of s*",
            "2 of",
        ),
        (
            "correlation:\n  type: event_count\n  rules: [a]\ndetection:\n  s:\n    eventName: x\n  condition: s",
            "correlation",
        ),
        (
            "detection:\n  s:\n    eventName: x\n  condition: t",
            "does not define",
        ),
        (
            "detection:\n  s:\n    eventName|re: '(?=x)'\n  condition: s",
            "outside Sigma's regex flavour",
        ),
        (
            "logsource:\n  product: windows\ndetection:\n  s:\n    EventID: 1\n  condition: s",
            "product `windows`",
        ),
    ];
    for (i, (body, says)) in cases.iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("r{i}.yml")),
            format!("title: r{i}\n{body}\n"),
        )
        .unwrap();
        let _ = says;
    }
    std::fs::write(dir.path().join("broken.yml"), "title: [unclosed\n").unwrap();
    let o = run(&["sigma", "check", "--json", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert!(v["compiled"].as_array().unwrap().is_empty(), "{v:#}");
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), cases.len() + 1);
    for (i, (_, says)) in cases.iter().enumerate() {
        let s = skipped
            .iter()
            .find(|s| s["path"].as_str().unwrap().ends_with(&format!("r{i}.yml")))
            .unwrap();
        assert!(s["reason"].as_str().unwrap().contains(says), "r{i}: {s}");
    }
    assert!(skipped.iter().any(|s| {
        s["path"].as_str().unwrap().ends_with("broken.yml")
            && s["reason"]
                .as_str()
                .unwrap()
                .contains("not a valid Sigma rule")
    }));
}

/// `trail detect`: findings stored once, an incremental run reads only what is new, `--since`
/// replays, and findings_summary lists them.
#[test]
fn detect_runs_incrementally_and_stores_findings_once() {
    let Some(rules) = sigma_rules() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let text = std::fs::read_to_string(repo().join("testdata/sigma/cases.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let a = dir.path().join("a.ndjson");
    let b = dir.path().join("b.ndjson");
    std::fs::write(&a, first.join("\n")).unwrap();
    // The second half arrives a day later.
    std::fs::write(&b, second.join("\n").replace("2024-07-01T", "2024-07-02T")).unwrap();
    ingest(&store, &[&a]);
    let args = ["detect", "--json", "--rules", rules.to_str().unwrap()];
    let one = json(&ok_on(&store, &args));
    let n1 = one["findings"].as_u64().unwrap();
    assert!(n1 > 5, "{one:#}");
    assert_eq!(one["new"], n1);
    assert!(
        one["scope"].as_str().unwrap().contains("first run"),
        "{one}"
    );
    assert!(!one["skippedRules"].as_array().unwrap().is_empty());
    // Nothing new: nothing read.
    let again = json(&ok_on(&store, &args));
    assert_eq!(again["findings"], 0, "{again}");
    assert!(
        again["scope"].as_str().unwrap().contains("nothing new"),
        "{again}"
    );
    // New events: only their partitions are read, and only their findings are new.
    ingest(&store, &[&b]);
    let two = json(&ok_on(&store, &args));
    assert!(two["findings"].as_u64().unwrap() > 0, "{two:#}");
    assert_eq!(two["new"], two["findings"]);
    assert!(
        two["scope"].as_str().unwrap().contains("after generation"),
        "{two}"
    );
    for r in two["records"].as_array().unwrap() {
        assert!(
            r["firstSeen"].as_str().unwrap().starts_with("2024-07-02"),
            "{r}"
        );
    }
    // A replay finds everything again and stores nothing twice.
    let replay = json(&ok_on(
        &store,
        &[
            "detect",
            "--json",
            "--since",
            "2024-07-01",
            "--rules",
            rules.to_str().unwrap(),
        ],
    ));
    let total = n1 + two["findings"].as_u64().unwrap();
    assert_eq!(replay["findings"].as_u64().unwrap(), total, "{replay:#}");
    assert_eq!(replay["new"], 0, "{replay}");
    // The findings table holds each finding once; the saved summary lists them.
    let o = ok_on(
        &store,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n, count(DISTINCT \"findingId\") AS d FROM findings",
        ],
    );
    assert_eq!(stdout(&o), format!("n,d\n{total},{total}\n"));
    let o = ok_on(
        &store,
        &[
            "run",
            "findings_summary",
            "-p",
            "min_level=high",
            "--format",
            "csv",
        ],
    );
    let out = stdout(&o);
    assert!(out.lines().count() > 1, "{out}");
    assert!(
        out.lines()
            .skip(1)
            .all(|l| l.starts_with("high") || l.starts_with("critical")),
        "{out}"
    );
    // Saved analyses marked as detections run too.
    let o = ok_on(&store, &["detect", "--json", "--since", "2024-07-01"]);
    let v = json(&o);
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "analysis"),
        "{v:#}"
    );
}
