#![allow(clippy::unwrap_used)] // tests unwrap: a failure is the test failing
//! SQL behaviour pinned in sqllogictest files (`tests/slt/*.slt`), as DataFusion pins its own:
//! name resolution, nested fields, the IP and JSON functions, the plans pruning produces, and
//! the errors bad SQL gets. Each file runs against a store ingested from the ActionTrail
//! security fixture; the store's path is written `STORE` in results.
//!
//! To write the expected results of a new query, run
//! `TRAIL_SLT_COMPLETE=1 cargo test -p trail-cli --test sqllogic`, then review the diff.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use trail_query::{Engine, EngineOptions};

mod common;

/// The engine behind the sqllogictest runner.
struct Trail {
    engine: Engine,
    root: String,
}

#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

fn column_type(t: &DataType) -> DefaultColumnType {
    if *t == DataType::Boolean {
        DefaultColumnType::Any
    } else if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

impl Trail {
    fn rows(&self, batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, Failed> {
        let opts = FormatOptions::default().with_null("NULL");
        let mut out = Vec::new();
        for b in batches {
            let cols: Vec<ArrayFormatter> = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
                .collect::<Result<_, _>>()
                .map_err(|e| Failed(e.to_string()))?;
            for r in 0..b.num_rows() {
                let cells: Vec<String> = cols
                    .iter()
                    .map(|f| {
                        let v = f.value(r).to_string().replace(&self.root, "STORE");
                        if v.is_empty() {
                            "(empty)".to_owned()
                        } else {
                            v
                        }
                    })
                    .collect();
                // A cell of several lines (a plan) continues on rows of its own, one per line.
                let last = cells.len().saturating_sub(1);
                let mut lines = cells[last].lines();
                let mut first = cells[..last].to_vec();
                first.push(lines.next().unwrap_or_default().to_owned());
                out.push(first);
                out.extend(lines.map(|l| vec![l.to_owned()]));
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Trail {
    type Error = Failed;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Failed> {
        let fail = |e: trail_query::QueryError| Failed(e.to_string().replace(&self.root, "STORE"));
        let df = self.engine.sql(sql).await.map_err(fail)?;
        let types: Vec<DefaultColumnType> = df
            .schema()
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let batches = df
            .collect()
            .await
            .map_err(|e| fail(self.engine.map_error(e)))?;
        if types.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types,
            rows: self.rows(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "trail"
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_behaviour_in_slt_files() {
    let store = common::fixture_store();
    let root = store.canonicalize().unwrap().display().to_string();
    let files = slt_files();
    assert!(files.len() >= 4, "{files:?}");
    let complete = std::env::var_os("TRAIL_SLT_COMPLETE").is_some();
    let mut failures = Vec::new();
    for file in files {
        let make = || {
            let root = root.clone();
            async move {
                let engine = Engine::open(Path::new(&root), EngineOptions::default())
                    .await
                    .map_err(|e| Failed(e.to_string()))?;
                Ok(Trail { engine, root })
            }
        };
        let mut runner = sqllogictest::Runner::new(make);
        if complete {
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        } else if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {}", file.display(), e.display(false)));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}
