//! What every CLI test needs: the binary, a clean environment, output helpers, the fixtures,
//! and the external data and tools some tests require.
//!
//! A test that needs something outside the repository (the public CloudTrail data, Python with
//! DuckDB and pyarrow) asks for it through [`require`]: in CI (`CI` set) a missing requirement
//! fails the test; elsewhere it prints a visible notice and the test returns early.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `trail` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_trail"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `testdata/events`: the small delivery tree.
pub fn testdata() -> PathBuf {
    repo().join("testdata/events")
}

/// `testdata/security/<name>`: the security scenario fixtures.
pub fn security(name: &str) -> PathBuf {
    repo().join("testdata/security").join(name)
}

/// `trail` with no `TRAIL_*` variable from the caller's environment.
pub fn trail() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRAIL_") {
            c.env_remove(&k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

/// Run `trail ARGS`.
pub fn run(args: &[&str]) -> Output {
    trail().args(args).output().expect("trail runs")
}

/// Run `trail --store STORE ARGS`.
pub fn run_on(store: &Path, args: &[&str]) -> Output {
    trail()
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("trail runs")
}

/// Run `trail --store STORE ARGS` and require success.
pub fn ok_on(store: &Path, args: &[&str]) -> Output {
    let o = run_on(store, args);
    assert!(
        o.status.success(),
        "trail {args:?} failed ({:?}):\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    o
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output parsed as JSON.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Ingest `paths` into `store` (quietly), requiring success.
pub fn ingest(store: &Path, paths: &[&Path]) {
    let mut args: Vec<String> = vec!["ingest".into(), "-q".into()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok_on(store, &args);
}

/// A store made once per test binary from the ActionTrail security fixture (read-only: tests
/// that change a store make their own).
pub fn fixture_store() -> &'static Path {
    static S: OnceLock<tempfile::TempDir> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        ingest(dir.path(), &[&security("actiontrail.ndjson")]);
        dir
    })
    .path()
}

/// Whether the test may go on without `what` (see the module documentation).
pub fn require(what: &str, available: bool, how: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is missing, and CI must have it: {how}"
    );
    eprintln!("NOTICE: {what} is missing; this test is SKIPPED here ({how})");
    false
}

/// The shared data directory (`../shared/data` beside the repository, or `TRAIL_SHARED_DATA`).
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("TRAIL_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data"));
    let ok = dir.join("public").is_dir();
    require(
        &format!("the shared data at {}", dir.display()),
        ok,
        "set TRAIL_SHARED_DATA to the shared data directory",
    )
    .then_some(dir)
}

/// The public CloudTrail events (`<shared data>/public`).
pub fn public_data() -> Option<PathBuf> {
    shared_data().map(|d| d.join("public"))
}

/// Whether `python3` can import every module named.
pub fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
