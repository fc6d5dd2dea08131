//! The sources ledger: which input files and bucket objects a store has already read, so that a
//! later ingest of the same source reads only what is new or changed.
//!
//! One ledger per source (a local directory or file as given, or a bucket URL with its prefix),
//! at `_trail/sources/<hash>.json`. An entry is the object's key relative to the source, its
//! size and a tag that changes when its content does (an object's ETag, a file's modification
//! time). For a bucket the ledger also keeps, per *date root* (the prefix under which the
//! delivery layout's `<YYYY>/<MM>/<DD>/` folders sit: one per region, and per account in
//! multi-account trees), the last day it has listed, so that the next run lists from there on.
//!
//! The ledger is only ever a cache of work done: it is written after the ingest's commit, under
//! the writer's lock. A crash between the two loses entries, never events: the next run reads
//! those inputs again and dedup keeps every event exactly once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::manifest::{META_DIR, Store, WriteGuard};

/// Where the ledgers live, under the store's root.
pub const SOURCES_DIR: &str = "sources";

/// What was read of one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub size: u64,
    /// ETag of an object; modification time (ns since the epoch) of a local file.
    pub tag: String,
    /// Some records of it were quarantined, under these reading options: it is read again when
    /// the options differ (a user who fixes the options expects those records retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_under: Option<String>,
}

/// The ledger of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The source as given, canonical (an absolute path, or `s3://bucket/prefix`).
    pub source: String,
    /// Inputs read, by key relative to the source.
    pub seen: BTreeMap<String, Seen>,
    /// Per date root (a key prefix ending in `/`), the last delivery day listed.
    #[serde(default)]
    pub days: BTreeMap<String, NaiveDate>,
}

impl Ledger {
    /// Has this input been read as it is now, with these reading options (for inputs that
    /// had bad records)?
    pub fn is_unchanged(&self, key: &str, size: u64, tag: &str, options: &str) -> bool {
        self.seen.get(key).is_some_and(|s| {
            s.size == size && s.tag == tag && s.bad_under.as_deref().is_none_or(|o| o == options)
        })
    }
}

fn file_name(source: &str) -> String {
    format!(
        "{:016x}.json",
        xxhash_rust::xxh3::xxh3_64(source.as_bytes())
    )
}

impl Store {
    /// The path of the ledger of `source`.
    pub fn ledger_path(&self, source: &str) -> PathBuf {
        self.root()
            .join(META_DIR)
            .join(SOURCES_DIR)
            .join(file_name(source))
    }

    /// The ledger of `source` (empty if the store has never read it).
    pub fn ledger(&self, source: &str) -> Result<Ledger> {
        let path = self.ledger_path(source);
        let read = match self.bucket() {
            Some(r) => r.get_optional(&format!("{META_DIR}/{SOURCES_DIR}/{}", file_name(source))),
            None => std::fs::read(&path)
                .map(Some)
                .map_err(|e| StoreError::io(&path, e)),
        };
        let bytes = match read {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Ok(Ledger {
                    source: source.to_owned(),
                    ..Default::default()
                });
            }
            Err(StoreError::Io { source: e, .. }) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ledger {
                    source: source.to_owned(),
                    ..Default::default()
                });
            }
            Err(e) => return Err(e),
        };
        let ledger: Ledger = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: format!(
                "{e}; the ledger only saves work, so removing this file makes the next ingest \
                 read the whole source again"
            ),
        })?;
        // Two sources whose names hash alike would share a file: then the ledger is not ours.
        if ledger.source != source {
            return Ok(Ledger {
                source: source.to_owned(),
                ..Default::default()
            });
        }
        Ok(ledger)
    }
}

impl WriteGuard {
    /// Save a source's ledger (after the commit of what it records).
    pub fn save_ledger(&self, ledger: &Ledger) -> Result<()> {
        let path = self.store().ledger_path(&ledger.source);
        if let Some(r) = self.store().bucket() {
            let bytes = serde_json::to_vec(ledger).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            return r.put(
                &format!("{META_DIR}/{SOURCES_DIR}/{}", file_name(&ledger.source)),
                bytes,
            );
        }
        if let Some(dir) = path.parent() {
            crate::fsutil::create_dir_all_durable(dir)?;
        }
        let bytes = serde_json::to_vec(ledger).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        crate::fsutil::write_atomic(&path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let src = "s3://bucket/AliyunLogs/";
        let mut l = store.ledger(src).unwrap();
        assert!(l.seen.is_empty());
        l.seen.insert(
            "Actiontrail/cn-hangzhou/2026/10/01/a.json.gz".into(),
            Seen {
                size: 10,
                tag: "\"e1\"".into(),
                bad_under: None,
            },
        );
        l.days.insert(
            "Actiontrail/cn-hangzhou/".into(),
            "2026-10-01".parse().unwrap(),
        );
        let guard = store.lock(false, |_| {}).unwrap();
        guard.save_ledger(&l).unwrap();
        drop(guard);
        let back = store.ledger(src).unwrap();
        assert_eq!(back, l);
        let key = "Actiontrail/cn-hangzhou/2026/10/01/a.json.gz";
        assert!(back.is_unchanged(key, 10, "\"e1\"", "o1"));
        assert!(!back.is_unchanged(key, 11, "\"e1\"", "o1"));
        let mut bad = back.clone();
        bad.seen.get_mut(key).unwrap().bad_under = Some("o1".into());
        assert!(bad.is_unchanged(key, 10, "\"e1\"", "o1"));
        assert!(
            !bad.is_unchanged(key, 10, "\"e1\"", "o2"),
            "new options retry bad records"
        );
        assert!(store.ledger("s3://other/").unwrap().seen.is_empty());
    }
}
