#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! How an ingest over its memory budget cuts partitions into files: a delivery tree read in
//! path order leaves one file per region and day, even when the partitions together are many
//! times the budget.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use trail_ingest::IngestOptions;

/// One delivery file of `n` events of `region` on October `day`, ~4 KiB each.
fn delivery(root: &Path, region: &str, day: u32, file: u32, n: u32) {
    let dir = root.join(format!("AliyunLogs/Actiontrail/{region}/2026/10/{day:02}"));
    std::fs::create_dir_all(&dir).unwrap();
    let pad = "p".repeat(4000);
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventId":"{region}-{day}-{file}-{i}","eventTime":"2026-10-{day:02}T{:02}:{:02}:00Z","acsRegion":"{region}","eventName":"DescribeInstances","userIdentity":{{"type":"ram-user","userName":"alice","accountId":"1"}},"sourceIpAddress":"198.51.100.1","requestParameters":{{"pad":"{pad}"}}}}"#,
                file % 24,
                i % 60
            )
        })
        .collect();
    std::fs::write(
        dir.join(format!("1_Actiontrail_{region}_{file:04}.json")),
        format!("[{}]", events.join(",")),
    )
    .unwrap();
}

#[test]
fn a_tree_read_in_order_leaves_one_file_per_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    // Ten small partitions, then a big one, twice over: 12,000 events, ~50 MB of JSON and
    // several times the budget in decoded rows. The small ones are complete long before the
    // budget runs out; writing out the biggest buffer (the big partition, still growing)
    // instead of them cut it into pieces.
    for (small, big) in [("cn-a", "cn-b"), ("cn-c", "cn-d")] {
        for day in 1..=10 {
            for file in 0..10 {
                delivery(&tree, small, day, file, 30);
            }
        }
        for file in 0..30 {
            delivery(&tree, big, 1, file, 100);
        }
    }
    let store = tmp.path().join("store");
    let opts = IngestOptions {
        threads: 1,
        memory_budget: 64 << 20,
        compact: None,
        ..opts()
    };
    let s = ingest(&store, &[tree], &opts);
    assert_eq!((s.ingested, s.quarantined), (12_000, 0));

    let snap = trail_store::Store::open(&store)
        .unwrap()
        .snapshot()
        .unwrap();
    let mut files: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for (f, _) in &snap.files {
        let (dir, _) = f.path.rsplit_once('/').unwrap();
        let e = files.entry(dir.to_owned()).or_default();
        e.0 += 1;
        e.1 += f.rows;
    }
    assert_eq!(files.len(), 22, "{files:?}");
    for (dir, (n, rows)) in &files {
        assert_eq!(*n, 1, "{dir} was written as {n} files: {files:?}");
        let want = if dir.contains("cn-b") || dir.contains("cn-d") {
            3000
        } else {
            300
        };
        assert_eq!(*rows, want, "{dir}");
    }
}
