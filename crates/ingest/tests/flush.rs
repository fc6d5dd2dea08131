#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! How an ingest over its memory budget cuts partitions into files: a delivery tree read in
//! path order leaves one file per region and day, even when the partitions together are many
//! times the budget; partitions that all keep receiving rows (one large file, regions
//! interleaved) are cut many times, each cut appended to the partition's one file as a row
//! group, sorted on its own, and compaction merges such files row group by row group.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::RecordBatch;
use common::*;
use trail_ingest::{CompactOptions, IngestOptions};
use trail_store::order::SortKey;

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

/// `n` events of four regions on October 1, interleaved line by line (~4 KiB each), as one
/// NDJSON file; ids `<tag>-<i>`.
fn interleaved(path: &Path, tag: &str, n: u32) -> String {
    let pad = "p".repeat(4000);
    let body = (0..n)
        .map(|i| {
            format!(
                "{{\"eventId\":\"{tag}-{i}\",\"eventTime\":\"2026-10-01T{:02}:{:02}:00Z\",\"acsRegion\":\"cn-{}\",\"eventName\":\"Op{}\",\"requestParameters\":{{\"pad\":\"{pad}\"}}}}\n",
                (n - i) % 24,
                i % 60,
                i % 4,
                (i * 7) % 5
            )
        })
        .collect::<String>();
    std::fs::write(path, &body).unwrap();
    body
}

/// Each row group of `path`: its rows, and whether they are in the store's order.
fn row_groups(path: &Path) -> Vec<(usize, bool)> {
    trail_ingest::files::open_row_groups(path, 1024)
        .unwrap()
        .into_iter()
        .map(|reader| {
            let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
            let mut keys = Vec::new();
            for b in &batches {
                let k = SortKey::new(b).unwrap();
                keys.extend((0..b.num_rows()).map(|r| {
                    let (n, t) = k.key(r);
                    (n.map(str::to_owned), t)
                }));
            }
            (keys.len(), keys.windows(2).all(|w| w[0] <= w[1]))
        })
        .collect()
}

/// Per partition directory: its files' row groups.
fn files_by_partition(store: &Path) -> BTreeMap<String, Vec<Vec<(usize, bool)>>> {
    let s = trail_store::Store::open(store).unwrap();
    let snap = s.snapshot().unwrap();
    let mut out: BTreeMap<String, Vec<Vec<(usize, bool)>>> = BTreeMap::new();
    for (f, _) in &snap.files {
        let (dir, _) = f.path.rsplit_once('/').unwrap();
        let groups = row_groups(&store.join(&f.path));
        assert_eq!(groups.iter().map(|g| g.0 as u64).sum::<u64>(), f.rows);
        out.entry(dir.to_owned()).or_default().push(groups);
    }
    out
}

#[test]
fn partitions_cut_while_receiving_rows_are_appended_to_one_file_each() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 4,000 events, ~16 MB, then the first 100 again: duplicates the dedup must catch across
    // cuts of the same file.
    let body = interleaved(&input.join("a.json"), "a", 4000);
    let again: String = body.lines().take(100).map(|l| format!("{l}\n")).collect();
    std::fs::write(input.join("b.json"), again).unwrap();
    let store = tmp.path().join("store");
    let opts = IngestOptions {
        threads: 2,
        memory_budget: 2 << 20,
        compact: None,
        ..opts()
    };
    let s = ingest(&store, std::slice::from_ref(&input), &opts);
    assert_eq!((s.ingested, s.duplicates, s.quarantined), (4000, 100, 0));
    // The same with a dedup cache of 100 keys, dropped at nearly every cut: the keys of
    // partitions whose file is open stay, so the duplicates are still caught.
    let small_cache = IngestOptions {
        key_cache_keys: 100,
        ..opts.clone()
    };
    let other = tmp.path().join("other");
    let s = ingest(&other, std::slice::from_ref(&input), &small_cache);
    assert_eq!((s.ingested, s.duplicates, s.quarantined), (4000, 100, 0));

    let parts = files_by_partition(&store);
    assert_eq!(parts.len(), 4, "{parts:?}");
    for (dir, files) in &parts {
        assert_eq!(files.len(), 1, "{dir}: {files:?}");
        let groups = &files[0];
        // The budget holds a few hundred rows: each partition was cut many times.
        assert!(groups.len() >= 3, "{dir}: {groups:?}");
        assert!(
            groups.iter().all(|g| g.1),
            "{dir}: a row group out of order"
        );
        assert_eq!(groups.iter().map(|g| g.0).sum::<usize>(), 1000, "{dir}");
    }
    let ids = strings(&read_all(&store), "eventId");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (4000, 4000));

    // Seven more runs like it, then compaction: one file per partition again, in order, and
    // every event once.
    for k in 0..7 {
        let more = tmp.path().join(format!("more{k}"));
        std::fs::create_dir_all(&more).unwrap();
        interleaved(&more.join("m.json"), &format!("m{k}"), 400);
        let s = ingest(&store, &[more], &opts);
        assert_eq!(s.ingested, 400);
    }
    let copts = CompactOptions {
        min_files: 8,
        ..CompactOptions::default()
    };
    let sum = trail_ingest::compact_store(&store, &copts, false, |_| {}).unwrap();
    assert_eq!((sum.partitions, sum.files_removed, sum.rows), (4, 32, 6800));
    let parts = files_by_partition(&store);
    for (dir, files) in &parts {
        assert_eq!(files.len(), 1, "{dir}: {files:?}");
        assert!(
            files[0].iter().all(|g| g.1),
            "{dir}: out of order after compaction"
        );
    }
    let ids = strings(&read_all(&store), "eventId");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (6800, 6800));
}
