#![allow(dead_code, clippy::unwrap_used)]
//! Helpers shared by the ingest tests.

use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use trail_ingest::{IngestOptions, IngestSummary, Progress};

pub fn good(id: &str) -> String {
    format!(
        r#"{{"eventId":"{id}","eventTime":"2020-12-17T06:55:12Z","acsRegion":"cn-hangzhou","eventName":"DescribeInstances","userIdentity":{{"type":"ram-user","userName":"alice","accountId":"1"}},"sourceIpAddress":"198.51.100.1"}}"#
    )
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn opts() -> IngestOptions {
    IngestOptions {
        threads: 2,
        ..Default::default()
    }
}

pub fn ingest(store: &Path, paths: &[PathBuf], opts: &IngestOptions) -> IngestSummary {
    trail_ingest::ingest(store, paths, opts, &Progress::default(), |_| {}).expect("ingest runs")
}

/// Every committed row, read through the manifest.
pub fn read_all(store: &Path) -> Vec<RecordBatch> {
    let snap = trail_store::Store::open(store).unwrap().snapshot().unwrap();
    let mut out = vec![];
    for (_, path) in &snap.files {
        for b in trail_ingest::files::open_columns(path, &[]).unwrap() {
            out.push(b.unwrap());
        }
    }
    out
}

/// Values of a top-level string column across all rows.
pub fn strings(batches: &[RecordBatch], col: &str) -> Vec<Option<String>> {
    let mut out = vec![];
    for b in batches {
        let a = b.column_by_name(col).unwrap().as_string::<i32>();
        for i in 0..a.len() {
            out.push(a.is_valid(i).then(|| a.value(i).to_owned()));
        }
    }
    out
}

pub fn public_data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/public");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "NOTICE: {} is absent; skipping the public-data test",
            p.display()
        );
        None
    }
}
