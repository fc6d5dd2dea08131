#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! The crate graph points one way: `cli -> {insight, detect} -> query -> store`,
//! `cli -> ingest -> store`.
//! A crate may use what lies below it on its own chain (and the leaf generator); `ingest` and
//! `query` never depend on each other. This test fails when an edge outside that appears.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn trail_deps(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line.ends_with("dependencies]");
            continue;
        }
        if in_deps
            && let Some(name) = line
                .split(['=', ' ', '.'])
                .next()
                .filter(|n| n.starts_with("trail-"))
        {
            out.insert(name.to_owned());
        }
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("store", &[][..]),
        ("gen", &[][..]),
        ("ingest", &["trail-store", "trail-gen"][..]),
        ("query", &["trail-store"][..]),
        ("insight", &["trail-query", "trail-store", "trail-gen"][..]),
        ("detect", &["trail-query", "trail-store"][..]),
        ("cluster", &["trail-query", "trail-store"][..]),
        (
            "cli",
            &[
                "trail-insight",
                "trail-detect",
                "trail-cluster",
                "trail-query",
                "trail-store",
                "trail-ingest",
                "trail-gen",
            ][..],
        ),
    ]);
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seen = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let ok = allowed.get(name.as_str()).unwrap_or_else(|| {
            panic!("crate `{name}` is not in the layering picture; add it here")
        });
        for dep in trail_deps(&manifest) {
            assert!(
                ok.contains(&dep.as_str()),
                "crates/{name} must not depend on {dep}"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, allowed.len());
}
