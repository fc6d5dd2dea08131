#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The REPL driven as a user drives it: the real binary in a terminal (tmux), keys typed,
//! Tab and Ctrl-C pressed, the screen read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trail"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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
    let st = Command::new(bin())
        .args(["ingest", "-q", "--store"])
        .arg(&store)
        .arg(repo().join("testdata/security/actiontrail.ndjson"))
        .arg(&hostile)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new(bin())
        .args(["insight", "ip", "--store"])
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let history = dir.path().join("history");
    let cmd = format!(
        "env TRAIL_HISTORY={} {} --store {}",
        history.display(),
        bin().display(),
        store.display()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("trail> ");

    // Tab completes a nested field name.
    t.type_text("SELECT userIdentity.userN");
    t.keys(&["Tab"]);
    t.wait_for("SELECT userIdentity.userName");
    // The statement continues over lines until `;`.
    t.type_text(" FROM events");
    t.keys(&["Enter"]);
    t.type_text("WHERE eventName = 'CreateUser';");
    t.keys(&["Enter"]);
    let s = t.wait_for("(1 row)");
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
