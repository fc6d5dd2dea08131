#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `trail sql`, `trail run`, `trail queries` and `trail lookup` as a user runs them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trail"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn store() -> &'static Path {
    static S: OnceLock<tempfile::TempDir> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin())
            .args(["ingest", "-q", "--store"])
            .arg(dir.path())
            .arg(repo().join("testdata/security/actiontrail.ndjson"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

fn trail(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--store")
        .arg(store())
        .args(args)
        .env_remove("TRAIL_MEMORY_LIMIT")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const Q: &str = "SELECT eventName, count(*) AS n FROM events WHERE eventName LIKE 'Delete%' \
                 GROUP BY eventName ORDER BY eventName";

#[test]
fn formats() {
    let table = trail(&["sql", "-c", Q]);
    assert!(table.status.success(), "{}", stderr(&table));
    assert_eq!(
        stdout(&table),
        "┌─────────────────────┬────┐\n│ eventName           │ n  │\n├─────────────────────┼────┤\n\
         │ DeleteAccessKey     │  1 │\n│ DeleteBucketLogging │  1 │\n│ DeleteInstance      │ 12 │\n\
         │ DeleteTrail         │  1 │\n└─────────────────────┴────┘\n(4 rows)\n"
    );
    let csv = trail(&["sql", "-c", Q, "--format", "csv"]);
    assert_eq!(
        stdout(&csv),
        "eventName,n\nDeleteAccessKey,1\nDeleteBucketLogging,1\nDeleteInstance,12\nDeleteTrail,1\n"
    );
    let tsv = trail(&["sql", "-c", Q, "--format", "tsv"]);
    assert!(stdout(&tsv).starts_with("eventName\tn\nDeleteAccessKey\t1\n"));
    let json = trail(&["sql", "-c", Q, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[2]["eventName"], "DeleteInstance");
    assert_eq!(v[2]["n"], 12);
    let nd = trail(&["sql", "-c", Q, "--format", "ndjson"]);
    assert_eq!(stdout(&nd).lines().count(), 4);
    let md = trail(&["sql", "-c", Q, "--format", "markdown"]);
    assert!(stdout(&md).starts_with("| eventName | n |\n|---|---:|\n| DeleteAccessKey | 1 |\n"));
    // An empty result still has its header.
    let empty = trail(&["sql", "-c", "SELECT eventName FROM events WHERE false"]);
    assert!(
        stdout(&empty).contains("│ eventName │"),
        "{}",
        stdout(&empty)
    );
    assert!(stdout(&empty).contains("(0 rows)"));
    let empty_csv = trail(&[
        "sql",
        "-c",
        "SELECT eventName FROM events WHERE false",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&empty_csv), "eventName\n");
}

#[test]
fn errors_point_into_the_sql_and_exit_non_zero() {
    let o = trail(&[
        "sql",
        "-c",
        "SELECT eventName\nFROM events\nWHERE nosuchfield = 1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("nosuchfield"), "{e}");
    assert!(e.contains("at line 3, column 7"), "{e}");
    let o = trail(&["sql", "-c", "SELECT FROM WHERE"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = Command::new(bin())
        .args(["sql", "-c", "SELECT 1", "--store"])
        .arg(repo().join("no-such-store"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is not a trail store"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sql_from_a_file_and_several_statements() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("q.sql");
    std::fs::write(
        &f,
        "CREATE VIEW denied AS SELECT * FROM events WHERE errorCode IS NOT NULL;\n\
         SELECT count(*) AS n FROM denied; -- 'a ; in a comment'\nSELECT ';' AS semi;\n",
    )
    .unwrap();
    let o = trail(&["sql", "-f", f.to_str().unwrap(), "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "n\n14\nsemi\n;\n");
}

#[test]
fn head_closes_the_pipe_quietly() {
    let mut child = Command::new(bin())
        .arg("--store")
        .arg(store())
        .args([
            "sql",
            "-c",
            "SELECT raw FROM events, (SELECT 1 FROM events LIMIT 50)",
            "--format",
            "csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "exit {status:?}: {err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn csv_neutralizes_formulas_from_event_data() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("evil.ndjson");
    std::fs::write(
        &f,
        r#"{"eventId":"E1","eventTime":"2024-05-01T00:00:00Z","acsRegion":"cn-hangzhou","eventName":"=HYPERLINK(\"http://x\")","userAgent":"@SUM(1)","userIdentity":{"userName":"+cmd"}}"#,
    )
    .unwrap();
    let s = dir.path().join("s");
    assert!(
        Command::new(bin())
            .args(["ingest", "-q", "--store"])
            .arg(&s)
            .arg(&f)
            .status()
            .unwrap()
            .success()
    );
    let o = Command::new(bin())
        .args([
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT eventName, userAgent, userIdentity.userName AS u FROM events",
            "--store",
        ])
        .arg(&s)
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        "eventName,userAgent,u\n\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM(1),'+cmd\n"
    );
}

#[test]
fn saved_queries_list_show_and_run() {
    let o = trail(&["queries"]);
    assert!(o.status.success());
    let list = stdout(&o);
    assert!(
        list.lines().filter(|l| l.contains('[')).count() >= 20,
        "{list}"
    );
    assert!(list.contains("console_signin_without_mfa"));
    let o = trail(&["queries", "failed_signin_burst_by_ip"]);
    assert!(
        stdout(&o).contains("--param min_failures=5"),
        "{}",
        stdout(&o)
    );
    let o = trail(&["run", "failed_signin_burst_by_ip", "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "window_start,sourceIpAddress,failures,identities,tried\n\
         2024-05-01T03:00:00Z,203.0.113.66,6,1,alice\n\
         2024-05-01T03:20:00Z,203.0.113.77,4,4,\"bob, ci-bot, eve, svc-legacy\"\n"
    );
    let o = trail(&[
        "run",
        "failed_signin_burst_by_ip",
        "-p",
        "min_failures=3",
        "-p",
        "since=2024-05-01 03:10:00",
        "--format",
        "csv",
    ]);
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    // Required parameter missing; unknown parameter; unknown query: clear errors.
    let o = trail(&["run", "activity_by_ip"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("needs the parameter `ip`"),
        "{}",
        stderr(&o)
    );
    let o = trail(&["run", "activity_by_ip", "-p", "colour=red"]);
    assert!(
        stderr(&o).contains("has no parameter `colour`"),
        "{}",
        stderr(&o)
    );
    let o = trail(&["run", "failed_signin"]);
    assert!(stderr(&o).contains("did you mean"), "{}", stderr(&o));
    // Values never change the shape of the query.
    let o = trail(&[
        "run",
        "activity_by_ip",
        "-p",
        "ip=x' OR '1'='1",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
}

#[test]
fn lookup_json_and_table() {
    let o = trail(&[
        "lookup",
        "--attr",
        "EventName=StopLogging",
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Events"].as_array().unwrap().len(), 1);
    assert_eq!(v["Events"][0]["eventName"], "StopLogging");
    assert_eq!(v["Events"][0]["requestParameters"]["Name"], "org-trail");
    assert!(v["NextToken"].is_null());

    let o = trail(&[
        "lookup",
        "-a",
        "User=eve",
        "-a",
        "EventRW=Write",
        "--max-results",
        "3",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-02",
    ]);
    let out = stdout(&o);
    assert!(out.contains("(3 rows)"), "{out}");
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("more events: add --next-token "))
        .unwrap()
        .to_owned();
    let o = trail(&[
        "lookup",
        "-a",
        "User=eve",
        "-a",
        "EventRW=Write",
        "--max-results",
        "3",
        "--start",
        "2024-05-01",
        "--end",
        "2024-05-02",
        "--next-token",
        &token,
    ]);
    assert!(stdout(&o).contains("rows)"), "{}", stdout(&o));
    let o = trail(&["lookup", "-a", "Colour=red"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown lookup attribute"),
        "{}",
        stderr(&o)
    );
    let o = trail(&["lookup", "-a", "User=eve", "--next-token", "bogus"]);
    assert!(
        stderr(&o).contains("not a next-page token"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn memory_limit_flag() {
    let o = trail(&[
        "--memory-limit",
        "64K",
        "sql",
        "-c",
        "SELECT eventName, array_agg(raw ORDER BY raw) FROM events GROUP BY eventName",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--memory-limit"), "{}", stderr(&o));
    let o = trail(&["--memory-limit", "lots", "sql", "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a memory size"), "{}", stderr(&o));
}
