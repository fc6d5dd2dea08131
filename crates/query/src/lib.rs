//! `trail-query`: a trail store as SQL tables through Apache DataFusion.
//!
//! [`open`] gives a `SessionContext` with the table `events`: every committed event file of the
//! store, with the partition columns `region` and `eventDate` (a `DATE`).

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use trail_store::{Store, layout, schema};

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] trail_store::StoreError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// A `Result` with [`QueryError`].
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Name of the events table.
pub const EVENTS_TABLE: &str = "events";

/// Open the store at `root` as a DataFusion session with its tables registered.
pub async fn open(root: &std::path::Path) -> Result<SessionContext> {
    let store = Store::open(root)?;
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.bloom_filter_on_read", true);
    let ctx = SessionContext::new_with_config(config);
    let events_dir = store.root().join(layout::EVENTS_DIR);
    let url = ListingTableUrl::parse(format!(
        "{}/",
        events_dir
            .canonicalize()
            .map_err(|e| trail_store::StoreError::io(&events_dir, e))?
            .display()
    ))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(vec![
            (schema::PART_REGION.to_owned(), DataType::Utf8),
            (schema::PART_DATE.to_owned(), DataType::Date32),
        ]);
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema::event_schema());
    let table = ListingTable::try_new(config)?;
    ctx.register_table(EVENTS_TABLE, Arc::new(table))?;
    Ok(ctx)
}
