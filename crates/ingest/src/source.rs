//! Finding and reading inputs: files, directories (recursive), `-` for stdin; plain or gzip
//! (multi-member too), and bucket URLs (see [`crate::bucket`]). Delivery trees are recognized: CloudTrail digest files and insight
//! folders are skipped with a reason, other stray files are ignored and counted.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use trail_store::Store;
use trail_store::ledger::{Ledger, Seen};

use crate::bucket::{BucketOptions, BucketUrl, ObjectInput};

use flate2::read::MultiGzDecoder;

use crate::error::{IngestError, Result};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File { path: PathBuf, size: u64 },
    Object(Arc<ObjectInput>),
    Stdin,
}

impl Input {
    /// How the input is named in messages.
    pub fn display(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Object(o) => o.url(),
            Input::Stdin => "<stdin>".to_owned(),
        }
    }

    /// Its size in bytes, where known before reading.
    pub fn size(&self) -> u64 {
        match self {
            Input::File { size, .. } => *size,
            Input::Object(o) => o.size,
            Input::Stdin => 0,
        }
    }
}

/// A file found but not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A CloudTrail digest file (integrity hashes, not events).
    Digest,
    /// Insight events delivered by the vendor (`Actiontrail-Insight`, `CloudTrail-Insight`).
    Insight,
    /// Not an event file by its name (found while walking a directory).
    NotEvents,
}

/// How to find inputs.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// List every day of a bucket, not only those from the last listed one on.
    pub full: bool,
    /// Read inputs again even if the ledger shows them unchanged.
    pub reread: bool,
    pub bucket: BucketOptions,
}

/// What was found of one source (a path or bucket URL as given).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SourceStats {
    pub source: String,
    /// Event files (objects) found.
    pub listed: u64,
    /// Of those, read before and unchanged since (by the ledger): not read again.
    pub unchanged: u64,
    /// Of those, to read.
    pub read: u64,
    /// LIST requests (buckets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_calls: Option<u64>,
    /// Day folders listed (buckets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_listed: Option<u64>,
}

/// One source's ledger and what this run found in it.
#[derive(Debug)]
pub struct SourceScan {
    pub ledger: Ledger,
    pub stats: SourceStats,
    /// Buckets: per date root, the newest day listed.
    pub newest_day: BTreeMap<String, NaiveDate>,
}

/// Which source and ledger entry an input belongs to.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub source: usize,
    pub key: String,
    pub seen: Seen,
}

/// Inputs to read, with their ledger entries.
#[derive(Debug, Default)]
pub struct Discovered {
    pub inputs: Vec<Input>,
    /// Aligned with `inputs` (stdin is not tracked).
    pub tracked: Vec<Option<Tracked>>,
    pub skipped: Vec<Skipped>,
    pub sources: Vec<SourceScan>,
}

impl Discovered {
    /// Queue `input` of the source being scanned (the next in `sources`), unless
    /// `skip_unchanged_under` is given (the reading options) and the ledger shows the input
    /// read as it is now.
    fn admit(
        &mut self,
        ledger: &Ledger,
        stats: &mut SourceStats,
        key: String,
        seen: Seen,
        input: Input,
        skip_unchanged_under: Option<&str>,
    ) {
        if skip_unchanged_under.is_some_and(|o| ledger.is_unchanged(&key, seen.size, &seen.tag, o))
        {
            stats.unchanged += 1;
            return;
        }
        stats.read += 1;
        self.tracked.push(Some(Tracked {
            source: self.sources.len(),
            key,
            seen,
        }));
        self.inputs.push(input);
    }
}

fn mtime_tag(meta: &fs::Metadata) -> String {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(String::new, |d| d.as_nanos().to_string())
}

/// Expand the command-line paths and bucket URLs into inputs (sorted within each directory and
/// bucket), leaving out what the store's ledgers show as read and unchanged. `options`
/// fingerprints the reading options that decide which records are bad: an input that had bad
/// records is read again when they change.
pub fn discover_sources(
    paths: &[PathBuf],
    store: &Store,
    opts: &DiscoverOptions,
    options: &str,
) -> Result<Discovered> {
    let mut d = Discovered::default();
    for p in paths {
        let given = p.to_string_lossy();
        if let Some(url) = BucketUrl::parse(&given) {
            discover_bucket(url?, store, opts, options, &mut d)?;
            continue;
        }
        if p.as_os_str() == "-" {
            d.inputs.push(Input::Stdin);
            d.tracked.push(None);
            continue;
        }
        let meta = fs::metadata(p).map_err(|e| IngestError::Input {
            path: p.clone(),
            reason: format!("{e} (check the path)"),
        })?;
        let root = fs::canonicalize(p).map_err(|e| IngestError::Input {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let source = root.display().to_string();
        let ledger = store.ledger(&source)?;
        let mut found = Vec::new();
        if meta.is_dir() {
            let own = fs::canonicalize(store.root()).ok();
            walk(p, own.as_deref(), &mut found, &mut d.skipped)?;
        } else if let Some(reason) = classify(p) {
            d.skipped.push(Skipped {
                path: p.display().to_string(),
                reason,
            });
        } else {
            found.push(Input::File {
                path: p.clone(),
                size: meta.len(),
            });
        }
        let mut stats = SourceStats {
            source: source.clone(),
            listed: found.len() as u64,
            ..Default::default()
        };
        for input in found {
            let Input::File { path, size } = &input else {
                continue;
            };
            let key = if meta.is_dir() {
                path.strip_prefix(p)
                    .unwrap_or(path)
                    .to_string_lossy()
                    .into_owned()
            } else {
                String::new()
            };
            let tag = fs::metadata(path)
                .map(|m| mtime_tag(&m))
                .unwrap_or_default();
            let seen = Seen {
                size: *size,
                tag,
                bad_under: None,
            };
            let skip = (!opts.reread).then_some(options);
            d.admit(&ledger, &mut stats, key, seen, input, skip);
        }
        d.sources.push(SourceScan {
            ledger,
            stats,
            newest_day: BTreeMap::new(),
        });
    }
    Ok(d)
}

fn discover_bucket(
    url: BucketUrl,
    store: &Store,
    opts: &DiscoverOptions,
    options: &str,
    d: &mut Discovered,
) -> Result<()> {
    let source = url.to_string();
    let ledger = store.ledger(&source)?;
    let bucket = Arc::new(opts.bucket.open(url)?);
    let rt = crate::bucket::runtime()?;
    let listing = rt.block_on(crate::bucket::list(
        &bucket,
        &ledger,
        opts.full,
        opts.bucket.lookback_days,
    ))?;
    if listing.objects.is_empty() && ledger.seen.is_empty() {
        return Err(IngestError::Bucket {
            url: source,
            reason: "no event files under this prefix (check the prefix: a trail delivers \
                     under <prefix>/AliyunLogs/Actiontrail/ or AWSLogs/<account>/CloudTrail/)"
                .into(),
        });
    }
    d.skipped.extend(listing.skipped);
    let mut stats = SourceStats {
        source,
        listed: listing.objects.len() as u64,
        list_calls: Some(listing.list_calls),
        days_listed: Some(listing.days_listed),
        ..Default::default()
    };
    for o in listing.objects {
        let key = crate::bucket::relative(&bucket, o.location.as_ref()).to_owned();
        let seen = Seen {
            size: o.size,
            tag: o.e_tag.clone().unwrap_or_default(),
            bad_under: None,
        };
        let input = Input::Object(Arc::new(ObjectInput {
            bucket: bucket.clone(),
            key: o.location,
            size: o.size,
            etag: o.e_tag,
        }));
        let skip = (!opts.reread).then_some(options);
        d.admit(&ledger, &mut stats, key, seen, input, skip);
    }
    d.sources.push(SourceScan {
        ledger,
        stats,
        newest_day: listing.newest_day,
    });
    Ok(())
}

const EVENT_EXTENSIONS: [&str; 5] = [".json", ".jsonl", ".ndjson", ".log", ".gz"];

pub(crate) fn classify(path: &Path) -> Option<SkipReason> {
    let s = path.to_string_lossy();
    let comps: Vec<&str> = s.split(['/', '\\']).collect();
    if comps
        .iter()
        .any(|c| c.eq_ignore_ascii_case("CloudTrail-Digest"))
        || comps
            .last()
            .is_some_and(|n| n.contains("_CloudTrail-Digest_"))
    {
        return Some(SkipReason::Digest);
    }
    if comps.iter().any(|c| {
        c.eq_ignore_ascii_case("Actiontrail-Insight")
            || c.eq_ignore_ascii_case("CloudTrail-Insight")
    }) {
        return Some(SkipReason::Insight);
    }
    None
}

pub(crate) fn is_event_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.starts_with('.') {
        return false;
    }
    let in_tree = path.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c.eq_ignore_ascii_case("Actiontrail") || c.eq_ignore_ascii_case("CloudTrail")
    });
    in_tree || EVENT_EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// Walk `dir` for event files; `own` (the store being written, canonical) is never entered.
fn walk(
    dir: &Path,
    own: Option<&Path>,
    inputs: &mut Vec<Input>,
    skipped: &mut Vec<Skipped>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| IngestError::Input {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // Symlinks are not followed while walking: they could loop or leave the tree.
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if let Some(reason) = classify(&path) {
                skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason,
                });
            } else {
                let is_own = own.is_some_and(|o| {
                    o.file_name() == path.file_name()
                        && fs::canonicalize(&path).is_ok_and(|c| c == o)
                });
                if !is_own {
                    walk(&path, own, inputs, skipped)?;
                }
            }
        } else if ft.is_file() {
            if let Some(reason) = classify(&path) {
                skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason,
                });
            } else if is_event_name(&path) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                inputs.push(Input::File { path, size });
            } else {
                skipped.push(Skipped {
                    path: path.display().to_string(),
                    reason: SkipReason::NotEvents,
                });
            }
        }
    }
    Ok(())
}

/// Is this the start of a gzip stream?
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// Decompress a whole gzip buffer (all members). A damaged or truncated stream yields what
/// could be decompressed plus the error.
pub fn gunzip(bytes: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(8).min(1 << 30));
    let mut dec = MultiGzDecoder::new(bytes);
    // On error `read_to_end` keeps what it read before it.
    match dec.read_to_end(&mut out) {
        Ok(_) => (out, None),
        Err(e) => {
            let n = out.len();
            (
                out,
                Some(format!(
                    "gzip stream damaged after {n} decompressed bytes: {e}"
                )),
            )
        }
    }
}

/// Open a local input as a byte stream, decompressing gzip when the content is gzip.
pub fn open_stream(input: &Input) -> Result<Box<dyn Read + Send>> {
    let raw: Box<dyn Read + Send> = match input {
        Input::File { path, .. } => Box::new(File::open(path).map_err(|e| IngestError::Input {
            path: path.clone(),
            reason: e.to_string(),
        })?),
        Input::Stdin => Box::new(io::stdin()),
        Input::Object(o) => {
            return Err(IngestError::Bucket {
                url: o.url(),
                reason: "objects are read by the pipeline, not opened as files".into(),
            });
        }
    };
    decompressing(raw).map_err(|e| IngestError::Input {
        path: PathBuf::from(input.display()),
        reason: e.to_string(),
    })
}

/// A stream, decompressed if its content is gzip.
pub fn decompressing(mut raw: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let chained = io::Cursor::new(head[..got].to_vec()).chain(raw);
    if is_gzip(&head[..got]) {
        Ok(Box::new(MultiGzDecoder::new(chained)))
    } else {
        Ok(Box::new(chained))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_trees_are_classified() {
        assert_eq!(
            classify(Path::new(
                "x/AWSLogs/1/CloudTrail-Digest/us-east-1/2023/07/10/a.json.gz"
            )),
            Some(SkipReason::Digest)
        );
        assert_eq!(
            classify(Path::new(
                "x/AliyunLogs/Actiontrail-Insight/cn-hangzhou/2020/12/17/a.gz"
            )),
            Some(SkipReason::Insight)
        );
        assert_eq!(
            classify(Path::new(
                "x/AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17/a"
            )),
            None
        );
        assert!(is_event_name(Path::new(
            "x/AliyunLogs/Actiontrail/cn-hangzhou/2020/12/17/a"
        )));
        assert!(!is_event_name(Path::new("x/notes.txt")));
        assert!(!is_event_name(Path::new("x/.hidden.json")));
    }

    #[test]
    fn gunzip_salvages_truncated_streams() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&b"{\"a\":1}\n".repeat(10000)).unwrap();
        let gz = enc.finish().unwrap();
        let (all, err) = gunzip(&gz);
        assert!(err.is_none());
        assert_eq!(all.len(), 80000);
        let (part, err) = gunzip(&gz[..gz.len() / 2]);
        assert!(err.is_some());
        assert!(!part.is_empty() && part.len() < 80000);
        // Two members back to back read as one stream.
        let mut two = gz.clone();
        two.extend_from_slice(&gz);
        assert_eq!(gunzip(&two).0.len(), 160000);
    }
}
