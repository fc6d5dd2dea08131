//! `trail-store`: the on-disk event store that every other trail crate agrees on.
//!
//! A store is a directory:
//!
//! ```text
//! <store>/
//!   events/region=<region>/eventDate=<YYYY-MM-DD>/part-g<generation>-<seq>.parquet
//!   audit_logs/logDate=<YYYY-MM-DD>/part-g<generation>-<seq>.parquet   data-audit logs
//!   _trail/manifest.json      the committed file list (the single source of truth)
//!   _trail/LOCK               held by the one writer (ingest, compact) at a time
//!   _trail/staging/           files being written; never read by anyone
//!   _trail/quarantine/        bad input records with their errors, one NDJSON file per run
//!   _trail/trails.json        the trails (which events go where), see [`trails`]
//!   _trail/sources/           what each source has had read, see [`ledger`]
//!   _trail/summaries/         per-file membership summaries for pruning, see [`summary`]
//! ```
//!
//! * [`schema`] owns the canonical Arrow schema and its column names.
//! * [`layout`] owns the partition path: values to path and back (percent-encoded, so event
//!   content never chooses a path).
//! * [`manifest`] owns the commit protocol: stage, fsync, commit the manifest atomically, then
//!   rename into place. Readers that go through the manifest always see whole commits; readers
//!   that glob `events/**/*.parquet` (DuckDB, pyarrow, Spark) never see a partial file.
//!
//! ```
//! use trail_store::{layout::PartitionKey, Store};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::create(dir.path()).unwrap();
//! let snapshot = store.snapshot().unwrap();
//! assert_eq!(snapshot.total_rows(), 0);
//! let key = PartitionKey::new(Some("cn-hangzhou"), "2020-12-17".parse().unwrap());
//! assert_eq!(key.dir(), "events/region=cn-hangzhou/eventDate=2020-12-17");
//! ```

pub mod bucketstore;
pub mod error;
pub mod fsutil;
pub mod layout;
pub mod ledger;
pub mod manifest;
pub mod order;
pub mod props;
pub mod remote;
pub mod schema;
pub mod summary;
pub mod trails;

pub use error::{Result, StoreError};

/// 128 bits as a UUID-shaped id, `8-4-4-4-12` lowercase hex digits (ids of findings, insights,
/// requests).
pub fn uuid_shaped(v: u128) -> String {
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
pub use manifest::{FileEntry, Manifest, Snapshot, Store, WriteGuard};
