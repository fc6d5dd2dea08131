//! Writing partitions to Parquet on their own threads.
//!
//! Encoding and compressing a partition's rows is the most expensive step after parsing, and
//! the writer thread used to do it alone: on large NDJSON files it was half of the ingest's CPU
//! time while the decoders waited for it. The writer now only dedups and orders a partition's
//! rows; the pool gathers them in that order, encodes and compresses them, and hands back the
//! staged file. Files keep the names the writer gave them when it submitted the work, so the
//! store's contents do not depend on which encoder finished first.

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

/// One partition's rows, and the order to write them in.
pub struct EncodeJob {
    pub key: PartitionKey,
    /// Where to write (staging) and the path the file will have in the store.
    pub staged: PathBuf,
    pub rel: String,
    pub batches: Vec<RecordBatch>,
    /// `(batch, row)` pairs, in file order.
    pub order: Vec<(usize, usize)>,
    /// Memory the batches hold, as the writer counted it.
    pub bytes: usize,
}

struct Done {
    seq: u64,
    key: PartitionKey,
    bytes: usize,
    result: Result<Option<StagedFile>>,
}

/// Write one partition's rows, in order, to its staged file.
fn encode(job: &EncodeJob) -> Result<Option<StagedFile>> {
    let batches: Vec<&RecordBatch> = job.batches.iter().collect();
    let mut out = EventFileWriter::create(job.staged.clone(), job.order.len())?;
    for chunk in job.order.chunks(GATHER_ROWS) {
        let sorted = arrow::compute::interleave_record_batch(&batches, chunk)
            .map_err(|e| IngestError::arrow("assembling rows", e))?;
        out.write(&sorted)?;
    }
    out.finish(job.rel.clone(), &job.key)
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
                        let Ok((seq, job)) = next else { return };
                        let result = catch_unwind(AssertUnwindSafe(|| encode(&job)))
                            .unwrap_or_else(|_| {
                                Err(IngestError::Internal(format!(
                                    "encoding {} panicked",
                                    job.rel
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

    /// Hand a partition to an encoder. The caller keeps at most [`Self::threads`] in flight
    /// (see [`Self::wait_one`]); more wait in the queue.
    pub fn submit(&mut self, job: EncodeJob) -> Result<()> {
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
        if let Some(file) = d.result? {
            on_done(&d.key, &file);
            self.done.insert(d.seq, file);
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

    /// The staged files written so far, in the order they were submitted.
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
        EncodeJob {
            key: key.clone(),
            staged: dir.join(format!("{name}.parquet")),
            rel: format!("{}/{name}.parquet", key.dir()),
            bytes: b.get_array_memory_size(),
            // Backwards: the file must come out in this order, not the batch's.
            order: (0..n).rev().map(|r| (0, r)).collect(),
            batches: vec![b],
        }
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
