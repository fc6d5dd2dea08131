//! A store in a bucket, as the query engine reads it: an `ObjectStore` whose listings of the
//! data folders (`events/`, `audit_logs/`) come from the manifest version the query planned
//! with, not from LIST requests. Every other request (the footer and column-chunk reads) goes
//! to the bucket; the Parquet footers stay in the session's metadata cache, keyed by path,
//! size and the commit that wrote the file (files never change under their names).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use trail_store::Store;
use trail_store::bucketstore::BucketStore;
use trail_store::layout;

/// The bucket's `ObjectStore` with listings of the data folders answered from the manifest.
pub(crate) struct ManifestListed {
    inner: Arc<dyn ObjectStore>,
    store: Store,
}

impl ManifestListed {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, store: Store) -> ManifestListed {
        ManifestListed { inner, store }
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
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
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
