//! Running SQL text and printing results; shared by `trail sql`, `trail run` and the REPL.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use futures::StreamExt;
use trail_query::{Engine, QueryError};

use crate::display::{visible, visible_table};
use crate::render::{Format, Renderer, has_columns};

/// How results are shown.
#[derive(Debug, Clone)]
pub struct Settings {
    pub format: Format,
    pub max_rows: Option<usize>,
    pub timing: bool,
}

/// A failed statement, already explained for the user.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Explain an error, pointing into the SQL where DataFusion or the parser knows the position.
pub fn explain(sql: &str, e: &QueryError) -> String {
    let mut msg = format!("error: {}", visible_table(&e.to_string()));
    let mut location: Option<(usize, usize)> = None;
    if let QueryError::DataFusion(df) = e
        && let Some(span) = df.diagnostic().and_then(|d| d.span)
        && span.start.line > 0
    {
        location = Some((span.start.line as usize, span.start.column as usize));
    }
    if location.is_none() {
        // sqlparser: "... at Line: 1, Column: 8"
        let text = e.to_string();
        if let Some(i) = text.rfind("Line: ") {
            let rest = &text[i + 6..];
            let line = rest.split(',').next().and_then(|l| l.trim().parse().ok());
            let col = rest.split("Column: ").nth(1).and_then(|c| {
                c.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .ok()
            });
            if let (Some(l), Some(c)) = (line, col) {
                location = Some((l, c));
            }
        }
    }
    if let Some((line, col)) = location
        && let Some(text) = sql.lines().nth(line.saturating_sub(1))
    {
        let shown = visible(text);
        msg.push_str(&format!(
            "\n  at line {line}, column {col}:\n    {shown}\n    {}^",
            " ".repeat(col.saturating_sub(1).min(shown.chars().count()))
        ));
    }
    msg
}

/// Run every statement of `sql`, printing each result to `out`. Stops at the first error.
pub async fn run_sql(
    engine: &Engine,
    sql: &str,
    settings: &Settings,
    out: &mut dyn Write,
) -> Result<()> {
    let statements = engine.parse(sql).map_err(|e| Failure(explain(sql, &e)))?;
    if statements.is_empty() {
        return Ok(());
    }
    for statement in statements {
        let start = Instant::now();
        let df = engine
            .run_statement(statement)
            .await
            .map_err(|e| Failure(explain(sql, &e)))?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let mut stream = df
            .clone()
            .execute_stream()
            .await
            .map_err(|e| Failure(explain(sql, &engine.map_error(e))))?;
        let show = has_columns(&schema);
        let mut renderer = Renderer::new(out, settings.format, settings.max_rows);
        if show {
            renderer.start(schema)?;
        }
        // A cluster query whose work the cluster lost fails before its first batch: it runs
        // once more (nothing of it was printed).
        let mut may_retry = true;
        while let Some(batch) = stream.next().await {
            let batch = match batch {
                Err(e) if may_retry && trail_cluster::watch::retryable(&e.to_string()) => {
                    may_retry = false;
                    eprintln!(
                        "note: the cluster lost this query's work ({}); running it again",
                        visible(&e.to_string())
                    );
                    stream = df
                        .clone()
                        .execute_stream()
                        .await
                        .map_err(|e| Failure(explain(sql, &engine.map_error(e))))?;
                    continue;
                }
                b => b.map_err(|e| Failure(explain(sql, &engine.map_error(e))))?,
            };
            may_retry = false;
            if show {
                renderer.batch(&batch)?;
            }
        }
        let rows = renderer.finish()?;
        for notice in engine.take_notices() {
            eprintln!("note: {notice}");
        }
        if settings.timing {
            let secs = start.elapsed().as_secs_f64();
            if show {
                writeln!(out, "Time: {secs:.3}s")?;
            } else {
                writeln!(out, "OK (Time: {secs:.3}s)")?;
            }
        }
        let _ = rows;
    }
    Ok(())
}
