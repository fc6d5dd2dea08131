//! The order of rows within an event file's row groups: by `eventName`, then `eventTime`.
//!
//! Nearly every analysis filters on `eventName` (sign-ins, key creation, policy changes).
//! With the rows of one name next to each other, such a filter selects a few contiguous runs
//! of rows, and the Parquet reader skips every page of the other columns outside those runs
//! without decompressing it; in time order every page held a few rows of every common name,
//! so every page of every projected column was decoded. Within one name rows stay in time
//! order. Time-bounded queries still prune by the `eventDate` partition and by each file's
//! `eventTime` range.
//!
//! Ingest sorts each row group it writes by [`SortKey`] (a file it appends to holds one sorted
//! row group per append); compaction merges row groups by it into one sorted file. Both declare
//! it in each row group's sorting columns ([`sorting_columns`]), which is what Parquet's
//! declaration means, so other engines know it too; compaction checks an input's declaration
//! before it trusts the input's order.

use arrow::array::{Array, AsArray, RecordBatch, StringArray, StringViewArray};
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use parquet::file::metadata::SortingColumn;

use crate::schema;

/// The columns rows are sorted by, in order.
pub const SORT_COLUMNS: [&str; 2] = [schema::EVENT_NAME, schema::EVENT_TIME];

/// The Parquet sorting columns of [`SORT_COLUMNS`] (ascending, nulls first): what every event
/// file declares. Parquet numbers leaf columns; both key columns come before the first struct,
/// so their leaf index is their field index (a test checks it).
pub fn sorting_columns() -> Vec<SortingColumn> {
    SORT_COLUMNS
        .iter()
        .filter_map(|c| schema::column_index(c))
        .map(|i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: true,
        })
        .collect()
}

/// Whether a file that declares `declared` is in the order of [`sorting_columns`].
pub fn is_sorted_as_stored(declared: Option<&[SortingColumn]>) -> bool {
    declared.is_some_and(|d| d == sorting_columns().as_slice())
}

/// One row's sort key: its `eventName` (missing sorts first) and `eventTime`.
pub type Key<'a> = (Option<&'a str>, i64);

enum Names<'a> {
    Plain(&'a StringArray),
    View(&'a StringViewArray),
}

/// The sort key of each row of one batch of events: `(eventName, eventTime)`, compared as a
/// tuple (a missing name sorts first, names by their bytes).
pub struct SortKey<'a> {
    names: Names<'a>,
    times: &'a arrow::array::PrimitiveArray<TimestampMicrosecondType>,
}

impl<'a> SortKey<'a> {
    /// The key columns of `batch`, which has the event schema's `eventName` (plain or view
    /// strings) and `eventTime`; `None` if it lacks them.
    pub fn new(batch: &'a RecordBatch) -> Option<SortKey<'a>> {
        let names = batch.column_by_name(schema::EVENT_NAME)?;
        let names = match names.data_type() {
            DataType::Utf8 => Names::Plain(names.as_string::<i32>()),
            DataType::Utf8View => Names::View(names.as_string_view()),
            _ => return None,
        };
        let times = batch
            .column_by_name(schema::EVENT_TIME)?
            .as_primitive_opt::<TimestampMicrosecondType>()?;
        Some(SortKey { names, times })
    }

    /// Row `row`'s key. `row` must be below the batch's row count.
    pub fn key(&self, row: usize) -> Key<'a> {
        let name = match &self.names {
            Names::Plain(a) => a.is_valid(row).then(|| a.value(row)),
            Names::View(a) => a.is_valid(row).then(|| a.value(row)),
        };
        (name, self.times.value(row))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::TimestampMicrosecondArray;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(names: Vec<Option<&str>>, times: Vec<i64>, view: bool) -> RecordBatch {
        let (ty, col): (DataType, arrow::array::ArrayRef) = if view {
            (DataType::Utf8View, Arc::new(StringViewArray::from(names)))
        } else {
            (DataType::Utf8, Arc::new(StringArray::from(names)))
        };
        let tz = schema::event_time_type();
        let t = TimestampMicrosecondArray::from(times).with_data_type(tz.clone());
        let s = Schema::new(vec![
            Field::new(schema::EVENT_NAME, ty, true),
            Field::new(schema::EVENT_TIME, tz, false),
        ]);
        RecordBatch::try_new(Arc::new(s), vec![col, Arc::new(t)]).unwrap()
    }

    #[test]
    fn rows_order_by_name_then_time_and_plain_equals_view() {
        let names = vec![Some("b"), None, Some("a"), Some("b"), Some("a")];
        let times = vec![1, 9, 5, 0, 2];
        for view in [false, true] {
            let b = batch(names.clone(), times.clone(), view);
            let k = SortKey::new(&b).unwrap();
            let mut rows: Vec<usize> = (0..b.num_rows()).collect();
            rows.sort_by_key(|&r| k.key(r));
            assert_eq!(rows, [1, 4, 2, 3, 0], "view={view}");
        }
    }

    #[test]
    fn the_declaration_names_name_then_time_by_leaf_column() {
        // Parquet's sorting columns index leaf columns, not Arrow fields.
        let parquet = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema::event_schema())
            .unwrap();
        let cols = sorting_columns();
        let leaves: Vec<String> = cols
            .iter()
            .map(|c| parquet.column(c.column_idx as usize).path().string())
            .collect();
        assert_eq!(leaves, SORT_COLUMNS);
        assert!(is_sorted_as_stored(Some(&cols)));
        assert!(!is_sorted_as_stored(Some(&cols[1..])));
        assert!(!is_sorted_as_stored(None));
    }
}
