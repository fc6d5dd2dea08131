//! Query results on a terminal or into files: table, csv, tsv, json, ndjson, markdown.
//!
//! Event data is attacker-controlled text. Every format except JSON (whose encoder escapes
//! control characters itself) renders control and invisible format characters visibly escaped
//! (`\u{1b}`), and CSV/TSV cells of text columns that start with `=`, `+`, `-`, `@`, tab or CR
//! get a leading `'` so no spreadsheet evaluates them as a formula.

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::display::visible;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Tsv,
    Json,
    Ndjson,
    Markdown,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        <Format as ValueEnum>::from_str(s, true).ok()
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Markdown => "markdown",
        }
    }

    /// Every format's name, in declaration order.
    pub fn names() -> Vec<&'static str> {
        Format::value_variants().iter().map(|f| f.name()).collect()
    }
}

/// Widest cell shown in table and markdown output (longer text ends in `…`).
const MAX_CELL_CHARS: usize = 80;

fn formatted(batch: &RecordBatch) -> Result<Vec<Vec<String>>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut cols = Vec::with_capacity(batch.num_columns());
    for c in batch.columns() {
        let f = ArrayFormatter::try_new(c.as_ref(), &opts)?;
        cols.push(
            (0..batch.num_rows())
                .map(|i| f.value(i).to_string())
                .collect(),
        );
    }
    Ok(cols)
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Struct(_)
    ) || matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// Neutralize a CSV cell that a spreadsheet would read as a formula.
pub fn neutralize(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

fn truncate(s: String) -> String {
    if s.chars().count() <= MAX_CELL_CHARS {
        return s;
    }
    let mut t: String = s.chars().take(MAX_CELL_CHARS - 1).collect();
    t.push('…');
    t
}

/// Writes a result in one format, batch by batch; the table format buffers up to `max_rows`.
pub struct Renderer<'w> {
    out: &'w mut dyn Write,
    format: Format,
    max_rows: Option<usize>,
    schema: Option<SchemaRef>,
    rows: usize,
    table: Vec<Vec<String>>,
    json_started: bool,
}

impl<'w> Renderer<'w> {
    pub fn new(out: &'w mut dyn Write, format: Format, max_rows: Option<usize>) -> Self {
        Renderer {
            out,
            format,
            max_rows,
            schema: None,
            rows: 0,
            table: Vec::new(),
            json_started: false,
        }
    }

    /// Start output for `schema` (writes headers where the format has them).
    pub fn start(&mut self, schema: SchemaRef) -> Result<()> {
        match self.format {
            Format::Csv => {
                let h: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| csv_cell(&neutralize(&visible(f.name()))))
                    .collect();
                writeln!(self.out, "{}", h.join(","))?;
            }
            Format::Tsv => {
                let h: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| tsv_cell(&neutralize(&visible(f.name()))))
                    .collect();
                writeln!(self.out, "{}", h.join("\t"))?;
            }
            Format::Json => {
                write!(self.out, "[")?;
            }
            _ => {}
        }
        self.schema = Some(schema);
        Ok(())
    }

    /// Write one batch.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let before = self.rows;
        self.rows += batch.num_rows();
        let room = match self.max_rows {
            Some(m) => m.saturating_sub(before).min(batch.num_rows()),
            None => batch.num_rows(),
        };
        if room == 0 {
            return Ok(());
        }
        let batch = batch.slice(0, room);
        match self.format {
            Format::Table | Format::Markdown => {
                let cols = formatted(&batch)?;
                for r in 0..batch.num_rows() {
                    self.table.push(
                        cols.iter()
                            .map(|c| {
                                let v = visible(&c[r]);
                                if self.format == Format::Markdown {
                                    truncate(v).replace('|', "\\|")
                                } else {
                                    truncate(v)
                                }
                            })
                            .collect(),
                    );
                }
            }
            Format::Csv | Format::Tsv => {
                let cols = formatted(&batch)?;
                let text: Vec<bool> = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| is_text(f.data_type()))
                    .collect();
                for r in 0..batch.num_rows() {
                    let cells: Vec<String> = cols
                        .iter()
                        .zip(&text)
                        .map(|(c, &t)| {
                            let v = visible(&c[r]);
                            let v = if t { neutralize(&v) } else { v };
                            if self.format == Format::Csv {
                                csv_cell(&v)
                            } else {
                                tsv_cell(&v)
                            }
                        })
                        .collect();
                    let sep = if self.format == Format::Csv {
                        ","
                    } else {
                        "\t"
                    };
                    writeln!(self.out, "{}", cells.join(sep))?;
                }
            }
            Format::Json | Format::Ndjson => {
                let mut buf = Vec::new();
                {
                    let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
                    w.write(&batch)?;
                    w.finish()?;
                }
                let text = String::from_utf8_lossy(&buf);
                for line in text.lines() {
                    if self.format == Format::Json {
                        let sep = if self.json_started { ",\n" } else { "\n" };
                        write!(self.out, "{sep}{line}")?;
                        self.json_started = true;
                    } else {
                        writeln!(self.out, "{line}")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Finish: draw the table, close JSON. Returns the number of rows seen.
    pub fn finish(mut self) -> Result<usize> {
        let schema = self.schema.clone();
        match self.format {
            Format::Table => {
                if let Some(s) = &schema {
                    self.draw_table(s)?;
                }
            }
            Format::Markdown => {
                if let Some(s) = &schema {
                    let names: Vec<String> = s
                        .fields()
                        .iter()
                        .map(|f| visible(f.name()).replace('|', "\\|"))
                        .collect();
                    writeln!(self.out, "| {} |", names.join(" | "))?;
                    let rule: Vec<&str> = s
                        .fields()
                        .iter()
                        .map(|f| {
                            if is_numeric(f.data_type()) {
                                "---:"
                            } else {
                                "---"
                            }
                        })
                        .collect();
                    writeln!(self.out, "|{}|", rule.join("|"))?;
                    for row in &self.table {
                        writeln!(self.out, "| {} |", row.join(" | "))?;
                    }
                    self.more_rows_line()?;
                }
            }
            Format::Json => {
                writeln!(self.out, "{}]", if self.json_started { "\n" } else { "" })?;
            }
            _ => {}
        }
        self.out.flush()?;
        Ok(self.rows)
    }

    fn shown(&self) -> usize {
        self.max_rows.map_or(self.rows, |m| m.min(self.rows))
    }

    fn more_rows_line(&mut self) -> Result<()> {
        let more = self.rows - self.shown();
        if more > 0 {
            writeln!(
                self.out,
                "… {more} more row{} ({} rows in all; \\maxrows or --max-rows shows more)",
                if more == 1 { "" } else { "s" },
                self.rows
            )?;
        }
        Ok(())
    }

    fn draw_table(&mut self, schema: &SchemaRef) -> Result<()> {
        let names: Vec<String> = schema.fields().iter().map(|f| visible(f.name())).collect();
        let numeric: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| is_numeric(f.data_type()))
            .collect();
        let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
        for row in &self.table {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let pad = |s: &str, w: usize, right: bool| {
            let n = s.chars().count();
            let fill = " ".repeat(w.saturating_sub(n));
            if right {
                format!("{fill}{s}")
            } else {
                format!("{s}{fill}")
            }
        };
        let line = |l: &str, m: &str, r: &str| {
            let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
            format!("{l}{}{r}", parts.join(m))
        };
        writeln!(self.out, "{}", line("┌", "┬", "┐"))?;
        let head: Vec<String> = names
            .iter()
            .zip(&widths)
            .map(|(n, &w)| format!(" {} ", pad(n, w, false)))
            .collect();
        writeln!(self.out, "│{}│", head.join("│"))?;
        writeln!(self.out, "{}", line("├", "┼", "┤"))?;
        for row in &self.table {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&numeric)
                .map(|((c, &w), &num)| format!(" {} ", pad(c, w, num)))
                .collect();
            writeln!(self.out, "│{}│", cells.join("│"))?;
        }
        writeln!(self.out, "{}", line("└", "┴", "┘"))?;
        let shown = self.shown();
        if shown == self.rows {
            writeln!(
                self.out,
                "({} row{})",
                self.rows,
                if self.rows == 1 { "" } else { "s" }
            )?;
        } else {
            self.more_rows_line()?;
        }
        Ok(())
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn tsv_cell(s: &str) -> String {
    s.replace('\t', "\\t")
}

/// Nothing is written for a statement without output columns (e.g. `CREATE VIEW`).
pub fn has_columns(batch_schema: &SchemaRef) -> bool {
    !batch_schema.fields().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("who", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![
                    Some("=HYPERLINK(\"x\")"),
                    Some("a\u{1b}[2Jb"),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![-1, 2, 3])),
            ],
        )
        .expect("batch")
    }

    fn render(format: Format, max: Option<usize>) -> String {
        let mut out = Vec::new();
        let b = batch();
        let mut r = Renderer::new(&mut out, format, max);
        r.start(b.schema()).expect("start");
        r.batch(&b).expect("batch");
        r.finish().expect("finish");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn csv_neutralizes_formulas_and_escapes() {
        let csv = render(Format::Csv, None);
        assert_eq!(
            csv,
            "who,n\n\"'=HYPERLINK(\"\"x\"\")\",-1\na\\u{1b}[2Jb,2\nNULL,3\n"
        );
    }

    #[test]
    fn table_caps_rows() {
        let t = render(Format::Table, Some(2));
        assert!(t.contains("a\\u{1b}[2Jb"), "{t}");
        assert!(!t.contains('\u{1b}'));
        assert!(t.contains("… 1 more row (3 rows in all"), "{t}");
        let all = render(Format::Table, None);
        assert!(all.contains("(3 rows)"), "{all}");
    }

    #[test]
    fn json_is_valid() {
        let j = render(Format::Json, None);
        let v: serde_json::Value = serde_json::from_str(&j).expect("valid JSON");
        assert_eq!(v[1]["who"], "a\u{1b}[2Jb");
        assert!(!j.contains('\u{1b}'));
        let nd = render(Format::Ndjson, None);
        assert_eq!(nd.lines().count(), 3);
    }
}
