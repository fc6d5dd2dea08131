#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `trail ingest` driven as a user would: a real process, its exit code, stdout and stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

mod common;
use common::*;

fn info(store: &Path) -> serde_json::Value {
    let o = run(&["info", "--json", "--store", store.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    json(&o)
}

#[test]
fn testdata_ingests_and_second_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let td = testdata();
    let o = run(&["ingest", "--store", s, td.to_str().unwrap()]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("14 ingested, 0 duplicates skipped, 0 quarantined"),
        "{out}"
    );
    assert!(
        out.contains("1 digest files, 1 insight files, 0 insight events, 0 other files"),
        "{out}"
    );
    // Partitioned by the event's own date: the late cn-shanghai event lands on 2020-12-17.
    assert!(
        store
            .join("events/region=cn-shanghai/eventDate=2020-12-17")
            .is_dir()
    );
    assert!(
        store
            .join("events/region=cn-shanghai/eventDate=2020-12-18")
            .is_dir()
    );
    assert!(
        store
            .join("events/region=us-east-1/eventDate=2023-07-10")
            .is_dir()
    );
    assert_eq!(info(&store)["events"], 14);
    let generation = info(&store)["generation"].clone();

    let o = run(&["ingest", "--store", s, "--json", td.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(json(&o)["files_read"], 0, "the ledger: nothing changed");
    let o = run(&[
        "ingest",
        "--store",
        s,
        "--json",
        "--reread",
        td.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let j = json(&o);
    assert_eq!(j["ingested"], 0);
    assert_eq!(j["duplicates"], 14);
    assert_eq!(j["files_written"], 0);
    assert_eq!(
        info(&store)["generation"],
        generation,
        "an identical run commits nothing"
    );

    let o = run(&["ingest", "--store", s, td.to_str().unwrap()]);
    assert!(stdout(&o).contains("nothing new"), "{}", stdout(&o));
}

#[test]
fn sql_reads_the_store_with_json_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let o = run(&["ingest", "--store", s, testdata().to_str().unwrap()]);
    assert!(o.status.success());
    let o = run(&[
        "sql",
        "--store",
        s,
        "-c",
        "SELECT \"eventName\", \"userIdentity\".\"userName\" AS u FROM events WHERE \"acsRegion\" = 'us-east-1' AND \"eventRW\" = 'Write' ORDER BY \"eventTime\"",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for name in ["ConsoleLogin", "CreateAccessKey", "StopLogging"] {
        assert!(out.contains(name), "{out}");
    }
    assert!(
        !out.contains("ListUsers"),
        "readOnly=true maps to Read: {out}"
    );
}

#[test]
fn stdin_and_gzip_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let body = (0..50)
        .map(|i| format!(r#"{{"eventId":"s{i}","eventTime":"2020-12-17T06:55:{:02}Z","acsRegion":"cn-hangzhou"}}"#, i % 60))
        .collect::<Vec<_>>()
        .join("\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    let mut child = trail()
        .args(["ingest", "--store", store.to_str().unwrap(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&gz.finish().unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("50 ingested"), "{}", stdout(&o));
}

#[test]
fn bad_records_exit_3_and_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mixed.json");
    std::fs::write(
        &f,
        "{\"eventId\":\"a\",\"eventTime\":\"2020-12-17T06:55:12Z\"}\n{\"eventId\":\"b\"}\n{\"eventId\":\"\u{1b}[31mc\",\"eventTime\":\"nope\"}\n",
    )
    .unwrap();
    let o = run(&[
        "ingest",
        "--store",
        dir.path().join("s").to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("mixed.json:2: missing eventTime"), "{err}");
    assert!(err.contains("mixed.json:3"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no raw escape reaches the terminal: {err:?}"
    );
    assert!(
        stdout(&o).contains("1 ingested, 0 duplicates skipped, 2 quarantined"),
        "{}",
        stdout(&o)
    );
    assert!(err.contains("_trail/quarantine/"), "{err}");
}

#[test]
fn missing_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "ingest",
        "--store",
        dir.path().join("s").to_str().unwrap(),
        "/no/such/path",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read /no/such/path"),
        "{}",
        stderr(&o)
    );
    let o = run(&["info", "--store", dir.path().join("none").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("run `trail ingest"), "{}", stderr(&o));
}

#[test]
fn second_writer_fails_fast_or_waits() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    // Writer A holds the lock while it waits for standard input.
    let mut a = trail()
        .args(["ingest", "--store", s, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = store.join("_trail/LOCK");
    let pid = format!("pid {}", a.id());
    let t0 = Instant::now();
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&pid)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "writer A never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = run(&[
        "ingest",
        "--store",
        s,
        "--no-wait",
        testdata().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("locked by another trail process"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(&pid), "{}", stderr(&o));

    // Writer B waits, and goes on once A is done.
    let b = trail()
        .args(["ingest", "--store", s, testdata().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a.stdin
        .take()
        .unwrap()
        .write_all(br#"{"eventId":"from-a","eventTime":"2020-12-17T06:55:12Z"}"#)
        .unwrap();
    let oa = a.wait_with_output().unwrap();
    assert!(oa.status.success(), "{}", stderr(&oa));
    let ob = b.wait_with_output().unwrap();
    assert!(ob.status.success(), "{}", stderr(&ob));
    assert!(stderr(&ob).contains("waiting"), "{}", stderr(&ob));
    assert_eq!(info(&store)["events"], 15);
}

/// Ingest the same delivery tree while killing the process with SIGKILL at random moments; the
/// store must read cleanly after every kill, and the final run must hold exactly the input.
#[test]
fn kill_9_at_random_points_never_corrupts_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let cfg = trail_gen::GenConfig {
        events: 20_000,
        days: 2,
        regions: 3,
        file_minutes: 2,
        ..Default::default()
    };
    let stats = trail_gen::generate(&cfg, &input).unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    // --reread: every run does the whole work (the ledger would skip what a run committed).
    let args = [
        "ingest",
        "--store",
        s,
        "--quiet",
        "--reread",
        input.to_str().unwrap(),
    ];

    // How long a full run takes here, to spread the kills over it.
    let scratch = dir.path().join("scratch");
    let t0 = Instant::now();
    let o = run(&[
        "ingest",
        "--store",
        scratch.to_str().unwrap(),
        "--quiet",
        input.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let full = t0.elapsed();
    std::fs::remove_dir_all(&scratch).unwrap();

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut killed = 0;
    for round in 0..14 {
        // Some rounds run with tiny memory budgets and compaction, to cut through many flushes
        // and commits.
        let mut cmd = trail();
        cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
        if round % 2 == 1 {
            cmd.args(["--memory-budget-mb", "16"]);
        }
        let mut child = cmd.spawn().unwrap();
        let delay = rng.random_range(0..full.as_millis().max(50) as u64 * 12 / 10);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        check_store_reads_cleanly(&store);
        // Sometimes compaction is the thing interrupted.
        if round % 3 == 2 {
            let mut c = trail()
                .args(["compact", "--store", s])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
            let _ = c.kill();
            c.wait().unwrap();
            check_store_reads_cleanly(&store);
        }
    }
    assert!(killed >= 5, "only {killed} runs were killed mid-way");
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    check_store_reads_cleanly(&store);
    let ids = event_ids(&store, true);
    assert_eq!(ids.len() as u64, stats.events);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len() as u64, stats.events, "no event twice");
    // Readers that glob the directory agree with the manifest.
    assert_eq!(event_ids(&store, false).len() as u64, stats.events);
    let o = run(&["ingest", "--store", s, "--json", input.to_str().unwrap()]);
    assert_eq!(json(&o)["ingested"], 0);
}

/// Every file the manifest names, and every parquet file under events/, is a complete file.
fn check_store_reads_cleanly(store: &Path) {
    let Ok(st) = trail_store::Store::open(store) else {
        return; // killed before the store existed
    };
    let snap = st.snapshot().expect("manifest reads");
    for (entry, path) in &snap.files {
        let rows = parquet_rows(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(rows, entry.rows, "{}", path.display());
    }
    for f in glob_parquet(&store.join("events")) {
        parquet_rows(&f).unwrap_or_else(|e| panic!("partial file visible: {}: {e}", f.display()));
    }
}

fn parquet_rows(p: &Path) -> Result<u64, String> {
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let r = parquet::file::reader::SerializedFileReader::new(f).map_err(|e| e.to_string())?;
    use parquet::file::reader::FileReader;
    Ok(r.metadata().file_metadata().num_rows() as u64)
}

fn glob_parquet(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(glob_parquet(&p));
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out
}

fn event_ids(store: &Path, via_manifest: bool) -> Vec<String> {
    let files: Vec<PathBuf> = if via_manifest {
        let snap = trail_store::Store::open(store).unwrap().snapshot().unwrap();
        snap.files.into_iter().map(|(_, p)| p).collect()
    } else {
        glob_parquet(&store.join("events"))
    };
    let mut ids = vec![];
    for f in files {
        for b in trail_ingest::files::open_columns(&f, &["eventId"]).unwrap() {
            let b = b.unwrap();
            let a = arrow_string(&b);
            ids.extend(a);
        }
    }
    ids
}

fn arrow_string(b: &datafusion::arrow::array::RecordBatch) -> Vec<String> {
    use datafusion::arrow::array::{Array, AsArray};
    let a = b.column(0).as_string::<i32>();
    (0..a.len()).map(|i| a.value(i).to_owned()).collect()
}

#[test]
fn many_small_ingests_are_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    // Twelve deliveries of 5 minutes each into one partition, ingested one by one.
    for k in 0..12 {
        let f = dir.path().join(format!("d{k}.json"));
        let body: String = (0..20)
            .map(|i| format!("{{\"eventId\":\"k{k}-{i}\",\"eventName\":\"Op{}\",\"eventTime\":\"2020-12-17T{:02}:{:02}:00Z\",\"acsRegion\":\"cn-hangzhou\"}}\n", i % 3, k, i))
            .collect();
        std::fs::write(&f, body).unwrap();
        let o = run(&["ingest", "--store", s, "--quiet", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let files = glob_parquet(&store.join("events"));
    assert!(
        files.len() < 8,
        "{} files after 12 small ingests",
        files.len()
    );
    assert_eq!(info(&store)["events"], 240);
    let ids = event_ids(&store, true);
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        240
    );
    // And `trail compact` folds the rest into one file.
    let o = run(&["compact", "--store", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(glob_parquet(&store.join("events")).len(), 1);
    assert_eq!(info(&store)["events"], 240);
    // Rows stay in the store's order (eventName, then eventTime) within the merged file, and
    // the file says so.
    let o = run(&[
        "sql",
        "--store",
        s,
        "-c",
        "SELECT count(*) AS n FROM (SELECT eventName AS n, eventTime AS t, \
         lag(eventName) OVER () AS pn, lag(eventTime) OVER () AS pt FROM events) \
         WHERE n < pn OR (n = pn AND t < pt)",
    ]);
    assert!(stdout(&o).contains("│ 0 │"), "{}", stdout(&o));
    let file = &glob_parquet(&store.join("events"))[0];
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(
        std::fs::File::open(file).unwrap(),
    )
    .unwrap();
    use parquet::file::reader::FileReader;
    let declared = reader.metadata().row_group(0).sorting_columns().cloned();
    assert!(trail_store::order::is_sorted_as_stored(declared.as_deref()));
}

#[test]
fn public_cloudtrail_data() {
    let Some(public) = public_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let ct = public.join("invictus-aws-dataset/CloudTrail");
    let o = run(&["ingest", "--store", s, "--json", ct.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["ingested"], 2900, "{j}");
    assert_eq!(j["quarantined"], 0, "{j}");
    let o = run(&[
        "ingest",
        "--store",
        s,
        "--json",
        "--reread",
        ct.to_str().unwrap(),
    ]);
    assert_eq!(json(&o)["duplicates"], 2900);
    let o = run(&[
        "sql",
        "--store",
        s,
        "-c",
        "SELECT count(DISTINCT \"eventId\") AS ids, count(*) FILTER (WHERE \"errorCode\" IS NOT NULL) AS errs, count(DISTINCT \"eventName\") AS names FROM events",
    ]);
    let out = stdout(&o);
    assert!(out.contains("│ 2900 │  300 │   260 │"), "{out}");

    // The Logstash NDJSON has no eventTime: each record gets a clear answer.
    let otrf =
        public.join("otrf-security-datasets-aws/ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    let o = run(&["ingest", "--store", s, "--json", otrf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    let j = json(&o);
    assert_eq!(j["quarantined"], 103, "{j}");
    assert!(
        j["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("--event-time-fallback")
    );
    let o = run(&[
        "ingest",
        "--store",
        s,
        "--json",
        "--event-time-fallback",
        otrf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["ingested"], 103);
}

/// DuckDB and pyarrow read the store directory and count the same rows.
#[test]
fn duckdb_and_pyarrow_read_the_store() {
    if !require(
        "python3 with duckdb and pyarrow",
        python_has("duckdb, pyarrow"),
        "pip install duckdb pyarrow",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let mut inputs = vec![testdata()];
    if let Some(p) = public_data() {
        inputs.push(p.join("invictus-aws-dataset/CloudTrail"));
    }
    let mut args = vec!["ingest", "--store", s, "--json"];
    let strs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(strs.iter().map(String::as_str));
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let n = json(&o)["ingested"].as_u64().unwrap();
    let script = r#"
import sys, duckdb, pyarrow.dataset as ds
root = sys.argv[1]
con = duckdb.connect()
d = con.execute(f"SELECT count(*), count(DISTINCT eventId), min(eventDate)::VARCHAR FROM read_parquet('{root}/events/**/*.parquet', hive_partitioning = true)").fetchall()[0]
t = ds.dataset(root + "/events", format="parquet", partitioning="hive")
u = con.execute(f"SELECT count(*) FROM read_parquet('{root}/events/**/*.parquet') WHERE userIdentity.userName = 'root'").fetchall()[0]
print(d[0], d[1], d[2], t.count_rows(), u[0])
"#;
    let o = Command::new("python3")
        .args(["-c", script, s])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let got = stdout(&o);
    let parts: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(parts[0], n.to_string(), "duckdb count: {got}");
    assert_eq!(parts[1], n.to_string(), "duckdb distinct ids: {got}");
    assert_eq!(parts[2], "2020-12-17", "{got}");
    assert_eq!(parts[3], n.to_string(), "pyarrow count: {got}");
    assert!(parts[4].parse::<u64>().unwrap() >= 1, "{got}");
}
