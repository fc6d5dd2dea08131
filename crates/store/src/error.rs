//! Errors of the store, each naming the object and what to do about it.

use std::path::PathBuf;

/// A `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong when opening, locking, reading or committing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no trail store at {} (run `trail ingest --store {} <path>` first)", path.display(), path.display())]
    NotAStore { path: PathBuf },
    #[error("{}: manifest is unreadable: {reason}; the store may have been edited by hand", path.display())]
    BadManifest { path: PathBuf, reason: String },
    #[error("store {} is locked by another trail process ({holder}); wait for it to finish or run again without --no-wait", path.display())]
    Locked { path: PathBuf, holder: String },
    #[error("{}: unreadable: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{url}: {reason}")]
    Bucket { url: String, reason: String },
    #[error("{url}: another writer committed generation {generation} first")]
    Conflict { url: String, generation: u64 },
    #[error("bad partition path component `{component}`: {reason}")]
    BadPartition { component: String, reason: String },
    #[error("{}: parquet", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl StoreError {
    /// Wrap an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Attach a path to I/O results.
pub trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| StoreError::io(path, e))
    }
}
