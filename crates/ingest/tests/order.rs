#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! Rows within a file are in the store's order (eventName, then eventTime), after ingest and
//! after compaction; compaction leaves alone a file that does not declare that order.

mod common;

use std::fs::File;
use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use common::*;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::SortingColumn;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use trail_ingest::{CompactOptions, IngestOptions};
use trail_store::order::{SortKey, is_sorted_as_stored};
use trail_store::{props, schema};

/// One delivery of 40 events in one partition: four names, times interleaved across names and
/// across deliveries.
fn delivery(dir: &Path, k: u32) {
    let body: String = (0..40)
        .map(|i| {
            format!(
                "{{\"eventId\":\"d{k}-{i}\",\"eventName\":\"Op{}\",\"eventTime\":\"2020-12-17T{:02}:{:02}:00Z\",\"acsRegion\":\"cn-hangzhou\"}}\n",
                (i * 7 + k) % 4,
                i % 24,
                (k * 5) % 60
            )
        })
        .collect();
    std::fs::write(dir.join(format!("d{k:02}.json")), body).unwrap();
}

fn declared(path: &Path) -> Option<Vec<SortingColumn>> {
    let r = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    r.metadata().row_group(0).sorting_columns().cloned()
}

/// Whether the rows of `path` are in (eventName, eventTime) order.
fn in_order(path: &Path) -> bool {
    let batches: Vec<RecordBatch> = trail_ingest::files::open_columns(path, &[])
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let mut keys = vec![];
    for b in &batches {
        let k = SortKey::new(b).unwrap();
        keys.extend((0..b.num_rows()).map(|r| {
            let (n, t) = k.key(r);
            (n.map(str::to_owned), t)
        }));
    }
    keys.windows(2).all(|w| w[0] <= w[1])
}

/// The event ids of `path`, in file order.
fn event_ids(path: &Path) -> Vec<String> {
    let batches: Vec<RecordBatch> = trail_ingest::files::open_columns(path, &["eventId"])
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    strings(&batches, "eventId").into_iter().flatten().collect()
}

/// Rewrite `path` with the same rows in time order, declaring eventTime alone: a file as an
/// older trail wrote it.
fn rewrite_in_time_order(path: &Path) {
    let mut batches: Vec<RecordBatch> = trail_ingest::files::open_columns(path, &[])
        .unwrap()
        .map(|b| b.unwrap())
        .collect();
    let all = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let times = all
        .column_by_name(schema::EVENT_TIME)
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let mut idx: Vec<u32> = (0..all.num_rows() as u32).collect();
    idx.sort_by_key(|&i| times.value(i as usize));
    let idx = arrow::array::UInt32Array::from(idx);
    batches = vec![arrow::compute::take_record_batch(&all, &idx).unwrap()];
    let time_idx = schema::column_index(schema::EVENT_TIME).unwrap() as i32;
    let old = props::writer_properties(all.num_rows())
        .into_builder()
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_idx,
            descending: false,
            nulls_first: false,
        }]))
        .build();
    let tmp = path.with_extension("tmp");
    let mut w = ArrowWriter::try_new(
        File::create(&tmp).unwrap(),
        schema::event_schema(),
        Some(old),
    )
    .unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A store in `dir` from six deliveries made by `make` (files `<prefix>NN.json` of `each`
/// events), one ingest each without compaction: one file per partition per delivery.
fn store_of_deliveries(
    dir: &Path,
    make: fn(&Path, u32),
    prefix: &str,
    each: u64,
) -> std::path::PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    let store = dir.join("store");
    let no_compact = IngestOptions {
        compact: None,
        ..opts()
    };
    for k in 0..6 {
        make(&input, k);
        let one = input.join(format!("{prefix}{k:02}.json"));
        let s = ingest(&store, &[one], &no_compact);
        assert_eq!(s.ingested, each);
    }
    store
}

#[test]
fn ingest_and_compaction_keep_rows_in_name_then_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_of_deliveries(tmp.path(), delivery, "d", 40);
    let snap = trail_store::Store::open(&store)
        .unwrap()
        .snapshot()
        .unwrap();
    assert_eq!(snap.files.len(), 6);
    for (_, path) in &snap.files {
        assert!(in_order(path), "{}", path.display());
        assert!(is_sorted_as_stored(declared(path).as_deref()));
    }
    // One file as an older trail wrote it: time order, declared so.
    let (old_entry, old_path) = snap.files[2].clone();
    rewrite_in_time_order(&old_path);
    assert!(!in_order(&old_path));

    let opts = CompactOptions {
        min_files: 2,
        ..Default::default()
    };
    let sum = trail_ingest::compact_store(&store, &opts, false, |_| {}).unwrap();
    assert_eq!(sum.files_removed, 5, "{sum:?}");
    assert_eq!(sum.files_written, 1, "{sum:?}");
    let snap = trail_store::Store::open(&store)
        .unwrap()
        .snapshot()
        .unwrap();
    assert_eq!(snap.total_rows(), 240);
    assert_eq!(snap.files.len(), 2);
    for (entry, path) in &snap.files {
        if entry.path == old_entry.path {
            // Left as it was.
            assert!(!is_sorted_as_stored(declared(path).as_deref()));
        } else {
            assert_eq!(entry.rows, 200);
            assert!(in_order(path), "merged file out of order");
            assert!(is_sorted_as_stored(declared(path).as_deref()));
        }
    }
    assert_eq!(
        read_all(&store).iter().map(|b| b.num_rows()).sum::<usize>(),
        240
    );
}

/// One delivery of 30 events in each of three partitions (two regions, two days).
fn spread_delivery(dir: &Path, k: u32) {
    let mut body = String::new();
    for (region, day) in [("cn-hangzhou", 17), ("cn-hangzhou", 18), ("cn-beijing", 17)] {
        for i in 0..30 {
            body.push_str(&format!(
                "{{\"eventId\":\"s{k}-{region}-{day}-{i}\",\"eventName\":\"Op{}\",\"eventTime\":\"2020-12-{day}T{:02}:{:02}:00Z\",\"acsRegion\":\"{region}\"}}\n",
                (i + k) % 3,
                i % 24,
                k % 60
            ));
        }
    }
    std::fs::write(dir.join(format!("s{k:02}.json")), body).unwrap();
}

#[test]
fn compaction_merges_several_partitions_in_runs_and_commits_each() {
    compact_three_partitions_in_runs(1, 0);
}

#[test]
fn compaction_on_several_threads_writes_the_same_store() {
    // Every merge side by side (the bound admits all six), and one at a time (a bound below
    // two merges' three files each): both as one thread.
    let side_by_side = compact_three_partitions_in_runs(3, 1_000);
    let bounded = compact_three_partitions_in_runs(2, 5);
    let alone = compact_three_partitions_in_runs(1, 0);
    assert_eq!(side_by_side, alone);
    assert_eq!(bounded, alone);
}

/// Compact a store of 6 files in each of 3 partitions into runs of 90 rows, with `threads`
/// merging side by side up to `parallel_inputs` files; returns each new file's partition and
/// event ids in file order, in the order the manifest lists them.
fn compact_three_partitions_in_runs(
    threads: usize,
    parallel_inputs: usize,
) -> Vec<(String, Vec<String>)> {
    let tmp = tempfile::tempdir().unwrap();
    let store = store_of_deliveries(tmp.path(), spread_delivery, "s", 90);
    let before = trail_store::Store::open(&store)
        .unwrap()
        .manifest()
        .unwrap()
        .generation;
    // 6 files in each of 3 partitions; at most 90 rows per merged file: two merges each.
    let opts = CompactOptions {
        min_files: 2,
        max_rows: 90,
        threads,
        parallel_inputs,
        ..Default::default()
    };
    let sum = trail_ingest::compact_store(&store, &opts, false, |_| {}).unwrap();
    // One commit per partition.
    let after = trail_store::Store::open(&store)
        .unwrap()
        .manifest()
        .unwrap()
        .generation;
    assert_eq!(after, before + 3);
    assert_eq!(sum.partitions, 3, "{sum:?}");
    assert_eq!(sum.files_removed, 18, "{sum:?}");
    assert_eq!(sum.files_written, 6, "{sum:?}");
    assert_eq!(sum.rows, 540, "{sum:?}");
    let snap = trail_store::Store::open(&store)
        .unwrap()
        .snapshot()
        .unwrap();
    assert_eq!(snap.total_rows(), 540);
    let mut per_dir = std::collections::BTreeMap::<String, u64>::new();
    for (entry, path) in &snap.files {
        assert_eq!(entry.rows, 90);
        assert!(in_order(path), "merged file out of order");
        let dir = entry.path.rsplit_once('/').unwrap().0.to_owned();
        *per_dir.entry(dir).or_default() += 1;
    }
    assert_eq!(per_dir.len(), 3, "{per_dir:?}");
    assert!(per_dir.values().all(|&n| n == 2), "{per_dir:?}");
    assert_eq!(
        read_all(&store).iter().map(|b| b.num_rows()).sum::<usize>(),
        540
    );
    // Nothing left to merge: each partition's two files are a full run of max_rows each.
    let again = trail_ingest::compact_store(&store, &opts, false, |_| {}).unwrap();
    assert_eq!(again.files_removed, 0, "{again:?}");
    snap.files
        .iter()
        .map(|(entry, path)| {
            let dir = entry.path.rsplit_once('/').unwrap().0.to_owned();
            (dir, event_ids(path))
        })
        .collect()
}
