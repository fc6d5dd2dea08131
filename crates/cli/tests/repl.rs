#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The REPL driven as a user drives it: the real binary in a terminal (tmux), keys typed,
//! Tab and Ctrl-C pressed, the screen read back.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

struct Tmux {
    name: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        let name = format!(
            "trail-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "220",
                "-y",
                "60",
                cmd,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux could not start");
        Tmux { name }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    /// Type text literally. (tmux reads an argument ending in `;` as a command separator,
    /// so a trailing `;` is sent on its own, escaped.)
    fn type_text(&self, text: &str) {
        let (body, semi) = match text.strip_suffix(';') {
            Some(b) => (b, true),
            None => (text, false),
        };
        if !body.is_empty() {
            assert!(
                Command::new("tmux")
                    .args(["send-keys", "-t", &self.name, "-l", body])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        if semi {
            assert!(
                Command::new("tmux")
                    .args(["send-keys", "-t", &self.name, "\\;"])
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-S", "-2000", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until the screen contains `needle` (at least `count` times).
    fn wait_for_n(&self, needle: &str, count: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(needle).count() >= count {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "screen never showed {needle:?} ({count}x):\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.name])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[test]
fn repl_as_a_user_types_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let hostile = dir.path().join("hostile.ndjson");
    std::fs::write(
        &hostile,
        "{\"eventId\":\"H-1\",\"eventTime\":\"2024-05-03T00:00:00Z\",\"acsRegion\":\"cn-hangzhou\",\"eventName\":\"Evil\",\"userAgent\":\"x\\u001b[31mRED\\u001b]0;pwned\\u0007\",\"userIdentity\":{\"type\":\"ram-user\",\"userName\":\"mallory\"}}\n",
    )
    .unwrap();
    ingest(&store, &[&security("actiontrail.ndjson"), &hostile]);
    ok_on(&store, &["insight", "ip"]);
    let history = dir.path().join("history");
    let cmd = format!(
        "env TRAIL_HISTORY={} {} --store {}",
        history.display(),
        bin().display(),
        store.display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("trail> ");

    // Tab after FROM completes a table, not the `event*` columns.
    t.type_text("SELECT count(*) AS n FROM eve");
    t.keys(&["Tab"]);
    t.wait_for("FROM events");
    t.type_text(";");
    t.keys(&["Enter"]);
    t.wait_for("(1 row)");
    // Tab completes a nested field name.
    t.type_text("SELECT userIdentity.userN");
    t.keys(&["Tab"]);
    t.wait_for("SELECT userIdentity.userName");
    // The statement continues over lines until `;`.
    t.type_text(" FROM events");
    t.keys(&["Enter"]);
    t.type_text("WHERE eventName = 'CreateUser';");
    t.keys(&["Enter"]);
    let s = t.wait_for_n("(1 row)", 2);
    assert!(s.contains("│ eve "), "{s}");
    assert!(s.contains("Time: "), "{s}");

    // Tab completes saved query names after \run; the analysis runs.
    t.type_text("\\run dormant_ide");
    t.keys(&["Tab"]);
    t.wait_for("\\run dormant_identity_reactivated");
    t.type_text(" idle_days=21");
    t.keys(&["Enter"]);
    let s = t.wait_for("svc-legacy");
    assert!(s.contains("(1 row)"), "{s}");

    // Insights found by `trail insight ip`, one line each.
    t.type_text("\\run insight_summary");
    t.keys(&["Enter"]);
    let s = t.wait_for("(11 rows)");
    assert!(s.contains("203.0.113.66"), "{s}");
    assert!(s.contains("IpInsight"), "{s}");

    // Ctrl-C cancels a running query and the session goes on.
    t.type_text("SELECT max(a.raw || b.raw || c.eventId) FROM events a, events b, events c;");
    t.keys(&["Enter"]);
    std::thread::sleep(Duration::from_millis(1500));
    t.keys(&["C-c"]);
    t.wait_for("query cancelled");
    t.type_text("SELECT 40 + 2 AS answer;");
    t.keys(&["Enter"]);
    let s = t.wait_for("│     42 │");
    assert!(t.alive(), "{s}");

    // Attacker text is shown escaped, never raw.
    t.type_text("SELECT userAgent FROM events WHERE eventName = 'Evil';");
    t.keys(&["Enter"]);
    let s = t.wait_for("RED");
    assert!(s.contains("x\\u{1b}[31mRED\\u{1b}]0;pwned\\u{7}"), "{s}");

    // Row cap, format switch, describe, help.
    t.type_text("\\maxrows 2");
    t.keys(&["Enter"]);
    t.type_text("SELECT eventId FROM events ORDER BY eventId;");
    t.keys(&["Enter"]);
    t.wait_for("… 302 more rows (304 rows in all");
    t.type_text("\\format csv");
    t.keys(&["Enter"]);
    t.type_text("SELECT 1 AS a, '=cmd' AS b;");
    t.keys(&["Enter"]);
    t.wait_for("1,'=cmd");
    t.type_text("\\d events");
    t.keys(&["Enter"]);
    t.wait_for("userIdentity");
    t.type_text("\\?");
    t.keys(&["Enter"]);
    t.wait_for("\\run NAME [k=v ...]");
    t.type_text("SELEC 1;");
    t.keys(&["Enter"]);
    t.wait_for("error:");

    // Ctrl-D leaves and keeps the history.
    t.keys(&["C-d"]);
    let start = Instant::now();
    while t.alive() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.alive(), "Ctrl-D did not leave the REPL");
    let h = std::fs::read_to_string(&history).unwrap();
    assert!(h.contains("SELECT 40 + 2 AS answer;"), "{h}");
    assert!(
        h.contains("\\run dormant_identity_reactivated idle_days=21"),
        "{h}"
    );
}

/// Piped input runs as a script; a failed statement makes the exit code 1, after the rest ran.
#[test]
fn a_piped_script_fails_when_a_statement_fails() {
    let script = |text: &str| {
        let mut child = common::trail()
            .arg("--store")
            .arg(fixture_store())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let good = script("\\format csv\nSELECT 1 AS a;\nSELECT ';' AS b -- ; here\n;\n");
    assert!(good.status.success(), "{}", stderr(&good));
    assert!(stdout(&good).contains("a\n1\n"), "{}", stdout(&good));
    assert!(stdout(&good).contains("b\n;\n"), "{}", stdout(&good));
    let bad = script("\\format csv\nSELECT nosuch FROM events;\nSELECT 2 AS after;\n\\nope\n");
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(
        stdout(&bad).contains("after\n2"),
        "the rest still ran: {}",
        stdout(&bad)
    );
    assert!(stderr(&bad).contains("nosuch"), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("2 statements failed"),
        "{}",
        stderr(&bad)
    );
}
