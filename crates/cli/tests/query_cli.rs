#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! `trail sql`, `trail run`, `trail queries` and `trail lookup` as a user runs them.

use std::io::Read;
use std::process::{Output, Stdio};

mod common;
use common::*;

fn trail(args: &[&str]) -> Output {
    run_on(fixture_store(), args)
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
    let o = run(&[
        "sql",
        "-c",
        "SELECT 1",
        "--store",
        repo().join("no-such-store").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no trail store at") && stderr(&o).contains("trail ingest --store"),
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
    let mut child = common::trail()
        .arg("--store")
        .arg(fixture_store())
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
    ingest(&s, &[&f]);
    let o = run(&[
        "sql",
        "--format",
        "csv",
        "-c",
        "SELECT eventName, userAgent, userIdentity.userName AS u FROM events",
        "--store",
        s.to_str().unwrap(),
    ]);
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
    // Required parameter missing; unknown parameter; unknown query: clear usage errors.
    let o = trail(&["run", "activity_by_ip"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("needs the parameter `ip`"),
        "{}",
        stderr(&o)
    );
    let o = trail(&["run", "activity_by_ip", "-p", "colour=red"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has no parameter `colour`"),
        "{}",
        stderr(&o)
    );
    let o = trail(&["run", "failed_signin"]);
    assert_eq!(o.status.code(), Some(2));
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

    // Pages: the second starts right after the first, in the same order, with no overlap
    // and no gap (checked against one page holding both).
    let page = |max: &str, token: Option<&str>| {
        let mut args = vec![
            "lookup",
            "-a",
            "User=eve",
            "-a",
            "EventRW=Write",
            "--max-results",
            max,
            "--start",
            "2024-05-01",
            "--end",
            "2024-05-02",
            "--output",
            "json",
        ];
        if let Some(t) = token {
            args.extend(["--next-token", t]);
        }
        let o = trail(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)
    };
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["Events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventId"].as_str().unwrap().to_owned())
            .collect()
    };
    let both = page("6", None);
    assert_eq!(ids(&both).len(), 6, "{both}");
    let first = page("3", None);
    let token = first["NextToken"].as_str().unwrap().to_owned();
    let second = page("3", Some(&token));
    assert_eq!(ids(&first), ids(&both)[..3]);
    assert_eq!(ids(&second), ids(&both)[3..]);
    let times: Vec<String> = both["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventTime"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    // The table view of the same page.
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
    assert!(
        out.contains(&format!("more events: add --next-token {token}")),
        "{out}"
    );
    for id in ids(&first) {
        assert!(out.contains(&id), "{id} not in {out}");
    }
    // Bad attributes, times and tokens are usage errors (exit 2), caught before any query.
    let cases: &[(&[&str], &str)] = &[
        (&["lookup", "-a", "Colour=red"], "unknown lookup attribute"),
        (&["lookup", "-a", "EventName"], "must be Key=Value"),
        (
            &["lookup", "-a", "User=eve", "--next-token", "bogus"],
            "not a next-page token",
        ),
        (&["lookup", "--start", "yesterday"], "is not a time"),
        (&["lookup", "--max-results", "0"], "max-results"),
    ];
    for (args, says) in cases {
        let o = trail(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
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
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a memory size"), "{}", stderr(&o));
    let o = trail(&["sql", "--memory-limit", "5X", "-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = trail(&[
        "sql",
        "--memory-limit",
        "1G",
        "--threads",
        "1",
        "-c",
        "SELECT 1 AS one",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Every value checked after parsing is a usage error with exit code 2, as clap's own are.
#[test]
fn usage_errors_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "activity_by_ip", "-p", "ip"],
            "must be written name=value",
        ),
        (
            &["run", "activity_by_ip", "-p", "a b=1"],
            "is not a parameter name",
        ),
        (
            &["insight", "ip", "--gap-minutes", "99999999999999999999"],
            "gap-minutes",
        ),
        (&["insight", "ip", "--gap-minutes", "0"], "gap-minutes"),
        (&["insight", "ip", "--near-v4", "33"], "near-v4"),
        (
            &["insight", "ip", "--whitelist", "10.0.0.0/33"],
            "not an IP address or CIDR",
        ),
        (
            &["insight", "rate", "--sigmas", "NaN"],
            "standard deviations",
        ),
        (&["insight", "rate", "--gap-minutes=-5"], "gap-minutes"),
        (&["insight", "ip", "--since", "2024-13-01"], "since"),
        (&["sql"], "required"),
        (
            &["sql", "-c", "SELECT 1", "-f", "x.sql"],
            "cannot be used with",
        ),
        (
            &["ingest", "--memory-budget-mb", "1", "x"],
            "memory-budget-mb",
        ),
        (&["gen", "--out", "/tmp/x", "--regions", "17"], "regions"),
        (
            &["--threads", "2", "ingest", "x"],
            "--threads before `ingest` means something else there",
        ),
        (&["nosuchcommand"], "unrecognized subcommand"),
    ];
    for (args, says) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // A whitelist file with a bad line names the file and line.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wl.txt");
    std::fs::write(&f, "10.0.0.0/8\nnot-an-ip\n").unwrap();
    let o = trail(&[
        "insight",
        "ip",
        "--dry-run",
        "--whitelist-file",
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("wl.txt, line 2"), "{}", stderr(&o));
}

/// Options appear where they mean something, and `--store` before the command still works.
#[test]
fn options_belong_to_their_commands() {
    let help = stdout(&run(&["gen", "--help"]));
    for absent in ["--memory-limit", "--queries", "--store", "--threads"] {
        assert!(!help.contains(absent), "gen --help lists {absent}:\n{help}");
    }
    let help = stdout(&run(&["sql", "--help"]));
    for present in ["--memory-limit", "--store", "--threads", "--format"] {
        assert!(
            help.contains(present),
            "sql --help lacks {present}:\n{help}"
        );
    }
    assert!(!help.contains("--queries"), "{help}");
    // Options before a command that does not take them are ignored (aliases keep working).
    let o = run(&["--store", "x", "--memory-limit", "1G", "queries", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Before the command, after it, or from the environment: the command's own wins.
    let dir = tempfile::tempdir().unwrap();
    let store = fixture_store().to_str().unwrap();
    let before = run(&["--store", store, "info", "--json"]);
    assert_eq!(json(&before)["events"], 303, "{}", stderr(&before));
    let after = common::trail()
        .env("TRAIL_STORE", dir.path().join("nothing"))
        .args(["info", "--json", "--store", store])
        .output()
        .unwrap();
    assert_eq!(json(&after)["events"], 303, "{}", stderr(&after));
    let env = common::trail()
        .env("TRAIL_STORE", store)
        .args(["info", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&env)["events"], 303, "{}", stderr(&env));
}

/// Shell completions and manual pages cover every command.
#[test]
fn completions_and_manual_pages() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        for cmd in ["ingest", "lookup", "insight", "completions"] {
            assert!(text.contains(cmd), "{shell} completion lacks {cmd}");
        }
        assert!(
            text.contains("next-token"),
            "{shell} completion lacks options"
        );
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["man", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for page in [
        "trail.1",
        "trail-ingest.1",
        "trail-sql.1",
        "trail-lookup.1",
        "trail-insight.1",
        "trail-insight-ip.1",
        "trail-insight-rate.1",
        "trail-gen.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    let ip = std::fs::read_to_string(dir.path().join("trail-insight-ip.1")).unwrap();
    assert!(ip.contains("whitelist"), "{ip}");
}
