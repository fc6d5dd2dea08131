//! `trail-ingest`: audit event JSON (ActionTrail, CloudTrail) into a trail store.
//!
//! ```no_run
//! use trail_ingest::{ingest, IngestOptions, Progress};
//! let summary = ingest(
//!     std::path::Path::new("trail-store"),
//!     &["testdata/events".into()],
//!     &IngestOptions::default(),
//!     &Progress::default(),
//!     |holder| eprintln!("waiting for {holder}"),
//! )
//! .unwrap();
//! println!("{} ingested, {} duplicates skipped, {} quarantined",
//!     summary.ingested, summary.duplicates, summary.quarantined);
//! ```
//!
//! * [`source`] finds and reads inputs (files, directories, stdin, gzip, buckets), and
//!   leaves out what the store's ledger shows as read;
//! * [`bucket`] lists and reads S3 and OSS buckets;
//! * [`records`] splits a file into records whatever its shape;
//! * [`event`] parses a record into typed, borrowed fields (both dialects);
//! * [`batch`] checks and normalizes events into Arrow batches;
//! * [`audit`] recognizes data-audit logs (`DescribeAuditLogs` records) and types them;
//! * [`pipeline`] runs it all in parallel, dedups, writes Parquet and commits;
//! * [`compact`] merges small files.

pub mod audit;
pub mod batch;
pub mod bucket;
pub mod compact;
mod encode;
pub mod error;
pub mod event;
pub mod files;
pub mod pipeline;
pub mod records;
pub mod source;

pub use batch::NormalizeOptions;
pub use compact::{CompactOptions, CompactSummary, compact_partitions};
pub use error::{IngestError, Result};
pub use pipeline::{BadRecord, IngestOptions, IngestSummary, Progress, ingest};

/// Compact every partition of the store at `root` that needs it.
pub fn compact_store(
    root: &std::path::Path,
    opts: &CompactOptions,
    wait: bool,
    on_wait: impl FnOnce(&str),
) -> Result<CompactSummary> {
    let store = trail_store::Store::open(root)?;
    let mut guard = store.lock(wait, on_wait)?;
    compact_partitions(&mut guard, opts, None)
}
