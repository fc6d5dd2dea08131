#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Queries on a Ballista cluster: a real scheduler and two executors, each a `trail cluster`
//! process on a localhost port, over a store in a bucket of a real S3-compatible server
//! (moto's). Every saved analysis and the benchmark's canonical queries answer the same, row
//! for row, as on this machine; the errors a user meets name what to check.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;

/// A scheduler and its executors, stopped when dropped.
struct Cluster {
    port: u16,
    _scheduler: Proc,
    executors: Vec<Proc>,
}

impl Cluster {
    fn address(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }
}

fn start_cluster(store: &BucketStore, executors: usize) -> Cluster {
    let port = free_port();
    let scheduler = Proc(
        store
            .command(&["cluster", "scheduler", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .env("TRAIL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file(store, "scheduler"))
            .spawn()
            .expect("the scheduler starts"),
    );
    wait_for_port(port);
    let mut procs = Vec::new();
    for i in 0..executors {
        let (flight, grpc) = (free_port(), free_port());
        procs.push(Proc(
            store
                .command(&["cluster", "executor", "--scheduler"])
                .arg(format!("127.0.0.1:{port}"))
                .env("TRAIL_CACHE_DIR", executor_cache(store, i))
                .args(["--bind-host", "127.0.0.1", "--external-host", "127.0.0.1"])
                .args(["--flight-port", &flight.to_string()])
                .args(["--grpc-port", &grpc.to_string()])
                .args(["--concurrent-tasks", "2"])
                .stdout(Stdio::null())
                .env("TRAIL_LOG", "warn")
                .stderr(log_file(store, &format!("executor-{i}")))
                .spawn()
                .expect("an executor starts"),
        ));
        wait_for_port(flight);
    }
    Cluster {
        port,
        _scheduler: scheduler,
        executors: procs,
    }
}

/// Where a cluster process's warnings go (`<home>/<name>.log`).
fn log_file(store: &BucketStore, name: &str) -> std::fs::File {
    std::fs::File::create(store.home.join(format!("{name}.log"))).unwrap()
}

/// Executor `i`'s file cache (`TRAIL_CACHE_DIR`).
fn executor_cache(store: &BucketStore, i: usize) -> std::path::PathBuf {
    store.home.join(format!("executor-{i}-cache"))
}

/// The store's data files executor `i` holds copies of.
fn cached_copies(store: &BucketStore, i: usize) -> usize {
    std::fs::read_dir(executor_cache(store, i).join("objects"))
        .map(|d| d.filter(|e| e.is_ok()).count())
        .unwrap_or(0)
}

/// `trail run`/`trail sql` arguments on the cluster: the first query may find no executor
/// registered yet, so it is tried again for a while.
fn on_cluster(store: &BucketStore, cluster: &Cluster, args: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let o = store
            .command(&["--cluster", &cluster.address()])
            .args(args)
            .output()
            .expect("trail runs");
        if o.status.success() {
            return stdout(&o);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "trail {args:?} on the cluster failed ({:?}):\n{}\n{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn bucket_store(s3: &S3, home: &Path) -> BucketStore {
    put_bytes(s3, "audit", "README", b"audit history");
    let store = BucketStore {
        endpoint: s3.endpoint(),
        url: "s3://audit/trail".into(),
        home: home.to_path_buf(),
    };
    let generated = home.join("generated");
    let o = trail()
        .args(["gen", "--events", "20000", "--days", "4", "--seed", "7"])
        .arg("--out")
        .arg(&generated)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let security = repo().join("testdata/security");
    store.ok(&[
        "ingest",
        "-q",
        generated.to_str().unwrap(),
        security.join("actiontrail.ndjson").to_str().unwrap(),
        security.join("audit_logs.ndjson").to_str().unwrap(),
    ]);
    store.ok(&["insight", "ip"]);
    store
}

/// One value a saved analysis's required parameter takes in the store.
fn param_value(name: &str) -> &'static str {
    match name {
        "ip" => "203.0.113.66",
        "user" => "eve",
        "day" => "2024-05-01",
        other => panic!("give the test a value for the parameter {other}"),
    }
}

/// The same rows, and in the same order as far as the order is decided: a saved analysis may
/// order by its first column alone, so rows that tie on it may come in either order.
fn same_answer(what: &str, local: &str, remote: &str) {
    if local == remote {
        return;
    }
    fn sorted(s: &str) -> Vec<&str> {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v
    }
    let (l, r) = (sorted(local), sorted(remote));
    let only_local: Vec<&&str> = l.iter().filter(|x| !r.contains(x)).take(5).collect();
    let only_remote: Vec<&&str> = r.iter().filter(|x| !l.contains(x)).take(5).collect();
    assert!(
        l == r,
        "{what}: the cluster answers differently ({} rows here, {} there); only here: \
         {only_local:?}; only there: {only_remote:?}",
        l.len(),
        r.len()
    );
    let first = |s: &str| -> Vec<String> {
        s.lines()
            .map(|line| line.split(',').next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        first(local),
        first(remote),
        "{what}: the same rows, ordered differently"
    );
}

#[test]
fn saved_analyses_and_canonical_queries_answer_the_same_on_a_cluster() {
    let Some(s3) = s3_server(false) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = bucket_store(&s3, tmp.path());
    let cluster = start_cluster(&store, 2);

    // Every saved analysis, as `trail run` prints it.
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&run(&["queries", "--json"]))).unwrap();
    let mut compared = 0;
    for q in list.as_array().unwrap() {
        let name = q["name"].as_str().unwrap();
        let mut args = vec![
            "run".to_owned(),
            name.to_owned(),
            "--format".into(),
            "csv".into(),
        ];
        for p in q["params"].as_array().unwrap() {
            if p["default"].is_null() {
                let pname = p["name"].as_str().unwrap();
                args.push("-p".into());
                args.push(format!("{pname}={}", param_value(pname)));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let local = stdout(&store.ok(&args));
        let remote = on_cluster(&store, &cluster, &args);
        same_answer(name, &local, &remote);
        compared += 1;
    }
    assert!(compared > 30, "{compared} saved analyses");

    // The benchmark's canonical queries, with values the store holds.
    let pick = |sql: &str| -> String {
        stdout(&store.ok(&["sql", "--format", "csv", "-c", sql]))
            .lines()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    let day = pick(
        "SELECT CAST(eventDate AS VARCHAR) FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    );
    let last = pick("SELECT CAST(max(eventDate) AS VARCHAR) FROM events");
    let ip = pick(
        "SELECT sourceIpAddress FROM events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1 OFFSET 3",
    );
    let eid = pick("SELECT eventId FROM events ORDER BY eventId LIMIT 1 OFFSET 777");
    let user = pick(
        "SELECT userIdentity.userName FROM events WHERE userIdentity.userName IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
    );
    let canonical = [
        "SELECT eventName, count(*) AS n FROM events GROUP BY eventName ORDER BY n DESC, eventName LIMIT 10".to_owned(),
        format!("SELECT userIdentity.userName AS u, errorCode, count(*) AS n FROM events WHERE eventTime >= TIMESTAMP '{day} 00:00:00' AND eventTime < TIMESTAMP '{day} 00:00:00' + INTERVAL '1 day' AND errorCode IS NOT NULL GROUP BY 1, 2 ORDER BY n DESC, u, errorCode LIMIT 20"),
        format!("SELECT eventTime, eventName, sourceIpAddress FROM events WHERE userIdentity.userName = '{user}' AND eventTime >= TIMESTAMP '{day} 00:00:00' AND eventTime < TIMESTAMP '{day} 00:00:00' + INTERVAL '1 day' ORDER BY eventTime, eventName, sourceIpAddress"),
        format!("SELECT eventTime, eventName, userIdentity.userName AS u FROM events WHERE sourceIpAddress = '{ip}' ORDER BY eventTime, eventName"),
        "SELECT eventTime, userIdentity.userName AS u, sourceIpAddress FROM events WHERE eventName = 'ConsoleSignin' AND errorCode IS NULL AND json_get_str(additionalEventData, 'MFAUsed') = 'false' ORDER BY eventTime, u".to_owned(),
        "SELECT userIdentity.userName AS u, count(DISTINCT sourceIpAddress) AS ips FROM events GROUP BY 1 ORDER BY ips DESC, u LIMIT 20".to_owned(),
        format!("WITH base AS (SELECT DISTINCT userIdentity.userName AS u, sourceIpAddress AS ip FROM events WHERE eventTime < TIMESTAMP '{last} 00:00:00'), recent AS (SELECT userIdentity.userName AS u, sourceIpAddress AS ip FROM events WHERE eventTime >= TIMESTAMP '{last} 00:00:00') SELECT r.u, r.ip, count(*) AS n FROM recent r WHERE NOT EXISTS (SELECT 1 FROM base b WHERE b.u = r.u AND b.ip = r.ip) GROUP BY 1, 2 ORDER BY n DESC, r.u, r.ip LIMIT 50"),
        format!("SELECT eventTime, eventName, sourceIpAddress FROM events WHERE eventId = '{eid}'"),
        // The system tables, the IP functions and the insights table.
        "SELECT region, sum(rows) AS n FROM system.partitions GROUP BY region ORDER BY region".to_owned(),
        "SELECT ip_in_cidr(sourceIpAddress, '10.0.0.0/8') AS internal, count(*) AS n FROM events GROUP BY 1 ORDER BY 1".to_owned(),
        "SELECT count(*) AS n FROM insights".to_owned(),
    ];
    for sql in &canonical {
        let args = ["sql", "--format", "csv", "-c", sql.as_str()];
        let local = stdout(&store.ok(&args));
        assert!(local.lines().count() > 1, "{sql}: no rows to compare");
        same_answer(sql, &local, &on_cluster(&store, &cluster, &args));
    }

    // The executors read each data file from the bucket once, then from their own copies.
    let copies: usize = (0..2).map(|i| cached_copies(&store, i)).sum();
    assert!(copies > 0, "the executors cached no data file");
    let data: Vec<String> = keys(&s3, "audit")
        .into_iter()
        .filter(|k| {
            k.ends_with(".parquet") && (k.contains("/events/") || k.contains("/audit_logs/"))
        })
        .collect();
    assert!(
        copies <= 2 * data.len(),
        "{copies} copies of {} data files",
        data.len()
    );

    // The insight job's queries: the same insights judged from the same history.
    let job = ["insight", "ip", "--dry-run", "--backtest", "--json"];
    let judged = |out: &str| {
        let mut v: serde_json::Value = serde_json::from_str(out).unwrap();
        v.as_object_mut().unwrap().remove("seconds");
        v
    };
    let local = judged(&stdout(&store.ok(&job)));
    assert!(local["insights"].as_u64().unwrap() > 0, "{local}");
    assert_eq!(judged(&on_cluster(&store, &cluster, &job)), local);

    // A table made in the session lives in the client: refused, not answered wrongly.
    let o = store.run(&[
        "--cluster",
        &cluster.address(),
        "sql",
        "-c",
        "CREATE TABLE mine AS SELECT 1 AS x; SELECT x FROM mine",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("cannot be read on the cluster"),
        "{}",
        stderr(&o)
    );

    // An executor lost in the middle of a long query (a self-join with millions of pairs):
    // its tasks run again on the other executor and the answer is right, or the query fails
    // with Ballista's error, never with a wrong answer.
    let long = "SELECT a.eventName, count(*) AS n FROM events a JOIN events b \
                ON a.userIdentity.userName = b.userIdentity.userName AND a.eventName = b.eventName \
                GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5";
    let args = ["sql", "--format", "csv", "-c", long];
    let expected = stdout(&store.ok(&args));
    let started = Instant::now();
    let query = store
        .command(&["--cluster", &cluster.address()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut query = query;
    assert!(
        query.try_wait().unwrap().is_none(),
        "the long query ended before an executor was lost: make it longer"
    );
    let mut cluster = cluster;
    let mut lost = cluster.executors.remove(0);
    lost.0.kill().unwrap();
    lost.0.wait().unwrap();
    // Ballista 55 can also leave the job unfinished after a lost executor (a stage rolled back
    // while its last task reported: the status is ignored and nothing runs again). The
    // scheduler cancels a job that cannot progress and the client runs it once more: the
    // query ends either way.
    while query.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(200));
    }
    if query.try_wait().unwrap().is_none() {
        query.kill().unwrap();
        let _ = query.wait();
        panic!(
            "the query did not end within 180 s of losing an executor; the scheduler's log:\n{}",
            std::fs::read_to_string(store.home.join("scheduler.log")).unwrap_or_default()
        );
    }
    let o = query.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        assert_eq!(
            stdout(&o),
            expected,
            "the answer after an executor was lost; the scheduler's warnings:\n{}",
            std::fs::read_to_string(store.home.join("scheduler.log")).unwrap_or_default()
        );
    } else {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    eprintln!(
        "executor lost mid-query: {}{} after {:.1} s",
        if o.status.success() {
            "answered right"
        } else {
            "failed with an error"
        },
        if err.contains("running it again") {
            " (run again after the cluster lost its work)"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    for line in err.lines().filter(|l| l.contains("running it again")) {
        eprintln!("{line}");
    }
    let log = std::fs::read_to_string(store.home.join("scheduler.log")).unwrap_or_default();
    for line in log
        .lines()
        .filter(|l| l.contains("cannot progress") || l.contains("slots back"))
    {
        eprintln!("{line}");
    }
    if !o.status.success() {
        eprintln!("{err}");
        for name in ["scheduler", "executor-1"] {
            let log = std::fs::read_to_string(store.home.join(format!("{name}.log")));
            let log = log.unwrap_or_default();
            let warned = log
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"));
            eprintln!("{name}: {}", warned.take(12).collect::<Vec<_>>().join("\n"));
        }
    }
    // The executor left runs what is asked next.
    let sql = &canonical[0];
    let args = ["sql", "--format", "csv", "-c", sql.as_str()];
    assert_eq!(
        on_cluster(&store, &cluster, &args),
        stdout(&store.ok(&args))
    );
}

#[test]
fn a_cluster_that_is_not_there_is_named_with_what_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok_on(&store, &["ingest", "-q", testdata().to_str().unwrap()]);
    let port = free_port();
    let o = run_on(
        &store,
        &[
            "sql",
            "--cluster",
            &format!("df://127.0.0.1:{port}"),
            "-c",
            "SELECT count(*) FROM events",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "cannot reach the cluster's scheduler at 127.0.0.1:{port}"
        )) && err.contains("trail cluster scheduler"),
        "{err}"
    );
    let o = run_on(
        &store,
        &["sql", "--cluster", "http://x:1", "-c", "SELECT 1"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a cluster address"),
        "{}",
        stderr(&o)
    );
}
