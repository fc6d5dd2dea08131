//! Local files read on the thread that asks.
//!
//! `object_store`'s `LocalFileSystem` runs every read on tokio's blocking pool: a hand-off to
//! another thread and back for each request. A scan asks for the byte ranges of each column
//! chunk it needs, a few requests per file per filter stage, and on a store of hundreds of
//! files those hand-offs (thread wake-ups and context switches) cost more than the reads, which
//! are copies out of the page cache. This store reads ranges with `pread` where it is called,
//! as an embedded database reads its files, and hands everything else (listing, metadata,
//! whole-object reads) to `LocalFileSystem`.

use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path as FsPath;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// The URL DataFusion resolves `file://` paths with.
pub fn url() -> ObjectStoreUrl {
    ObjectStoreUrl::local_filesystem()
}

/// A [`LocalFileSystem`] whose ranged reads run inline.
#[derive(Debug, Default)]
pub struct InlineLocalFs {
    inner: LocalFileSystem,
}

impl InlineLocalFs {
    pub fn new() -> InlineLocalFs {
        InlineLocalFs::default()
    }
}

impl fmt::Display for InlineLocalFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InlineLocalFs({})", self.inner)
    }
}

fn io_error(path: &FsPath, e: std::io::Error) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: path.display().to_string(),
            source: Box::new(e),
        }
    } else {
        object_store::Error::Generic {
            store: "InlineLocalFs",
            source: format!("{}: {e}", path.display()).into(),
        }
    }
}

/// Read exactly `range` of `file`; a file shorter than the range is an error (the caller
/// computed the range from a footer that no longer matches the file).
fn read_range(file: &File, path: &FsPath, range: Range<u64>) -> Result<Bytes> {
    let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(|_| {
        object_store::Error::Generic {
            store: "InlineLocalFs",
            source: format!("{}: range {range:?} too large", path.display()).into(),
        }
    })?;
    // `read_exact_at` fills an initialised buffer.
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, range.start).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            object_store::Error::Generic {
                store: "InlineLocalFs",
                source: format!(
                    "{}: the file is shorter than the range {range:?} being read; it changed \
                     during the query",
                    path.display()
                )
                .into(),
            }
        } else {
            io_error(path, e)
        }
    })?;
    Ok(Bytes::from(buf))
}

#[async_trait]
impl ObjectStore for InlineLocalFs {
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
        // Only plain ranged reads run inline; conditional and whole-object reads keep
        // LocalFileSystem's semantics.
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        let Some(range) = options.range.clone().filter(|_| plain) else {
            return self.inner.get_opts(location, options).await;
        };
        let path = self.inner.path_to_filesystem(location)?;
        let file = File::open(&path).map_err(|e| io_error(&path, e))?;
        let md = file.metadata().map_err(|e| io_error(&path, e))?;
        let range = range
            .as_range(md.len())
            .map_err(|e| object_store::Error::Generic {
                store: "InlineLocalFs",
                source: format!("{}: {e}", path.display()).into(),
            })?;
        let bytes = read_range(&file, &path, range.clone())?;
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: md.modified().map(Into::into).unwrap_or_default(),
            size: md.len(),
            e_tag: None,
            version: None,
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(futures::stream::once(async { Ok(bytes) }).boxed()),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = self.inner.path_to_filesystem(location)?;
        let file = File::open(&path).map_err(|e| io_error(&path, e))?;
        ranges
            .iter()
            .map(|r| read_range(&file, &path, r.clone()))
            .collect()
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
