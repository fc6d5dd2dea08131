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
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

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

pub(crate) fn io_error(path: &FsPath, e: std::io::Error) -> object_store::Error {
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

/// The range of a plain ranged read (no conditions, no version, not a HEAD): the reads that a
/// local file can answer inline.
pub(crate) fn plain_range(options: &GetOptions) -> Option<GetRange> {
    let plain = options.if_match.is_none()
        && options.if_none_match.is_none()
        && options.if_modified_since.is_none()
        && options.if_unmodified_since.is_none()
        && options.version.is_none()
        && !options.head;
    options.range.clone().filter(|_| plain)
}

/// Answer a ranged read of `location` from the local file at `path`.
pub(crate) fn read_file_range(
    path: &FsPath,
    location: &Path,
    range: GetRange,
) -> Result<GetResult> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let md = file.metadata().map_err(|e| io_error(path, e))?;
    let range = range
        .as_range(md.len())
        .map_err(|e| object_store::Error::Generic {
            store: "InlineLocalFs",
            source: format!("{}: {e}", path.display()).into(),
        })?;
    let bytes = read_range(&file, path, range.clone())?;
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

/// `ranges` of the local file at `path`, read with one open.
pub(crate) fn read_file_ranges(path: &FsPath, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    ranges
        .iter()
        .map(|r| read_range(&file, path, r.clone()))
        .collect()
}

/// Read exactly `range` of `file`; a file shorter than the range is an error (the caller
/// computed the range from a footer that no longer matches the file).
pub(crate) fn read_range(file: &File, path: &FsPath, range: Range<u64>) -> Result<Bytes> {
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
        let Some(range) = plain_range(&options) else {
            return self.inner.get_opts(location, options).await;
        };
        let path = self.inner.path_to_filesystem(location)?;
        read_file_range(&path, location, range)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        read_file_ranges(&self.inner.path_to_filesystem(location)?, ranges)
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
    #![allow(clippy::unwrap_used)]
    // A one-range slice is a list of one byte range, not a range of values.
    #![allow(clippy::single_range_in_vec_init)]
    use object_store::ObjectStoreExt;

    use super::*;

    #[tokio::test]
    async fn ranges_read_inline_and_the_rest_delegates() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.bin");
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::fs::write(&file, &data).unwrap();
        let fs = InlineLocalFs::new();
        let loc = Path::from_absolute_path(&file).unwrap();

        let got = fs
            .get_ranges(&loc, &[0..10, 5000..5100, 9990..10_000])
            .await
            .unwrap();
        assert_eq!(got[0].as_ref(), &data[0..10]);
        assert_eq!(got[1].as_ref(), &data[5000..5100]);
        assert_eq!(got[2].as_ref(), &data[9990..10_000]);
        assert_eq!(
            fs.get_range(&loc, 100..200).await.unwrap().as_ref(),
            &data[100..200]
        );
        // Suffix ranges, as the footer is read.
        let r = fs
            .get_opts(
                &loc,
                GetOptions::default().with_range(Some(object_store::GetRange::Suffix(8))),
            )
            .await
            .unwrap();
        assert_eq!(r.range, 9992..10_000);
        assert_eq!(r.meta.size, 10_000);
        assert_eq!(r.bytes().await.unwrap().as_ref(), &data[9992..]);
        // Metadata, whole reads and listings are LocalFileSystem's.
        assert_eq!(fs.head(&loc).await.unwrap().size, 10_000);
        assert_eq!(
            fs.get(&loc).await.unwrap().bytes().await.unwrap().len(),
            10_000
        );
        let dir_loc = Path::from_absolute_path(dir.path()).unwrap();
        assert_eq!(
            fs.list_with_delimiter(Some(&dir_loc))
                .await
                .unwrap()
                .objects
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_range_past_the_end_or_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.bin");
        std::fs::write(&file, b"short").unwrap();
        let fs = InlineLocalFs::new();
        let loc = Path::from_absolute_path(&file).unwrap();
        let e = fs
            .get_ranges(&loc, &[0..100])
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than the range"), "{e}");
        let gone = Path::from_absolute_path(dir.path().join("gone.bin")).unwrap();
        let e = fs.get_ranges(&gone, &[0..1]).await.unwrap_err();
        assert!(matches!(e, object_store::Error::NotFound { .. }), "{e}");
    }
}
