//! Writing and reading event files: one Parquet writer for ingest and compaction, and the
//! dedup keys of existing files.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trail_store::manifest::{StagedFile, SummaryRef};
use trail_store::summary::{self, SummaryBuilder};
use trail_store::{FileEntry, layout::PartitionKey, order, props, schema};

use crate::batch::dedup_key;
use crate::error::{IngestError, Result};

/// A Parquet event file being written to staging; rows must arrive in the store's row order
/// ([`trail_store::order`]) within each row group, which every row group declares. A file may
/// take several row groups ([`EventFileWriter::end_row_group`]), each sorted on its own.
pub struct EventFileWriter {
    staged: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
    min: i64,
    max: i64,
    summary: SummaryBuilder,
}

impl EventFileWriter {
    /// Start a file at `staged`, sized for about `rows_hint` rows.
    pub fn create(staged: PathBuf, rows_hint: usize) -> Result<Self> {
        let file = File::create(&staged).map_err(|e| IngestError::io(&staged, e))?;
        let writer = ArrowWriter::try_new(
            file,
            schema::event_schema(),
            Some(props::writer_properties(rows_hint)),
        )
        .map_err(|e| IngestError::parquet(&staged, e))?;
        Ok(EventFileWriter {
            staged,
            writer,
            rows: 0,
            min: i64::MAX,
            max: i64::MIN,
            summary: SummaryBuilder::new(rows_hint),
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Close the row group being written: rows written after this start a new one, sorted on
    /// its own. The file stays open.
    pub fn end_row_group(&mut self) -> Result<()> {
        self.writer
            .flush()
            .map_err(|e| IngestError::parquet(&self.staged, e))
    }

    /// Append rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let time_idx = schema::column_index(schema::EVENT_TIME).unwrap_or(7);
        let times = batch
            .column(time_idx)
            .as_primitive::<TimestampMicrosecondType>();
        if let (Some(lo), Some(hi)) = (arrow::compute::min(times), arrow::compute::max(times)) {
            self.min = self.min.min(lo);
            self.max = self.max.max(hi);
        }
        self.rows += batch.num_rows() as u64;
        self.summary.add(batch);
        self.writer
            .write(batch)
            .map_err(|e| IngestError::parquet(&self.staged, e))
    }

    /// Close and fsync the file (and its summary, beside it in staging) and describe it for
    /// the manifest; an empty file is removed and `None` returned (an empty file is never
    /// committed).
    pub fn finish(self, rel: String, key: &PartitionKey) -> Result<Option<StagedFile>> {
        let staged = self.staged;
        let file = self
            .writer
            .into_inner()
            .map_err(|e| IngestError::parquet(&staged, e))?;
        if self.rows == 0 {
            drop(file);
            std::fs::remove_file(&staged).map_err(|e| IngestError::io(&staged, e))?;
            return Ok(None);
        }
        file.sync_all().map_err(|e| IngestError::io(&staged, e))?;
        let bytes = file
            .metadata()
            .map_err(|e| IngestError::io(&staged, e))?
            .len();
        let summary_staged = staged.with_extension("sum");
        let summary_bytes = self.summary.finish();
        write_synced(&summary_staged, &summary_bytes)?;
        let summary_ref = SummaryRef {
            path: summary::path_for(&rel),
            bytes: summary_bytes.len() as u64,
        };
        Ok(Some(StagedFile {
            staged,
            summary: Some(summary_staged),
            entry: FileEntry {
                path: rel,
                region: key.region.clone(),
                date: key.date,
                rows: self.rows,
                bytes,
                min_time_us: self.min,
                max_time_us: self.max,
                generation: 0,
                summary: Some(summary_ref),
            },
        }))
    }
}

/// Write `bytes` to a new file at `path` and fsync it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(path).map_err(|e| IngestError::io(path, e))?;
    f.write_all(bytes).map_err(|e| IngestError::io(path, e))?;
    f.sync_all().map_err(|e| IngestError::io(path, e))
}

/// Open an event file for reading, with only the leaf columns named (dotted paths).
pub fn open_columns(
    path: &Path,
    leaves: &[&str],
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    open_columns_batched(path, leaves, 8192)
}

/// [`open_columns`] reading `batch_rows` rows at a time.
pub fn open_columns_batched(
    path: &Path,
    leaves: &[&str],
    batch_rows: usize,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| IngestError::parquet(path, e))?;
    let descr = builder.metadata().file_metadata().schema_descr_ptr();
    let reader = if leaves.is_empty() {
        builder
    } else {
        let idx: Vec<usize> = (0..descr.num_columns())
            .filter(|&i| leaves.contains(&descr.column(i).path().string().as_str()))
            .collect();
        builder.with_projection(ProjectionMask::leaves(&descr, idx))
    };
    reader
        .with_batch_size(batch_rows.max(1))
        .build()
        .map_err(|e| IngestError::parquet(path, e))
}

/// If this event file declares the store's row order ([`trail_store::order`]) in every row
/// group, its number of row groups (each a sorted run); `None` if it does not. Compaction
/// merges only such files.
pub fn sorted_runs(path: &Path) -> Result<Option<usize>> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let md = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| IngestError::parquet(path, e))?;
    let sorted = md
        .row_groups()
        .iter()
        .all(|rg| order::is_sorted_as_stored(rg.sorting_columns().map(Vec::as_slice)));
    Ok(sorted.then_some(md.num_row_groups()))
}

/// Readers of every row group of an event file, each on its own, `batch_rows` rows at a time
/// (all columns).
pub fn open_row_groups(
    path: &Path,
    batch_rows: usize,
) -> Result<Vec<parquet::arrow::arrow_reader::ParquetRecordBatchReader>> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let md = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| IngestError::parquet(path, e))?;
    (0..md.metadata().num_row_groups())
        .map(|rg| {
            let f = file.try_clone().map_err(|e| IngestError::io(path, e))?;
            ParquetRecordBatchReaderBuilder::new_with_metadata(f, md.clone())
                .with_row_groups(vec![rg])
                .with_batch_size(batch_rows.max(1))
                .build()
                .map_err(|e| IngestError::parquet(path, e))
        })
        .collect()
}

/// Does any row of this file lack an eventId (so its key needs the `raw` text)?
fn has_null_event_ids(path: &Path) -> Result<bool> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| IngestError::parquet(path, e))?;
    let md = builder.metadata();
    let descr = md.file_metadata().schema_descr();
    let Some(idx) =
        (0..descr.num_columns()).find(|&i| descr.column(i).path().string() == schema::EVENT_ID)
    else {
        return Ok(true);
    };
    Ok(md.row_groups().iter().any(|rg| {
        rg.column(idx)
            .statistics()
            .and_then(|s| s.null_count_opt())
            .is_none_or(|n| n > 0)
    }))
}

/// Dedup keys of every row in the given event files.
pub fn load_keys(paths: &[PathBuf], into: &mut HashSet<u128>) -> Result<()> {
    for path in paths {
        let mut leaves = vec![
            schema::EVENT_ID,
            schema::RECIPIENT_ACCOUNT_ID,
            "userIdentity.accountId",
        ];
        if has_null_event_ids(path)? {
            leaves.push(schema::RAW);
        }
        let reader = open_columns(path, &leaves)?;
        for batch in reader {
            let batch = batch.map_err(|e| IngestError::arrow(path.display().to_string(), e))?;
            let (Some(id), Some(rcpt), Some(ui)) = (
                batch.column_by_name(schema::EVENT_ID),
                batch.column_by_name(schema::RECIPIENT_ACCOUNT_ID),
                batch.column_by_name(schema::USER_IDENTITY),
            ) else {
                return Err(IngestError::Internal(format!(
                    "{} lacks the key columns",
                    path.display()
                )));
            };
            let id = id.as_string::<i32>();
            let rcpt = rcpt.as_string::<i32>();
            let acct = ui
                .as_struct()
                .column_by_name("accountId")
                .map(|a| a.as_string::<i32>().clone());
            let raw = batch
                .column_by_name(schema::RAW)
                .map(|r| r.as_string::<i32>().clone());
            fn get(a: &arrow::array::StringArray, i: usize) -> Option<&str> {
                a.is_valid(i).then(|| a.value(i))
            }
            for i in 0..batch.num_rows() {
                into.insert(dedup_key(
                    get(rcpt, i),
                    acct.as_ref().and_then(|a| get(a, i)),
                    get(id, i),
                    raw.as_ref().map(|r| r.value(i)).unwrap_or(""),
                ));
            }
        }
    }
    Ok(())
}
