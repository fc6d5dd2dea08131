//! Compaction: merge a partition's small files into one, as crash-safe as ingest.
//!
//! The merged file is written to staging, then one commit adds it and removes the inputs, so
//! every reader sees each event exactly once before and after. Each row group of an input is in
//! the store's row order (`trail_store::order`: eventName, then eventTime); a k-way merge of
//! the row groups keeps the output in that order while holding one batch per row group. A file
//! that does not declare that order (written before it was the store's) is left as it is.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use serde::Serialize;
use trail_store::layout::PartitionKey;
use trail_store::manifest::StagedFile;
use trail_store::order::SortKey;
use trail_store::{FileEntry, WriteGuard};

use crate::error::{IngestError, Result};
use crate::files::{EventFileWriter, open_row_groups, sorted_runs};

/// Rows the inputs of one merge hold decoded at once, in all. Each input also holds its
/// current decompressed pages (about 3 MB: the bulky columns' pages are 1 MB); a heap profile
/// of a merge of 26 files found the decoded batches at half its peak with 32K here and 16K
/// output rows, and 8K and 4K took the peak RSS of compacting 48 partitions from about 470 MiB
/// to about 350 MiB at the same speed.
const MERGE_ROWS: usize = 8 * 1024;
/// Rows per merged output batch.
const OUT_ROWS: usize = 4 * 1024;
/// Sorted runs (row groups) one merge reads at most, unless a single file has more: each holds
/// its current pages while the merge runs.
const MAX_MERGE_RUNS: usize = 32;

/// When and how to compact.
#[derive(Debug, Clone, Serialize)]
pub struct CompactOptions {
    /// A partition is compacted once it has at least this many small files.
    pub min_files: usize,
    /// Files smaller than this are "small".
    pub small_file_bytes: u64,
    /// Most rows in one merged file.
    pub max_rows: u64,
    /// Merges run side by side on at most this many threads (0: one per core)...
    pub threads: usize,
    /// ...while the sorted runs (row groups) they read add up to at most this many. A merge's
    /// memory grows with its inputs (each holds its decompressed pages and a share of the
    /// decoded rows); one merge alone may read more.
    pub parallel_inputs: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            min_files: 8,
            small_file_bytes: 64 << 20,
            max_rows: 2_000_000,
            threads: 0,
            parallel_inputs: 32,
        }
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactSummary {
    pub partitions: u64,
    pub files_removed: u64,
    pub files_written: u64,
    pub rows: u64,
    /// Seconds the compaction took.
    pub secs: f64,
}

struct Cursor {
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    /// The sort key of each row of `batch`, read once per batch; a run of equal names shares
    /// one allocation.
    keys: Vec<(Option<Rc<str>>, i64)>,
    row: usize,
    path: PathBuf,
}

/// A row's place in the merge: its sort key, then its input.
type HeapKey = (Option<Rc<str>>, i64, usize);

impl Cursor {
    fn advance_batch(&mut self) -> Result<bool> {
        self.row = 0;
        self.keys.clear();
        self.batch = match self.reader.next() {
            Some(b) => Some(b.map_err(|e| IngestError::arrow(self.path.display().to_string(), e))?),
            None => None,
        };
        let Some(b) = self.batch.as_ref() else {
            return Ok(false);
        };
        let sk = SortKey::new(b).ok_or_else(|| {
            IngestError::Internal(format!("{} lacks eventName/eventTime", self.path.display()))
        })?;
        let mut last: Option<Rc<str>> = None;
        for r in 0..b.num_rows() {
            let (name, time) = sk.key(r);
            let name = match (name, &last) {
                (None, _) => None,
                (Some(n), Some(l)) if **l == *n => Some(l.clone()),
                (Some(n), _) => {
                    last = Some(Rc::from(n));
                    last.clone()
                }
            };
            self.keys.push((name, time));
        }
        Ok(true)
    }

    /// The current row's key; `i` is this cursor's index.
    fn key(&self, i: usize) -> Option<HeapKey> {
        self.keys.get(self.row).map(|(n, t)| (n.clone(), *t, i))
    }
}

/// Merge files whose row groups are each in the store's row order into batches of at most
/// `out_rows` rows in that order, handing each to `sink`; `runs` is their row groups in all.
fn merge_sorted(
    paths: &[PathBuf],
    runs: usize,
    out_rows: usize,
    sink: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    // Every run holds one decoded batch while the merge runs: keep their sum near MERGE_ROWS
    // rows whatever the number of runs (whole rows with `raw` are ~1.5 KB).
    let batch_rows = (MERGE_ROWS / runs.max(1)).clamp(256, 8192);
    let mut cursors = Vec::new();
    for p in paths {
        for reader in open_row_groups(p, batch_rows)? {
            let mut c = Cursor {
                reader,
                batch: None,
                keys: Vec::new(),
                row: 0,
                path: p.clone(),
            };
            if c.advance_batch()? {
                cursors.push(c);
            }
        }
    }
    let mut heap: BinaryHeap<Reverse<HeapKey>> = BinaryHeap::with_capacity(cursors.len());
    for (i, c) in cursors.iter().enumerate() {
        if let Some(k) = c.key(i) {
            heap.push(Reverse(k));
        }
    }
    // Batches referenced by the pending output, and each cursor's slot among them.
    let mut arena: Vec<RecordBatch> = Vec::new();
    let mut slot: Vec<Option<usize>> = vec![None; cursors.len()];
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(out_rows);
    let emit = |arena: &mut Vec<RecordBatch>,
                picks: &mut Vec<(usize, usize)>,
                slot: &mut Vec<Option<usize>>,
                sink: &mut dyn FnMut(RecordBatch) -> Result<()>|
     -> Result<()> {
        if picks.is_empty() {
            return Ok(());
        }
        let refs: Vec<&RecordBatch> = arena.iter().collect();
        let out = arrow::compute::interleave_record_batch(&refs, picks)
            .map_err(|e| IngestError::arrow("merging files", e))?;
        picks.clear();
        arena.clear();
        slot.iter_mut().for_each(|s| *s = None);
        sink(out)
    };
    while let Some(Reverse((_, _, i))) = heap.pop() {
        let c = &mut cursors[i];
        let s = match slot[i] {
            Some(s) => s,
            None => {
                let batch = c
                    .batch
                    .clone()
                    .ok_or_else(|| IngestError::Internal("merge cursor".into()))?;
                arena.push(batch);
                slot[i] = Some(arena.len() - 1);
                arena.len() - 1
            }
        };
        picks.push((s, c.row));
        c.row += 1;
        let exhausted = c.batch.as_ref().is_none_or(|b| c.row >= b.num_rows());
        if exhausted {
            slot[i] = None;
            if c.advance_batch()?
                && let Some(k) = c.key(i)
            {
                heap.push(Reverse(k));
            }
        } else if let Some(k) = c.key(i) {
            heap.push(Reverse(k));
        }
        if picks.len() >= out_rows {
            emit(&mut arena, &mut picks, &mut slot, sink)?;
        }
    }
    emit(&mut arena, &mut picks, &mut slot, sink)
}

/// One merge: a run of a partition's files into one new file.
struct Merge {
    /// Index of its partition among those being compacted.
    part: usize,
    paths: Vec<PathBuf>,
    /// The inputs' row groups, each a sorted run.
    runs: usize,
    rows: u64,
}

/// A partition being compacted: its merges' count and the files they remove.
struct PartitionWork {
    dir: String,
    key: PartitionKey,
    removed: Vec<String>,
    merges: usize,
}

/// Write one merge's file to `staged`; `None` if it came out empty.
fn run_merge(
    m: &Merge,
    dir: &str,
    key: &PartitionKey,
    staged: PathBuf,
    rel: String,
) -> Result<Option<StagedFile>> {
    let mut out = EventFileWriter::create(staged, m.rows as usize)?;
    merge_sorted(&m.paths, m.runs, OUT_ROWS, &mut |b| out.write(&b))?;
    let file = out.finish(rel, key)?;
    if let Some(f) = &file
        && f.entry.rows != m.rows
    {
        return Err(IngestError::Internal(format!(
            "compaction of {dir} read {} rows, expected {}",
            f.entry.rows, m.rows
        )));
    }
    Ok(file)
}

/// Compact the partitions (directories relative to the store root) in `only`, or all of them,
/// that have at least `min_files` small files. Merges run on up to `threads` threads within
/// the `parallel_inputs` bound; each partition is committed on its own, in partition order,
/// once all its merges are written.
pub fn compact_partitions(
    guard: &mut WriteGuard,
    opts: &CompactOptions,
    only: Option<&HashSet<String>>,
) -> Result<CompactSummary> {
    let started = std::time::Instant::now();
    let mut summary = CompactSummary::default();
    let mut by_dir: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
    for f in &guard.manifest().files {
        let Some((dir, _)) = f.path.rsplit_once('/') else {
            continue;
        };
        if only.is_some_and(|o| !o.contains(dir)) || f.bytes >= opts.small_file_bytes {
            continue;
        }
        by_dir.entry(dir.to_owned()).or_default().push(f.clone());
    }
    let store = guard.store().clone();
    let mut parts: Vec<PartitionWork> = Vec::new();
    let mut merges: Vec<Merge> = Vec::new();
    for (dir, files) in by_dir {
        if files.len() < opts.min_files.max(2) {
            continue;
        }
        let mut files = files
            .into_iter()
            .map(|f| Ok(sorted_runs(&store.readable_path(&f.path)?)?.map(|runs| (f, runs))))
            .filter_map(Result::transpose)
            .collect::<Result<Vec<_>>>()?;
        if files.len() < opts.min_files.max(2) {
            continue;
        }
        files.sort_by_key(|(f, _)| (f.min_time_us, f.path.clone()));
        // Group into merges of at most max_rows rows and MAX_MERGE_RUNS sorted runs.
        let mut groups: Vec<(Vec<FileEntry>, usize)> = vec![];
        let mut rows = 0;
        for (f, runs) in files {
            match groups.last_mut() {
                Some((g, r)) if rows + f.rows <= opts.max_rows && *r + runs <= MAX_MERGE_RUNS => {
                    rows += f.rows;
                    *r += runs;
                    g.push(f);
                }
                _ => {
                    rows = f.rows;
                    groups.push((vec![f], runs));
                }
            }
        }
        let key = PartitionKey::parse_dir(&dir)?;
        let mut work = PartitionWork {
            dir,
            key,
            removed: Vec::new(),
            merges: 0,
        };
        for (group, runs) in groups.into_iter().filter(|(g, _)| g.len() >= 2) {
            let paths: Vec<PathBuf> = group
                .iter()
                .map(|f| store.readable_path(&f.path))
                .collect::<std::result::Result<_, _>>()?;
            merges.push(Merge {
                part: parts.len(),
                paths,
                runs,
                rows: group.iter().map(|f| f.rows).sum(),
            });
            work.merges += 1;
            work.removed.extend(group.into_iter().map(|f| f.path));
        }
        if work.merges > 0 {
            parts.push(work);
        }
    }
    if merges.is_empty() {
        summary.secs = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    type Job = (usize, PathBuf, String);
    type Done = (usize, Result<Option<StagedFile>>);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, merges.len());
    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let (done_tx, done_rx) = channel::<Done>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (merges, parts) = (&merges, &parts);
    // Per partition, the files its merges wrote (by merge index) and how many merges finished.
    let mut written: Vec<(Vec<(usize, StagedFile)>, usize)> =
        parts.iter().map(|_| (Vec::new(), 0)).collect();
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            s.spawn(move || {
                loop {
                    let next = match job_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((i, staged, rel)) = next else { return };
                    let m = &merges[i];
                    let PartitionWork { dir, key, .. } = &parts[m.part];
                    let result =
                        catch_unwind(AssertUnwindSafe(|| run_merge(m, dir, key, staged, rel)))
                            .unwrap_or_else(|_| {
                                Err(IngestError::Internal(format!("compacting {dir} panicked")))
                            });
                    if done_tx.send((i, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let job_tx = job_tx;
        let (mut next, mut running, mut inputs_in_flight) = (0usize, 0usize, 0usize);
        let (mut committed, mut first_err) = (0usize, None);
        loop {
            // Hand out merges in order while threads are free and their input files fit.
            while first_err.is_none()
                && next < merges.len()
                && running < threads
                && (running == 0 || inputs_in_flight + merges[next].runs <= opts.parallel_inputs)
            {
                let (staged, rel) = guard.new_file(&parts[merges[next].part].key);
                if job_tx.send((next, staged, rel)).is_err() {
                    first_err = Some(IngestError::Internal("the merge threads stopped".into()));
                    break;
                }
                running += 1;
                inputs_in_flight += merges[next].runs;
                next += 1;
            }
            if running == 0 {
                break;
            }
            let Ok((i, result)) = done_rx.recv() else {
                first_err.get_or_insert(IngestError::Internal("the merge threads stopped".into()));
                break;
            };
            running -= 1;
            inputs_in_flight -= merges[i].runs;
            let (added, done) = &mut written[merges[i].part];
            *done += 1;
            match result {
                Ok(Some(file)) => added.push((i, file)),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            if first_err.is_some() {
                continue;
            }
            // Commit the partitions, in order, whose merges are all written.
            while committed < parts.len() && written[committed].1 == parts[committed].merges {
                let part = &parts[committed];
                let mut files = std::mem::take(&mut written[committed].0);
                files.sort_by_key(|(i, _)| *i);
                let added: Vec<StagedFile> = files.into_iter().map(|(_, f)| f).collect();
                summary.rows += added.iter().map(|f| f.entry.rows).sum::<u64>();
                summary.files_written += added.len() as u64;
                summary.files_removed += part.removed.len() as u64;
                summary.partitions += 1;
                guard.commit(added, &part.removed, vec![])?;
                committed += 1;
            }
        }
        drop(job_tx);
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;
    summary.secs = started.elapsed().as_secs_f64();
    Ok(summary)
}
