//! Per-file membership summaries: what a query needs to skip an event file without opening it.
//!
//! Every event file written since summaries exist has a small companion file,
//! `_trail/summaries/<the file's path with .sum for .parquet>`, named in its manifest entry
//! ([`crate::FileEntry::summary`]). It holds one split-block bloom filter (Parquet's own
//! [`Sbbf`], the same hash and layout as the filters inside the files) per column that users
//! filter on with equality: [`COLUMNS`]. Each filter is first sized for one distinct value per
//! row at [`FPP`], then folded down to the smallest size that keeps that rate for the values
//! actually inserted, so a column with few distinct values (`eventName`) costs a few hundred
//! bytes and a near-unique one (`eventId`) about 1.2 bytes per row.
//!
//! With the row count and the `eventTime` range already in the manifest, a fresh process can
//! decide which files `WHERE eventId = '…'` or `sourceIpAddress IN (…)` may match from the
//! manifest and these files alone, before it reads a single Parquet footer. A file without a
//! summary (written before summaries, or by another tool) is always admitted.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "TRAILSUM1\n"            magic and version
//! u32                      number of filters
//! per filter: u16 name length, name (a dotted column path), u32 length, Sbbf (header + bitset)
//! ```

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::bloom_filter::Sbbf;

use crate::schema;

/// The columns a summary covers (dotted paths, as in the Parquet schema).
pub const COLUMNS: [&str; 5] = [
    schema::EVENT_NAME,
    schema::EVENT_ID,
    schema::SOURCE_IP_ADDRESS,
    "userIdentity.userName",
    "userIdentity.accessKeyId",
];

/// The false-positive rate each filter is kept at.
pub const FPP: f64 = 0.01;

/// Where summaries live, relative to the store root.
pub const SUMMARY_DIR: &str = "_trail/summaries";

const MAGIC: &[u8] = b"TRAILSUM1\n";

/// The summary path (relative to the store) of the event file at `data_rel`.
pub fn path_for(data_rel: &str) -> String {
    let stem = data_rel.strip_suffix(".parquet").unwrap_or(data_rel);
    format!("{SUMMARY_DIR}/{stem}.sum")
}

/// Builds a file's summary from the batches written to it.
pub struct SummaryBuilder {
    filters: Vec<Sbbf>,
}

impl SummaryBuilder {
    /// A builder for a file of about `rows` rows (more is fine: the filters only fill faster).
    pub fn new(rows: usize) -> Self {
        let ndv = rows.max(1) as u64;
        let filters = COLUMNS
            .iter()
            .map(|_| {
                Sbbf::new_with_ndv_fpp(ndv, FPP)
                    .unwrap_or_else(|_| Sbbf::new_with_num_of_bytes(ndv as usize * 2))
            })
            .collect();
        SummaryBuilder { filters }
    }

    /// Add every non-null value of the summarized columns of `batch` (columns it lacks are
    /// skipped).
    pub fn add(&mut self, batch: &RecordBatch) {
        for (filter, path) in self.filters.iter_mut().zip(COLUMNS) {
            if let Some(column) = leaf(batch, path) {
                insert_all(filter, column.as_ref());
            }
        }
    }

    /// The summary's bytes, each filter folded to its smallest size at [`FPP`].
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(COLUMNS.len() as u32).to_le_bytes());
        for (mut filter, name) in self.filters.into_iter().zip(COLUMNS) {
            filter.fold_to_target_fpp(FPP);
            let mut bytes = Vec::new();
            // Writing to a Vec cannot fail.
            let _ = filter.write(&mut bytes);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }
}

/// The column at a dotted path (one struct level deep at most).
fn leaf(batch: &RecordBatch, path: &str) -> Option<arrow::array::ArrayRef> {
    match path.split_once('.') {
        None => batch.column_by_name(path).cloned(),
        Some((parent, child)) => batch
            .column_by_name(parent)?
            .as_struct_opt()?
            .column_by_name(child)
            .cloned(),
    }
}

fn insert_all(filter: &mut Sbbf, column: &dyn Array) {
    match column.data_type() {
        DataType::Utf8 => column
            .as_string::<i32>()
            .iter()
            .flatten()
            .for_each(|v| filter.insert(v)),
        DataType::LargeUtf8 => column
            .as_string::<i64>()
            .iter()
            .flatten()
            .for_each(|v| filter.insert(v)),
        DataType::Utf8View => column
            .as_string_view()
            .iter()
            .flatten()
            .for_each(|v| filter.insert(v)),
        _ => {}
    }
}

/// A parsed summary.
#[derive(Debug)]
pub struct Summary {
    filters: Vec<(String, Sbbf)>,
}

impl Summary {
    /// Parse a summary file; `Err` names what is wrong (the caller then admits the file).
    pub fn parse(bytes: &[u8]) -> Result<Summary, String> {
        let mut rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| "not a trail summary (bad magic)".to_owned())?;
        let mut take = |n: usize| -> Result<&[u8], String> {
            if rest.len() < n {
                return Err("truncated".to_owned());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "truncated")?);
        let mut filters = Vec::new();
        for _ in 0..count.min(64) {
            let len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| "truncated")?);
            let name = String::from_utf8_lossy(take(len as usize)?).into_owned();
            let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "truncated")?);
            let filter =
                Sbbf::from_bytes(take(len as usize)?).map_err(|e| format!("{name}: {e}"))?;
            filters.push((name, filter));
        }
        Ok(Summary { filters })
    }

    /// Whether the file may hold `value` in `column`: `None` when the summary does not cover
    /// the column (nothing is known), `Some(false)` when it certainly does not.
    pub fn may_contain(&self, column: &str, value: &str) -> Option<bool> {
        self.filters
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, f)| f.check(value))
    }

    /// The summary's size in memory (for caches).
    pub fn size(&self) -> usize {
        self.filters
            .iter()
            .map(|(n, f)| n.len() + f.num_blocks() * 32)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, StructArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch(ids: &[&str], users: &[Option<&str>]) -> RecordBatch {
        let user = StructArray::from(vec![(
            Arc::new(Field::new("userName", DataType::Utf8, true)),
            Arc::new(StringArray::from(users.to_vec())) as arrow::array::ArrayRef,
        )]);
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("eventId", DataType::Utf8, true),
                Field::new("userIdentity", user.data_type().clone(), true),
            ])),
            vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(user)],
        )
        .unwrap()
    }

    #[test]
    fn members_are_found_and_most_others_are_not() {
        let ids: Vec<String> = (0..5000).map(|i| format!("id-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let users: Vec<Option<&str>> = (0..5000)
            .map(|i| if i % 3 == 0 { None } else { Some("alice") })
            .collect();
        let mut b = SummaryBuilder::new(5000);
        b.add(&batch(&refs, &users));
        let bytes = b.finish();
        let s = Summary::parse(&bytes).unwrap();
        for id in &ids {
            assert_eq!(s.may_contain("eventId", id), Some(true));
        }
        assert_eq!(s.may_contain("userIdentity.userName", "alice"), Some(true));
        let false_hits = (0..10_000)
            .filter(|i| s.may_contain("eventId", &format!("other-{i}")) == Some(true))
            .count();
        assert!(false_hits < 300, "{false_hits} false positives in 10000");
        // Folded: a single-valued column costs one block.
        assert!(bytes.len() < 5000 * 2 + 1024, "{} bytes", bytes.len());
        assert_eq!(s.may_contain("recipientAccountId", "x"), None);
    }

    #[test]
    fn damaged_summaries_are_errors_not_panics() {
        let mut b = SummaryBuilder::new(10);
        b.add(&batch(&["a"], &[Some("u")]));
        let bytes = b.finish();
        for cut in 0..bytes.len() {
            let _ = Summary::parse(&bytes[..cut]);
        }
        assert!(Summary::parse(b"nonsense").is_err());
    }

    #[test]
    fn summary_paths_mirror_data_paths() {
        assert_eq!(
            path_for("events/region=r/eventDate=2026-01-01/part-g00000001-000001.parquet"),
            "_trail/summaries/events/region=r/eventDate=2026-01-01/part-g00000001-000001.sum"
        );
    }
}
