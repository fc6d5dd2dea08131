#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `trail insight` as a user runs it, on generated history with labelled anomalies: recall and
//! precision per insight type, no insight for nearby, whitelisted or non-IP sources,
//! determinism, incremental runs and the insights table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use serde_json::Value;

mod common;
use common::*;

fn run(store: &Path, args: &[&str]) -> Output {
    ok_on(store, args)
}

fn json_out(store: &Path, args: &[&str]) -> Value {
    json(&run(store, args))
}

const WHITELIST: &str = "59.82.0.0/16";
const DAYS: u32 = 24;

struct World {
    _dir: tempfile::TempDir,
    input: PathBuf,
    /// Ingested, no insight run yet (tests copy it before writing).
    store: PathBuf,
    labels: Vec<Value>,
}

/// 80,000 generated events over 24 days in 4 regions, with 6 labelled anomalies of each kind.
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        let labels = dir.path().join("labels.json");
        let store = dir.path().join("store");
        let out = common::trail()
            .args(["gen", "--events", "80000", "--regions", "4", "--seed", "11"])
            .args(["--days", &DAYS.to_string(), "--anomalies", "6", "--out"])
            .arg(&input)
            .arg("--labels")
            .arg(&labels)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run(&store, &["ingest", "-q", input.to_str().unwrap()]);
        let labels: Vec<Value> = serde_json::from_slice(&std::fs::read(&labels).unwrap()).unwrap();
        World {
            _dir: dir,
            input,
            store,
            labels,
        }
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn fresh_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_dir(&world().store, &store);
    (dir, store)
}

fn starts(report: &Value) -> Vec<&Value> {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["insightDetails"]["state"] == "Start")
        .collect()
}

fn labels_of(kinds: &[&str]) -> Vec<&'static Value> {
    world()
        .labels
        .iter()
        .filter(|l| kinds.contains(&l["kind"].as_str().unwrap()))
        .collect()
}

/// `a / b`, where `b` is what was expected or found: zero of either is a failed test, not a
/// perfect score.
fn ratio(a: usize, b: usize, what: &str) -> f64 {
    assert!(b > 0, "no {what}: recall and precision are undefined");
    a as f64 / b as f64
}

#[test]
fn ip_insight_finds_new_ips_and_nothing_else() {
    let (_d, store) = fresh_store();
    let report = json_out(
        &store,
        &[
            "insight",
            "ip",
            "--whitelist",
            WHITELIST,
            "--dry-run",
            "--json",
        ],
    );
    let found = starts(&report);
    let positives = labels_of(&["new_ip", "new_network"]);
    assert_eq!(positives.len(), 12);
    let hit = |l: &Value, r: &Value| {
        r["insightDetails"]["insightObject"] == l["sourceIpAddress"]
            && r["userIdentity"]["principalId"] == l["principalId"]
    };
    let recalled = positives
        .iter()
        .filter(|l| found.iter().any(|r| hit(l, r)))
        .count();
    let precise = found
        .iter()
        .filter(|r| positives.iter().any(|l| hit(l, r)))
        .count();
    let (recall, precision) = (
        ratio(recalled, positives.len(), "labelled anomalies"),
        ratio(precise, found.len(), "IpInsights"),
    );
    eprintln!(
        "IpInsight: {} labels, {} insights, recall {recall:.3}, precision {precision:.3}",
        positives.len(),
        found.len()
    );
    assert!(recall >= 0.95, "recall {recall}: {report:#}");
    assert!(precision >= 0.9, "precision {precision}: {report:#}");

    // Nearby and whitelisted addresses, and non-IP sources, raise nothing.
    for l in labels_of(&["nearby_ip", "whitelisted_ip"]) {
        assert!(
            !found
                .iter()
                .any(|r| r["insightDetails"]["insightObject"] == l["sourceIpAddress"]),
            "insight for {l}"
        );
    }
    assert!(!found.iter().any(|r| r["sourceIpAddress"] == "Internal"));
    let counts = &report["counts"];
    assert!(counts["notIp"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["nearby"].as_u64().unwrap() > 0, "{counts}");
    assert!(counts["whitelisted"].as_u64().unwrap() > 0, "{counts}");

    // Without the whitelist, the whitelisted anomalies are found too.
    let open = json_out(&store, &["insight", "ip", "--dry-run", "--json"]);
    let open_found = starts(&open);
    for l in labels_of(&["whitelisted_ip"]) {
        assert!(
            open_found
                .iter()
                .any(|r| r["insightDetails"]["insightObject"] == l["sourceIpAddress"]),
            "no insight for non-whitelisted {l}"
        );
    }

    // The record shape: a start/end pair sharing an id, with the documented details.
    let r = found[0];
    let d = &r["insightDetails"];
    assert_eq!(r["eventType"], "ActionTrailInsight");
    assert_eq!(r["eventCategory"], "Insight");
    assert_eq!(d["insightType"], "IpInsight");
    for a in ["userAgent", "principalId", "apiRelated", "errorCode"] {
        assert!(d["insightContext"]["attributions"][a].is_array(), "{d:#}");
    }
    for s in [
        "insight",
        "insightDuration",
        "baseline",
        "baselineDuration",
        "insightCount",
    ] {
        assert!(d["insightContext"]["statistics"][s].is_number(), "{d:#}");
    }
    let end = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sharedEventId"] == r["sharedEventId"] && e["insightDetails"]["state"] == "End")
        .unwrap();
    assert!(end["eventTime"].as_str() >= r["eventTime"].as_str());
    assert_eq!(
        d["coveredEventIds"].as_array().unwrap().len() as u64,
        d["insightContext"]["statistics"]["insightCount"]
            .as_u64()
            .unwrap()
    );
}

#[test]
fn rate_insights_find_bursts_and_error_storms() {
    let (_d, store) = fresh_store();
    let report = json_out(&store, &["insight", "rate", "--dry-run", "--json"]);
    let found = starts(&report);
    for (kind, ty) in [
        ("write_burst", "ApiCallRateInsight"),
        ("error_storm", "ApiErrorRateInsight"),
    ] {
        let labels = labels_of(&[kind]);
        let of_type: Vec<&&Value> = found
            .iter()
            .filter(|r| r["insightDetails"]["insightType"] == ty)
            .collect();
        // An insight finds a label when it is about the same series (account, region, event
        // name), names the label's principal first among its identities, and its window
        // overlaps the label's.
        let end_of = |r: &Value| -> String {
            report["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| {
                    e["sharedEventId"] == r["sharedEventId"]
                        && e["insightDetails"]["state"] == "End"
                })
                .map(|e| e["eventTime"].as_str().unwrap().to_owned())
                .unwrap()
        };
        let hit = |l: &Value, r: &Value| {
            let top = &r["insightDetails"]["insightContext"]["attributions"]["principalId"][0];
            r["recipientAccountId"] == l["account"]
                && r["acsRegion"] == l["region"]
                && r["eventName"] == l["eventName"]
                && top["value"] == l["principalId"]
                && r["eventTime"].as_str().unwrap() <= l["end"].as_str().unwrap()
                && end_of(r).as_str() >= l["start"].as_str().unwrap()
        };
        let recalled = labels
            .iter()
            .filter(|l| of_type.iter().any(|r| hit(l, r)))
            .count();
        let precise = of_type
            .iter()
            .filter(|r| labels.iter().any(|l| hit(l, r)))
            .count();
        let (recall, precision) = (
            ratio(recalled, labels.len(), &format!("{kind} labels")),
            ratio(precise, of_type.len(), ty),
        );
        eprintln!(
            "{ty}: {} labels, {} insights, recall {recall:.3}, precision {precision:.3}",
            labels.len(),
            of_type.len()
        );
        assert!(recall >= 0.95, "{ty} recall {recall}: {report:#}");
        assert!(precision >= 0.9, "{ty} precision {precision}: {report:#}");
    }
    // Attributions name the identity behind a burst, with insight and baseline averages.
    let burst = labels_of(&["write_burst"])[0];
    let r = found
        .iter()
        .find(|r| r["eventName"] == burst["eventName"] && r["acsRegion"] == burst["region"])
        .unwrap();
    let who = &r["insightDetails"]["insightContext"]["attributions"]["principalId"][0];
    assert_eq!(who["value"], burst["principalId"]);
    assert!(who["average"].as_f64().unwrap() >= 10.0, "{who}");
    assert!(who["baselineAverage"].as_f64().unwrap() < 1.0, "{who}");
}

fn insight_files(store: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&store.join("insights"), &store.join("insights"), &mut out);
    out
}

#[test]
fn insights_land_in_the_table_deterministically_and_once() {
    let (_a, one) = fresh_store();
    let (_b, two) = fresh_store();
    let args = ["insight", "ip", "--whitelist", WHITELIST, "--json"];
    let first = json_out(&one, &args);
    json_out(&two, &args);
    let n = first["insights"].as_u64().unwrap();
    assert!(n > 0);
    assert_eq!(first["written"], n);
    // Same store, same flags: the same files, byte for byte.
    let files = insight_files(&one);
    assert!(!files.is_empty());
    assert_eq!(files, insight_files(&two));

    // A second run judges only the last day again and writes nothing new.
    let again = json_out(&one, &args);
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(again["since"], again["until"]);
    // A backtest replays everything and finds the same insights, already stored.
    let replay = json_out(
        &one,
        &[
            "insight",
            "ip",
            "--whitelist",
            WHITELIST,
            "--backtest",
            "--json",
        ],
    );
    assert_eq!(replay["insights"], n);
    assert_eq!(replay["alreadyStored"], n);
    assert_eq!(files, insight_files(&one));

    // The insights table: two records per insight, queryable by the fields users know.
    let out = run(
        &one,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n, count(DISTINCT sharedEventId) AS pairs FROM insights \
             WHERE json_get_str(insightDetails, 'insightType') = 'IpInsight'",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("n,pairs\n{},{n}", 2 * n)
    );
    // The saved analysis lists insights with the operations they cover.
    let out = run(&one, &["run", "insight_operations", "--format", "csv"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() > n as usize, "{text}");
    assert!(text.contains("IpInsight"), "{text}");

    // Export in the vendor's layout.
    let export = one.parent().unwrap().join("export");
    let out = run(
        &one,
        &["insight", "export", "--out", export.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{} insight records", 2 * n)));
    assert!(export.join("Actiontrail-Insight").is_dir());
}

#[test]
fn incremental_runs_agree_with_a_full_run() {
    // Ingest all days but the last, judge, then ingest the last day and judge again.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let last = chrono_day(DAYS - 1);
    let mut early = Vec::new();
    let mut late = Vec::new();
    let root = world().input.join("AliyunLogs/Actiontrail");
    for region in std::fs::read_dir(&root).unwrap() {
        let region = region.unwrap().path();
        for day in 1..=31 {
            let p = region.join(format!("2026/10/{day:02}"));
            if p.is_dir() {
                if format!("2026-10-{day:02}") == last {
                    late.push(p);
                } else {
                    early.push(p);
                }
            }
        }
    }
    assert!(!late.is_empty());
    let paths = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    let mut args = vec!["ingest".to_owned(), "-q".to_owned()];
    args.extend(paths(&early));
    run(&store, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let a = json_out(
        &store,
        &["insight", "ip", "--whitelist", WHITELIST, "--json"],
    );
    let mut args = vec!["ingest".to_owned(), "-q".to_owned()];
    args.extend(paths(&late));
    run(&store, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let b = json_out(
        &store,
        &["insight", "ip", "--whitelist", WHITELIST, "--json"],
    );
    assert_eq!(b["until"], last);

    let (_d, full) = fresh_store();
    let all = json_out(
        &full,
        &["insight", "ip", "--whitelist", WHITELIST, "--json"],
    );
    let ids = |v: &Value| -> std::collections::BTreeSet<String> {
        starts(v)
            .iter()
            .map(|r| r["sharedEventId"].as_str().unwrap().to_owned())
            .collect()
    };
    let union: std::collections::BTreeSet<String> = ids(&a).union(&ids(&b)).cloned().collect();
    assert_eq!(union, ids(&all));
    assert_eq!(
        a["written"].as_u64().unwrap() + b["written"].as_u64().unwrap(),
        all["written"].as_u64().unwrap()
    );
}

fn chrono_day(offset: u32) -> String {
    format!("2026-10-{:02}", 1 + offset)
}
