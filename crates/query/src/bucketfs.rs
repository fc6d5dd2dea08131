//! A store in a bucket, as the query engine reads it: an `ObjectStore` whose listings of the
//! data folders (`events/`, `audit_logs/`) come from the manifest version the query planned
//! with, not from LIST requests.
//!
//! A committed file never changes under its name (every writer names its files anew), so a
//! copy of it is valid for as long as it exists. The first read of a committed file fetches it
//! whole, in one GET, into a local cache shared by every trail process (`TRAIL_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/trail` or `~/.cache/trail`; at most `TRAIL_CACHE_MB`, 8192 by default, the
//! oldest copies removed first; 0 turns it off); later reads are `pread`s of the copy, as for a
//! local store. A scan asks for a file's footer and then its column chunks, a request each, and
//! against a bucket each request is a round trip: one GET per file instead is what makes a
//! bucket store answer like a local one once its files have been read. The copies are named
//! by a hash of the bucket, key and size, so no manifest entry chooses a local path. Parquet
//! footers also stay in the session's metadata cache, keyed by path, size and the commit that
//! wrote the file.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use trail_store::Store;
use trail_store::bucketstore::BucketStore;
use trail_store::layout;

/// The bucket's `ObjectStore` with listings of the data folders answered from the manifest.
pub(crate) struct ManifestListed {
    inner: Arc<dyn ObjectStore>,
    store: Store,
    cache: Option<FileCache>,
    /// Committed files' sizes by object path, for one manifest generation.
    sizes: Mutex<Option<(u64, Sizes)>>,
}

/// Sizes of committed files by object path.
type Sizes = Arc<HashMap<String, u64>>;

/// Local copies of committed files.
struct FileCache {
    dir: PathBuf,
    /// The bucket's URL, part of each copy's name.
    url: String,
    cap: u64,
    /// Bytes the cache holds (counted at the first insert, then kept up).
    used: Mutex<Option<u64>>,
    fetched: AtomicU64,
}

impl FileCache {
    fn from_env(url: &str) -> Option<FileCache> {
        let cap_mb: u64 = std::env::var("TRAIL_CACHE_MB")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(8192);
        if cap_mb == 0 {
            return None;
        }
        let var = |n: &str| {
            std::env::var_os(n)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let base = var("TRAIL_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("trail")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("trail")))?;
        Some(FileCache::new(base.join("objects"), url, cap_mb << 20))
    }

    fn new(dir: PathBuf, url: &str, cap: u64) -> FileCache {
        FileCache {
            dir,
            url: url.to_owned(),
            cap,
            used: Mutex::new(None),
            fetched: AtomicU64::new(0),
        }
    }

    /// The copy's name: a hash of the bucket, the key and (where known) the size.
    fn path(&self, location: &Path, size: Option<u64>) -> PathBuf {
        let key = match size {
            Some(size) => format!("{}|{}|{size}", self.url, location.as_ref()),
            None => format!("{}|{}", self.url, location.as_ref()),
        };
        let h = foldhash::quality::FixedState::with_seed(1).hash_one(&key);
        let h2 = foldhash::quality::FixedState::with_seed(2).hash_one(&key);
        self.dir.join(format!("{h:016x}{h2:016x}.parquet"))
    }

    /// The local copy of `location`, fetched whole from `inner` on first use. With `size`
    /// known, a fetch of another length keeps no copy (`None`: read through).
    async fn copy(
        &self,
        inner: &dyn ObjectStore,
        location: &Path,
        size: Option<u64>,
    ) -> Result<Option<PathBuf>> {
        let path = self.path(location, size);
        if std::fs::metadata(&path).is_ok_and(|m| size.is_none_or(|s| m.len() == s)) {
            return Ok(Some(path));
        }
        let bytes = inner.get(location).await?.bytes().await?;
        if size.is_some_and(|s| bytes.len() as u64 != s) {
            // Not the file the manifest describes: read through, keep no copy.
            return Ok(None);
        }
        let io = |e: std::io::Error| crate::localfs::io_error(&path, e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let tmp = path.with_extension(format!(
            "{}-{}.part",
            std::process::id(),
            self.fetched.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        self.admit(bytes.len() as u64);
        Ok(Some(path))
    }

    /// Account for `added` bytes; past the cap, remove the oldest copies down to 80% of it.
    fn admit(&self, added: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let files = || -> Vec<(std::time::SystemTime, u64, PathBuf)> {
            std::fs::read_dir(&self.dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((m.modified().ok()?, m.len(), e.path()))
                })
                .collect()
        };
        let total = used.get_or_insert_with(|| {
            files()
                .iter()
                .map(|f| f.1)
                .sum::<u64>()
                .saturating_sub(added)
        });
        *total += added;
        if *total <= self.cap {
            return;
        }
        let mut all = files();
        all.sort();
        for (_, len, path) in all {
            if *total <= self.cap / 5 * 4 {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                *total = total.saturating_sub(len);
            }
        }
    }
}

impl ManifestListed {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, store: Store) -> ManifestListed {
        let cache = store
            .bucket()
            .and_then(|b| FileCache::from_env(&b.url().to_string()));
        ManifestListed {
            inner,
            store,
            cache,
            sizes: Mutex::new(None),
        }
    }

    /// The size of a committed file, `None` for any other object.
    fn committed_size(&self, location: &Path) -> Option<u64> {
        let b = self.bucket()?;
        let manifest = b.cached()?;
        let mut sizes = self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        let map = match sizes.as_ref() {
            Some((g, m)) if *g == manifest.generation => Arc::clone(m),
            _ => {
                let m: Sizes = Arc::new(
                    manifest
                        .files
                        .iter()
                        .chain(manifest.audit_logs.iter())
                        .flat_map(|f| {
                            let summary = f
                                .summary
                                .as_ref()
                                .map(|s| (b.path(&s.path).to_string(), s.bytes));
                            std::iter::once((b.path(&f.path).to_string(), f.bytes)).chain(summary)
                        })
                        .collect(),
                );
                *sizes = Some((manifest.generation, Arc::clone(&m)));
                m
            }
        };
        map.get(location.as_ref()).copied()
    }

    /// The local copy of a committed file, fetched whole on first use; `None` when there is no
    /// cache or `location` is not a committed file.
    async fn local_copy(&self, location: &Path) -> Result<Option<PathBuf>> {
        let (Some(cache), Some(size)) = (&self.cache, self.committed_size(location)) else {
            return Ok(None);
        };
        cache.copy(self.inner.as_ref(), location, Some(size)).await
    }

    fn bucket(&self) -> Option<&Arc<BucketStore>> {
        self.store.bucket()
    }

    /// The store's key prefix (empty or ending with `/`).
    fn prefix(&self) -> String {
        self.bucket()
            .map(|b| b.url().prefix.clone())
            .unwrap_or_default()
    }

    /// Does `p` lie in a data folder the manifest lists?
    fn is_data(&self, p: Option<&Path>) -> bool {
        let Some(p) = p else { return false };
        let rel = p.as_ref().strip_prefix(&self.prefix()).unwrap_or("");
        [layout::EVENTS_DIR, layout::AUDIT_LOGS_DIR]
            .iter()
            .any(|d| rel == *d || rel.starts_with(&format!("{d}/")))
    }

    /// Every committed file of the manifest the last plan read, as object metadata.
    fn committed(&self) -> Vec<ObjectMeta> {
        let Some(b) = self.bucket() else {
            return Vec::new();
        };
        let manifest = match b.cached() {
            Some(m) => m,
            None => match b.latest() {
                Ok((_, m)) => m,
                Err(e) => {
                    tracing::warn!("{e}");
                    return Vec::new();
                }
            },
        };
        manifest
            .files
            .iter()
            .chain(manifest.audit_logs.iter())
            .map(|f| ObjectMeta {
                location: b.path(&f.path),
                // Stable per file, so the footer cache keeps hitting.
                last_modified: chrono::DateTime::from_timestamp(f.generation as i64, 0)
                    .unwrap_or_default(),
                size: f.bytes,
                e_tag: None,
                version: None,
            })
            .collect()
    }

    fn under<'a>(files: &'a [ObjectMeta], prefix: &Path) -> impl Iterator<Item = &'a ObjectMeta> {
        let dir = format!("{}/", prefix.as_ref().trim_end_matches('/'));
        files
            .iter()
            .filter(move |m| m.location.as_ref().starts_with(&dir))
    }
}

/// `ranges` of the local copy at `path`.
/// A plain read of `location` from the local copy `copy` makes (not run for other reads),
/// or from `inner` when there is none.
async fn get_from_copy(
    inner: &dyn ObjectStore,
    location: &Path,
    options: GetOptions,
    copy: impl Future<Output = Result<Option<PathBuf>>>,
) -> Result<GetResult> {
    let Some(range) = crate::localfs::plain_range(&options) else {
        return inner.get_opts(location, options).await;
    };
    match copy.await? {
        Some(path) => crate::localfs::read_file_range(&path, location, range),
        None => inner.get_opts(location, options).await,
    }
}

/// `ranges` of `location` from the local copy `copy` makes, or from `inner` when there is none.
async fn ranges_from_copy(
    inner: &dyn ObjectStore,
    location: &Path,
    ranges: &[Range<u64>],
    copy: impl Future<Output = Result<Option<PathBuf>>>,
) -> Result<Vec<Bytes>> {
    let Some(path) = copy.await? else {
        return inner.get_ranges(location, ranges).await;
    };
    crate::localfs::read_file_ranges(&path, ranges)
}

impl fmt::Debug for ManifestListed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManifestListed({})", self.store.location())
    }
}

impl fmt::Display for ManifestListed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[async_trait]
impl ObjectStore for ManifestListed {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        get_from_copy(
            self.inner.as_ref(),
            location,
            options,
            self.local_copy(location),
        )
        .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        ranges_from_copy(
            self.inner.as_ref(),
            location,
            ranges,
            self.local_copy(location),
        )
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if !self.is_data(prefix) {
            return self.inner.list(prefix);
        }
        let files = self.committed();
        let found: Vec<Result<ObjectMeta>> = prefix
            .map(|p| Self::under(&files, p).cloned().map(Ok).collect())
            .unwrap_or_default();
        stream::iter(found).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let Some(p) = prefix.filter(|p| self.is_data(Some(p))) else {
            return self.inner.list_with_delimiter(prefix).await;
        };
        let files = self.committed();
        let dir = format!("{}/", p.as_ref().trim_end_matches('/'));
        let mut objects = Vec::new();
        let mut common: BTreeSet<String> = BTreeSet::new();
        for m in Self::under(&files, p) {
            let rest = &m.location.as_ref()[dir.len()..];
            match rest.split_once('/') {
                Some((child, _)) => {
                    common.insert(format!("{dir}{child}"));
                }
                None => objects.push(m.clone()),
            }
        }
        Ok(ListResult {
            common_prefixes: common
                .into_iter()
                .map(|c| Path::parse(&c).unwrap_or_else(|_| Path::from(c)))
                .collect(),
            objects,
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A bucket as a cluster's executor reads it: the data files of a store (`.parquet` files in
/// its `events/` and `audit_logs/` folders, whose names no writer reuses) fetched whole on
/// first use into the local file cache, everything else passed through. An executor has no
/// manifest to list from (the scheduler planned the files it reads), so copies are named by
/// the bucket and key alone.
pub(crate) struct CachedObjects {
    inner: Arc<dyn ObjectStore>,
    cache: FileCache,
}

impl CachedObjects {
    fn is_data_file(location: &Path) -> bool {
        let key = location.as_ref();
        key.ends_with(".parquet")
            && location
                .parts()
                .any(|p| [layout::EVENTS_DIR, layout::AUDIT_LOGS_DIR].contains(&p.as_ref()))
    }

    async fn local_copy(&self, location: &Path) -> Result<Option<PathBuf>> {
        if !Self::is_data_file(location) {
            return Ok(None);
        }
        self.cache.copy(self.inner.as_ref(), location, None).await
    }
}

/// `inner` (the bucket at `url`) with its store data files cached locally as
/// `TRAIL_CACHE_DIR`/`TRAIL_CACHE_MB` say; `inner` itself when the cache is off.
pub fn cached_bucket(inner: Arc<dyn ObjectStore>, url: &str) -> Arc<dyn ObjectStore> {
    match FileCache::from_env(url) {
        Some(cache) => Arc::new(CachedObjects { inner, cache }),
        None => inner,
    }
}

impl fmt::Debug for CachedObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachedObjects({})", self.cache.url)
    }
}

impl fmt::Display for CachedObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[async_trait]
impl ObjectStore for CachedObjects {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        get_from_copy(
            self.inner.as_ref(),
            location,
            options,
            self.local_copy(location),
        )
        .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        ranges_from_copy(
            self.inner.as_ref(),
            location,
            ranges,
            self.local_copy(location),
        )
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn cached(dir: &std::path::Path) -> (Arc<InMemory>, CachedObjects) {
        let inner = Arc::new(InMemory::new());
        let cache = FileCache::new(dir.to_path_buf(), "s3://audit/store", 1 << 30);
        let objects = CachedObjects {
            inner: Arc::clone(&inner) as Arc<dyn ObjectStore>,
            cache,
        };
        (inner, objects)
    }

    #[tokio::test]
    async fn data_files_are_read_once_then_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (inner, objects) = cached(dir.path());
        let data = Path::from("events/region=cn-hangzhou/date=2026-11-01/part-7.parquet");
        inner
            .put(&data, PutPayload::from_static(b"0123456789"))
            .await
            .unwrap();

        let first = objects.get_ranges(&data, &[0..4, 6..10]).await.unwrap();
        assert_eq!(
            first,
            vec![Bytes::from_static(b"0123"), Bytes::from_static(b"6789")]
        );
        // The bucket loses the object: reads are served by the local copy.
        inner.delete(&data).await.unwrap();
        let again = objects.get_range(&data, 2..5).await.unwrap();
        assert_eq!(again, Bytes::from_static(b"234"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn other_objects_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        let (inner, objects) = cached(dir.path());
        for key in [
            "_trail/manifest.json",
            "events/region=x/notes.txt",
            "other/part-1.parquet",
        ] {
            let key = Path::from(key);
            inner
                .put(&key, PutPayload::from_static(b"abcdef"))
                .await
                .unwrap();
            assert_eq!(
                objects.get_range(&key, 1..3).await.unwrap(),
                Bytes::from_static(b"bc")
            );
            inner.delete(&key).await.unwrap();
            assert!(
                objects.get_range(&key, 1..3).await.is_err(),
                "{key} was cached"
            );
        }
        assert!(!dir.path().exists() || std::fs::read_dir(dir.path()).unwrap().count() == 0);
    }
}
