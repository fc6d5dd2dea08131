//! Writing partitions to Parquet on their own threads.
//!
//! Encoding and compressing a partition's rows is the most expensive step after parsing, and
//! the writer thread used to do it alone: on large NDJSON files it was half of the ingest's CPU
//! time while the decoders waited for it. The writer now only dedups and orders a partition's
//! rows; the pool gathers them in that order, encodes and compresses them, and hands back the
//! staged file. Files keep the names the writer gave them when it submitted the work, so the
//! store's contents do not depend on which encoder finished first.
//!
//! A partition cut while it is still receiving rows (the buffer was full, not the partition
//! complete) need not become a file of its own: its file stays open in the pool and the
//! partition's next cut is appended to it as a new row group, each row group sorted on its
//! own. So a day that does not fit in the buffer is written once, as one file per partition,
//! where it used to be written in pieces and merged by compaction, writing it a second time.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;
use trail_store::layout::PartitionKey;
use trail_store::manifest::StagedFile;

use crate::error::{IngestError, Result};
use crate::files::EventFileWriter;

/// Rows gathered into one batch before it is handed to the Parquet writer: the sorted rows go
/// into the file a slice at a time, as a whole sorted copy of a large partition beside the
/// partition itself doubled peak memory.
const GATHER_ROWS: usize = 2 * 1024;

/// An open file takes about eight times its first cut's rows, at least [`APPEND_MIN_ROWS`] and
/// at most [`APPEND_MAX_ROWS`], before it is closed. Its summary's and bloom filters are sized
/// for that many (and folded to what the rows need when written), so its summary keeps its
/// false-positive rate; an open file's filters take about 0.2 MB at 24K rows.
pub const APPEND_MIN_ROWS: usize = 16 * 1024;
pub const APPEND_MAX_ROWS: usize = 64 * 1024;
/// Files kept open for appends at most; past it the one used longest ago is closed. Each
/// holds its summary's filters and a file descriptor.
pub const MAX_OPEN_FILES: usize = 32;

/// A partition's file kept open for its next rows.
pub struct OpenFile {
    out: EventFileWriter,
    rel: String,
    /// Rows it takes before it is closed.
    capacity: u64,
}

/// One partition's rows, and the order to write them in.
pub struct EncodeJob {
    pub key: PartitionKey,
    /// Where to write a new file (staging) and the path it will have in the store; `None`
    /// when the rows go to the partition's open file.
    pub target: Option<(PathBuf, String)>,
    pub batches: Vec<RecordBatch>,
    /// `(batch, row)` pairs, in file order.
    pub order: Vec<(usize, usize)>,
    /// Memory the batches hold, as the writer counted it.
    pub bytes: usize,
    /// Keep the file open for the partition's next rows (unless it is full).
    pub keep_open: bool,
    /// The partition's open file, which the pool hands to the job.
    file: Option<Box<OpenFile>>,
}

impl EncodeJob {
    pub fn new(
        key: PartitionKey,
        target: Option<(PathBuf, String)>,
        batches: Vec<RecordBatch>,
        order: Vec<(usize, usize)>,
        bytes: usize,
        keep_open: bool,
    ) -> Self {
        EncodeJob {
            key,
            target,
            batches,
            order,
            bytes,
            keep_open,
            file: None,
        }
    }
}

enum Encoded {
    Open(Box<OpenFile>),
    Closed(Option<StagedFile>),
}

struct Done {
    seq: u64,
    key: PartitionKey,
    bytes: usize,
    result: Result<Encoded>,
}

/// Write one partition's rows, in order, to its open file or a new one; then keep the file
/// open or close it.
fn encode(job: &mut EncodeJob) -> Result<Encoded> {
    let mut file = match job.file.take() {
        Some(f) => *f,
        None => {
            let Some((staged, rel)) = job.target.take() else {
                return Err(IngestError::Internal(format!(
                    "rows of {} with neither an open file nor a new file's name",
                    job.key.dir()
                )));
            };
            let rows = job.order.len();
            let capacity = if job.keep_open {
                (rows * 8).clamp(APPEND_MIN_ROWS, APPEND_MAX_ROWS).max(rows)
            } else {
                rows
            };
            OpenFile {
                out: EventFileWriter::create(staged, capacity)?,
                rel,
                capacity: capacity as u64,
            }
        }
    };
    let batches: Vec<&RecordBatch> = job.batches.iter().collect();
    for chunk in job.order.chunks(GATHER_ROWS) {
        let sorted = arrow::compute::interleave_record_batch(&batches, chunk)
            .map_err(|e| IngestError::arrow("assembling rows", e))?;
        file.out.write(&sorted)?;
    }
    if job.keep_open && file.out.rows() < file.capacity {
        file.out.end_row_group()?;
        return Ok(Encoded::Open(Box::new(file)));
    }
    Ok(Encoded::Closed(file.out.finish(file.rel, &job.key)?))
}

/// A fixed set of encoder threads with at most one job each in flight.
pub struct EncoderPool {
    tx: Option<SyncSender<(u64, EncodeJob)>>,
    rx: Receiver<Done>,
    handles: Vec<JoinHandle<()>>,
    next_seq: u64,
    in_flight: usize,
    in_flight_bytes: usize,
    /// Jobs in flight per partition: a partition's staged files are only read back (to reload
    /// its dedup keys) once none of its files is still being written.
    pending: HashMap<PartitionKey, usize>,
    /// Finished files by submission order.
    done: BTreeMap<u64, StagedFile>,
    /// Files kept open for appends, with the submission that last wrote to each.
    open: HashMap<PartitionKey, (Box<OpenFile>, u64)>,
}

impl EncoderPool {
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        let (tx, job_rx) = sync_channel::<(u64, EncodeJob)>(threads);
        // Unbounded, but never holds more than `threads` results: one per job in flight.
        let (done_tx, rx) = channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let handles = (0..threads)
            .map(|_| {
                let job_rx = job_rx.clone();
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    loop {
                        let next = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok((seq, mut job)) = next else { return };
                        let result = catch_unwind(AssertUnwindSafe(|| encode(&mut job)))
                            .unwrap_or_else(|_| {
                                Err(IngestError::Internal(format!(
                                    "encoding {} panicked",
                                    job.key.dir()
                                )))
                            });
                        let done = Done {
                            seq,
                            key: job.key.clone(),
                            bytes: job.bytes,
                            result,
                        };
                        // Free the rows before reporting, so the writer's count is true.
                        drop(job);
                        if done_tx.send(done).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        EncoderPool {
            tx: Some(tx),
            rx,
            handles,
            next_seq: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            pending: HashMap::new(),
            done: BTreeMap::new(),
            open: HashMap::new(),
        }
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Jobs submitted and not yet collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Memory held by the jobs in flight.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes
    }

    /// Whether a file of `key` is still being written.
    pub fn is_pending(&self, key: &PartitionKey) -> bool {
        self.pending.get(key).is_some_and(|n| *n > 0)
    }

    /// Whether `key` has a file open for appends.
    pub fn has_open(&self, key: &PartitionKey) -> bool {
        self.open.contains_key(key)
    }

    /// Files open for appends.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// The partition whose open file was written longest ago.
    pub fn least_recent_open(&self) -> Option<PartitionKey> {
        self.open
            .iter()
            .min_by_key(|(_, (_, seq))| *seq)
            .map(|(k, _)| k.clone())
    }

    /// Partitions with an open file, in partition order.
    pub fn open_partitions(&self) -> Vec<PartitionKey> {
        let mut keys: Vec<PartitionKey> = self.open.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// A job that closes `key`'s open file (writes its footer and summary) and adds no rows.
    pub fn close_job(key: PartitionKey) -> EncodeJob {
        EncodeJob::new(key, None, Vec::new(), Vec::new(), 0, false)
    }

    /// Hand a partition to an encoder, with its open file if it has one. The caller keeps at
    /// most [`Self::threads`] in flight (see [`Self::wait_one`]); more wait in the queue. A
    /// partition's jobs must not overlap: submit one only once [`Self::is_pending`] is false.
    pub fn submit(&mut self, mut job: EncodeJob) -> Result<()> {
        if self.is_pending(&job.key) {
            return Err(IngestError::Internal(format!(
                "{} submitted while its file is being written",
                job.key.dir()
            )));
        }
        job.file = self.open.remove(&job.key).map(|(f, _)| f);
        if job.file.is_none() && job.order.is_empty() && !job.keep_open {
            // Nothing to write and no file to close.
            return Ok(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight += 1;
        self.in_flight_bytes += job.bytes;
        *self.pending.entry(job.key.clone()).or_default() += 1;
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| IngestError::Internal("encoder pool closed".into()))?;
        tx.send((seq, job))
            .map_err(|_| IngestError::Internal("the encoder threads stopped".into()))
    }

    fn absorb(
        &mut self,
        d: Done,
        on_done: &mut dyn FnMut(&PartitionKey, &StagedFile),
    ) -> Result<()> {
        self.in_flight -= 1;
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(d.bytes);
        if let Some(n) = self.pending.get_mut(&d.key) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&d.key);
            }
        }
        match d.result? {
            Encoded::Open(f) => {
                self.open.insert(d.key, (f, d.seq));
            }
            Encoded::Closed(Some(file)) => {
                on_done(&d.key, &file);
                self.done.insert(d.seq, file);
            }
            Encoded::Closed(None) => {}
        }
        Ok(())
    }

    /// Wait for one job in flight to finish; false when none is.
    pub fn wait_one(
        &mut self,
        on_done: &mut dyn FnMut(&PartitionKey, &StagedFile),
    ) -> Result<bool> {
        if self.in_flight == 0 {
            return Ok(false);
        }
        let d = self
            .rx
            .recv()
            .map_err(|_| IngestError::Internal("the encoder threads stopped".into()))?;
        self.absorb(d, on_done)?;
        Ok(true)
    }

    /// Collect what has finished, without waiting.
    pub fn poll(&mut self, on_done: &mut dyn FnMut(&PartitionKey, &StagedFile)) -> Result<()> {
        while self.in_flight > 0 {
            match self.rx.try_recv() {
                Ok(d) => self.absorb(d, on_done)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// The staged files written so far, in the order they were submitted (files still open
    /// are not among them: close them first).
    pub fn take_files(&mut self) -> Vec<StagedFile> {
        std::mem::take(&mut self.done).into_values().collect()
    }
}

impl Drop for EncoderPool {
    fn drop(&mut self) {
        // Encoders finish the jobs they hold (at most one each) and stop.
        self.tx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
mod tests {
    use super::*;
    use crate::batch::{BatchBuilder, NormalizeOptions, check};
    use crate::event::parse_event;

    /// A batch of `n` events of one partition, their ids `<tag>-<i>`.
    fn batch(tag: &str, n: usize) -> (PartitionKey, RecordBatch) {
        let mut b = BatchBuilder::default();
        let mut key = None;
        for i in 0..n {
            let text = format!(
                r#"{{"eventId":"{tag}-{i}","eventTime":"2026-10-01T00:00:{:02}Z","acsRegion":"cn-{tag}","eventName":"E{}"}}"#,
                i % 60,
                n - i
            );
            let e = parse_event(&text).unwrap();
            let c = check(&e, &NormalizeOptions::default()).unwrap();
            key.get_or_insert_with(|| PartitionKey::new(c.region, c.date));
            b.append(&e, &c, &text);
        }
        (key.unwrap(), b.finish().0)
    }

    fn job(dir: &std::path::Path, name: &str, tag: &str, n: usize) -> EncodeJob {
        let (key, b) = batch(tag, n);
        let rel = format!("{}/{name}.parquet", key.dir());
        let bytes = b.get_array_memory_size();
        // Backwards: the file must come out in this order, not the batch's.
        let order = (0..n).rev().map(|r| (0, r)).collect();
        EncodeJob::new(
            key,
            Some((dir.join(format!("{name}.parquet")), rel)),
            vec![b],
            order,
            bytes,
            false,
        )
    }

    fn ids(path: &std::path::Path) -> Vec<String> {
        let reader = crate::files::open_columns(path, &["eventId"]).unwrap();
        let mut out = Vec::new();
        for b in reader {
            let b = b.unwrap();
            let a = arrow::array::AsArray::as_string::<i32>(b.column(0));
            out.extend(a.iter().map(|s| s.unwrap().to_owned()));
        }
        out
    }

    #[test]
    fn files_come_back_in_submission_order_with_their_rows_in_the_given_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut pool = EncoderPool::new(2);
        let mut seen = Vec::new();
        // A big job first: the small ones after it finish sooner.
        let sizes = [20_000, 10, 20, 30, 40];
        for (i, n) in sizes.iter().enumerate() {
            while pool.in_flight() >= pool.threads() {
                pool.wait_one(&mut |k, f| seen.push((k.clone(), f.entry.rows)))
                    .unwrap();
            }
            let j = job(tmp.path(), &format!("f{i}"), &format!("r{i}"), *n);
            assert!(!pool.is_pending(&j.key));
            let key = j.key.clone();
            pool.submit(j).unwrap();
            assert!(pool.is_pending(&key));
        }
        while pool
            .wait_one(&mut |k, f| seen.push((k.clone(), f.entry.rows)))
            .unwrap()
        {}
        assert_eq!((pool.in_flight(), pool.in_flight_bytes()), (0, 0));
        assert_eq!(seen.len(), sizes.len());
        let files = pool.take_files();
        let rows: Vec<u64> = files.iter().map(|f| f.entry.rows).collect();
        assert_eq!(rows, sizes.map(|n| n as u64));
        for (i, f) in files.iter().enumerate() {
            assert!(f.entry.path.ends_with(&format!("/f{i}.parquet")));
            let got = ids(&f.staged);
            let want: Vec<String> = (0..sizes[i]).rev().map(|r| format!("r{i}-{r}")).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn a_failed_write_is_reported_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let mut pool = EncoderPool::new(1);
        let j = job(&tmp.path().join("missing"), "f0", "a", 5);
        pool.submit(j).unwrap();
        let err = pool.wait_one(&mut |_, _| {}).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        assert_eq!(pool.in_flight(), 0);
        assert!(pool.take_files().is_empty());
    }
}
