//! The manifest and the commit protocol.
//!
//! The manifest (`_trail/manifest.json`) lists every committed event file. A writer holds
//! `_trail/LOCK`, writes new files into `_trail/staging/` and fsyncs them, then commits by
//! atomically replacing the manifest with one that lists the new files at their final paths and
//! records the renames and deletions still to do (`pending`). Only then are files renamed into
//! `events/` and replaced files deleted. A crash before the commit leaves the old manifest and
//! orphans in staging (removed by the next writer); a crash after it leaves `pending`, which the
//! next writer (or [`Store::recover`]) finishes. A file under `events/` is therefore always
//! complete, and the manifest always names exactly the committed events.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result, StoreError};
use crate::fsutil::{create_dir_all_durable, sync_dir, write_atomic};
use crate::layout::PartitionKey;

/// Name of the metadata directory inside a store.
pub const META_DIR: &str = "_trail";
const MANIFEST: &str = "manifest.json";
const LOCK: &str = "LOCK";
const STAGING: &str = "staging";
/// Directory (under `_trail/`) holding quarantined records.
pub const QUARANTINE: &str = "quarantine";
/// The store format. Every file a manifest of this format lists has exactly
/// [`crate::schema::event_schema`] (readers rely on it: the query engine hands that schema to the
/// Parquet reader instead of decoding each footer's), so a change to the event schema is a new
/// format.
const FORMAT: &str = "trail-store/1";
/// The format of a store that also holds data-audit logs (the `audit_logs` list). A store
/// says so only once it holds some, so every older store stays `trail-store/1`; a trail that
/// knows only format 1 refuses such a manifest instead of rewriting it without the list.
const FORMAT_AUDIT: &str = "trail-store/2";

/// One committed event file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the store root, `/`-separated.
    pub path: String,
    pub region: Option<String>,
    /// The UTC date of every eventTime in the file (`YYYY-MM-DD` in the manifest).
    #[serde(with = "iso_date")]
    pub date: chrono::NaiveDate,
    pub rows: u64,
    pub bytes: u64,
    /// Smallest and largest eventTime, microseconds since the epoch (UTC).
    pub min_time_us: i64,
    pub max_time_us: i64,
    /// The commit that added the file.
    pub generation: u64,
    /// The file's membership summary, relative to the store ([`crate::summary`]); `None` for
    /// files written before summaries and for data-audit log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryRef>,
}

/// Where a file's summary is and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRef {
    /// Relative to the store root, `/`-separated.
    pub path: String,
    pub bytes: u64,
}

impl FileEntry {
    /// The partition the file belongs to.
    pub fn partition(&self) -> Result<PartitionKey> {
        PartitionKey::parse_dir(&self.path)
    }
}

/// A date as `YYYY-MM-DD` text in the manifest.
mod iso_date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.format("%Y-%m-%d"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let text = <&str>::deserialize(d)?;
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|e| D::Error::custom(format!("date `{text}`: {e}")))
    }
}

/// Work a commit still has to do on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// (from, to), relative to the store root.
    pub renames: Vec<(String, String)>,
    /// Files no longer in the manifest, relative to the store root.
    pub deletes: Vec<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.renames.is_empty() && self.deletes.is_empty()
    }
}

/// The committed state of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// Incremented by every commit.
    pub generation: u64,
    pub files: Vec<FileEntry>,
    /// Committed data-audit log files (`audit_logs/logDate=<date>/`; `region` is always
    /// empty, `date` is the UTC date of their `LogTime`, the times are `LogTime`'s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_logs: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Pending::is_empty")]
    pub pending: Pending,
}

impl Manifest {
    pub(crate) fn empty() -> Self {
        Manifest {
            format: FORMAT.to_owned(),
            generation: 0,
            files: Vec::new(),
            audit_logs: Vec::new(),
            pending: Pending::default(),
        }
    }
}

/// A store: a directory, or a prefix in a bucket (see [`crate::bucketstore`]).
#[derive(Debug, Clone)]
pub struct Store {
    /// The directory; for a store in a bucket, a local scratch directory for staging.
    root: PathBuf,
    remote: Option<Arc<crate::bucketstore::BucketStore>>,
}

impl Store {
    /// Open an existing store; an error that says how to create one if there is none.
    ///
    /// `root` may be a bucket URL (`s3://bucket/prefix`, `oss://bucket/prefix`), reached with
    /// [`crate::remote::ConnectOptions::from_env`].
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(root, &crate::remote::ConnectOptions::from_env())
    }

    /// [`Store::open`] with explicit options for a store in a bucket.
    pub fn open_with(
        root: impl AsRef<Path>,
        connect: &crate::remote::ConnectOptions,
    ) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if let Some(remote) = crate::bucketstore::BucketStore::connect(&root, connect)? {
            remote.latest()?;
            return Ok(Store::remote(remote));
        }
        if !root.join(META_DIR).join(MANIFEST).is_file() {
            return Err(StoreError::NotAStore { path: root });
        }
        Ok(Store { root, remote: None })
    }

    fn remote(remote: crate::bucketstore::BucketStore) -> Store {
        Store {
            root: remote.scratch().to_path_buf(),
            remote: Some(Arc::new(remote)),
        }
    }

    /// Open a store, creating an empty one if `root` holds none.
    pub fn create(root: impl AsRef<Path>) -> Result<Self> {
        Self::create_with(root, &crate::remote::ConnectOptions::from_env())
    }

    /// [`Store::create`] with explicit options for a store in a bucket.
    pub fn create_with(
        root: impl AsRef<Path>,
        connect: &crate::remote::ConnectOptions,
    ) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if let Some(remote) = crate::bucketstore::BucketStore::connect(&root, connect)? {
            remote.create()?;
            return Ok(Store::remote(remote));
        }
        let meta = root.join(META_DIR);
        let store = Store { root, remote: None };
        if meta.join(MANIFEST).is_file() {
            return Ok(store);
        }
        create_dir_all_durable(&meta)?;
        create_dir_all_durable(&store.root.join(crate::layout::EVENTS_DIR))?;
        // Take the lock so two creators cannot race on the first manifest.
        let lock = store.open_lock_file()?;
        lock.lock().at(&store.lock_path())?;
        if !meta.join(MANIFEST).is_file() {
            let m = Manifest::empty();
            write_atomic(&meta.join(MANIFEST), &manifest_bytes(&m)?)?;
        }
        drop(lock);
        Ok(store)
    }

    /// The store's root directory (for a store in a bucket: its local scratch directory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store in a bucket, if this store is one.
    pub fn bucket(&self) -> Option<&Arc<crate::bucketstore::BucketStore>> {
        self.remote.as_ref()
    }

    /// Where the store is, as users name it: a directory or a bucket URL.
    pub fn location(&self) -> String {
        match &self.remote {
            Some(r) => r.url().to_string(),
            None => self.root.display().to_string(),
        }
    }

    /// Refuse a command that works only on a store on local disk.
    pub fn require_local(&self, what: &str) -> Result<()> {
        match &self.remote {
            Some(r) => Err(StoreError::Bucket {
                url: r.url().to_string(),
                reason: format!(
                    "{what} works on a store on local disk only; run it on a local copy \
                     (`aws s3 sync`) or query the bucket store with `trail sql`"
                ),
            }),
            None => Ok(()),
        }
    }

    /// A local path to read a committed file (path relative to the store) from: the file
    /// itself, or for a store in a bucket a copy downloaded once into the scratch directory
    /// (files never change under their names).
    pub fn readable_path(&self, rel: &str) -> Result<PathBuf> {
        match &self.remote {
            Some(r) => r.local_copy(rel),
            None => Ok(self.root.join(rel)),
        }
    }

    /// A file the store keeps beside its events (a job's state, insight and finding files),
    /// by its path relative to the store; `None` if there is none.
    pub fn read_aux(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match &self.remote {
            Some(r) => r.get_optional(rel),
            None => {
                let path = self.root.join(rel);
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(StoreError::io(path, e)),
                }
            }
        }
    }

    /// Write such a file whole: atomically on disk, one PUT in a bucket.
    pub fn write_aux(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        match &self.remote {
            Some(r) => r.put(rel, bytes.to_vec()),
            None => {
                let path = self.root.join(rel);
                if let Some(dir) = path.parent() {
                    create_dir_all_durable(dir)?;
                }
                write_atomic(&path, bytes)
            }
        }
    }

    /// A file of the store as messages name it: its path, or its URL in the bucket.
    pub fn display_path(&self, rel: &str) -> String {
        match &self.remote {
            Some(r) => r.url().key_url(&r.key(rel)),
            None => self.root.join(rel).display().to_string(),
        }
    }

    /// Open a committed file (path relative to the store) for reading.
    pub fn open_file(&self, rel: &str) -> Result<crate::bucketstore::StoreFile> {
        match &self.remote {
            Some(r) => Ok(crate::bucketstore::StoreFile::Remote(r.get(rel)?)),
            None => {
                let path = self.root.join(rel);
                Ok(crate::bucketstore::StoreFile::Local(
                    File::open(&path).at(&path)?,
                ))
            }
        }
    }

    fn meta(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    fn lock_path(&self) -> PathBuf {
        self.meta().join(LOCK)
    }

    fn open_lock_file(&self) -> Result<File> {
        let p = self.lock_path();
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .at(&p)
    }

    /// The manifest file (replaced by rename at every commit).
    pub fn manifest_path(&self) -> PathBuf {
        self.meta().join(MANIFEST)
    }

    /// Read the committed manifest.
    pub fn manifest(&self) -> Result<Manifest> {
        if let Some(r) = &self.remote {
            return Ok(r.latest()?.1);
        }
        let p = self.manifest_path();
        let bytes = fs::read(&p).at(&p)?;
        parse_manifest(&p, &bytes)
    }
}

/// A manifest from its bytes, checked for a format this trail knows.
pub(crate) fn parse_manifest(p: &Path, bytes: &[u8]) -> Result<Manifest> {
    let p = p.to_path_buf();
    {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| StoreError::BadManifest {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if m.format != FORMAT && m.format != FORMAT_AUDIT {
            return Err(StoreError::BadManifest {
                path: p,
                reason: format!(
                    "format `{}` is neither `{FORMAT}` nor `{FORMAT_AUDIT}` (written by a newer \
                     trail?)",
                    m.format
                ),
            });
        }
        Ok(m)
    }
}

impl Store {
    /// The committed files, each with the path it can be read from right now.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let manifest = self.manifest()?;
        Ok(Snapshot {
            root: self.root.clone(),
            generation: manifest.generation,
            files: self.resolve(&manifest, &manifest.files),
            audit_logs: self.resolve(&manifest, &manifest.audit_logs),
        })
    }

    /// The committed data-audit log files, each with the path it can be read from right now.
    pub fn audit_log_files(&self) -> Result<Vec<(FileEntry, PathBuf)>> {
        Ok(self.snapshot()?.audit_logs)
    }

    /// Where each entry can be read: its final path, or staging while a commit is finishing.
    fn resolve(&self, manifest: &Manifest, entries: &[FileEntry]) -> Vec<(FileEntry, PathBuf)> {
        let staged: BTreeMap<&str, &str> = manifest
            .pending
            .renames
            .iter()
            .map(|(from, to)| (to.as_str(), from.as_str()))
            .collect();
        let mut files = Vec::with_capacity(entries.len());
        if let Some(r) = &self.remote {
            return entries
                .iter()
                .map(|e| (e.clone(), PathBuf::from(r.url().key_url(&r.key(&e.path)))))
                .collect();
        }
        for entry in entries {
            let mut path = self.root.join(&entry.path);
            if let Some(from) = staged.get(entry.path.as_str()) {
                let staged_path = self.root.join(from);
                if !path.exists() && staged_path.exists() {
                    path = staged_path;
                }
            }
            files.push((entry.clone(), path));
        }
        files
    }

    /// Take the writer lock. When another process holds it, `wait` decides between waiting
    /// (after calling `on_wait` with a description of the holder) and failing.
    ///
    /// A store in a bucket has no lock: writers commit optimistically (see
    /// [`crate::bucketstore`]), so this never waits there.
    pub fn lock(&self, wait: bool, on_wait: impl FnOnce(&str)) -> Result<WriteGuard> {
        if let Some(r) = &self.remote {
            let (_, manifest) = r.latest()?;
            let staging = self.staging_dir();
            if staging.is_dir() {
                fs::remove_dir_all(&staging).at(&staging)?;
            }
            create_dir_all_durable(&staging)?;
            return Ok(WriteGuard {
                store: self.clone(),
                _lock: None,
                manifest,
                next_seq: 0,
            });
        }
        let mut file = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().to_owned();
                let holder = if holder.is_empty() {
                    "unknown process".to_owned()
                } else {
                    holder
                };
                if !wait {
                    return Err(StoreError::Locked {
                        path: self.root.clone(),
                        holder,
                    });
                }
                on_wait(&holder);
                file.lock().at(&self.lock_path())?;
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(self.lock_path(), e)),
        }
        let info = format!(
            "pid {}, since {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(info.as_bytes());
        let mut guard = WriteGuard {
            store: self.clone(),
            _lock: Some(file),
            manifest: Manifest::empty(),
            next_seq: 0,
        };
        guard.recover()?;
        Ok(guard)
    }

    /// The staging directory (only the lock holder writes there).
    pub fn staging_dir(&self) -> PathBuf {
        if self.remote.is_some() {
            return self.root.join(STAGING);
        }
        self.meta().join(STAGING)
    }

    /// The quarantine directory.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.meta().join(QUARANTINE)
    }
}

fn manifest_bytes(m: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(m).map_err(|e| StoreError::BadManifest {
        path: PathBuf::from(MANIFEST),
        reason: e.to_string(),
    })
}

/// The committed files of a store at one generation.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub root: PathBuf,
    pub generation: u64,
    /// Each entry with the absolute path it can be read from.
    pub files: Vec<(FileEntry, PathBuf)>,
    /// The data-audit log files, the same way.
    pub audit_logs: Vec<(FileEntry, PathBuf)>,
}

impl Snapshot {
    /// Events in the store.
    pub fn total_rows(&self) -> u64 {
        self.files.iter().map(|(f, _)| f.rows).sum()
    }

    /// Bytes of event files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|(f, _)| f.bytes).sum()
    }

    /// The first and last eventTime (microseconds since the epoch, UTC) of any file.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let min = self.files.iter().map(|(f, _)| f.min_time_us).min()?;
        let max = self.files.iter().map(|(f, _)| f.max_time_us).max()?;
        Some((min, max))
    }

    /// The first and last day with events.
    pub fn date_range(&self) -> Option<(chrono::NaiveDate, chrono::NaiveDate)> {
        let min = self.files.iter().map(|(f, _)| f.date).min()?;
        let max = self.files.iter().map(|(f, _)| f.date).max()?;
        Some((min, max))
    }

    /// Files grouped by partition directory.
    pub fn partitions(&self) -> BTreeMap<String, Vec<&FileEntry>> {
        let mut out: BTreeMap<String, Vec<&FileEntry>> = BTreeMap::new();
        for (f, _) in &self.files {
            let dir = f.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            out.entry(dir.to_owned()).or_default().push(f);
        }
        out
    }
}

/// A file written to staging, ready to be committed.
#[derive(Debug, Clone)]
pub struct StagedFile {
    /// Absolute path in staging.
    pub staged: PathBuf,
    /// What the manifest will say about it (path = final relative path).
    pub entry: FileEntry,
    /// Its summary in staging, moved to `entry.summary` by the commit.
    pub summary: Option<PathBuf>,
}

/// The writer lock and the manifest it protects. Dropping it releases the lock.
#[derive(Debug)]
pub struct WriteGuard {
    store: Store,
    /// The held lock file (none for a store in a bucket).
    _lock: Option<File>,
    manifest: Manifest,
    next_seq: u64,
}

impl WriteGuard {
    /// The store this guard writes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The manifest as of the last commit.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Finish a commit interrupted by a crash and remove orphans from staging.
    fn recover(&mut self) -> Result<()> {
        self.manifest = self.store.manifest()?;
        if !self.manifest.pending.is_empty() {
            tracing::info!(
                generation = self.manifest.generation,
                "finishing an interrupted commit"
            );
            self.apply_pending()?;
        }
        let staging = self.store.staging_dir();
        if staging.is_dir() {
            fs::remove_dir_all(&staging).at(&staging)?;
        }
        create_dir_all_durable(&staging)?;
        Ok(())
    }

    /// Do the file moves of the committed manifest. Deletions go first: a reader that globs
    /// `events/` (and so does not know the manifest) may briefly miss events replaced by
    /// compaction, but never sees them twice. Readers of the manifest see every event exactly
    /// once throughout (a committed file still in staging is read from there).
    fn apply_pending(&mut self) -> Result<()> {
        let root = self.store.root.clone();
        let mut dirs = std::collections::BTreeSet::new();
        for rel in &self.manifest.pending.deletes {
            let p = root.join(rel);
            match fs::remove_file(&p) {
                Ok(()) => {
                    if let Some(dir) = p.parent() {
                        dirs.insert(dir.to_path_buf());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(p, e)),
            }
        }
        for dir in &dirs {
            sync_dir(dir)?;
        }
        for (from, to) in &self.manifest.pending.renames {
            let (from, to) = (root.join(from), root.join(to));
            if from.exists() {
                if let Some(dir) = to.parent() {
                    create_dir_all_durable(dir)?;
                    dirs.insert(dir.to_path_buf());
                }
                fs::rename(&from, &to).at(&to)?;
            } else if !to.exists() {
                return Err(StoreError::BadManifest {
                    path: to,
                    reason: "a committed file is missing from both staging and events".into(),
                });
            }
        }
        for dir in &dirs {
            if dir.exists() {
                sync_dir(dir)?;
            }
        }
        // Remove partition directories that compaction emptied.
        for dir in &dirs {
            if dir.starts_with(root.join(crate::layout::EVENTS_DIR)) {
                let _ = fs::remove_dir(dir);
            }
        }
        self.manifest.pending = Pending::default();
        write_atomic(
            &self.store.meta().join(MANIFEST),
            &manifest_bytes(&self.manifest)?,
        )
    }

    /// A fresh path in staging and the final relative path for a new file of `key`.
    pub fn new_file(&mut self, key: &PartitionKey) -> (PathBuf, String) {
        self.new_file_in(&key.dir())
    }

    /// A fresh path in staging and the final relative path for a new audit-log file of `date`.
    pub fn new_audit_log_file(&mut self, date: chrono::NaiveDate) -> (PathBuf, String) {
        self.new_file_in(&crate::layout::audit_log_dir(date))
    }

    fn new_file_in(&mut self, dir: &str) -> (PathBuf, String) {
        self.next_seq += 1;
        // Writers to a bucket store do not exclude each other: each names its files with its
        // own token, so two writers at the same generation never write the same key.
        let token = match &self.store.remote {
            Some(r) => format!("-{}", r.writer_token()),
            None => String::new(),
        };
        let name = format!(
            "part-g{:08}-{:06}{token}.parquet",
            self.manifest.generation + 1,
            self.next_seq
        );
        let staged = self.store.staging_dir().join(&name);
        (staged, format!("{dir}/{name}"))
    }

    /// A fresh staging path for a file that is not an event file (a quarantine file).
    pub fn new_staging_path(&mut self, name: &str) -> PathBuf {
        self.next_seq += 1;
        self.store
            .staging_dir()
            .join(format!("{:06}-{name}", self.next_seq))
    }

    /// The generation the next commit will have.
    pub fn next_generation(&self) -> u64 {
        self.manifest.generation + 1
    }

    /// Commit: add `added` event files, drop `removed` ones (relative paths), and move `extra`
    /// staged files (absolute staging path, final path relative to the store) into place.
    /// Staged files must already be fsynced. Returns the new generation.
    pub fn commit(
        &mut self,
        added: Vec<StagedFile>,
        removed: &[String],
        extra: Vec<(PathBuf, String)>,
    ) -> Result<u64> {
        self.commit_all(added, Vec::new(), removed, extra)
    }

    /// [`WriteGuard::commit`] that also adds data-audit log files (`audit`), in the same
    /// atomic step: a run that read both kinds commits both or neither.
    pub fn commit_all(
        &mut self,
        added: Vec<StagedFile>,
        audit: Vec<StagedFile>,
        removed: &[String],
        extra: Vec<(PathBuf, String)>,
    ) -> Result<u64> {
        if added.is_empty() && audit.is_empty() && removed.is_empty() && extra.is_empty() {
            return Ok(self.manifest.generation);
        }
        if self.store.remote.is_none() {
            sync_dir(&self.store.staging_dir())?;
        }
        let mut next = self.manifest.clone();
        next.generation += 1;
        next.files.retain(|f| !removed.contains(&f.path));
        next.audit_logs.retain(|f| !removed.contains(&f.path));
        let rel = |p: &Path| -> String {
            p.strip_prefix(&self.store.root)
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/")
        };
        for (staged, audit_log) in added
            .into_iter()
            .map(|s| (s, false))
            .chain(audit.into_iter().map(|s| (s, true)))
        {
            next.pending
                .renames
                .push((rel(&staged.staged), staged.entry.path.clone()));
            if let (Some(from), Some(to)) = (&staged.summary, &staged.entry.summary) {
                next.pending.renames.push((rel(from), to.path.clone()));
            }
            let mut entry = staged.entry;
            entry.generation = next.generation;
            if audit_log {
                next.audit_logs.push(entry);
            } else {
                next.files.push(entry);
            }
        }
        for (from, to) in extra {
            next.pending.renames.push((rel(&from), to));
        }
        next.pending.deletes = removed.to_vec();
        // A removed file's summary goes with it.
        next.pending.deletes.extend(
            self.manifest
                .files
                .iter()
                .filter(|f| removed.contains(&f.path))
                .filter_map(|f| f.summary.as_ref().map(|s| s.path.clone())),
        );
        next.files.sort_by(|a, b| a.path.cmp(&b.path));
        next.audit_logs.sort_by(|a, b| a.path.cmp(&b.path));
        next.format = if next.audit_logs.is_empty() {
            FORMAT
        } else {
            FORMAT_AUDIT
        }
        .to_owned();
        if let Some(r) = &self.store.remote {
            // Upload, then commit by creating the next manifest version; what a lost race
            // uploaded is removed again (or, after a crash, by `trail vacuum`).
            let pending = std::mem::take(&mut next.pending);
            let uploads: Vec<(PathBuf, String)> = pending
                .renames
                .into_iter()
                .map(|(from, to)| (self.store.root.join(from), to))
                .collect();
            r.upload(&uploads)?;
            match r.commit(&next, &manifest_bytes(&next)?) {
                Ok(()) => {}
                Err(e @ StoreError::Conflict { .. }) => {
                    r.remove(uploads.iter().map(|(_, to)| to.as_str()));
                    return Err(e);
                }
                // The outcome is unknown: the uploads stay (a committed version may name
                // them); if none does, `trail vacuum` removes them.
                Err(e) => return Err(e),
            }
            for (from, _) in &uploads {
                let _ = fs::remove_file(from);
            }
            self.manifest = next;
            return Ok(self.manifest.generation);
        }
        // The commit point.
        write_atomic(&self.store.meta().join(MANIFEST), &manifest_bytes(&next)?)?;
        self.manifest = next;
        self.apply_pending()?;
        Ok(self.manifest.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staged event file without a summary.
    fn staged(staged: PathBuf, entry: FileEntry) -> Vec<StagedFile> {
        vec![StagedFile {
            staged,
            entry,
            summary: None,
        }]
    }

    #[test]
    fn open_says_how_to_create() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("trail ingest"), "{err}");
    }

    #[test]
    fn commit_moves_files_and_recovers_pending() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let mut g = store.lock(false, |_| {}).unwrap();
        let key = PartitionKey::new(Some("cn-hangzhou"), "2020-12-17".parse().unwrap());
        let (staged_path, rel) = g.new_file(&key);
        fs::write(&staged_path, b"x").unwrap();
        let entry = FileEntry {
            path: rel.clone(),
            region: key.region.clone(),
            date: "2020-12-17".parse().unwrap(),
            rows: 1,
            bytes: 1,
            min_time_us: 0,
            max_time_us: 0,
            generation: 0,
            summary: None,
        };
        let generation = g.commit(staged(staged_path, entry), &[], vec![]).unwrap();
        assert_eq!(generation, 1);
        assert!(dir.path().join(&rel).is_file());
        // A second writer must fail fast while the first holds the lock.
        let err = store.lock(false, |_| {}).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        drop(g);

        // Simulate a crash right after a commit point: pending renames still to do.
        let mut m = store.manifest().unwrap();
        let staged = store.staging_dir().join("orphan-commit.parquet");
        fs::write(&staged, b"y").unwrap();
        let rel2 = format!("{}/part-late.parquet", key.dir());
        m.pending.renames.push((
            format!("{META_DIR}/{STAGING}/orphan-commit.parquet"),
            rel2.clone(),
        ));
        m.files.push(FileEntry {
            path: rel2.clone(),
            ..m.files[0].clone()
        });
        write_atomic(
            &dir.path().join(META_DIR).join(MANIFEST),
            &manifest_bytes(&m).unwrap(),
        )
        .unwrap();
        // Readers find the file where it is now.
        let snap = store.snapshot().unwrap();
        assert!(snap.files.iter().all(|(_, p)| p.exists()));
        let g = store.lock(false, |_| {}).unwrap();
        assert!(g.manifest().pending.is_empty());
        assert!(dir.path().join(&rel2).is_file());
        assert_eq!(store.snapshot().unwrap().total_rows(), 2);
    }

    #[test]
    fn summaries_move_in_with_their_files_and_go_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let mut g = store.lock(false, |_| {}).unwrap();
        let key = PartitionKey::new(Some("cn-hangzhou"), "2020-12-17".parse().unwrap());
        let (staged, rel) = g.new_file(&key);
        fs::write(&staged, b"x").unwrap();
        let staged_summary = staged.with_extension("sum");
        fs::write(&staged_summary, b"s").unwrap();
        let summary = crate::summary::path_for(&rel);
        let entry = FileEntry {
            path: rel.clone(),
            region: Some("cn-hangzhou".into()),
            date: "2020-12-17".parse().unwrap(),
            rows: 1,
            bytes: 1,
            min_time_us: 0,
            max_time_us: 0,
            generation: 0,
            summary: Some(SummaryRef {
                path: summary.clone(),
                bytes: 1,
            }),
        };
        let file = StagedFile {
            staged,
            entry,
            summary: Some(staged_summary),
        };
        g.commit(vec![file], &[], vec![]).unwrap();
        assert!(dir.path().join(&summary).is_file());
        assert_eq!(
            store.manifest().unwrap().files[0]
                .summary
                .as_ref()
                .map(|s| &s.path),
            Some(&summary)
        );
        // Removing the file removes its summary in the same commit.
        g.commit(vec![], std::slice::from_ref(&rel), vec![])
            .unwrap();
        assert!(!dir.path().join(&rel).exists());
        assert!(!dir.path().join(&summary).exists());
    }

    #[test]
    fn audit_logs_commit_beside_events_and_mark_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).unwrap();
        let mut g = store.lock(false, |_| {}).unwrap();
        let date: chrono::NaiveDate = "2025-07-07".parse().unwrap();
        let (staged_path, rel) = g.new_audit_log_file(date);
        assert_eq!(
            rel.rsplit_once('/').unwrap().0,
            "audit_logs/logDate=2025-07-07"
        );
        fs::write(&staged_path, b"a").unwrap();
        let entry = FileEntry {
            path: rel.clone(),
            region: None,
            date,
            rows: 3,
            bytes: 1,
            min_time_us: 0,
            max_time_us: 0,
            generation: 0,
            summary: None,
        };
        g.commit_all(vec![], staged(staged_path, entry), &[], vec![])
            .unwrap();
        assert!(dir.path().join(&rel).is_file());
        let m = store.manifest().unwrap();
        assert_eq!(m.format, FORMAT_AUDIT);
        assert!(m.files.is_empty());
        assert_eq!(m.audit_logs.len(), 1);
        assert_eq!(store.snapshot().unwrap().total_rows(), 0);
        let files = store.audit_log_files().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0.rows, 3);
        // An event-only store keeps format 1 (older trails still read it).
        let other = tempfile::tempdir().unwrap();
        Store::create(other.path()).unwrap();
        assert_eq!(
            Store::open(other.path())
                .unwrap()
                .manifest()
                .unwrap()
                .format,
            FORMAT
        );
    }
}
