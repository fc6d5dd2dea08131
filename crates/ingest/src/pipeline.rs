//! The ingest pipeline: a reader thread, decoder threads on every core, the writer (the calling
//! thread) that buffers per partition, dedups and sorts, encoder threads that write each sorted
//! partition to Parquet in staging (`encode.rs`; a partition cut before it is complete keeps
//! its file open and its next cut becomes another row group), and one commit at the end.
//!
//! Memory is bounded: the reader hands out at most a few chunks ahead of the decoders, and the
//! writer flushes a partition buffer whenever the buffered rows exceed the budget: first the
//! largest of those no decoded chunk has added to lately (inputs come sorted by path, so an
//! idle partition of a delivery tree is almost always complete and becomes one file), else the
//! largest of all.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::RecordBatch;
use base64::Engine;
use serde::Serialize;
use trail_store::layout::PartitionKey;
use trail_store::manifest::{QUARANTINE, StagedFile};
use trail_store::order::{self, SortKey};
use trail_store::{Store, StoreError, WriteGuard};

use crate::audit::{self, AuditBuilder};
use crate::batch::{BatchBuilder, Capacity, NormalizeOptions, Rejection, check};
use crate::compact::{CompactOptions, CompactSummary, compact_partitions};
use crate::encode::{EncodeJob, EncoderPool, MAX_OPEN_FILES};
use crate::error::{IngestError, Result};
use crate::event::{Event, parse_event};
use crate::files::load_keys;
use crate::records::{self, Item, Location};
use crate::source::{self, DiscoverOptions, Input, SkipReason, Skipped, SourceStats};

/// Files up to this size are read whole by a decoder thread; larger ones are streamed.
const WHOLE_FILE_MAX: u64 = 8 << 20;
/// Gzip files up to this size are read whole; larger ones (they inflate to 5-10 times as much)
/// are streamed, so that one large array is split across decoders rather than held and
/// decoded whole by one.
const GZIP_WHOLE_MAX: u64 = 1 << 20;
/// Size of the line chunks a streamed file is cut into.
const CHUNK_BYTES: usize = 4 << 20;
/// Bad records kept in the summary (all of them go to the quarantine file).
const ERRORS_IN_SUMMARY: usize = 100;
/// Dedup keys cached across flushes before the cache is dropped and reloaded on demand (all
/// but those of partitions whose file is open: they cannot be read back from it). About 30
/// bytes each in their hash sets.
const KEY_CACHE_MAX: usize = 1_000_000;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub normalize: NormalizeOptions,
    /// Decoder threads (0: one per core).
    pub threads: usize,
    /// Bytes of decoded rows buffered before the largest partition is written out.
    pub memory_budget: usize,
    /// Most rows in one written file.
    pub max_file_rows: usize,
    /// Dedup keys cached across flushes before the cache is dropped (see [`KEY_CACHE_MAX`]).
    pub key_cache_keys: usize,
    /// Records larger than this are quarantined.
    pub max_record_bytes: usize,
    /// Wait for another writer to finish instead of failing.
    pub wait_for_lock: bool,
    /// Compact touched partitions after the commit.
    pub compact: Option<CompactOptions>,
    /// Buckets, the ledger, listing.
    pub discover: DiscoverOptions,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            normalize: NormalizeOptions::default(),
            threads: 0,
            memory_budget: 64 << 20,
            max_file_rows: 1_000_000,
            key_cache_keys: KEY_CACHE_MAX,
            max_record_bytes: 16 << 20,
            wait_for_lock: true,
            compact: Some(CompactOptions::default()),
            discover: DiscoverOptions::default(),
        }
    }
}

/// Live counters for a progress display; totals are known once inputs are discovered.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    pub records: AtomicU64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One bad record as reported (the full text is in the quarantine file).
#[derive(Debug, Clone, Serialize)]
pub struct BadRecord {
    pub file: String,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub error: String,
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(i) = self.index {
            write!(f, " (record {i})")?;
        }
        write!(f, ": {}", self.error)
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub store: String,
    pub files_read: u64,
    pub bytes_read: u64,
    /// Records found in the input.
    pub records: u64,
    /// New events stored.
    pub ingested: u64,
    /// Events already in the store (or repeated in the input), not stored again.
    pub duplicates: u64,
    /// New data-audit logs stored (the `audit_logs` table).
    pub audit_logs_ingested: u64,
    /// Data-audit logs already in the store (or repeated in the input), not stored again.
    pub audit_log_duplicates: u64,
    /// Bad records, kept in the quarantine file.
    pub quarantined: u64,
    /// Vendor insight events met in event files (not management events; not stored).
    pub insight_events: u64,
    pub digest_files: u64,
    pub skipped_files: Vec<Skipped>,
    pub files_written: u64,
    pub partitions_written: u64,
    /// The store's generation after this run.
    pub generation: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_file: Option<String>,
    /// The first bad records (all are in the quarantine file).
    pub errors: Vec<BadRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<CompactSummary>,
    /// Per source: found, unchanged since the last run (not read), read; LIST calls.
    pub sources: Vec<SourceStats>,
    /// Times the run started again after another writer committed to a bucket store first.
    #[serde(skip_serializing_if = "is_zero")]
    pub commit_retries: u32,
    pub elapsed_secs: f64,
}

impl IngestSummary {
    /// How many input files were skipped for `reason`.
    pub fn skipped(&self, reason: crate::source::SkipReason) -> usize {
        self.skipped_files
            .iter()
            .filter(|s| s.reason == reason)
            .count()
    }
}

enum Job {
    /// A whole file, possibly gzip.
    Whole { name: Arc<str>, bytes: Vec<u8> },
    /// Complete lines of a streamed file.
    Lines {
        name: Arc<str>,
        bytes: Vec<u8>,
        first_line: u64,
    },
    /// A streamed document, already decompressed: whole, or a run of an array's elements
    /// wrapped in `[` `]` whose first element is record `first_index` of the file and starts on
    /// line `first_line`.
    Document {
        name: Arc<str>,
        bytes: Vec<u8>,
        first_line: u64,
        first_index: u64,
    },
    /// A problem with the file itself (reported like a bad record).
    FileError { name: Arc<str>, error: String },
}

struct Bad {
    info: BadRecord,
    text: Vec<u8>,
}

/// What decoder threads hand to the writer: rows per partition, bad records, counts. A decoder
/// accumulates several jobs into one `Decoded` so that many small delivery files become one
/// batch per partition, not thousands of tiny ones.
#[derive(Default)]
struct Decoded {
    parts: Vec<(PartitionKey, BatchBuilder)>,
    audit: Vec<(chrono::NaiveDate, AuditBuilder)>,
    bad: Vec<Bad>,
    records: u64,
    insight: u64,
    digest: u64,
    files_done: u64,
    rows: usize,
    bytes: usize,
    /// What the decoder's previous chunk held per partition, to size this one's builders.
    sizes: Vec<(PartitionKey, Capacity)>,
}

impl Decoded {
    /// An empty chunk whose builders are sized from what `prev` held.
    fn after(prev: &Decoded) -> Decoded {
        Decoded {
            sizes: prev
                .parts
                .iter()
                .map(|(k, b)| (k.clone(), b.held().with_headroom()))
                .collect(),
            ..Decoded::default()
        }
    }

    fn builder(&mut self, region: Option<&str>, date: chrono::NaiveDate) -> &mut BatchBuilder {
        let same = |k: &PartitionKey| k.date == date && k.region.as_deref() == region;
        let i = match self.parts.iter().position(|(k, _)| same(k)) {
            Some(i) => i,
            None => {
                let builder = match self.sizes.iter().find(|(k, _)| same(k)) {
                    Some((_, cap)) => BatchBuilder::with_capacity(cap),
                    None => BatchBuilder::default(),
                };
                self.parts.push((PartitionKey::new(region, date), builder));
                self.parts.len() - 1
            }
        };
        &mut self.parts[i].1
    }

    fn audit_builder(&mut self, date: chrono::NaiveDate) -> &mut AuditBuilder {
        let i = match self.audit.iter().position(|(d, _)| *d == date) {
            Some(i) => i,
            None => {
                self.audit.push((date, AuditBuilder::default()));
                self.audit.len() - 1
            }
        };
        &mut self.audit[i].1
    }

    /// Big enough to hand over. Builders hold up to twice what `bytes` counts (capacity
    /// doubling), and one `Decoded` per decoder may wait in the channel, so this bounds the
    /// memory in flight to a few tens of MiB.
    fn is_full(&self) -> bool {
        self.rows >= 8 * 1024 || self.bytes >= 8 << 20 || self.bad.len() >= 1024
    }
}

/// A record that is not a usable event: a data-audit log, a response page of them, or bad
/// (`event_error` says why as an event).
fn not_an_event(
    name: &Arc<str>,
    text: &str,
    loc: Location,
    event_error: &dyn Fn() -> String,
    opts: &IngestOptions,
    out: &mut Decoded,
) {
    if audit::is_response_page(text) {
        // A page inside an array or on a line of its own: its items are the records.
        out.records -= 1;
        records::split_document(text.as_bytes(), loc.line, &mut |item| {
            handle(name, item, opts, out)
        });
        return;
    }
    match audit::parse_audit_log(text) {
        Ok(Some(log)) => {
            let b = out.audit_builder(log.date);
            let before = b.bytes;
            b.append(&log, text);
            let grown = b.bytes - before;
            out.rows += 1;
            out.bytes += grown;
        }
        Ok(None) => out.bad.push(bad(name, loc, event_error(), text.as_bytes())),
        Err(error) => out.bad.push(bad(
            name,
            loc,
            format!("data-audit log: {error}"),
            text.as_bytes(),
        )),
    }
}

/// A data-audit log or a page of them names no event field: it skips the event parser, which
/// would read all of it only to fail.
fn looks_like_audit_log(text: &str) -> bool {
    !text.contains("ventTime")
        && !text.contains("ventName")
        && (text.contains("\"LogTime\"") || text.contains("\"Items\""))
}

/// File a parsed event under its partition, or say why it is not one.
fn take_event(
    name: &Arc<str>,
    event: &Event<'_>,
    text: &str,
    loc: Location,
    opts: &IngestOptions,
    out: &mut Decoded,
) {
    match check(event, &opts.normalize) {
        Err(Rejection::Insight) => out.insight += 1,
        Err(Rejection::Bad(error)) => not_an_event(name, text, loc, &|| error.clone(), opts, out),
        Ok(checked) => {
            let b = out.builder(checked.region, checked.date);
            let before = b.bytes;
            b.append(event, &checked, text);
            let grown = b.bytes - before;
            out.rows += 1;
            out.bytes += grown;
        }
    }
}

/// Receive one of the splitter's items; `false` hands a candidate back (see `Item::Candidate`).
fn handle(name: &Arc<str>, item: Item<'_>, opts: &IngestOptions, out: &mut Decoded) -> bool {
    match item {
        Item::Digest => out.digest += 1,
        Item::Bad { text, loc, error } => out.bad.push(bad(name, loc, error, text)),
        Item::Candidate(text, loc) => {
            // Only a well-formed event is taken here; everything else is the splitter's to
            // check and report, exactly as if it had not been offered.
            if text.len() > opts.max_record_bytes || looks_like_audit_log(text) {
                return false;
            }
            match parse_event(text) {
                Ok(event) if !event.wrapper_key => {
                    out.records += 1;
                    take_event(name, &event, text, loc, opts, out);
                }
                _ => return false,
            }
        }
        Item::Record(text, loc) => {
            out.records += 1;
            if text.len() > opts.max_record_bytes {
                out.bad.push(bad(
                    name,
                    loc,
                    format!(
                        "the record is {} bytes, above the limit of {} (--max-record-bytes)",
                        text.len(),
                        opts.max_record_bytes
                    ),
                    text.as_bytes(),
                ));
                return true;
            }
            if looks_like_audit_log(text) {
                let why = || match parse_event(text) {
                    Err(e) => e.to_string(),
                    Ok(_) => "neither an event nor a data-audit log".to_owned(),
                };
                not_an_event(name, text, loc, &why, opts, out);
                return true;
            }
            match parse_event(text) {
                Err(e) => not_an_event(name, text, loc, &|| e.to_string(), opts, out),
                Ok(event) => take_event(name, &event, text, loc, opts, out),
            }
        }
    }
    true
}

fn decode(job: Job, opts: &IngestOptions, out: &mut Decoded) {
    match job {
        Job::Whole { name, bytes } => {
            out.files_done += 1;
            let (bytes, gz_error) = if source::is_gzip(&bytes) {
                source::gunzip(&bytes)
            } else {
                (bytes, None)
            };
            records::split_file(&bytes, &mut |item| handle(&name, item, opts, out));
            if let Some(error) = gz_error {
                out.bad.push(bad(
                    &name,
                    Location {
                        line: 0,
                        index: None,
                    },
                    error,
                    b"",
                ));
            }
        }
        Job::Lines {
            name,
            bytes,
            first_line,
        } => {
            records::split_lines(&bytes, first_line, &mut |item| {
                handle(&name, item, opts, out)
            });
        }
        Job::Document {
            name,
            bytes,
            first_line,
            first_index,
        } => {
            let shift = |loc: &mut Location| {
                loc.line += first_line - 1;
                loc.index = loc.index.map(|i| i + first_index);
            };
            records::split_file(&bytes, &mut |mut item| {
                match &mut item {
                    Item::Record(_, loc) | Item::Candidate(_, loc) | Item::Bad { loc, .. } => {
                        shift(loc)
                    }
                    Item::Digest => {}
                }
                handle(&name, item, opts, out)
            });
        }
        Job::FileError { name, error } => {
            out.bad.push(bad(
                &name,
                Location {
                    line: 0,
                    index: None,
                },
                error,
                b"",
            ));
        }
    }
}

fn bad(name: &Arc<str>, loc: Location, error: String, text: &[u8]) -> Bad {
    Bad {
        info: BadRecord {
            file: name.to_string(),
            line: loc.line,
            index: loc.index,
            error,
        },
        text: text.to_vec(),
    }
}

/// What the reader thread reports besides its jobs: inputs it could not read (not recorded in
/// the ledger) and an error that stops the ingest (a bucket that refuses us).
#[derive(Default)]
struct ReadOutcome {
    failed: HashSet<usize>,
    fatal: Option<IngestError>,
}

/// Read the inputs and cut them into jobs.
fn read_inputs(
    inputs: &[Input],
    jobs: &SyncSender<Job>,
    progress: &Progress,
    opts: &IngestOptions,
) -> ReadOutcome {
    let mut out = ReadOutcome::default();
    let mut i = 0;
    while i < inputs.len() {
        let input = &inputs[i];
        let name: Arc<str> = input.display().into();
        let sent = match input {
            Input::Object(_) => {
                // A run of objects is fetched with many requests in flight.
                let end = inputs[i..]
                    .iter()
                    .position(|x| !matches!(x, Input::Object(_)))
                    .map_or(inputs.len(), |n| i + n);
                let sent = read_objects(&inputs[i..end], i, jobs, progress, opts, &mut out);
                i = end;
                if sent.is_err() || out.fatal.is_some() {
                    return out;
                }
                continue;
            }
            Input::File { path, size }
                if *size <= WHOLE_FILE_MAX
                    && (*size <= GZIP_WHOLE_MAX
                        || !path
                            .extension()
                            .is_some_and(|e| e.eq_ignore_ascii_case("gz"))) =>
            {
                match std::fs::read(path) {
                    Ok(bytes) => {
                        progress
                            .bytes_done
                            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        jobs.send(Job::Whole { name, bytes })
                    }
                    Err(e) => {
                        out.failed.insert(i);
                        jobs.send(Job::FileError {
                            name,
                            error: format!("cannot read the file: {e}"),
                        })
                    }
                }
            }
            _ => match source::open_stream(input) {
                Ok(reader) => stream_input(reader, name, jobs, progress, opts).map(|ok| {
                    if !ok {
                        out.failed.insert(i);
                    }
                }),
                Err(e) => {
                    out.failed.insert(i);
                    jobs.send(Job::FileError {
                        name,
                        error: e.to_string(),
                    })
                }
            },
        };
        if sent.is_err() {
            return out; // the writer stopped
        }
        i += 1;
    }
    out
}

/// Fetch `objects` (inputs `first..`) with `opts.discover.bucket.concurrency` GETs in flight,
/// in order.
fn read_objects(
    objects: &[Input],
    first: usize,
    jobs: &SyncSender<Job>,
    progress: &Progress,
    opts: &IngestOptions,
    out: &mut ReadOutcome,
) -> std::result::Result<(), std::sync::mpsc::SendError<Job>> {
    use futures::StreamExt;
    let rt = match crate::bucket::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            out.fatal = Some(e);
            return Ok(());
        }
    };
    let list: Vec<Arc<crate::bucket::ObjectInput>> = objects
        .iter()
        .filter_map(|x| match x {
            Input::Object(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    let in_flight = opts.discover.bucket.concurrency.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel(in_flight);
    let fetcher = rt.spawn(async move {
        let mut fetched = futures::stream::iter(list.into_iter().enumerate())
            .map(|(n, o)| async move { (n, o.fetch(WHOLE_FILE_MAX).await) })
            .buffered(in_flight);
        while let Some(r) = fetched.next().await {
            if tx.send(r).await.is_err() {
                break;
            }
        }
    });
    let mut result = Ok(());
    while let Some((n, r)) = rx.blocking_recv() {
        let name: Arc<str> = objects[n].display().into();
        let sent = match r {
            Ok(crate::bucket::Fetched::Whole(bytes)) => {
                progress
                    .bytes_done
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                jobs.send(Job::Whole { name, bytes })
            }
            Ok(crate::bucket::Fetched::Stream(stream)) => {
                let reader = crate::bucket::StreamReader::new(stream, rt.handle().clone());
                match source::decompressing(Box::new(reader)) {
                    Ok(reader) => stream_input(reader, name, jobs, progress, opts).map(|ok| {
                        if !ok {
                            out.failed.insert(first + n);
                        }
                    }),
                    Err(e) => {
                        out.failed.insert(first + n);
                        jobs.send(Job::FileError {
                            name,
                            error: format!("read failed: {e}"),
                        })
                    }
                }
            }
            Err(e) => {
                out.fatal = Some(e);
                break;
            }
        };
        if sent.is_err() {
            result = sent;
            break;
        }
    }
    drop(rx);
    fetcher.abort();
    result
}

/// Cut a stream into jobs; `Ok(false)` if reading it failed part way (reported as a job).
fn stream_input(
    mut reader: Box<dyn Read + Send>,
    name: Arc<str>,
    jobs: &SyncSender<Job>,
    progress: &Progress,
    opts: &IngestOptions,
) -> std::result::Result<bool, std::sync::mpsc::SendError<Job>> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
    let mut read_error = None;
    let mut eof = false;
    // Fill `buf` up to `want` bytes; false at end of input.
    let mut fill = |buf: &mut Vec<u8>, want: usize, read_error: &mut Option<String>| -> bool {
        let start = buf.len();
        buf.resize(want.max(start + 1), 0);
        let mut len = start;
        while len < buf.len() {
            match reader.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    *read_error = Some(format!("read failed after {} bytes: {e}", len));
                    break;
                }
            }
        }
        buf.truncate(len);
        progress
            .bytes_done
            .fetch_add((len - start) as u64, Ordering::Relaxed);
        len == want.max(start + 1)
    };
    if !fill(&mut buf, CHUNK_BYTES, &mut read_error) {
        eof = true;
    }
    if !records::looks_like_lines(&buf)
        && let Some(open) = records::array_start(&buf)
    {
        // An array of records (top-level, or `{"Records": [...]}`): cut between elements into
        // chunks that decoders split side by side, so a large document is neither read whole
        // nor decoded on one thread.
        let mut scanner = records::ElementScanner::default();
        let top_level = !buf[..open].contains(&b'{');
        let mut line = 1 + records::newlines(&buf[..open]);
        let mut index = 0u64;
        // The current chunk's elements start at `start`; `scan` is how far the scanner got;
        // `elements` counts the chunk's complete elements so far.
        let (mut start, mut scan, mut elements) = (open + 1, open + 1, 0u64);
        loop {
            let found = scanner.next(&buf, scan);
            let (cut, end) = match found {
                Some(records::Boundary::Comma(i)) => {
                    elements += 1;
                    scan = i + 1;
                    if i - start < CHUNK_BYTES {
                        continue;
                    }
                    (i, false)
                }
                Some(records::Boundary::End(i)) => (i, true),
                None if eof || read_error.is_some() => (buf.len(), true),
                None => {
                    scan = buf.len();
                    // Keep the window small: drop what was sent.
                    if start > 0 {
                        buf.drain(..start);
                        scan -= start;
                        start = 0;
                    }
                    let want = buf.len() + CHUNK_BYTES;
                    if !fill(&mut buf, want, &mut read_error) {
                        eof = true;
                    }
                    continue;
                }
            };
            let region = &buf[start..cut];
            let blank = region.iter().all(u8::is_ascii_whitespace);
            if blank && end && index == 0 && found.is_some() {
                // An empty array.
            } else if blank && found.is_some() {
                jobs.send(Job::FileError {
                    name: name.clone(),
                    error: format!("record {index} (line {line}) is missing from the array"),
                })?;
            } else {
                let mut bytes = Vec::with_capacity(region.len() + 2);
                bytes.push(b'[');
                bytes.extend_from_slice(region);
                // A truncated array stays open, so that the split reports where it ends.
                if found.is_some() {
                    bytes.push(b']');
                }
                jobs.send(Job::Document {
                    name: name.clone(),
                    bytes,
                    first_line: line,
                    first_index: index,
                })?;
            }
            line += records::newlines(region);
            index += elements;
            elements = 0;
            start = cut + 1;
            scan = start;
            if end {
                break;
            }
        }
        // After a top-level array's `]` only whitespace may follow (a `Records` object's other
        // keys are not events and are not read).
        if top_level {
            let mut rest = buf.get(start..).unwrap_or_default().to_vec();
            while rest.iter().all(u8::is_ascii_whitespace) && !eof && read_error.is_none() {
                rest.clear();
                if !fill(&mut rest, CHUNK_BYTES, &mut read_error) {
                    eof = true;
                }
            }
            if !rest.iter().all(u8::is_ascii_whitespace) {
                jobs.send(Job::FileError {
                    name: name.clone(),
                    error: format!("unexpected data after the array of events (line {line})"),
                })?;
            }
        }
    } else if !records::looks_like_lines(&buf) {
        // One document: it has to be read whole.
        while !eof && read_error.is_none() {
            let want = buf.len() * 2;
            if !fill(&mut buf, want, &mut read_error) {
                eof = true;
            }
        }
        jobs.send(Job::Document {
            name: name.clone(),
            bytes: buf,
            first_line: 1,
            first_index: 0,
        })?;
    } else {
        let mut line = 1u64;
        let line_cap = opts.max_record_bytes.max(CHUNK_BYTES) * 2;
        loop {
            let cut = if eof || read_error.is_some() {
                buf.len()
            } else {
                match buf.iter().rposition(|&b| b == b'\n') {
                    Some(p) => p + 1,
                    None if buf.len() >= line_cap => buf.len(),
                    None => 0,
                }
            };
            if cut > 0 {
                let rest = buf.split_off(cut);
                let chunk = std::mem::replace(&mut buf, rest);
                let lines = records::newlines(&chunk);
                jobs.send(Job::Lines {
                    name: name.clone(),
                    bytes: chunk,
                    first_line: line,
                })?;
                line += lines;
            }
            if eof || read_error.is_some() {
                break;
            }
            let want = buf.len() + CHUNK_BYTES;
            if !fill(&mut buf, want, &mut read_error) {
                eof = true;
            }
        }
    }
    if let Some(error) = read_error {
        jobs.send(Job::FileError { name, error })?;
        return Ok(false);
    }
    Ok(true)
}

/// A buffer to write out when over the memory budget.
enum Victim {
    /// A partition, and whether it is idle (no chunk added to it lately: likely complete).
    Events(PartitionKey, bool),
    AuditLogs(chrono::NaiveDate),
}

#[derive(Default)]
struct PartBuf {
    batches: Vec<(RecordBatch, Vec<u128>)>,
    rows: usize,
    bytes: usize,
    /// The writer's `adds` when rows last came in.
    touched: u64,
}

impl PartBuf {
    /// Buffer a batch and its dedup keys (chunk `adds` of the run); returns its bytes.
    fn push(&mut self, (batch, keys): (RecordBatch, Vec<u128>), adds: u64) -> usize {
        let bytes = batch.get_array_memory_size();
        self.touched = adds;
        self.rows += batch.num_rows();
        self.bytes += bytes;
        self.batches.push((batch, keys));
        bytes
    }
}

/// Count a partition's new file and remember it (its dedup keys are read back from it).
fn file_written(
    summary: &mut IngestSummary,
    by_part: &mut HashMap<PartitionKey, Vec<PathBuf>>,
    key: &PartitionKey,
    file: &StagedFile,
) {
    summary.ingested += file.entry.rows;
    by_part
        .entry(key.clone())
        .or_default()
        .push(file.staged.clone());
}

/// The writer side: partition buffers, dedup, files, quarantine.
struct Writer<'g> {
    guard: &'g mut WriteGuard,
    opts: IngestOptions,
    parts: HashMap<PartitionKey, PartBuf>,
    buffered: usize,
    /// Decoded chunks added so far.
    adds: u64,
    /// A partition no chunk has added to for this many chunks is idle.
    idle_after: u64,
    /// Encoder threads writing partitions' files; they keep the finished files in order.
    encoders: EncoderPool,
    staged_by_part: HashMap<PartitionKey, Vec<PathBuf>>,
    keys: HashMap<PartitionKey, HashSet<u128>>,
    cached_keys: usize,
    /// Data-audit logs: buffers, staged files and dedup keys per UTC date.
    audit_parts: HashMap<chrono::NaiveDate, PartBuf>,
    audit_staged: Vec<StagedFile>,
    audit_staged_by_date: HashMap<chrono::NaiveDate, Vec<PathBuf>>,
    audit_keys: HashMap<chrono::NaiveDate, HashSet<u128>>,
    quarantine: Option<(PathBuf, BufWriter<File>)>,
    /// Inputs (as named in messages) with a quarantined record.
    bad_files: HashSet<String>,
    summary: IngestSummary,
}

impl Writer<'_> {
    fn add(&mut self, d: Decoded, progress: &Progress) -> Result<()> {
        self.collect(false)?;
        self.adds += 1;
        self.summary.records += d.records;
        self.summary.insight_events += d.insight;
        self.summary.digest_files += d.digest;
        progress
            .files_done
            .fetch_add(d.files_done, Ordering::Relaxed);
        progress.records.fetch_add(d.records, Ordering::Relaxed);
        for b in d.bad {
            self.quarantine(b)?;
        }
        for (key, builder) in d.parts {
            if builder.is_empty() {
                continue;
            }
            let p = self.parts.entry(key.clone()).or_default();
            self.buffered += p.push(builder.finish(), self.adds);
            if p.rows >= self.opts.max_file_rows {
                self.flush(&key, true)?;
            }
        }
        for (date, builder) in d.audit {
            if builder.is_empty() {
                continue;
            }
            let p = self.audit_parts.entry(date).or_default();
            self.buffered += p.push(builder.finish()?, self.adds);
            if p.rows >= self.opts.max_file_rows {
                self.flush_audit(date)?;
            }
        }
        while self.buffered > self.opts.memory_budget {
            match self.flush_victim() {
                Some(Victim::Events(key, idle)) => self.flush(&key, idle)?,
                Some(Victim::AuditLogs(date)) => self.flush_audit(date)?,
                None => break,
            }
        }
        Ok(())
    }

    /// Take in the files the encoders have finished: all of them (`wait`: at least one, if
    /// any is in flight; returns false when none was).
    fn collect(&mut self, wait: bool) -> Result<bool> {
        let (summary, by_part) = (&mut self.summary, &mut self.staged_by_part);
        let mut on_done =
            |key: &PartitionKey, file: &StagedFile| file_written(summary, by_part, key, file);
        let waited = if wait {
            self.encoders.wait_one(&mut on_done)?
        } else {
            false
        };
        self.encoders.poll(&mut on_done)?;
        Ok(waited)
    }

    /// Wait for every file in flight.
    fn collect_all(&mut self) -> Result<()> {
        while self.collect(true)? {}
        Ok(())
    }

    /// Write out one date's buffered audit logs: dedup against the store and this run, order
    /// by `LogTime` (then key, so the order is stable), one file.
    fn flush_audit(&mut self, date: chrono::NaiveDate) -> Result<()> {
        let Some(p) = self.audit_parts.remove(&date) else {
            return Ok(());
        };
        self.buffered = self.buffered.saturating_sub(p.bytes);
        if !self.audit_keys.contains_key(&date) {
            let dir = trail_store::layout::audit_log_dir(date);
            let store = self.guard.store();
            let mut paths: Vec<PathBuf> = self
                .guard
                .manifest()
                .audit_logs
                .iter()
                .filter(|f| f.path.rsplit_once('/').is_some_and(|(d, _)| d == dir))
                .map(|f| store.readable_path(&f.path))
                .collect::<std::result::Result<_, _>>()?;
            paths.extend(
                self.audit_staged_by_date
                    .get(&date)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            let mut set = HashSet::new();
            audit::load_audit_keys(&paths, &mut set)?;
            self.audit_keys.insert(date, set);
        }
        let seen = self
            .audit_keys
            .get_mut(&date)
            .ok_or_else(|| IngestError::Internal("audit key cache".into()))?;
        let mut picks: Vec<(i64, u128, usize, usize)> = Vec::with_capacity(p.rows);
        for (b, (batch, keys)) in p.batches.iter().enumerate() {
            let times = arrow::array::AsArray::as_primitive::<
                arrow::datatypes::TimestampMicrosecondType,
            >(batch.column(0));
            for (r, k) in keys.iter().enumerate() {
                if seen.insert(*k) {
                    picks.push((times.value(r), *k, b, r));
                } else {
                    self.summary.audit_log_duplicates += 1;
                }
            }
        }
        if picks.is_empty() {
            return Ok(());
        }
        picks.sort_unstable();
        let batches: Vec<&RecordBatch> = p.batches.iter().map(|(b, _)| b).collect();
        let mut sorted = Vec::new();
        for chunk in picks.chunks(8 * 1024) {
            let idx: Vec<(usize, usize)> = chunk.iter().map(|&(_, _, b, r)| (b, r)).collect();
            sorted.push(
                arrow::compute::interleave_record_batch(&batches, &idx)
                    .map_err(|e| IngestError::arrow("assembling audit logs", e))?,
            );
        }
        drop(batches);
        drop(p);
        let (staged, rel) = self.guard.new_audit_log_file(date);
        if let Some(file) = audit::write_audit_file(&staged, rel, date, &sorted)? {
            self.summary.audit_logs_ingested += file.entry.rows;
            self.audit_staged_by_date
                .entry(date)
                .or_default()
                .push(staged);
            self.audit_staged.push(file);
        }
        Ok(())
    }

    /// The partition to write out when over budget: the largest idle one, else the largest.
    /// Flushing only the largest wrote a big partition in many pieces while dozens of
    /// complete small ones sat in the budget (a 1M-event delivery tree: 797 files in 480
    /// partitions; idle first: one file per partition).
    fn flush_victim(&self) -> Option<Victim> {
        let idle = |p: &PartBuf| p.touched + self.idle_after <= self.adds;
        let events = self
            .parts
            .iter()
            .max_by_key(|(_, p)| (idle(p), p.bytes))
            .map(|(k, p)| ((idle(p), p.bytes), Victim::Events(k.clone(), idle(p))));
        let audit = self
            .audit_parts
            .iter()
            .max_by_key(|(_, p)| (idle(p), p.bytes))
            .map(|(d, p)| ((idle(p), p.bytes), Victim::AuditLogs(*d)));
        match (events, audit) {
            (Some(e), Some(a)) => Some(if a.0 > e.0 { a.1 } else { e.1 }),
            (e, a) => e.or(a).map(|(_, v)| v),
        }
    }

    fn quarantine(&mut self, b: Bad) -> Result<()> {
        self.summary.quarantined += 1;
        if !self.bad_files.contains(b.info.file.as_str()) {
            self.bad_files.insert(b.info.file.clone());
        }
        if self.summary.errors.len() < ERRORS_IN_SUMMARY {
            self.summary.errors.push(b.info.clone());
        }
        if self.quarantine.is_none() {
            let path = self.guard.new_staging_path("quarantine.ndjson");
            let f = File::create(&path).map_err(|e| IngestError::io(&path, e))?;
            self.quarantine = Some((path, BufWriter::new(f)));
        }
        let Some((path, w)) = self.quarantine.as_mut() else {
            return Ok(());
        };
        let mut rec = serde_json::json!({
            "file": b.info.file,
            "line": b.info.line,
            "error": b.info.error,
        });
        if let Some(i) = b.info.index {
            rec["index"] = i.into();
        }
        match std::str::from_utf8(&b.text) {
            Ok(t) => rec["record"] = t.into(),
            Err(_) => {
                rec["record_base64"] = base64::engine::general_purpose::STANDARD
                    .encode(&b.text)
                    .into()
            }
        }
        serde_json::to_writer(&mut *w, &rec)
            .map_err(|e| IngestError::io(path.clone(), e.into()))?;
        w.write_all(b"\n")
            .map_err(|e| IngestError::io(path.clone(), e))
    }

    fn keys_for(&mut self, key: &PartitionKey) -> Result<&mut HashSet<u128>> {
        if !self.keys.contains_key(key) {
            // The partition's keys are read back from its files: those being written first.
            self.wait_for(key)?;
            if self.cached_keys > self.opts.key_cache_keys {
                // Keys are read back from closed files only: keep those of partitions whose
                // file is open or still being written.
                let encoders = &self.encoders;
                self.keys
                    .retain(|k, _| encoders.has_open(k) || encoders.is_pending(k));
                self.cached_keys = self.keys.values().map(HashSet::len).sum();
            }
            let dir = key.dir();
            let store = self.guard.store();
            let mut paths: Vec<PathBuf> = self
                .guard
                .manifest()
                .files
                .iter()
                .filter(|f| f.path.rsplit_once('/').is_some_and(|(d, _)| d == dir))
                .map(|f| store.readable_path(&f.path))
                .collect::<std::result::Result<_, _>>()?;
            paths.extend(self.staged_by_part.get(key).into_iter().flatten().cloned());
            let mut set = HashSet::new();
            load_keys(&paths, &mut set)?;
            self.cached_keys += set.len();
            self.keys.insert(key.clone(), set);
        }
        self.keys
            .get_mut(key)
            .ok_or_else(|| IngestError::Internal("key cache".into()))
    }

    /// Wait until no job of `key` is in flight: its files are written and its open file, if
    /// any, is back in the pool.
    fn wait_for(&mut self, key: &PartitionKey) -> Result<()> {
        while self.encoders.is_pending(key) {
            self.collect(true)?;
        }
        Ok(())
    }

    /// Hand a job to the encoders once one is free and its rows fit the budget beside those
    /// in flight. Rows being encoded are out of the budget but still in memory: at most one
    /// partition per encoder, and together at most the budget (unless one partition alone is
    /// more).
    fn submit(&mut self, job: EncodeJob) -> Result<()> {
        while self.encoders.in_flight() > 0
            && (self.encoders.in_flight() >= self.encoders.threads()
                || self.encoders.in_flight_bytes() + job.bytes > self.opts.memory_budget)
        {
            self.collect(true)?;
        }
        self.encoders.submit(job)
    }

    /// Close every file kept open for appends, once the jobs in flight are done.
    fn close_open_files(&mut self) -> Result<()> {
        self.collect_all()?;
        for key in self.encoders.open_partitions() {
            self.submit(EncoderPool::close_job(key))?;
        }
        self.collect_all()
    }

    /// Write out a partition's buffered rows: dedup, sort, and hand them to an encoder, which
    /// appends them to the partition's open file if it has one. `last`: the partition is likely
    /// complete (idle, or the end of the input), so its file is closed; otherwise it stays
    /// open for the partition's next rows.
    fn flush(&mut self, key: &PartitionKey, last: bool) -> Result<()> {
        let Some(p) = self.parts.remove(key) else {
            return Ok(());
        };
        self.buffered = self.buffered.saturating_sub(p.bytes);
        let seen = self.keys_for(key)?;
        let sort_keys: Vec<SortKey> = p
            .batches
            .iter()
            .map(|(batch, _)| SortKey::new(batch))
            .collect::<Option<_>>()
            .ok_or_else(|| IngestError::Internal("batch without eventName/eventTime".into()))?;
        let mut picks: Vec<(order::Key, usize, usize)> = Vec::with_capacity(p.rows);
        let mut dups = 0u64;
        for (b, (_, keys)) in p.batches.iter().enumerate() {
            for (r, k) in keys.iter().enumerate() {
                if seen.insert(*k) {
                    picks.push((sort_keys[b].key(r), b, r));
                } else {
                    dups += 1;
                }
            }
        }
        self.cached_keys += picks.len();
        self.summary.duplicates += dups;
        if picks.is_empty() {
            return Ok(());
        }
        picks.sort_unstable();
        let order: Vec<(usize, usize)> = picks.iter().map(|&(_, b, r)| (b, r)).collect();
        drop((picks, sort_keys));
        // The partition's open file comes back with the job that last wrote to it.
        self.wait_for(key)?;
        let appending = self.encoders.has_open(key);
        let target = (!appending).then(|| self.guard.new_file(key));
        if !last
            && !appending
            && self.encoders.open_files() >= MAX_OPEN_FILES
            && let Some(old) = self.encoders.least_recent_open()
        {
            self.submit(EncoderPool::close_job(old))?;
        }
        let batches = p.batches.into_iter().map(|(b, _)| b).collect();
        self.submit(EncodeJob::new(
            key.clone(),
            target,
            batches,
            order,
            p.bytes,
            !last,
        ))
    }
}

/// After the commit: record in each source's ledger what was read whole, and for buckets the
/// newest day listed per date root (unless some object under that root could not be read).
fn record_sources(
    guard: &WriteGuard,
    mut sources: Vec<source::SourceScan>,
    tracked: &[Option<source::Tracked>],
    failed: &HashSet<usize>,
    bad: &HashSet<usize>,
    options: &str,
) -> Result<Vec<SourceStats>> {
    let mut blocked_roots: Vec<HashSet<String>> = vec![HashSet::new(); sources.len()];
    for (i, t) in tracked.iter().enumerate() {
        let Some(t) = t else { continue };
        if failed.contains(&i) {
            let roots = &mut blocked_roots[t.source];
            for root in sources[t.source].newest_day.keys() {
                if t.key.starts_with(root.as_str()) {
                    roots.insert(root.clone());
                }
            }
            continue;
        }
        let mut seen = t.seen.clone();
        if bad.contains(&i) {
            seen.bad_under = Some(options.to_owned());
        }
        sources[t.source].ledger.seen.insert(t.key.clone(), seen);
    }
    let mut stats = Vec::with_capacity(sources.len());
    for (scan, blocked) in sources.into_iter().zip(blocked_roots) {
        let mut ledger = scan.ledger;
        let mut changed = scan.stats.read > 0;
        for (root, day) in scan.newest_day {
            if blocked.contains(&root) || ledger.days.get(&root).is_some_and(|d| *d >= day) {
                continue;
            }
            ledger.days.insert(root, day);
            changed = true;
        }
        if changed {
            guard.save_ledger(&ledger)?;
        }
        stats.push(scan.stats);
    }
    Ok(stats)
}

/// Ingest `paths` (files, directories, `-`, bucket URLs) into the store at `root` (created if
/// missing).
pub fn ingest(
    root: &std::path::Path,
    paths: &[PathBuf],
    opts: &IngestOptions,
    progress: &Progress,
    on_wait: impl FnOnce(&str),
) -> Result<IngestSummary> {
    let started = Instant::now();
    let mut on_wait = Some(on_wait);
    let mut retries = 0u32;
    loop {
        let wait = |holder: &str| {
            if let Some(f) = on_wait.take() {
                f(holder);
            }
        };
        match ingest_once(root, paths, opts, progress, wait) {
            // Another writer committed to the bucket store first: what this attempt uploaded
            // is gone again, so run against the new state (dedup keeps every event once).
            Err(IngestError::Store(StoreError::Conflict { url, generation }))
                if retries < COMMIT_RETRIES =>
            {
                retries += 1;
                tracing::info!("{url}: generation {generation} was taken; reading again");
                for counter in [
                    &progress.bytes_done,
                    &progress.files_done,
                    &progress.records,
                ] {
                    counter.store(0, Ordering::Relaxed);
                }
            }
            Err(IngestError::Store(StoreError::Conflict { url, generation })) => {
                return Err(IngestError::Bucket {
                    url,
                    reason: format!(
                        "other writers committed first {} times in a row (last at generation \
                         {generation}); nothing of this run was committed, run it again",
                        retries + 1
                    ),
                });
            }
            Err(e) => return Err(e),
            Ok(mut summary) => {
                summary.commit_retries = retries;
                summary.elapsed_secs = started.elapsed().as_secs_f64();
                return Ok(summary);
            }
        }
    }
}

/// Times a run against a bucket store starts again after losing a commit race.
const COMMIT_RETRIES: u32 = 8;

fn ingest_once(
    root: &std::path::Path,
    paths: &[PathBuf],
    opts: &IngestOptions,
    progress: &Progress,
    on_wait: impl FnOnce(&str),
) -> Result<IngestSummary> {
    let started = Instant::now();
    let store = Store::create_with(root, &opts.discover.bucket.connect)?;
    let mut guard = store.lock(opts.wait_for_lock, on_wait)?;
    // Under the lock: the ledgers read are those of the last commit.
    let options = format!("{:?}/{}", opts.normalize, opts.max_record_bytes);
    let found = source::discover_sources(paths, &store, &opts.discover, &options)?;
    let (inputs, skipped) = (found.inputs, found.skipped);
    let files_total = inputs.iter().filter(|i| !matches!(i, Input::Stdin)).count() as u64;
    progress.files_total.store(files_total, Ordering::Relaxed);
    progress
        .bytes_total
        .store(inputs.iter().map(Input::size).sum(), Ordering::Relaxed);
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let mut writer = Writer {
        guard: &mut guard,
        opts: opts.clone(),
        parts: HashMap::new(),
        buffered: 0,
        adds: 0,
        // Each decoder hands over its own chunks; a partition still being read is in one of
        // the last few of them.
        idle_after: 2 * threads as u64 + 2,
        // One encoder per decoder: on large NDJSON files encoding costs about half as much CPU
        // as decoding, and with fewer the decoders waited for it.
        encoders: EncoderPool::new(threads),
        staged_by_part: HashMap::new(),
        keys: HashMap::new(),
        cached_keys: 0,
        audit_parts: HashMap::new(),
        audit_staged: Vec::new(),
        audit_staged_by_date: HashMap::new(),
        audit_keys: HashMap::new(),
        quarantine: None,
        bad_files: HashSet::new(),
        summary: IngestSummary {
            store: store.location(),
            files_read: inputs.len() as u64,
            digest_files: skipped
                .iter()
                .filter(|s| s.reason == SkipReason::Digest)
                .count() as u64,
            skipped_files: skipped,
            ..Default::default()
        },
    };

    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let (out_tx, out_rx) = sync_channel::<Decoded>(threads);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let result: Result<HashSet<usize>> = std::thread::scope(|s| {
        let inputs = &inputs;
        let reader = s.spawn(move || read_inputs(inputs, &job_tx, progress, opts));
        let mut workers = Vec::new();
        for _ in 0..threads {
            let rx: Arc<Mutex<Receiver<Job>>> = job_rx.clone();
            let tx = out_tx.clone();
            workers.push(s.spawn(move || {
                let mut acc = Decoded::default();
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => break,
                    };
                    let Ok(job) = job else { break };
                    decode(job, opts, &mut acc);
                    if acc.is_full() {
                        let next = Decoded::after(&acc);
                        if tx.send(std::mem::replace(&mut acc, next)).is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send(acc);
            }));
        }
        drop(out_tx);
        let mut first_err = None;
        for decoded in out_rx.iter() {
            if first_err.is_none()
                && let Err(e) = writer.add(decoded, progress)
            {
                first_err = Some(e);
            }
        }
        let read = reader.join();
        let panicked = workers.into_iter().any(|w| w.join().is_err());
        if let Some(e) = first_err {
            return Err(e);
        }
        let Ok(read) = read else {
            return Err(IngestError::Internal("the reader thread panicked".into()));
        };
        if panicked {
            return Err(IngestError::Internal("a decoder thread panicked".into()));
        }
        match read.fatal {
            Some(e) => Err(e),
            None => Ok(read.failed),
        }
    });
    let failed = result?;

    // Write what is left, then commit everything at once.
    let keys: Vec<PartitionKey> = writer.parts.keys().cloned().collect();
    for key in keys {
        writer.flush(&key, true)?;
    }
    writer.close_open_files()?;
    let dates: Vec<chrono::NaiveDate> = writer.audit_parts.keys().copied().collect();
    for date in dates {
        writer.flush_audit(date)?;
    }
    let mut extra = Vec::new();
    if let Some((path, w)) = writer.quarantine.take() {
        let f = w
            .into_inner()
            .map_err(|e| IngestError::io(path.clone(), e.into_error()))?;
        f.sync_all().map_err(|e| IngestError::io(&path, e))?;
        let name = format!(
            "{}/{QUARANTINE}/g{:08}.ndjson",
            trail_store::manifest::META_DIR,
            writer.guard.next_generation()
        );
        writer.summary.quarantine_file = Some(match store.bucket() {
            Some(b) => b.url().key_url(&b.key(&name)),
            None => store.root().join(&name).display().to_string(),
        });
        extra.push((path, name));
    }
    let bad_files = std::mem::take(&mut writer.bad_files);
    let staged = writer.encoders.take_files();
    let audit_staged = std::mem::take(&mut writer.audit_staged);
    let mut summary = std::mem::take(&mut writer.summary);
    // The dedup keys (up to `key_cache_keys`), the idle encoder threads and the buffers go before
    // the commit and the compaction, whose merges would otherwise sit on top of them.
    drop(writer);
    summary.files_written = (staged.len() + audit_staged.len()) as u64;
    let touched: HashSet<String> = staged
        .iter()
        .filter_map(|f| f.entry.path.rsplit_once('/').map(|(d, _)| d.to_owned()))
        .collect();
    let audit_dates: HashSet<chrono::NaiveDate> =
        audit_staged.iter().map(|f| f.entry.date).collect();
    summary.partitions_written = (touched.len() + audit_dates.len()) as u64;
    summary.generation = guard.commit_all(staged, audit_staged, &[], extra)?;
    let bad_inputs: HashSet<usize> = inputs
        .iter()
        .enumerate()
        .filter(|(_, i)| bad_files.contains(&i.display()))
        .map(|(n, _)| n)
        .collect();
    summary.sources = record_sources(
        &guard,
        found.sources,
        &found.tracked,
        &failed,
        &bad_inputs,
        &options,
    )?;
    if let Some(copts) = &opts.compact {
        // Merges get as many threads as the decoders had.
        let copts = CompactOptions {
            threads: if copts.threads == 0 {
                threads
            } else {
                copts.threads
            },
            ..copts.clone()
        };
        match compact_partitions(&mut guard, &copts, Some(&touched)) {
            Ok(c) if c.files_removed > 0 => {
                summary.generation = guard.manifest().generation;
                summary.compaction = Some(c);
            }
            Ok(_) => {}
            // The events are committed; another writer's commit came between. Compaction is
            // only tidying, and the next run does it.
            Err(IngestError::Store(StoreError::Conflict { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    summary.bytes_read = progress.bytes_done.load(Ordering::Relaxed);
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}
