//! A store in a bucket (`s3://bucket/prefix`, `oss://bucket/prefix`).
//!
//! The layout is the local one (`events/region=…/eventDate=…/*.parquet`, `audit_logs/…`,
//! `_trail/…`), so Athena, DuckDB, Spark and pyarrow read it in place. Object storage has no
//! rename and no lock, so the commit protocol differs:
//!
//! * The manifest is a log of versions, `_trail/log/<generation, 20 digits>.json`; the latest
//!   version is the store. A store copied into a bucket from disk (`_trail/manifest.json` and
//!   no log) reads as its manifest, and its first commit in the bucket starts the log.
//! * A writer uploads its new files under final, writer-unique names, then commits by creating
//!   the next version with a conditional put (`If-None-Match: *`, `object_store`'s
//!   [`PutMode::Create`]). Of two writers racing for one generation exactly one wins; the other
//!   gets [`StoreError::Conflict`], removes what it uploaded, and its caller reloads the
//!   winner's manifest and runs again (dedup then keeps every event once).
//! * A crash at any point leaves only objects that no version references; files replaced by
//!   compaction stay until no recent version references them. `trail vacuum` removes both after
//!   a grace period, so a reader that still holds an older version finds its files.
//! * Readers read one version and only the files it lists: a consistent snapshot, never half a
//!   commit, and no LIST of the data folders.
//!
//! Before its first commit a writer checks that the server honours conditional puts (a second
//! put-if-absent of one probe object must fail); a server that ignores them would let two
//! writers overwrite each other's commit, so trail refuses to write there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Result, StoreError};
use crate::manifest::{META_DIR, Manifest, parse_manifest};
use crate::remote::{Bucket, BucketUrl, ConnectOptions, block_on};

/// Folder of the manifest versions, under `_trail/`.
pub const LOG_DIR: &str = "log";
const PROBE: &str = "conditional-put-probe";

/// A store in a bucket.
pub struct BucketStore {
    bucket: Arc<Bucket>,
    /// Local directory for files being written.
    scratch: PathBuf,
    token: String,
    /// The latest version read: its key and manifest.
    latest: Mutex<Option<(String, Manifest)>>,
    conditional_ok: OnceLock<()>,
}

impl std::fmt::Debug for BucketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketStore")
            .field("url", &self.bucket.url.to_string())
            .finish_non_exhaustive()
    }
}

/// A committed file opened for reading: a local file, or an object's bytes.
pub enum StoreFile {
    Local(std::fs::File),
    Remote(Bytes),
}

impl parquet::file::reader::Length for StoreFile {
    fn len(&self) -> u64 {
        match self {
            StoreFile::Local(f) => f.len(),
            StoreFile::Remote(b) => b.len() as u64,
        }
    }
}

impl parquet::file::reader::ChunkReader for StoreFile {
    type T = Box<dyn std::io::Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            StoreFile::Local(f) => Box::new(f.get_read(start)?),
            StoreFile::Remote(b) => Box::new(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            StoreFile::Local(f) => f.get_bytes(start, length),
            StoreFile::Remote(b) => b.get_bytes(start, length),
        }
    }
}

/// What `trail vacuum` removed (or, with `dry_run`, would remove).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VacuumReport {
    /// Data files no version within the grace period references.
    pub files: u64,
    pub bytes: u64,
    /// Manifest versions older than the grace period (never the latest).
    pub versions: u64,
    /// Unreferenced objects kept because they are younger than the grace period.
    pub kept_young: u64,
}

fn version_key(generation: u64) -> String {
    format!("{META_DIR}/{LOG_DIR}/{generation:020}.json")
}

fn generation_of(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?.strip_suffix(".json")?;
    (name.len() == 20).then(|| name.parse().ok()).flatten()
}

fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{}-{nanos}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    format!("{:08x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) as u32)
}

impl BucketStore {
    /// Connect to the store `root` names, if it names a bucket.
    pub fn connect(root: &Path, connect: &ConnectOptions) -> Result<Option<BucketStore>> {
        let given = root.to_string_lossy();
        let Some(url) = BucketUrl::parse(&given) else {
            return Ok(None);
        };
        let url = url?;
        let connect = ConnectOptions {
            pool: connect.pool.max(16),
            ..connect.clone()
        };
        let bucket = Bucket::open(url, &connect)?;
        let token = token();
        let scratch = std::env::temp_dir().join(format!(
            "trail-store-{:016x}-{}-{token}",
            xxhash_rust::xxh3::xxh3_64(given.as_bytes()),
            std::process::id()
        ));
        Ok(Some(BucketStore {
            bucket: Arc::new(bucket),
            scratch,
            token,
            latest: Mutex::new(None),
            conditional_ok: OnceLock::new(),
        }))
    }

    /// The store's URL.
    pub fn url(&self) -> &BucketUrl {
        &self.bucket.url
    }

    /// The bucket, for readers that go through `object_store` themselves.
    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.bucket
    }

    /// The local scratch directory of this process.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// This writer's token, part of the name of every file it writes.
    pub fn writer_token(&self) -> &str {
        &self.token
    }

    /// The key of a path relative to the store.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.bucket.url.prefix)
    }

    /// The object path of a path relative to the store (already percent-encoded by the
    /// layout, so taken as it is).
    pub fn path(&self, rel: &str) -> ObjectPath {
        let key = self.key(rel);
        ObjectPath::parse(&key).unwrap_or_else(|_| ObjectPath::from(key))
    }

    /// The latest manifest read by this process, without a request (`None` before the first).
    pub fn cached(&self) -> Option<Manifest> {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, m)| m.clone())
    }

    fn fail(&self, rel: &str, e: &object_store::Error) -> StoreError {
        self.bucket.explain(&self.key(rel), e)
    }

    /// The latest committed version: its generation and manifest. One LIST of the versions
    /// newer than the last one read, and a GET only when there is a newer one.
    pub fn latest(&self) -> Result<(u64, Manifest)> {
        let known = self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let log = self.path(&format!("{META_DIR}/{LOG_DIR}/"));
        // Only a version of the log is a place to list on from (a copied store's
        // `manifest.json` sorts after every version).
        let offset = known
            .as_ref()
            .filter(|(k, _)| generation_of(k).is_some())
            .map(|(k, _)| ObjectPath::from(k.as_str()));
        let store = Arc::clone(&self.bucket.store);
        // A delimited listing: one folder's work for the server (a file-system-backed server
        // walks the whole bucket for a prefix listing). Vacuum keeps the folder short.
        let listed: Vec<String> =
            block_on(async move { store.list_with_delimiter(Some(&log)).await })?
                .map_err(|e| self.fail(&format!("{META_DIR}/{LOG_DIR}/"), &e))?
                .objects
                .into_iter()
                .map(|m| m.location.to_string())
                .filter(|k| offset.as_ref().is_none_or(|o| k.as_str() > o.as_ref()))
                .collect();
        let newest = listed
            .into_iter()
            .filter_map(|k| generation_of(&k).map(|g| (g, k)))
            .max();
        let (key, rel) = match (newest, &known) {
            (Some((_, key)), _) => {
                let rel = key
                    .strip_prefix(&self.bucket.url.prefix)
                    .unwrap_or(&key)
                    .to_owned();
                (key, rel)
            }
            (None, Some((_, m))) => return Ok((m.generation, m.clone())),
            (None, None) => {
                // A store copied into the bucket from disk.
                let rel = format!("{META_DIR}/manifest.json");
                (self.key(&rel), rel)
            }
        };
        let Some(bytes) = self.get_optional(&rel)? else {
            return Err(StoreError::NotAStore {
                path: PathBuf::from(self.bucket.url.to_string()),
            });
        };
        let manifest = parse_manifest(Path::new(&self.bucket.url.key_url(&key)), &bytes)?;
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some((key, manifest.clone()));
        Ok((manifest.generation, manifest))
    }

    /// Create an empty store if the prefix holds none.
    pub fn create(&self) -> Result<()> {
        match self.latest() {
            Ok(_) => return Ok(()),
            Err(StoreError::NotAStore { .. }) => {}
            Err(e) => return Err(e),
        }
        let empty = Manifest::empty();
        let bytes = serde_json::to_vec_pretty(&empty).map_err(|e| StoreError::Corrupt {
            path: PathBuf::from(self.bucket.url.to_string()),
            reason: e.to_string(),
        })?;
        // Another creator may have won: either way there is a store now.
        self.put_if_absent(&version_key(0), bytes)?;
        self.latest().map(|_| ())
    }

    /// GET a whole object.
    pub fn get(&self, rel: &str) -> Result<Bytes> {
        let store = Arc::clone(&self.bucket.store);
        let path = self.path(rel);
        block_on(async move { store.get(&path).await?.bytes().await })?
            .map_err(|e| self.fail(rel, &e))
    }

    /// A local copy of a committed file, downloaded once per process.
    pub fn local_copy(&self, rel: &str) -> Result<PathBuf> {
        let local = self.scratch.join("files").join(rel);
        if local.is_file() {
            return Ok(local);
        }
        let bytes = self.get(rel)?;
        if let Some(dir) = local.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let tmp = local.with_extension("part");
        std::fs::write(&tmp, &bytes).map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, &local).map_err(|e| StoreError::io(&local, e))?;
        Ok(local)
    }

    /// GET a whole object, `None` if there is none.
    pub fn get_optional(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self.get(rel) {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(_) if self.exists(rel)? == Some(false) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn exists(&self, rel: &str) -> Result<Option<bool>> {
        let store = Arc::clone(&self.bucket.store);
        let path = self.path(rel);
        match block_on(async move { store.head(&path).await })? {
            Ok(_) => Ok(Some(true)),
            Err(object_store::Error::NotFound { .. }) => Ok(Some(false)),
            Err(_) => Ok(None),
        }
    }

    /// PUT an object (replacing any).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        let store = Arc::clone(&self.bucket.store);
        let path = self.path(rel);
        block_on(async move { store.put(&path, PutPayload::from(bytes)).await })?
            .map(|_| ())
            .map_err(|e| self.fail(rel, &e))
    }

    /// PUT an object only if there is none; `false` if there was one.
    fn put_if_absent(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        let store = Arc::clone(&self.bucket.store);
        let path = self.path(rel);
        let opts = PutOptions::from(PutMode::Create);
        match block_on(async move { store.put_opts(&path, PutPayload::from(bytes), opts).await })? {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.fail(rel, &e)),
        }
    }

    /// Check once that the server refuses a second put-if-absent of one object.
    fn check_conditional_put(&self) -> Result<()> {
        if self.conditional_ok.get().is_some() {
            return Ok(());
        }
        let rel = format!("{META_DIR}/{PROBE}");
        self.put_if_absent(&rel, b"put-if-absent probe".to_vec())?;
        if self.put_if_absent(&rel, b"put-if-absent probe".to_vec())? {
            return Err(StoreError::Bucket {
                url: self.bucket.url.key_url(&self.key(&rel)),
                reason: "the server ignores conditional writes (If-None-Match), so two writers \
                         could overwrite each other's commit; use a server that supports them \
                         (AWS S3, MinIO, R2) or keep the store on local disk"
                    .into(),
            });
        }
        let _ = self.conditional_ok.set(());
        Ok(())
    }

    /// Upload staged files (local path, path relative to the store), several at a time.
    pub fn upload(&self, files: &[(PathBuf, String)]) -> Result<()> {
        let store = Arc::clone(&self.bucket.store);
        let jobs: Vec<(PathBuf, ObjectPath, String)> = files
            .iter()
            .map(|(from, to)| (from.clone(), self.path(to), to.clone()))
            .collect();
        let results: Vec<std::result::Result<(), (String, String)>> = block_on(async move {
            futures::stream::iter(jobs.into_iter().map(|(from, to, rel)| {
                let store = Arc::clone(&store);
                async move {
                    let bytes = tokio::fs::read(&from)
                        .await
                        .map_err(|e| (rel.clone(), format!("{}: {e}", from.display())))?;
                    store
                        .put(&to, PutPayload::from(bytes))
                        .await
                        .map(|_| ())
                        .map_err(|e| (rel, e.to_string()))
                }
            }))
            .buffer_unordered(8)
            .collect()
            .await
        })?;
        for r in results {
            if let Err((rel, reason)) = r {
                return Err(StoreError::Bucket {
                    url: self.bucket.url.key_url(&self.key(&rel)),
                    reason: format!("upload failed: {reason} (nothing was committed)"),
                });
            }
        }
        Ok(())
    }

    /// Commit `next` by creating its version; [`StoreError::Conflict`] if another writer
    /// created it first.
    ///
    /// A conditional put whose answer was lost (a dropped connection) may or may not have
    /// happened, and the client does not repeat it. The version then says: if it holds these
    /// very bytes (which name this writer's files) the commit is ours; if it holds others,
    /// another writer's; if there is none, the put is tried again. Any other error leaves the
    /// outcome unknown to the caller, which must then keep its uploads.
    pub fn commit(&self, next: &Manifest, bytes: &[u8]) -> Result<()> {
        self.check_conditional_put()?;
        let rel = version_key(next.generation);
        let mut last_error = None;
        for _ in 0..5 {
            let created = match self.put_if_absent(&rel, bytes.to_vec()) {
                Ok(created) => Some(created),
                Err(e) => {
                    last_error = Some(e);
                    None
                }
            };
            if created == Some(true) {
                *self.latest.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((self.key(&rel), next.clone()));
                return Ok(());
            }
            match self.get_optional(&rel) {
                Ok(Some(found)) if found == bytes => {
                    *self.latest.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((self.key(&rel), next.clone()));
                    return Ok(());
                }
                Ok(Some(_)) => {
                    return Err(StoreError::Conflict {
                        url: self.bucket.url.to_string(),
                        generation: next.generation,
                    });
                }
                Ok(None) if created == Some(false) => {
                    // Refused, yet gone: a version removed by hand. Nothing to commit onto.
                    return Err(StoreError::Conflict {
                        url: self.bucket.url.to_string(),
                        generation: next.generation,
                    });
                }
                Ok(None) => {}
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| StoreError::Bucket {
            url: self.bucket.url.key_url(&self.key(&rel)),
            reason: "the commit's outcome is unknown".into(),
        }))
    }

    /// Delete objects, best effort (what is left is for `trail vacuum`).
    pub fn remove<'a>(&self, rels: impl Iterator<Item = &'a str>) {
        let store = Arc::clone(&self.bucket.store);
        let paths: Vec<ObjectPath> = rels.map(|r| self.path(r)).collect();
        let _ = block_on(async move {
            futures::stream::iter(paths.into_iter().map(|p| {
                let store = Arc::clone(&store);
                async move { store.delete(&p).await }
            }))
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await
        });
    }

    /// Remove data files and manifest versions that no version younger than `grace`
    /// references (and that are themselves older than `grace`), never the latest version.
    pub fn vacuum(&self, grace: Duration, dry_run: bool) -> Result<VacuumReport> {
        let (latest_gen, latest) = self.latest()?;
        let now = chrono::Utc::now();
        let cutoff = now
            - chrono::Duration::from_std(grace).unwrap_or_else(|_| chrono::Duration::days(3650));
        let store = Arc::clone(&self.bucket.store);
        let root = self.path("");
        let prefix_len = self.bucket.url.prefix.len();
        let all: Vec<object_store::ObjectMeta> = block_on(async move {
            store
                .list(if root.as_ref().is_empty() {
                    None
                } else {
                    Some(&root)
                })
                .try_collect::<Vec<_>>()
                .await
        })?
        .map_err(|e| self.fail("", &e))?;
        let rel = |m: &object_store::ObjectMeta| m.location.as_ref()[prefix_len..].to_owned();
        // A version's files are kept while it was the latest within the grace period: until
        // its successor is older than the grace period (a reader may still hold it).
        let log_prefix = format!("{META_DIR}/{LOG_DIR}/");
        let mut versions: Vec<(u64, String, chrono::DateTime<chrono::Utc>)> = all
            .iter()
            .filter_map(|m| {
                let r = rel(m);
                let g = r.strip_prefix(&log_prefix).and_then(generation_of)?;
                Some((g, r, m.last_modified))
            })
            .collect();
        versions.sort();
        let mut referenced: BTreeSet<String> = BTreeSet::new();
        let mut add = |m: &Manifest| {
            for f in m.files.iter().chain(m.audit_logs.iter()) {
                referenced.insert(f.path.clone());
                referenced.extend(f.summary.as_ref().map(|s| s.path.clone()));
            }
        };
        add(&latest);
        let mut old_versions = Vec::new();
        for (i, (g, r, _)) in versions.iter().enumerate() {
            if *g >= latest_gen {
                continue;
            }
            let superseded = versions.get(i + 1).map_or(now, |v| v.2);
            if superseded < cutoff {
                old_versions.push(r.clone());
            } else if let Some(bytes) = self.get_optional(r)? {
                add(&parse_manifest(Path::new(r), &bytes)?);
            }
        }
        let mut report = VacuumReport::default();
        let mut doomed: Vec<String> = Vec::new();
        for m in &all {
            let r = rel(m);
            let data = r.starts_with(&format!("{}/", crate::layout::EVENTS_DIR))
                || r.starts_with(&format!("{}/", crate::layout::AUDIT_LOGS_DIR))
                || r.starts_with(&format!("{}/", crate::summary::SUMMARY_DIR));
            if !data || referenced.contains(&r) {
                continue;
            }
            if m.last_modified >= cutoff {
                report.kept_young += 1;
                continue;
            }
            report.files += 1;
            report.bytes += m.size;
            doomed.push(r);
        }
        report.versions = old_versions.len() as u64;
        if !dry_run {
            self.remove(doomed.iter().chain(old_versions.iter()).map(String::as_str));
        }
        Ok(report)
    }
}

impl Drop for BucketStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_sort_by_generation() {
        assert_eq!(version_key(7), "_trail/log/00000000000000000007.json");
        assert!(version_key(10) > version_key(9));
        assert_eq!(generation_of(&version_key(42)), Some(42));
        assert_eq!(generation_of("_trail/log/x.json"), None);
    }

    #[test]
    fn paths_are_not_bucket_stores() {
        let none = BucketStore::connect(Path::new("/tmp/store"), &ConnectOptions::default());
        assert!(none.unwrap().is_none());
    }
}
