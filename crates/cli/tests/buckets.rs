#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `trail ingest s3://...` and `oss://...` against a real S3-compatible server (moto's, started
//! here on a localhost port), through a fault-injecting proxy where the test needs faults:
//! delivery layouts (ActionTrail, multi-account, CloudTrail, organization), incremental sync with
//! the ledger, virtual-hosted addressing, faults, and bad input; and a store that lives in a
//! bucket (`--store s3://...`): queries, compaction and vacuum on it, writers racing for one
//! commit, and kill -9 in the middle of commits.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use common::servers::*;
use common::*;

fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// The fault-injecting proxy in front of `upstream`.
struct Proxy {
    _proc: Proc,
    port: u16,
}

fn proxy(upstream: u16, faults: &[&str]) -> Proxy {
    let mut child = Command::new("python3")
        .arg(support("s3_proxy.py"))
        .args(["--upstream", &format!("127.0.0.1:{upstream}")])
        .args(faults)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the proxy starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the proxy prints its port");
    let port = line.trim().parse().expect("a port");
    Proxy {
        _proc: Proc(child),
        port,
    }
}

impl Proxy {
    fn stats(&self) -> serde_json::Value {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("proxy");
        s.write_all(b"GET /__stats HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let body = text.split("\r\n\r\n").nth(1).expect("a body");
        serde_json::from_str(body).expect("JSON stats")
    }
}

/// Upload `dir` to `bucket` under `prefix` (creating the bucket).
/// `trail ingest --json --store STORE ARGS` with test credentials and nothing else from the
/// caller's AWS settings.
fn ingest_bucket(store: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = trail_s3(store.parent().unwrap_or(store));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.args(["ingest", "--json", "-q", "--store"])
        .arg(store)
        .args(args)
        .output()
        .expect("trail runs")
}

impl BucketStore {
    fn rows(&self) -> String {
        stdout(&self.ok(&["sql", "--format", "csv", "-c", ROWS]))
    }

    fn info(&self) -> serde_json::Value {
        json(&self.ok(&["info", "--json"]))
    }

    /// The same store through another endpoint (the server directly, not the proxy).
    fn via(&self, endpoint: &str) -> BucketStore {
        BucketStore {
            endpoint: endpoint.to_owned(),
            url: self.url.clone(),
            home: self.home.clone(),
        }
    }
}

/// Keys under `prefix` in `bucket`.
fn keys(s3: &S3, bucket: &str, prefix: &str) -> Vec<String> {
    let script = "import boto3,sys\n\
                  s3=boto3.client('s3',endpoint_url=sys.argv[1],aws_access_key_id='test',\
                  aws_secret_access_key='test',region_name='us-east-1')\n\
                  for p in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2],Prefix=sys.argv[3]):\n    \
                  [print(o['Key']) for o in p.get('Contents',[])]\n";
    let o = Command::new("python3")
        .args(["-c", script, &s3.endpoint(), bucket, prefix])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

fn generated(dir: &Path, events: &str, seed: &str) {
    let o = run(&[
        "gen",
        "--out",
        dir.to_str().unwrap(),
        "--events",
        events,
        "--days",
        "3",
        "--regions",
        "2",
        "--seed",
        seed,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn ok(o: Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "ingest failed ({:?}): {}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    json(&o)
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A delivery tree of every layout: the testdata tree (ActionTrail, CloudTrail, a digest and
/// vendor insights), a generated ActionTrail history, a multi-account ActionTrail tree and a
/// CloudTrail organization tree.
fn delivery_tree(dir: &Path) {
    copy_tree(&testdata(), dir);
    let generated = dir.parent().unwrap().join("generated");
    let o = run(&[
        "gen",
        "--out",
        generated.to_str().unwrap(),
        "--events",
        "1200",
        "--days",
        "6",
        "--regions",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    copy_tree(&generated, dir);
    copy_tree(
        &testdata().join("AliyunLogs/Actiontrail/cn-hangzhou"),
        &dir.join("AliyunLogs/Actiontrail/rd-ab12cd/1180927733458890/cn-hangzhou"),
    );
    copy_tree(
        &testdata().join("AWSLogs/123456789012/CloudTrail"),
        &dir.join("AWSLogs/o-exampleorgid/123456789012/CloudTrail"),
    );
}

const ROWS: &str = "SELECT eventId, eventName, sourceIpAddress, eventTime, acsRegion FROM events \
                    ORDER BY eventId, eventTime";

fn rows(store: &Path) -> String {
    stdout(&ok_on(store, &["sql", "--format", "csv", "-c", ROWS]))
}

fn count(store: &Path) -> u64 {
    let out = stdout(&ok_on(
        store,
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM events",
        ],
    ));
    out.lines().nth(1).unwrap().parse().unwrap()
}

fn source_stats(summary: &serde_json::Value) -> &serde_json::Value {
    &summary["sources"][0]
}

/// An ActionTrail event of the testdata with a new id and time, as one NDJSON line.
fn new_event(id: &str, time: &str) -> String {
    let text = std::fs::read_to_string(testdata().join(SHANGHAI)).unwrap();
    let mut e: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    e["eventId"] = id.into();
    e["eventTime"] = time.into();
    serde_json::to_string(&e).unwrap()
}

const SHANGHAI: &str = "AliyunLogs/Actiontrail/cn-shanghai/2020/12/18/\
                        1180927733458890_Actiontrail_cn-shanghai_20201218T0800Z_c3d4.json";

/// The event file's text (NDJSON or a JSON array) with one more event.
fn with_event(file: &Path, id: &str, time: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let event = new_event(id, time);
    if text.trim_start().starts_with('[') {
        let mut all: serde_json::Value = serde_json::from_str(&text).unwrap();
        all.as_array_mut()
            .unwrap()
            .push(serde_json::from_str(&event).unwrap());
        all.to_string()
    } else {
        format!("{}\n{event}\n", text.trim_end())
    }
}

/// Events in an event file (NDJSON or a JSON array).
fn events_in(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(a)) => a.len() as u64,
        _ => text.lines().filter(|l| !l.trim().is_empty()).count() as u64,
    }
}

#[test]
fn a_bucket_ingests_like_local_files_and_later_runs_read_only_what_is_new() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    delivery_tree(&tree);
    put(&s3, "trail-logs", "prod/", &tree);
    let local = tmp.path().join("local");
    ingest(&local, &[&tree]);

    let store = tmp.path().join("bucket-store");
    let endpoint = s3.endpoint();
    let args = ["s3://trail-logs/prod", "--endpoint", &endpoint];
    let first = ok(ingest_bucket(&store, &args, &[]));
    assert_eq!(
        rows(&store),
        rows(&local),
        "the bucket's events are the tree's"
    );
    let src = source_stats(&first);
    let objects = src["listed"].as_u64().unwrap();
    assert!(objects > 100, "{first}");
    assert_eq!(src["read"].as_u64(), Some(objects));
    assert_eq!(
        first["digest_files"], 1,
        "the CloudTrail digest folder is skipped"
    );
    let first_lists = src["list_calls"].as_u64().unwrap();

    // Nothing new: nothing read, nothing committed.
    let second = ok(ingest_bucket(&store, &args, &[]));
    let src = source_stats(&second);
    assert_eq!(src["read"], 0, "{second}");
    assert_eq!(src["unchanged"], src["listed"]);
    assert_eq!(second["ingested"], 0);
    assert_eq!(second["generation"], first["generation"]);
    // Only the last listed day of each date root (and the one before) is listed again.
    assert!(
        src["days_listed"].as_u64().unwrap()
            < source_stats(&first)["days_listed"].as_u64().unwrap(),
        "{first}\n{second}"
    );
    assert!(src["list_calls"].as_u64().unwrap() < first_lists);

    // A new day, and an object rewritten on the last listed day, of the multi-account root
    // (whose newest day is 2020-12-17).
    let rd = "prod/AliyunLogs/Actiontrail/rd-ab12cd/1180927733458890/cn-hangzhou/2020/12";
    put_bytes(
        &s3,
        "trail-logs",
        &format!("{rd}/18/new_c.json"),
        new_event("NEW-0001", "2020-12-18T01:00:00Z").as_bytes(),
    );
    let a1b2 = "1180927733458890_Actiontrail_cn-hangzhou_20201217T0100Z_a1b2.json";
    let local_a1b2 = tree
        .join("AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17")
        .join(a1b2);
    let old_events = events_in(&local_a1b2);
    let text = with_event(&local_a1b2, "NEW-0002", "2020-12-17T09:00:00Z");
    put_bytes(
        &s3,
        "trail-logs",
        &format!("{rd}/17/{a1b2}"),
        text.as_bytes(),
    );
    let before = count(&store);
    let third = ok(ingest_bucket(&store, &args, &[]));
    let src = source_stats(&third);
    assert_eq!(src["read"], 2, "the new and the rewritten object: {third}");
    assert_eq!(third["ingested"], 2, "{third}");
    assert_eq!(
        third["duplicates"].as_u64(),
        Some(old_events),
        "the rewritten file's old events"
    );
    assert_eq!(count(&store), before + 2);

    // An object rewritten on a day before the look-back is found only by a full listing.
    let old_day = walk(&tree.join("AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17"))
        .into_iter()
        .next()
        .unwrap();
    let old_key = format!(
        "prod/{}",
        old_day.strip_prefix(&tree).unwrap().to_string_lossy()
    );
    let text = with_event(&old_day, "NEW-0003", "2020-12-17T09:00:00Z");
    put_bytes(&s3, "trail-logs", &old_key, text.as_bytes());
    let fourth = ok(ingest_bucket(&store, &args, &[]));
    assert_eq!(source_stats(&fourth)["read"], 0, "{fourth}");
    let full: Vec<&str> = args.iter().copied().chain(["--full"]).collect();
    let fifth = ok(ingest_bucket(&store, &full, &[]));
    assert_eq!(source_stats(&fifth)["read"], 1, "{fifth}");
    assert_eq!(fifth["ingested"], 1);
    assert_eq!(count(&store), before + 3);

    // --full --reread reads everything again; dedup keeps each event once.
    let rereads: Vec<&str> = args.iter().copied().chain(["--full", "--reread"]).collect();
    let sixth = ok(ingest_bucket(&store, &rereads, &[]));
    assert_eq!(source_stats(&sixth)["read"].as_u64(), Some(objects + 1));
    assert_eq!(sixth["ingested"], 0);
    assert_eq!(count(&store), before + 3);
}

#[test]
fn faults_between_trail_and_the_server_lose_and_repeat_nothing() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    delivery_tree(&tree);
    put(&s3, "faulty", "", &tree);
    let local = tmp.path().join("local");
    ingest(&local, &[&tree]);
    // 503 SlowDown, dropped connections, bodies cut in half, slow answers.
    let p = proxy(
        s3.port,
        &[
            "--fail",
            "0.15",
            "--drop",
            "0.05",
            "--cut",
            "0.1",
            "--delay",
            "0.05",
            "--delay-ms",
            "300",
        ],
    );
    let store = tmp.path().join("store");
    let endpoint = format!("http://127.0.0.1:{}", p.port);
    let summary = ok(ingest_bucket(
        &store,
        &[
            "s3://faulty",
            "--endpoint",
            &endpoint,
            "--fetch-concurrency",
            "8",
        ],
        &[],
    ));
    assert_eq!(summary["quarantined"], 0, "{summary}");
    assert_eq!(rows(&store), rows(&local), "every event exactly once");
    let stats = p.stats();
    assert!(stats["faults"].as_u64().unwrap() > 20, "{stats}");
    assert!(
        stats["max_in_flight"].as_u64().unwrap() > 1,
        "GETs overlap: {stats}"
    );
}

#[test]
fn oss_urls_with_virtual_hosted_addressing() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    put(&s3, "oss-trail", "logs/", &testdata());
    // `oss-trail.localhost:PORT` does not resolve here: requests go through the proxy as an
    // HTTP proxy, which passes the virtual host on to the server unchanged.
    let p = proxy(s3.port, &[]);
    let store = tmp.path().join("store");
    let endpoint = format!("http://localhost:{}", s3.port);
    let proxy_url = format!("http://127.0.0.1:{}", p.port);
    let summary = ok(ingest_bucket(
        &store,
        &["oss://oss-trail/logs/", "--endpoint", &endpoint],
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "test"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test"),
            ("HTTP_PROXY", &proxy_url),
        ],
    ));
    assert_eq!(summary["ingested"], 14, "{summary}");
    let stats = p.stats();
    assert!(stats["GET"].as_u64().unwrap() >= 3, "{stats}");
    assert!(stats["LIST"].as_u64().unwrap() >= 3, "{stats}");

    // The store itself in OSS, virtual-hosted too.
    let oss_env = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "test"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test"),
        ("HTTP_PROXY", proxy_url.as_str()),
        ("TRAIL_ENDPOINT", endpoint.as_str()),
    ];
    let in_oss = Path::new("oss://oss-trail/store");
    let summary = ok(ingest_bucket(in_oss, &["oss://oss-trail/logs/"], &oss_env));
    assert_eq!(summary["ingested"], 14, "{summary}");
    assert_eq!(summary["store"], "oss://oss-trail/store/");
    let o = trail_s3(tmp.path())
        .envs(oss_env)
        .args([
            "--store",
            "oss://oss-trail/store",
            "sql",
            "--format",
            "csv",
            "-c",
        ])
        .arg("SELECT count(*) AS n FROM events")
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "n\n14\n", "{}", stderr(&o));

    // Without credentials OSS says which variables to set.
    let o = ingest_bucket(
        &store,
        &["oss://oss-trail/logs/", "--endpoint", &endpoint],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_buckets_credentials_prefixes_and_objects_are_clear() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    put(&s3, "mixed", "logs/", &testdata());
    put_bytes(
        &s3,
        "mixed",
        "logs/AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17/garbage.json",
        b"this is not JSON\n",
    );
    let store = tmp.path().join("store");
    let endpoint = s3.endpoint();
    let line = |o: &Output| stderr(o).trim().to_owned();

    let o = ingest_bucket(
        &store,
        &["s3://no-such-bucket/x", "--endpoint", &endpoint],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        line(&o).contains("the bucket `no-such-bucket` does not exist"),
        "{}",
        line(&o)
    );
    assert_eq!(line(&o).lines().count(), 1, "{}", line(&o));
    assert!(!store.join("_trail/manifest.json").exists() || count(&store) == 0);

    let o = ingest_bucket(
        &store,
        &["s3://mixed/nothing-here", "--endpoint", &endpoint],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        line(&o).contains("no event files under this prefix"),
        "{}",
        line(&o)
    );

    let o = ingest_bucket(&store, &["s3://mixed/logs", "--endpoint", &endpoint], &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "a bad record is quarantined: {}",
        line(&o)
    );
    let summary = json(&o);
    assert_eq!(summary["ingested"], 14);
    assert_eq!(summary["quarantined"], 1);
    assert!(
        summary["errors"][0]["file"].as_str().unwrap().ends_with(
            "s3://mixed/logs/AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17/garbage.json"
        ),
        "{summary}"
    );

    // A server that knows no credentials refuses ours: one line, nothing committed.
    let Some(strict) = s3_server(true) else {
        return;
    };
    let fresh = tmp.path().join("fresh");
    let o = ingest_bucket(
        &fresh,
        &["s3://mixed/logs", "--endpoint", &strict.endpoint()],
        &[("AWS_SECRET_ACCESS_KEY", "secret-that-must-not-show")],
    );
    assert_eq!(o.status.code(), Some(1));
    let msg = line(&o);
    assert!(msg.contains("InvalidAccessKeyId"), "{msg}");
    assert!(msg.contains("AWS_PROFILE"), "{msg}");
    assert!(!msg.contains("secret-that-must-not-show"));
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn credentials_come_from_an_aws_profile() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    put(&s3, "profiled", "", &testdata());
    // HOME is the store's parent: its ~/.aws holds the profile.
    let aws = tmp.path().join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[audit]\n\
         aws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile audit]\nregion = eu-central-1\n",
    )
    .unwrap();
    let store = tmp.path().join("store");
    let mut c = trail();
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    let o = c
        .env("HOME", tmp.path())
        .env("AWS_PROFILE", "audit")
        .args(["ingest", "--json", "-q", "--store"])
        .arg(&store)
        .args(["s3://profiled", "--endpoint", &s3.endpoint()])
        .output()
        .unwrap();
    assert_eq!(ok(o)["ingested"], 14);
}

#[test]
fn a_local_tree_is_read_again_only_where_it_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    copy_tree(&testdata(), &tree);
    let store = tmp.path().join("store");
    let run = |extra: &[&str]| {
        let mut args = vec!["ingest", "--json", "-q", tree.to_str().unwrap()];
        args.extend_from_slice(extra);
        json(&ok_on(&store, &args))
    };
    let first = run(&[]);
    assert_eq!(first["ingested"], 14);
    assert_eq!(first["sources"][0]["read"], 3);
    let second = run(&[]);
    assert_eq!(second["files_read"], 0, "{second}");
    assert_eq!(second["sources"][0]["unchanged"], 3);
    // A file that grows is read again.
    let f = tree.join(SHANGHAI);
    std::fs::write(&f, with_event(&f, "NEW-LOCAL", "2020-12-18T10:00:00Z")).unwrap();
    let third = run(&[]);
    assert_eq!(third["files_read"], 1, "{third}");
    assert_eq!(third["ingested"], 1);
    let fourth = run(&["--reread"]);
    assert_eq!(fourth["files_read"], 3);
    assert_eq!(fourth["ingested"], 0);
    assert_eq!(fourth["duplicates"], 15);
}

#[test]
fn a_store_in_a_bucket_answers_like_a_local_one_and_vacuum_keeps_it_tidy() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    delivery_tree(&tree);
    put_bytes(&s3, "stores", "README", b"audit stores");
    let local = tmp.path().join("local");
    ingest(&local, &[&tree]);
    let store = BucketStore {
        endpoint: s3.endpoint(),
        url: "s3://stores/team/trail".into(),
        home: tmp.path().to_path_buf(),
    };
    let first = json(&store.ok(&["ingest", "--json", "-q", tree.to_str().unwrap()]));
    assert_eq!(first["store"], "s3://stores/team/trail/", "{first}");
    assert_eq!(
        store.rows(),
        rows(&local),
        "the same events as on local disk"
    );
    let audit = "SELECT count(*) AS n FROM audit_logs";
    assert_eq!(
        stdout(&store.ok(&["sql", "--format", "csv", "-c", audit])),
        stdout(&ok_on(&local, &["sql", "--format", "csv", "-c", audit])),
    );
    let info = store.info();
    let local_info = json(&ok_on(&local, &["info", "--json"]));
    assert_eq!(info["events"], local_info["events"], "{info}");
    assert_eq!(info["store"], "s3://stores/team/trail/");
    // The same layout as on disk: partitions under events/, the manifest's log under _trail/.
    let stored = keys(&s3, "stores", "team/trail/");
    assert!(
        stored
            .iter()
            .any(|k| k.starts_with("team/trail/events/region=cn-hangzhou/eventDate=2020-12-17/")),
        "{stored:?}"
    );
    assert!(stored.contains(&"team/trail/_trail/log/00000000000000000001.json".to_owned()));

    // Three small runs into one partition, then compaction merges them.
    let extra = tmp.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    for i in 0..3 {
        let f = extra.join(format!("late-{i}.json"));
        std::fs::write(&f, new_event(&format!("LATE-{i}"), "2020-12-18T09:00:00Z")).unwrap();
        store.ok(&["ingest", "-q", "--no-compact", f.to_str().unwrap()]);
    }
    let before = store.info();
    assert_eq!(before["events"], local_info["events"].as_u64().unwrap() + 3);
    let compacted = json(&store.ok(&["compact", "--json"]));
    assert!(
        compacted["files_removed"].as_u64().unwrap() >= 3,
        "{compacted}"
    );
    let after = store.info();
    assert_eq!(after["events"], before["events"]);
    assert!(after["files"].as_u64() < before["files"].as_u64());

    // The replaced files stay for readers that planned before the compaction, until vacuum.
    let events_keys = |s3: &S3| keys(s3, "stores", "team/trail/events/").len() as u64;
    assert!(events_keys(&s3) > after["files"].as_u64().unwrap());
    let young = json(&store.ok(&["vacuum", "--json"]));
    assert_eq!(
        young["files"], 0,
        "the versions that list them are within the grace period: {young}"
    );
    assert!(events_keys(&s3) > after["files"].as_u64().unwrap());
    let dry = json(&store.ok(&["vacuum", "--json", "--grace-minutes", "0", "--dry-run"]));
    assert!(dry["files"].as_u64().unwrap() >= 3, "{dry}");
    assert!(
        events_keys(&s3) > after["files"].as_u64().unwrap(),
        "a dry run removes nothing"
    );
    let done = json(&store.ok(&["vacuum", "--json", "--grace-minutes", "0"]));
    assert_eq!(done["files"], dry["files"]);
    assert_eq!(events_keys(&s3), after["files"].as_u64().unwrap());
    assert_eq!(store.info()["events"], after["events"]);
    let log = keys(&s3, "stores", "team/trail/_trail/log/");
    assert_eq!(log.len(), 1, "only the latest version is left: {log:?}");

    // Insight jobs and detections keep their findings and state in the bucket, and find
    // what they find on disk.
    for cmd in [&["insight", "ip"][..], &["insight", "rate"], &["detect"]] {
        store.ok(cmd);
        ok_on(&local, cmd);
    }
    for table in ["insights", "findings"] {
        let q = match table {
            "insights" => "SELECT eventId FROM insights ORDER BY eventId",
            _ => "SELECT \"findingId\", events FROM findings ORDER BY 1",
        };
        let here = stdout(&store.ok(&["sql", "--format", "csv", "-c", q]));
        assert_eq!(
            here,
            stdout(&ok_on(&local, &["sql", "--format", "csv", "-c", q]))
        );
        if table == "findings" {
            assert!(here.lines().count() > 2, "{table}: {here}");
        }
    }

    // TRAIL_STORE names it as well as --store; trails, which deliver to local folders, refuse
    // it in one line.
    let o = trail_s3(tmp.path())
        .env("TRAIL_ENDPOINT", s3.endpoint())
        .env("TRAIL_STORE", &store.url)
        .args([
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT count(*) AS n FROM events",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o).lines().nth(1),
        Some(after["events"].to_string().as_str())
    );
    let refused = store.run(&["trails", "list"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("local disk"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stderr(&refused).trim().lines().count(), 1);
    // The first query reads each file it needs whole, once, into the local cache; the next
    // process reads the copies (its GETs are the manifest's).
    let p = proxy(s3.port, &[]);
    let fresh_home = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&fresh_home).unwrap();
    let counted = BucketStore {
        home: fresh_home.clone(),
        ..store.via(&format!("http://127.0.0.1:{}", p.port))
    };
    let gets = || p.stats()["GET"].as_u64().unwrap();
    let answer = counted.rows();
    let first = gets();
    assert_eq!(counted.rows(), answer);
    let second = gets() - first;
    assert!(first > after["files"].as_u64().unwrap(), "{first} GETs");
    assert!(second <= 2, "{second} GETs with every file cached");
    assert!(
        fresh_home
            .join(".cache/trail/objects")
            .read_dir()
            .unwrap()
            .count()
            > 10
    );

    // A store on disk copied into the bucket is a bucket store at once, and its first commit
    // there starts the manifest's log, which readers then follow.
    put(&s3, "stores", "copied/", &local);
    let copied = BucketStore {
        url: "s3://stores/copied".into(),
        ..store.via(&s3.endpoint())
    };
    assert_eq!(copied.rows(), rows(&local));
    let late = extra.join("late-0.json");
    let o = copied.ok(&["ingest", "--json", "-q", "--reread", late.to_str().unwrap()]);
    assert_eq!(json(&o)["ingested"], 1, "{}", stdout(&o));
    assert_eq!(
        copied.info()["events"],
        local_info["events"].as_u64().unwrap() + 1
    );
    assert!(keys(&s3, "stores", "copied/_trail/log/").len() == 1);

    // A prefix that holds no store says how to make one.
    let none = store.via(&s3.endpoint());
    let none = BucketStore {
        url: "s3://stores/nothing-here".into(),
        ..none
    };
    let o = none.run(&["info"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("trail ingest --store"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn writers_racing_for_one_bucket_store_commit_store_every_event_once() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let trees: Vec<PathBuf> = (1..=3)
        .map(|i| {
            let t = tmp.path().join(format!("g{i}"));
            generated(&t, "1500", &i.to_string());
            t
        })
        .collect();
    put_bytes(&s3, "race", "README", b"race");
    let local = tmp.path().join("local");
    ingest(&local, &[&trees[0], &trees[1], &trees[2]]);
    // Slow answers, 503s, and conditional writes whose answer is lost after the server did
    // them (the writer must find that the version is its own).
    let p = proxy(
        s3.port,
        &[
            "--fail",
            "0.05",
            "--lose",
            "0.1",
            "--delay",
            "0.2",
            "--delay-ms",
            "50",
        ],
    );
    let store = BucketStore {
        endpoint: format!("http://127.0.0.1:{}", p.port),
        url: "s3://race/store".into(),
        home: tmp.path().to_path_buf(),
    };
    // Each pair of trees overlaps another writer's: dedup must hold across the race.
    let writers: Vec<Child> = [(0, 1), (1, 2), (2, 0)]
        .iter()
        .map(|&(a, b)| {
            store
                .command(&["ingest", "--json", "-q"])
                .arg(&trees[a])
                .arg(&trees[b])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut retries = 0;
    for w in writers {
        let summary = ok(w.wait_with_output().unwrap());
        retries += summary["commit_retries"].as_u64().unwrap_or(0);
    }
    let direct = store.via(&s3.endpoint());
    assert_eq!(direct.rows(), rows(&local), "every event exactly once");
    let stats = p.stats();
    assert!(retries >= 1, "the writers raced: {stats}");
    assert!(
        stats["precondition_failed"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(stats["faults"].as_u64().unwrap() >= 5, "{stats}");
}

#[test]
fn kill_9_during_bucket_store_commits_loses_and_repeats_nothing() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    generated(&tree, "4000", "9");
    put_bytes(&s3, "crash", "README", b"crash");
    let local = tmp.path().join("local");
    ingest(&local, &[&tree]);
    let p = proxy(s3.port, &["--delay", "0.3", "--delay-ms", "40"]);
    let store = BucketStore {
        endpoint: format!("http://127.0.0.1:{}", p.port),
        url: "s3://crash/store".into(),
        home: tmp.path().to_path_buf(),
    };
    let run = |s: &BucketStore| {
        s.command(&["ingest", "-q", "--reread", "--no-compact"])
            .arg(&tree)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole run takes here, on a store of its own.
    let timing = BucketStore {
        url: "s3://crash/timing".into(),
        ..store.via(&store.endpoint)
    };
    let started = Instant::now();
    assert!(run(&timing).wait().unwrap().success());
    let whole = started.elapsed();
    // Kill runs late in their work: while they upload, commit or write the ledger.
    for fraction in [0.5, 0.7, 0.8, 0.9, 0.95, 1.0] {
        let mut child = run(&store);
        std::thread::sleep(whole.mul_f64(fraction));
        let _ = child.kill();
        let _ = child.wait();
    }
    let last = store.ok(&["ingest", "-q", "--reread", tree.to_str().unwrap()]);
    assert!(last.status.success());
    let direct = store.via(&s3.endpoint());
    assert_eq!(direct.rows(), rows(&local), "every event exactly once");
    // What the killed runs left is unreferenced; vacuum removes it and nothing else.
    let files = direct.info()["files"].as_u64().unwrap();
    direct.ok(&["vacuum", "--grace-minutes", "0"]);
    assert_eq!(keys(&s3, "crash", "store/events/").len() as u64, files);
    assert_eq!(direct.rows(), rows(&local));
}
