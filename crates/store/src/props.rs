//! How event files are written: one set of Parquet writer properties for ingest and compaction.

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion,
};
use parquet::schema::types::ColumnPath;

use crate::{order, schema};

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
/// Rows per data page at most (the default is 20,000). Rows are clustered by eventName
/// ([`order`]), so a filter on it selects a few runs of rows; the reader skips, without
/// decompressing, every page of the other columns that holds none of them, and smaller pages
/// leave less to decode around each run. The 10M-event sign-in query (cold, best of 5) took
/// 0.40 s in time order, 0.33 s clustered in 20,000-row pages, 0.28 s in 4,096-row pages.
pub const PAGE_ROWS: usize = 4096;
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
/// declared sorted by eventName and eventTime ([`order`]).
pub fn writer_properties(rows: usize) -> WriterProperties {
    let ndv = rows.clamp(1, MAX_ROW_GROUP_ROWS) as u64;
    let mut b = base().set_sorting_columns(Some(order::sorting_columns()));
    for col in NO_DICTIONARY {
        b = b.set_column_dictionary_enabled(path(col), false);
    }
    // Times are nearly unique, so a dictionary only costs: a reader must decompress a file's
    // whole time dictionary before it can take even one row. Sorted within each eventName
    // run, they delta-encode to ~4 bytes a row (38 MB at 10M events, was 80 MB).
    b = b
        .set_column_dictionary_enabled(path(schema::EVENT_TIME), false)
        .set_column_encoding(path(schema::EVENT_TIME), Encoding::DELTA_BINARY_PACKED);
    let zstd = Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default());
    for col in ZSTD_COLUMNS {
        b = b.set_column_compression(path(col), zstd);
    }
    blooms(b, &schema::BLOOM_COLUMNS, ndv).build()
}

/// What every trail file shares: LZ4 by default, page statistics, small pages, bounded row
/// groups, the writer's name.
fn base() -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::LZ4_RAW)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_created_by(format!("trail {}", env!("CARGO_PKG_VERSION")))
}

/// Bloom filters on `columns`, sized for `ndv` values per row group.
fn blooms(mut b: WriterPropertiesBuilder, columns: &[&str], ndv: u64) -> WriterPropertiesBuilder {
    for col in columns {
        b = b
            .set_column_bloom_filter_enabled(path(col), true)
            .set_column_bloom_filter_max_ndv(path(col), ndv)
            .set_column_bloom_filter_fpp(path(col), BLOOM_FPP);
    }
    b
}

/// Columns of `audit_logs` with bloom filters: the point lookups of the `DescribeAuditLogs`
/// filters (one user, one client address, one instance).
pub const AUDIT_BLOOM_COLUMNS: [&str; 3] = ["UserName", "ClientIp", "InstanceName"];

/// Writer properties for a file of `rows` data-audit logs: rows in `LogTime` order (declared),
/// zstd for the statement text and the raw record, LZ4 for the rest, delta-encoded times,
/// bloom filters on [`AUDIT_BLOOM_COLUMNS`].
pub fn audit_log_writer_properties(rows: usize) -> WriterProperties {
    let ndv = rows.clamp(1, MAX_ROW_GROUP_ROWS) as u64;
    let zstd = Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default());
    let mut b = base().set_sorting_columns(Some(vec![parquet::file::metadata::SortingColumn {
        column_idx: 0,
        descending: false,
        nulls_first: false,
    }]));
    for col in [schema::AUDIT_LOG_TIME, "CreationTime"] {
        b = b
            .set_column_dictionary_enabled(path(col), false)
            .set_column_encoding(path(col), Encoding::DELTA_BINARY_PACKED);
    }
    for col in ["SqlText", "DataSet", "Message", schema::RAW] {
        b = b
            .set_column_compression(path(col), zstd)
            .set_column_dictionary_enabled(path(col), false);
    }
    blooms(b, &AUDIT_BLOOM_COLUMNS, ndv).build()
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

    #[test]
    fn rows_are_declared_in_store_order_with_small_pages_and_delta_times() {
        let p = writer_properties(1000);
        assert_eq!(p.sorting_columns(), Some(&order::sorting_columns()));
        assert_eq!(p.data_page_row_count_limit(), PAGE_ROWS);
        let time = path(schema::EVENT_TIME);
        assert!(!p.dictionary_enabled(&time));
        assert_eq!(p.encoding(&time), Some(Encoding::DELTA_BINARY_PACKED));
        assert!(p.dictionary_enabled(&path(schema::EVENT_NAME)));
    }
}
