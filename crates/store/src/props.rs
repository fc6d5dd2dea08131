//! How event files are written: one set of Parquet writer properties for ingest and compaction.

use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;

use crate::schema;

/// zstd level 1, for the columns in [`ZSTD_COLUMNS`]: as fast to write as snappy on this data
/// and markedly smaller.
pub const ZSTD_LEVEL: i32 = 1;
/// The bulky columns queries rarely scan in full: the raw record, the request and response
/// documents, and the near-unique ids (read a row group at a time after a bloom filter). They
/// are zstd; they hold ~90% of a store's bytes. Every other column is LZ4: it decodes several
/// times faster, and its codec costs nothing to set up, where the Parquet reader creates a zstd
/// context per column chunk (a tenth of a JSON query's time on 480 small files). On the
/// 10M-event benchmark this costs 7% more disk (3.0 GB, was 2.8) and made the sign-in query
/// 26% faster (412 -> 304 ms warm), distinct IPs per user 17% and top event names 18%.
const ZSTD_COLUMNS: [&str; 6] = [
    schema::RAW,
    schema::REQUEST_PARAMETERS,
    schema::RESPONSE_ELEMENTS,
    schema::REFERENCED_RESOURCES,
    schema::EVENT_ID,
    schema::REQUEST_ID,
];
/// Rows per row group: small enough for statistics and bloom filters to prune, large enough
/// for good compression.
pub const MAX_ROW_GROUP_ROWS: usize = 128 * 1024;
/// False-positive rate of the bloom filters on point-lookup columns.
pub const BLOOM_FPP: f64 = 0.01;
/// Columns that are nearly unique per row: dictionary encoding only costs time there.
const NO_DICTIONARY: [&str; 8] = [
    schema::EVENT_ID,
    schema::REQUEST_ID,
    schema::RAW,
    schema::REQUEST_PARAMETERS,
    schema::RESPONSE_ELEMENTS,
    schema::ADDITIONAL_EVENT_DATA,
    schema::REFERENCED_RESOURCES,
    schema::ERROR_MESSAGE,
];

fn path(dotted: &str) -> ColumnPath {
    ColumnPath::new(dotted.split('.').map(str::to_owned).collect())
}

/// Writer properties for a file of `rows` events: LZ4 and zstd by column, page-level
/// statistics (so the page index is written), bloom filters sized for the row group, rows
/// declared sorted by eventTime.
pub fn writer_properties(rows: usize) -> WriterProperties {
    let ndv = rows.clamp(1, MAX_ROW_GROUP_ROWS) as u64;
    let time_idx = schema::column_index(schema::EVENT_TIME).unwrap_or(7) as i32;
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::LZ4_RAW)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: time_idx,
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("trail {}", env!("CARGO_PKG_VERSION")));
    for col in NO_DICTIONARY {
        b = b.set_column_dictionary_enabled(path(col), false);
    }
    let zstd = Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default());
    for col in ZSTD_COLUMNS {
        b = b.set_column_compression(path(col), zstd);
    }
    for col in schema::BLOOM_COLUMNS {
        b = b
            .set_column_bloom_filter_enabled(path(col), true)
            .set_column_bloom_filter_max_ndv(path(col), ndv)
            .set_column_bloom_filter_fpp(path(col), BLOOM_FPP);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulky_columns_are_zstd_and_the_rest_lz4() {
        let p = writer_properties(1000);
        let zstd = Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default());
        for col in ZSTD_COLUMNS {
            assert_eq!(p.compression(&path(col)), zstd, "{col}");
        }
        for col in [
            schema::EVENT_NAME,
            schema::EVENT_TIME,
            schema::SOURCE_IP_ADDRESS,
            schema::ADDITIONAL_EVENT_DATA,
            "userIdentity.userName",
        ] {
            assert_eq!(p.compression(&path(col)), Compression::LZ4_RAW, "{col}");
        }
    }
}
