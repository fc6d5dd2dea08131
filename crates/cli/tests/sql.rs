#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! SQL over a store: field names in any case, partition and bloom-filter pruning proven with
//! `EXPLAIN ANALYZE`, JSON and IP functions, system tables, the memory limit, every saved
//! analysis on an ActionTrail and a CloudTrail fixture (snapshots), and `lookup` paging.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use trail_query::{Engine, EngineOptions};

mod common;
use common::repo;

fn ingest(store: &Path, paths: &[PathBuf], compact: bool) {
    let mut opts = trail_ingest::IngestOptions {
        threads: 2,
        ..Default::default()
    };
    if !compact {
        opts.compact = None;
    }
    trail_ingest::ingest(
        store,
        paths,
        &opts,
        &trail_ingest::Progress::default(),
        |_| {},
    )
    .unwrap();
}

/// A store of its own (for tests that change it): the ActionTrail fixture, ingested into
/// `<dir>/store`.
fn actiontrail_store(compact: bool) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    ingest(
        &store,
        &[repo().join("testdata/security/actiontrail.ndjson")],
        compact,
    );
    (dir, store)
}

/// Stores made once per test process: (ActionTrail, CloudTrail).
fn fixtures() -> &'static (tempfile::TempDir, tempfile::TempDir) {
    static F: OnceLock<(tempfile::TempDir, tempfile::TempDir)> = OnceLock::new();
    F.get_or_init(|| {
        let at = tempfile::tempdir().unwrap();
        let ct = tempfile::tempdir().unwrap();
        // Both stores also hold the same data-audit logs (the analyses that join them with
        // events must find the same in either dialect).
        let audit = repo().join("testdata/security/audit_logs.ndjson");
        ingest(
            at.path(),
            &[
                repo().join("testdata/security/actiontrail.ndjson"),
                audit.clone(),
            ],
            true,
        );
        ingest(
            ct.path(),
            &[repo().join("testdata/security/cloudtrail.json"), audit],
            true,
        );
        // The insight analyses need insights: judge both stores' history for unusual IPs.
        for store in [at.path(), ct.path()] {
            rt().block_on(async {
                let engine = Engine::open(store, EngineOptions::default()).await.unwrap();
                let st = trail_store::Store::open(store).unwrap();
                let report = trail_insight::ip::run(
                    &engine,
                    &st,
                    &trail_insight::ip::IpOptions::default(),
                    &trail_insight::RunOptions::default(),
                )
                .await
                .unwrap();
                assert!(!report.insights.is_empty());
                trail_insight::write_insights(&engine, &st, &report.insights)
                    .await
                    .unwrap();
                // ...and keep what the analyses marked as detections find.
                let analyses: Vec<trail_detect::job::AnalysisDetection> =
                    trail_query::saved::Library::load(None)
                        .unwrap()
                        .iter()
                        .filter_map(|q| {
                            Some(trail_detect::job::AnalysisDetection {
                                level: trail_detect::Level::parse(q.detection.as_deref()?)?,
                                query: q.clone(),
                            })
                        })
                        .collect();
                let engine = Engine::open(store, EngineOptions::default()).await.unwrap();
                let found = trail_detect::job::run(
                    &engine,
                    &st,
                    &[],
                    &analyses,
                    &trail_detect::job::DetectOptions::default(),
                )
                .await
                .unwrap();
                assert!(!found.findings.is_empty());
            });
        }
        (at, ct)
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn query(store: &Path, sql: &str) -> Vec<RecordBatch> {
    rt().block_on(async {
        let e = Engine::open(store, EngineOptions::default()).await.unwrap();
        e.collect(sql)
            .await
            .unwrap_or_else(|err| panic!("{sql}\n{err}"))
    })
}

fn text(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).unwrap().to_string()
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn scalar(store: &Path, sql: &str) -> String {
    let b = query(store, sql);
    let t = text(&b);
    t.lines()
        .nth(3)
        .unwrap_or("")
        .trim_matches(['|', ' '])
        .to_owned()
}

#[test]
fn field_names_as_users_write_them() {
    let (at, _) = fixtures();
    let sql = "SELECT eventName, userIdentity.userName, sourceIpAddress FROM events \
               WHERE acsRegion = 'cn-hangzhou' AND eventTime >= TIMESTAMP '2024-05-02' \
               AND eventName = 'ListBuckets' ORDER BY eventTime";
    let expected = text(&query(at.path(), sql));
    assert!(expected.contains("| ListBuckets | alice "), "{expected}");
    for variant in [
        sql.replace("eventName", "eventname"),
        sql.replace("eventName", "EVENTNAME")
            .replace("userIdentity.userName", "USERIDENTITY.USERNAME"),
        sql.replace("sourceIpAddress", "SourceIPAddress"),
    ] {
        assert_eq!(text(&query(at.path(), &variant)), expected, "{variant}");
    }
    // eventTime is a UTC timestamp; the partition columns are typed.
    let t = text(&query(
        at.path(),
        "SELECT arrow_typeof(eventTime) t, arrow_typeof(eventDate) d, arrow_typeof(region) r \
         FROM events LIMIT 1",
    ));
    assert!(
        t.contains("Timestamp(µs, \"UTC\")") || t.contains("Timestamp(Microsecond, Some(\"UTC\"))"),
        "{t}"
    );
    assert!(t.contains("Date32"), "{t}");
}

fn explain_analyze(store: &Path, sql: &str) -> String {
    let b = query(store, &format!("EXPLAIN ANALYZE {sql}"));
    text(&b)
}

#[test]
fn a_day_and_a_region_read_only_that_partition() {
    let (at, _) = fixtures();
    let all_files: u64 = scalar(at.path(), "SELECT count(*) FROM system.files")
        .parse()
        .unwrap();
    assert!(all_files > 20, "fixture spans many partitions: {all_files}");
    let sql = "SELECT count(*) FROM events WHERE acsRegion = 'cn-hangzhou' \
               AND eventTime >= TIMESTAMP '2024-05-01 00:00:00' AND eventTime < TIMESTAMP '2024-05-02 00:00:00'";
    let plan = explain_analyze(at.path(), sql);
    // The scan lists exactly the one partition's file(s).
    let scanned: Vec<&str> = plan
        .split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter(|w| w.ends_with(".parquet"))
        .collect();
    assert!(!scanned.is_empty(), "{plan}");
    for f in &scanned {
        assert!(
            f.contains("region=cn-hangzhou/eventDate=2024-05-01/"),
            "read a file outside the partition: {f}\n{plan}"
        );
    }
    let expected: u64 = scalar(
        at.path(),
        "SELECT files FROM system.partitions WHERE region = 'cn-hangzhou' AND eventDate = DATE '2024-05-01'",
    )
    .parse()
    .unwrap();
    assert_eq!(scanned.len() as u64, expected, "{plan}");
    // Same answer as without the derived partition filters.
    assert_eq!(
        scalar(at.path(), sql),
        scalar(
            at.path(),
            "SELECT count(*) FROM events WHERE acsRegion || '' = 'cn-hangzhou' \
             AND CAST(eventTime AS VARCHAR) >= '2024-05-01' AND CAST(eventTime AS VARCHAR) < '2024-05-02'"
        )
    );
}

#[test]
fn equality_lookups_skip_row_groups_by_bloom_filter() {
    // One file whose statistics admit the values looked up below (each lies between the
    // column's min and max) but which holds none of them: only the bloom filters can skip it.
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    let line = |i: u32| {
        format!(
            r#"{{"eventId":"a-{i:02}","eventTime":"2024-05-01T10:{i:02}:00Z","acsRegion":"cn-hangzhou","eventName":"DescribeInstances","sourceIpAddress":"198.51.100.{}","userIdentity":{{"type":"ram-user","userName":"u{i:02}","accessKeyId":"LTAI{i:02}"}}}}"#,
            if i.is_multiple_of(2) { 1 } else { 9 }
        )
    };
    std::fs::write(&a, (0..50).map(line).collect::<Vec<_>>().join("\n")).unwrap();
    let store = dir.path().join("store");
    ingest(&store, &[a], false);
    assert_eq!(scalar(&store, "SELECT count(*) FROM system.files"), "1");
    // The file's summary already says none of these values is there (the struct fields too):
    // the file is not opened at all.
    for filter in [
        "eventId = 'a-07x'",
        "sourceIpAddress = '198.51.100.5'",
        "userIdentity.userName = 'u07x'",
        "userIdentity.accessKeyId = 'LTAI07x'",
    ] {
        let plan = explain_analyze(
            &store,
            &format!("SELECT eventName FROM events WHERE {filter}"),
        );
        assert_eq!(files_opened(&plan), 0, "{filter}\n{plan}");
        assert!(scanned_files(&plan).is_empty(), "{filter}\n{plan}");
    }
    // Without summaries (a store written before them), the row groups' own bloom filters do.
    strip_summaries(&store);
    for (filter, inside) in [
        ("eventId = 'a-07x'", ("a-00", "a-49")),
        (
            "sourceIpAddress = '198.51.100.5'",
            ("198.51.100.1", "198.51.100.9"),
        ),
    ] {
        let value = filter.split('\'').nth(1).unwrap();
        assert!(
            inside.0 < value && value < inside.1,
            "{value} is inside {inside:?}"
        );
        let plan = explain_analyze(
            &store,
            &format!("SELECT eventName FROM events WHERE {filter}"),
        );
        assert_eq!(
            pruned(&plan, "row_groups_pruned_statistics"),
            0,
            "statistics must not decide this case:\n{plan}"
        );
        assert_eq!(
            pruned(&plan, "row_groups_pruned_bloom_filter"),
            1,
            "the bloom filter did not skip the row group for {filter}:\n{plan}"
        );
        assert_eq!(
            scalar(
                &store,
                &format!("SELECT count(*) FROM events WHERE {filter}")
            ),
            "0"
        );
    }
    // Fields inside `userIdentity` carry bloom filters too (other engines may use them), but
    // DataFusion 55 prunes neither by bloom filter nor by statistics through a struct field:
    // such a lookup reads the row group. (Pinned here so the README says what is true.)
    let plan = explain_analyze(
        &store,
        "SELECT eventName FROM events WHERE userIdentity.userName = 'u07x'",
    );
    assert_eq!(pruned(&plan, "row_groups_pruned_bloom_filter"), 0, "{plan}");
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM events WHERE userIdentity.userName = 'u07x'"
        ),
        "0"
    );
    // A value that is there: the bloom filter keeps the row group, and the rows are found.
    let plan = explain_analyze(
        &store,
        "SELECT eventName FROM events WHERE sourceIpAddress = '198.51.100.9'",
    );
    assert_eq!(pruned(&plan, "row_groups_pruned_bloom_filter"), 0, "{plan}");
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM events WHERE sourceIpAddress = '198.51.100.9'"
        ),
        "25"
    );
}

/// Row groups a pruning metric skipped: DataFusion prints `name=N total → M matched`.
fn pruned(plan: &str, name: &str) -> u64 {
    plan.match_indices(&format!("{name}="))
        .map(|(i, m)| {
            let rest = &plan[i + m.len()..];
            let num = |s: &str| -> u64 {
                s.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            };
            let total = num(rest);
            match rest.split_once("→ ") {
                Some((head, tail)) if !head.contains(',') && !head.contains('\n') => {
                    total - num(tail.trim_start())
                }
                _ => total,
            }
        })
        .sum()
}

#[test]
fn ip_function_examples_hold() {
    let (at, _) = fixtures();
    for (expr, want) in trail_query::ip::EXAMPLES {
        let got = scalar(at.path(), &format!("SELECT CAST({expr} AS VARCHAR) AS v"));
        let got = if got.is_empty() {
            "NULL".to_owned()
        } else {
            got
        };
        assert_eq!(&got, want, "{expr}");
    }
    // On real columns: the public IPs of the fixture, and the private CI runner.
    let t = text(&query(
        at.path(),
        "SELECT DISTINCT sourceIpAddress FROM events WHERE is_private_ip(sourceIpAddress) ORDER BY 1",
    ));
    assert!(t.contains("10.0.8.15"), "{t}");
    assert_eq!(
        scalar(
            at.path(),
            "SELECT count(DISTINCT ip_network(sourceIpAddress, 24)) FROM events \
             WHERE ip_in_cidr(sourceIpAddress, '192.0.2.0/24')"
        ),
        "1"
    );
}

#[test]
fn json_functions_reach_into_request_parameters() {
    let (at, ct) = fixtures();
    assert_eq!(
        scalar(
            at.path(),
            "SELECT json_get_str(requestParameters, 'SourceCidrIp') FROM events \
             WHERE eventName = 'AuthorizeSecurityGroup'"
        ),
        "0.0.0.0/0"
    );
    assert_eq!(
        scalar(
            ct.path(),
            "SELECT json_get_str(requestParameters, 'ipPermissions', 'items', 0, 'ipRanges', 'items', 0, 'cidrIp') \
             FROM events WHERE eventName = 'AuthorizeSecurityGroupIngress'"
        ),
        "0.0.0.0/0"
    );
    assert_eq!(
        scalar(
            at.path(),
            "SELECT requestParameters->>'PortRange' FROM events WHERE eventName = 'AuthorizeSecurityGroup'"
        ),
        "22/22"
    );
}

#[test]
fn system_tables_describe_the_store() {
    let (at, _) = fixtures();
    let events = scalar(at.path(), "SELECT count(*) FROM events");
    assert_eq!(events, "303");
    assert_eq!(scalar(at.path(), "SELECT rows FROM system.store"), events);
    assert_eq!(
        scalar(at.path(), "SELECT sum(rows) FROM system.partitions"),
        events
    );
    assert_eq!(
        scalar(at.path(), "SELECT sum(rows) FROM system.files"),
        events
    );
    assert_eq!(
        scalar(
            at.path(),
            "SELECT count(*) FROM system.partitions p JOIN \
             (SELECT region, eventDate, count(*) n FROM events GROUP BY 1, 2) e \
             ON p.region = e.region AND p.eventDate = e.eventDate AND p.rows = e.n"
        ),
        scalar(at.path(), "SELECT count(*) FROM system.partitions")
    );
    // The insights table exists before any insight run, empty, with the events' columns.
    let fresh = tempfile::tempdir().unwrap();
    ingest(
        fresh.path(),
        &[repo().join("testdata/security/cloudtrail.json")],
        true,
    );
    assert_eq!(scalar(fresh.path(), "SELECT count(*) FROM insights"), "0");
    assert_eq!(
        scalar(
            fresh.path(),
            "SELECT count(eventName) FROM insights WHERE userIdentity.userName = 'x'"
        ),
        "0"
    );
    // After a run: start/end pairs, with the identity's fields.
    assert_eq!(
        scalar(
            at.path(),
            "SELECT count(*) = 2 * count(DISTINCT sharedEventId) FROM insights"
        ),
        "true"
    );
    assert_eq!(
        scalar(
            at.path(),
            "SELECT count(*) FROM insights WHERE userIdentity.userName = 'alice' \
             AND sourceIpAddress = '203.0.113.66'"
        ),
        "2"
    );
}

#[test]
fn memory_limit_gives_an_actionable_error() {
    let (at, _) = fixtures();
    let err = rt().block_on(async {
        let e = Engine::open(
            at.path(),
            EngineOptions {
                memory_limit: Some(64 * 1024),
                threads: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        e.collect("SELECT array_agg(raw ORDER BY raw) FROM events GROUP BY eventName")
            .await
            .map(|_| ())
            .unwrap_err()
    });
    let msg = err.to_string();
    assert!(
        msg.contains("more memory than the limit of 0 MiB")
            || msg.contains("more memory than the limit"),
        "{msg}"
    );
    assert!(msg.contains("--memory-limit"), "{msg}");
    // Within a modest limit the same data sorts fine.
    let rows = rt().block_on(async {
        let e = Engine::open(
            at.path(),
            EngineOptions {
                memory_limit: Some(64 << 20),
                threads: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        e.collect("SELECT raw FROM events ORDER BY raw")
            .await
            .map(|b| rows(&b))
    });
    assert_eq!(rows.unwrap(), 303);
}

#[test]
fn every_saved_query_on_actiontrail_and_cloudtrail() {
    let (at, ct) = fixtures();
    let lib = trail_query::saved::Library::load(None).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/saved");
    settings.set_prepend_module_to_snapshot(false);
    let mut empty = Vec::new();
    for q in lib.iter() {
        let mut params = std::collections::BTreeMap::new();
        // Required parameters get a value that exists in the fixture.
        for p in &q.params {
            if p.default.is_none() {
                let v = match p.name.as_str() {
                    "ip" => "203.0.113.66",
                    "user" => "eve",
                    "day" => "2024-05-01",
                    other => panic!("{}: give the test a value for {other}", q.name),
                };
                params.insert(p.name.clone(), v.to_owned());
            }
        }
        let sql = q.bind(&params).unwrap();
        let a = query(at.path(), &sql);
        let c = query(ct.path(), &sql);
        assert_eq!(
            rows(&a),
            rows(&c),
            "{}: the same scenario gives a different number of rows in the two dialects\n{}\n{}",
            q.name,
            text(&a),
            text(&c)
        );
        if rows(&a) == 0 {
            empty.push(q.name.clone());
        }
        settings.bind(|| {
            insta::assert_snapshot!(format!("{}__actiontrail", q.name), text(&a));
            insta::assert_snapshot!(format!("{}__cloudtrail", q.name), text(&c));
        });
    }
    assert!(
        empty.is_empty(),
        "saved queries that find nothing in the fixture: {empty:?}"
    );
}

#[test]
fn lookup_pages_stay_valid_while_the_store_grows() {
    use trail_query::lookup::{Direction, LookupRequest, lookup};
    let (dir, store) = actiontrail_store(true);
    let all_eve: Vec<String> = {
        let b = query(
            &store,
            "SELECT eventId FROM events WHERE userIdentity.userName = 'eve' AND eventRW = 'Read' \
             ORDER BY eventTime DESC, eventId DESC",
        );
        text(&b)
            .lines()
            .skip(3)
            .filter(|l| l.starts_with('|'))
            .map(|l| l.trim_matches(['|', ' ']).to_owned())
            .collect()
    };
    assert!(all_eve.len() > 20);
    let rt = rt();
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = rt.block_on(async {
            let e = Engine::open(&store, EngineOptions::default())
                .await
                .unwrap();
            let req = LookupRequest {
                attributes: vec![
                    ("User".into(), "eve".into()),
                    ("EventRW".into(), "Read".into()),
                ],
                max_results: 7,
                next_token: token.clone(),
                direction: Direction::Backward,
                ..Default::default()
            };
            lookup(&e, &req).await.unwrap()
        });
        for e in &page.events {
            seen.push(e.event_id.clone());
            // The record is kept as it was stored.
            let raw: serde_json::Value = serde_json::from_str(&e.raw).unwrap();
            assert_eq!(raw["eventId"], e.event_id.as_str());
        }
        pages += 1;
        if pages == 2 {
            // New events arrive between pages, newer and older than the cursor.
            let extra = dir.path().join("more.ndjson");
            std::fs::write(&extra, concat!(
                r#"{"eventId":"NEW-1","eventTime":"2024-06-01T00:00:00Z","acsRegion":"cn-hangzhou","eventName":"GetUser","eventRW":"Read","userIdentity":{"type":"ram-user","userName":"eve"}}"#, "\n",
            )).unwrap();
            ingest(&store, &[extra], true);
        }
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, all_eve, "paging skipped or repeated events");
    assert!(pages >= 4);
    // Attributes combine: different keys AND, same key OR.
    let n = rt.block_on(async {
        let e = Engine::open(&store, EngineOptions::default())
            .await
            .unwrap();
        let req = LookupRequest {
            attributes: vec![
                ("EventName".into(), "StopLogging".into()),
                ("EventName".into(), "DeleteTrail".into()),
                ("SourceIpAddress".into(), "198.51.100.13".into()),
            ],
            max_results: 50,
            ..Default::default()
        };
        lookup(&e, &req).await.unwrap().events.len()
    });
    assert_eq!(n, 2);
}

#[test]
fn an_open_session_sees_files_added_and_compacted_away() {
    let (dir, store) = actiontrail_store(false);
    let rt = rt();
    rt.block_on(async {
        let engine = Engine::open(&store, EngineOptions::default())
            .await
            .unwrap();
        let count = |sql: &'static str| {
            let engine = &engine;
            async move { text(&engine.collect(sql).await.unwrap()) }
        };
        let before = count("SELECT count(*) AS n FROM events").await;
        // More events arrive, in an existing partition, while the session is open; then
        // compaction replaces the files the session listed before.
        for i in 0..3 {
            let extra = dir.path().join(format!("more-{i}.ndjson"));
            std::fs::write(
                &extra,
                format!(
                    "{{\"eventId\":\"LATE-{i}\",\"eventTime\":\"2024-06-01T00:00:0{i}Z\",\
                     \"acsRegion\":\"cn-hangzhou\",\"eventName\":\"GetUser\",\
                     \"userIdentity\":{{\"type\":\"ram-user\",\"userName\":\"eve\"}}}}\n"
                ),
            )
            .unwrap();
            ingest(&store, &[extra], false);
        }
        let late = count("SELECT count(*) AS n FROM events WHERE eventId LIKE 'LATE-%'").await;
        assert!(late.contains("| 3 |"), "{late}");
        let summary = trail_ingest::compact_store(
            &store,
            &trail_ingest::CompactOptions {
                min_files: 2,
                ..Default::default()
            },
            true,
            |_| {},
        )
        .unwrap();
        assert!(summary.files_removed > 0);
        let after = count("SELECT count(*) AS n FROM events").await;
        let n = |t: &str| -> u64 {
            t.lines()
                .find_map(|l| l.trim_matches(['|', ' ']).parse().ok())
                .unwrap()
        };
        assert_eq!(n(&after), n(&before) + 3, "{before}\n{after}");
    });
}

#[test]
fn midnight_bounds_become_partition_filters_with_the_same_rows() {
    let (at, _) = fixtures();
    // WHERE counts (rewritten) against the same bound evaluated per row in the projection
    // (never rewritten), for bounds at and off midnight, in both directions.
    for bound in [
        "TIMESTAMP '2024-05-02'",
        "TIMESTAMP '2024-05-02 00:00:00' + INTERVAL '1 day'",
        "TIMESTAMP '2024-05-02 00:00:01'",
        "TIMESTAMP '2024-05-01 23:59:59.999999'",
        "'2024-04-20'",
        "DATE '2024-04-20'",
        "TIMESTAMP '2024-05-02T00:00:00+08:00'",
    ] {
        for op in [">=", "<", ">", "<="] {
            let filtered = scalar(
                at.path(),
                &format!("SELECT count(*) FROM events WHERE eventTime {op} {bound}"),
            );
            let flipped_op = match op {
                ">=" => "<=",
                "<" => ">",
                ">" => "<",
                _ => ">=",
            };
            let flipped = scalar(
                at.path(),
                &format!("SELECT count(*) FROM events WHERE {bound} {flipped_op} eventTime"),
            );
            let per_row = scalar(
                at.path(),
                &format!(
                    "SELECT sum(CASE WHEN eventTime {op} {bound} THEN 1 ELSE 0 END) FROM events"
                ),
            );
            assert_eq!(filtered, per_row, "eventTime {op} {bound}");
            assert_eq!(flipped, per_row, "{bound} {flipped_op} eventTime");
        }
    }
    // A day written as a midnight-to-midnight range reads only that day's files and evaluates
    // nothing on eventTime per row.
    let plan = text(&query(
        at.path(),
        "EXPLAIN SELECT count(*) FROM events WHERE eventTime >= TIMESTAMP '2024-05-02' \
         AND eventTime < TIMESTAMP '2024-05-02' + INTERVAL '1 day' AND errorCode IS NOT NULL",
    ));
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec"))
        .unwrap_or_default();
    assert!(!scan.contains("eventTime"), "{plan}");
    assert!(!plan.contains("FilterExec: eventTime"), "{plan}");
    let plan = text(&query(
        at.path(),
        "EXPLAIN SELECT count(*) FROM events WHERE eventTime >= TIMESTAMP '2024-05-02 06:00'",
    ));
    assert!(plan.contains("eventTime"), "an hour bound is kept: {plan}");
}

/// The scanned files of `SELECT userIdentity.userName FROM events`, split into those read with
/// the stored schema and those read from their own footers.
fn files_by_schema(store: &Path) -> (Vec<String>, Vec<String>) {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::datasource::physical_plan::FileScanConfig;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::physical_plan::ExecutionPlan;
    use std::sync::Arc;

    rt().block_on(async {
        let engine = Engine::open(store, EngineOptions::default()).await.unwrap();
        let plan = engine
            .sql("SELECT userIdentity.userName FROM events")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut hinted = Vec::new();
        let mut unhinted = Vec::new();
        let mut stack: Vec<Arc<dyn ExecutionPlan>> = vec![plan];
        while let Some(node) = stack.pop() {
            stack.extend(node.children().into_iter().cloned());
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                continue;
            };
            let config = exec.data_source().downcast_ref::<FileScanConfig>().unwrap();
            for file in config.file_groups.iter().flat_map(|g| g.iter()) {
                let name = file.object_meta.location.to_string();
                match &file.arrow_schema {
                    Some(s) => {
                        // The nested strings come out as views, as the table declares them.
                        let user = s.field_with_name("userIdentity").unwrap();
                        let DataType::Struct(fields) = user.data_type() else {
                            panic!("userIdentity is {:?}", user.data_type());
                        };
                        assert!(
                            fields.iter().all(|f| f.data_type() != &DataType::Utf8),
                            "{fields:?}"
                        );
                        hinted.push(name)
                    }
                    None => unhinted.push(name),
                }
            }
        }
        (hinted, unhinted)
    })
}

/// The events table is the manifest's files, read with the stored schema (no `ARROW:schema`
/// decoding, nested strings straight into views). A Parquet file the manifest does not list is
/// not part of the table, unless the manifest holds a commit still being applied: then the
/// directories are listed, and such a file is read from its own footer, even when its columns
/// differ.
#[test]
fn the_table_is_the_manifests_files_with_the_stored_schema() {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    let (_dir, store) = actiontrail_store(false);
    let committed = trail_store::Store::open(&store)
        .unwrap()
        .manifest()
        .unwrap()
        .files
        .len();
    let events_before = scalar(&store, "SELECT count(*) FROM events");
    // A file written by another tool, with two of the columns, in a partition directory.
    let part = store.join("events/region=cn-hangzhou/eventDate=2024-05-01");
    std::fs::create_dir_all(&part).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("eventId", DataType::Utf8, true),
        Field::new("eventName", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["FOREIGN-1"])),
            Arc::new(StringArray::from(vec!["GetUser"])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(part.join("foreign.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    // Not in the manifest: not in the table.
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM events WHERE eventId = 'FOREIGN-1'"
        ),
        "0"
    );
    assert_eq!(scalar(&store, "SELECT count(*) FROM events"), events_before);
    let (hinted, unhinted) = files_by_schema(&store);
    assert_eq!(hinted.len(), committed, "{hinted:?}");
    assert!(unhinted.is_empty(), "{unhinted:?}");

    // A commit interrupted before its deletions were done: the directories are listed.
    let path = store.join("_trail/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["pending"] = serde_json::json!({"renames": [], "deletes": ["events/gone.parquet"]});
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let foreign = scalar(
        &store,
        "SELECT count(*) FROM events WHERE eventId = 'FOREIGN-1' AND userIdentity.userName IS NULL",
    );
    assert_eq!(foreign, "1");
    let users = query(
        &store,
        "SELECT userIdentity.userName AS u, count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
    );
    assert!(rows(&users) > 1, "{}", text(&users));
    let (hinted, unhinted) = files_by_schema(&store);
    assert_eq!(hinted.len(), committed, "{hinted:?}");
    assert_eq!(unhinted.len(), 1, "{unhinted:?}");
    assert!(unhinted[0].ends_with("foreign.parquet"), "{unhinted:?}");
}

/// `GROUP BY` one string column with `count(*)` runs through `ViewCountExec` (counted per view,
/// then per value) and gives exactly what DataFusion's own aggregation gives (`sum(1)` is not
/// rewritten): with NULL groups, nested fields, unique values, and more groups than a partition
/// holds before writing them out.
#[test]
fn grouped_counts_by_view_match_the_engines() {
    let (at, ct) = fixtures();
    for store in [at.path(), ct.path()] {
        let plan = text(&query(
            store,
            "EXPLAIN SELECT eventName, count(*) AS n FROM events GROUP BY eventName",
        ));
        assert!(plan.contains("ViewCountExec"), "{plan}");
        // EXPLAIN ANALYZE shows what it did.
        let analyzed = explain_analyze(
            store,
            "SELECT eventName, count(*) AS n FROM events GROUP BY eventName",
        );
        assert!(
            analyzed
                .lines()
                .any(|l| l.contains("ViewCountExec") && l.contains("output_rows=")),
            "{analyzed}"
        );
        for col in [
            "eventName",
            "errorCode",
            "userIdentity.userName",
            "sourceIpAddress",
            "eventId",
        ] {
            let ours = query(
                store,
                &format!(
                    "SELECT {col} AS k, count(*) AS n, count(1) AS m FROM events GROUP BY 1 \
                     ORDER BY 1 NULLS FIRST"
                ),
            );
            let theirs = query(
                store,
                &format!(
                    "SELECT {col} AS k, sum(1) AS n, sum(1) AS m FROM events GROUP BY 1 \
                     ORDER BY 1 NULLS FIRST"
                ),
            );
            assert_eq!(text(&ours), text(&theirs), "{col}");
            assert!(rows(&ours) > 0, "{col}");
        }
    }
    let many = "SELECT v, count(*) AS n FROM (SELECT arrow_cast(CAST(value % 400000 AS VARCHAR), \
                'Utf8View') AS v FROM generate_series(1, 1000000)) GROUP BY v";
    let plan = text(&query(at.path(), &format!("EXPLAIN {many}")));
    assert!(plan.contains("ViewCountExec"), "{plan}");
    let totals = text(&query(
        at.path(),
        &format!("SELECT count(*) AS g, sum(n) AS r, min(n) AS lo, max(n) AS hi FROM ({many})"),
    ));
    assert!(
        totals.contains("| 400000 | 1000000 | 2  | 3  |"),
        "{totals}"
    );
}

/// The `output_batches` metric of the first operator named `op` in an `EXPLAIN ANALYZE` text.
fn output_batches(plan: &str, op: &str) -> u64 {
    let line = plan
        .lines()
        .find(|l| l.contains(&format!("{op}:")))
        .unwrap_or_else(|| panic!("no {op} in {plan}"));
    let at = line.find("output_batches=").expect(line) + "output_batches=".len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect(line)
}

/// A full sort over a filtered scan sorts coalesced batches, not the scan's few-row batches
/// (each of which would keep its whole decoded pages alive until the sort ends); a sort with a
/// limit keeps only its top rows and is left alone. Both give the same rows.
#[test]
fn filtered_scans_are_coalesced_before_a_full_sort() {
    let (at, ct) = fixtures();
    for store in [at.path(), ct.path()] {
        let sql = "SELECT eventTime, eventName, sourceIpAddress FROM events \
                   WHERE errorCode IS NULL AND sourceIpAddress IS NOT NULL \
                   ORDER BY eventTime, eventName, sourceIpAddress";
        let plan = explain_analyze(store, sql);
        let sort = plan.find("SortExec:").expect(&plan);
        let coalesce = plan.find("CoalesceBatchesExec:").expect(&plan);
        let scan = plan.find("DataSourceExec:").expect(&plan);
        assert!(sort < coalesce && coalesce < scan, "{plan}");
        let (from_scan, into_sort) = (
            output_batches(&plan, "DataSourceExec"),
            output_batches(&plan, "CoalesceBatchesExec"),
        );
        assert!(from_scan > into_sort, "{from_scan} -> {into_sort}: {plan}");
        let top = text(&query(store, &format!("EXPLAIN {sql} LIMIT 100000")));
        assert!(!top.contains("CoalesceBatchesExec"), "{top}");
        let sorted = query(store, sql);
        assert!(rows(&sorted) > 10, "{}", text(&sorted));
        assert_eq!(
            text(&sorted),
            text(&query(store, &format!("{sql} LIMIT 100000")))
        );
    }
}

/// The event files a plan's scans list (the `.parquet` names in its text).
fn scanned_files(plan: &str) -> std::collections::BTreeSet<String> {
    plan.split(|c: char| c == '[' || c == ']' || c == ',' || c.is_whitespace())
        .filter(|w| w.ends_with(".parquet"))
        .map(|w| w.rsplit('/').next().unwrap_or(w).to_owned())
        .collect()
}

/// Make `store` look written before summaries: its manifest names none.
fn strip_summaries(store: &Path) {
    let manifest_path = store.join("_trail/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        f.as_object_mut().unwrap().remove("summary");
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// The files the plan's scans opened (their `files_opened` metrics).
fn files_opened(plan: &str) -> usize {
    plan.split("files_opened=")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum()
}

/// The names of the committed files that hold `value` in the string column at `path`, read
/// from the files themselves.
fn files_holding(store: &Path, path: &str, value: &str) -> std::collections::BTreeSet<String> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::parquet::arrow::ProjectionMask;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("_trail/manifest.json")).unwrap())
            .unwrap();
    let mut out = std::collections::BTreeSet::new();
    for f in manifest["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        let file = std::fs::File::open(store.join(rel)).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let descr = builder.metadata().file_metadata().schema_descr_ptr();
        let idx: Vec<usize> = (0..descr.num_columns())
            .filter(|&i| descr.column(i).path().string() == path)
            .collect();
        let reader = builder
            .with_projection(ProjectionMask::leaves(&descr, idx))
            .build()
            .unwrap();
        let leaf_values = |a: &dyn Array| {
            let s = a.as_string::<i32>();
            (0..s.len()).any(|i| s.is_valid(i) && s.value(i) == value)
        };
        for batch in reader {
            let batch = batch.unwrap();
            let mut column = batch.column(0).clone();
            if path.contains('.') {
                column = column.as_struct().column(0).clone();
            }
            if leaf_values(column.as_ref()) {
                out.insert(rel.rsplit('/').next().unwrap().to_owned());
            }
        }
    }
    out
}

/// A selective query on a many-file store opens only the files whose summaries admit the value,
/// a fresh session included; without summaries (a store written before them) it opens them
/// all, and the answers are the same. The row count comes from the manifest.
#[test]
fn selective_queries_open_only_the_files_their_summaries_admit() {
    let (_dir, store) = actiontrail_store(false);
    let all: Vec<String> = text(&query(&store, "SELECT path FROM system.files"))
        .lines()
        .filter(|l| l.contains(".parquet"))
        .map(|l| {
            l.trim_matches(['|', ' '])
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(all.len() > 20, "a many-file store: {}", all.len());
    let ip = scalar(
        &store,
        "SELECT sourceIpAddress FROM events WHERE sourceIpAddress IS NOT NULL \
         GROUP BY sourceIpAddress ORDER BY count(*), sourceIpAddress LIMIT 1",
    );
    let id = scalar(
        &store,
        "SELECT eventId FROM events WHERE eventId IS NOT NULL ORDER BY eventId LIMIT 1",
    );
    let user = scalar(
        &store,
        "SELECT userIdentity.userName FROM events WHERE userIdentity.userName IS NOT NULL \
         GROUP BY 1 ORDER BY count(*), 1 LIMIT 1",
    );
    let cases = [
        (
            format!("SELECT count(*) FROM events WHERE sourceIpAddress = '{ip}'"),
            files_holding(&store, "sourceIpAddress", &ip),
        ),
        (
            format!("SELECT eventName FROM events WHERE eventId = '{id}'"),
            files_holding(&store, "eventId", &id),
        ),
        (
            format!(
                "SELECT count(*) FROM events WHERE userIdentity.userName IN ('{user}', 'nobody-at-all')"
            ),
            files_holding(&store, "userIdentity.userName", &user),
        ),
    ];
    let mut answers = Vec::new();
    for (sql, holding) in &cases {
        assert!(!holding.is_empty(), "{sql}");
        let plan = explain_analyze(&store, sql);
        let opened = scanned_files(&plan);
        assert_eq!(files_opened(&plan), opened.len(), "{plan}");
        assert!(
            opened.is_superset(holding),
            "{sql}: must open {holding:?}, opened {opened:?}"
        );
        // Bloom filters at 1% may admit a stray file, never most of them.
        assert!(
            opened.len() <= holding.len() + 1,
            "{sql}: opened {} of {} files for {} holding the value\n{plan}",
            opened.len(),
            all.len(),
            holding.len()
        );
        answers.push(text(&query(&store, sql)));
    }
    // A value no file holds opens nothing.
    let plan = explain_analyze(
        &store,
        "SELECT count(*) FROM events WHERE sourceIpAddress = '203.0.113.254'",
    );
    assert!(scanned_files(&plan).is_empty(), "{plan}");
    assert_eq!(
        scalar(
            &store,
            "SELECT count(*) FROM events WHERE sourceIpAddress = '203.0.113.254'"
        ),
        "0"
    );
    // count(*) of the whole table is the manifest's row count: no file is opened.
    let plan = explain_analyze(&store, "SELECT count(*) FROM events");
    assert!(scanned_files(&plan).is_empty(), "{plan}");
    let total: u64 = scalar(&store, "SELECT sum(rows) FROM system.files")
        .parse()
        .unwrap();
    assert_eq!(
        scalar(&store, "SELECT count(*) FROM events"),
        total.to_string()
    );

    // A store written before summaries: the manifest names none. Every file of the table is
    // opened again, and every answer is the same.
    strip_summaries(&store);
    for ((sql, _), answer) in cases.iter().zip(&answers) {
        let plan = explain_analyze(&store, sql);
        assert_eq!(files_opened(&plan), all.len(), "{sql}\n{plan}");
        assert_eq!(&text(&query(&store, sql)), answer, "{sql}");
    }
}
