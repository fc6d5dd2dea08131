//! The interactive SQL shell.
//!
//! SQL runs when a statement ends with `;` (lines before that continue the statement);
//! backslash commands run at once. Tab completes SQL keywords, tables, columns (including
//! nested `userIdentity.` fields), backslash commands and saved query names. Ctrl-C cancels
//! the running query (or clears the line being typed); Ctrl-D leaves.

use std::borrow::Cow;
use std::io::Write;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::Result;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Editor, Helper};
use trail_query::Engine;
use trail_query::saved::{Library, parse_params};

use crate::display::visible;
use crate::exec::{Settings, run_sql};
use crate::render::Format;

/// Default row cap of the REPL.
pub const DEFAULT_MAX_ROWS: usize = 40;

/// The backslash commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    Describe(Option<String>),
    Timing(Option<bool>),
    Format(Option<String>),
    MaxRows(Option<String>),
    Include(String),
    Output(Option<String>),
    Queries,
    Run(String, Vec<String>),
}

/// `(command, arguments, what it does)`, as `\?` prints them.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("\\q", "", "quit (Ctrl-D too)"),
    ("\\?", "", "this help"),
    ("\\d", "[TABLE]", "list tables, or the columns of TABLE"),
    ("\\timing", "[on|off]", "show how long each statement took"),
    (
        "\\format",
        "FMT",
        "table, csv, tsv, json, ndjson or markdown",
    ),
    ("\\maxrows", "N|all", "rows shown per result (default 40)"),
    ("\\i", "FILE", "run the SQL in FILE"),
    (
        "\\o",
        "[FILE]",
        "send results to FILE (no FILE: back to the screen)",
    ),
    ("\\queries", "", "list saved analyses"),
    (
        "\\run",
        "NAME [k=v ...]",
        "run a saved analysis with parameters",
    ),
];

impl Command {
    /// Parse a backslash line.
    pub fn parse(line: &str) -> Result<Command, String> {
        let line = line.trim().trim_end_matches(';').trim();
        let mut words = line.split_whitespace();
        let head = words.next().unwrap_or("");
        let rest: Vec<String> = words.map(str::to_owned).collect();
        let one = |rest: &[String]| rest.first().cloned();
        Ok(match head {
            "\\q" | "\\quit" => Command::Quit,
            "\\?" | "\\h" | "\\help" => Command::Help,
            "\\d" => Command::Describe(one(&rest)),
            "\\timing" => Command::Timing(match one(&rest).as_deref() {
                None => None,
                Some("on") => Some(true),
                Some("off") => Some(false),
                Some(o) => return Err(format!("\\timing takes on or off, not `{o}`")),
            }),
            "\\format" => Command::Format(one(&rest)),
            "\\maxrows" => Command::MaxRows(one(&rest)),
            "\\i" => Command::Include(one(&rest).ok_or("\\i needs a file name")?),
            "\\o" => Command::Output(one(&rest)),
            "\\queries" => Command::Queries,
            "\\run" => {
                let name =
                    one(&rest).ok_or("\\run needs a saved query name; \\queries lists them")?;
                Command::Run(name, rest[1..].to_vec())
            }
            other => {
                return Err(format!(
                    "unknown command `{}`; \\? lists them",
                    visible(other)
                ));
            }
        })
    }
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "AS",
    "DISTINCT",
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "ON",
    "USING",
    "WITH",
    "UNION",
    "ALL",
    "EXCEPT",
    "INTERSECT",
    "DESC",
    "ASC",
    "TIMESTAMP",
    "DATE",
    "INTERVAL",
    "CAST",
    "EXISTS",
    "EXPLAIN",
    "ANALYZE",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "CREATE",
    "VIEW",
    "DESCRIBE",
    "OVER",
    "PARTITION",
    "ROWS",
    "date_trunc",
    "date_bin",
    "now",
    "lower",
    "upper",
    "regexp_like",
    "split_part",
    "approx_distinct",
    "array_agg",
    "string_agg",
    "json_get_str",
    "json_get",
    "json_get_int",
    "json_get_bool",
    "json_contains",
    "json_length",
    "json_object_keys",
    "ip_in_cidr",
    "is_private_ip",
    "ip_network",
    "is_ip",
    "to_timestamp",
    "extract",
    "coalesce",
];

/// Tab completion and statement continuation for rustyline.
pub struct TrailHelper {
    names: Vec<String>,
    queries: Vec<String>,
}

impl TrailHelper {
    pub fn new(queries: Vec<String>) -> Self {
        TrailHelper {
            names: trail_query::completion_names(),
            queries,
        }
    }

    /// Candidates for the word ending at `pos`: `(start, candidates)`.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '\\'))
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        let word = &before[start..];
        let lower = word.to_lowercase();
        let trimmed = before.trim_start();
        if trimmed.starts_with("\\run ") || trimmed.starts_with("\\run\t") {
            let mut v: Vec<String> = self
                .queries
                .iter()
                .filter(|q| q.starts_with(&lower))
                .cloned()
                .collect();
            v.sort();
            return (start, v);
        }
        if word.starts_with('\\') {
            return (
                start,
                COMMANDS
                    .iter()
                    .map(|(c, _, _)| (*c).to_owned())
                    .filter(|c| c.starts_with(word))
                    .collect(),
            );
        }
        if word.is_empty() {
            return (start, Vec::new());
        }
        let mut out: Vec<String> = Vec::new();
        // Field names: when the word has a dot, offer the nested fields under it.
        for n in &self.names {
            if n.to_lowercase().starts_with(&lower)
                && (word.contains('.') || !n.contains('.') || n.starts_with("system."))
            {
                out.push(n.clone());
            }
        }
        if !word.contains('.') {
            let upper = word.chars().next().is_some_and(char::is_uppercase);
            for k in KEYWORDS {
                if k.to_lowercase().starts_with(&lower) {
                    let k = if k.chars().all(|c| c.is_uppercase()) && !upper {
                        k.to_lowercase()
                    } else {
                        (*k).to_owned()
                    };
                    out.push(k);
                }
            }
        }
        out.sort();
        out.dedup();
        (start, out)
    }
}

impl Completer for TrailHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, c) = self.candidates(line, pos);
        Ok((
            start,
            c.into_iter()
                .map(|s| Pair {
                    display: s.clone(),
                    replacement: s,
                })
                .collect(),
        ))
    }
}

impl Hinter for TrailHelper {
    type Hint = String;
}

impl Highlighter for TrailHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for TrailHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || statement_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for TrailHelper {}

/// True when SQL text ends with `;` outside a string or comment.
pub fn statement_complete(sql: &str) -> bool {
    let mut in_str: Option<char> = None;
    let mut last_significant = ' ';
    let mut chars = sql.chars().peekable();
    let mut line_comment = false;
    while let Some(c) = chars.next() {
        if line_comment {
            if c == '\n' {
                line_comment = false;
            }
            continue;
        }
        match in_str {
            Some(q) if c == q => in_str = None,
            Some(_) => {}
            None => {
                if c == '\'' || c == '"' {
                    in_str = Some(c);
                } else if c == '-' && chars.peek() == Some(&'-') {
                    line_comment = true;
                    continue;
                }
                if !c.is_whitespace() {
                    last_significant = c;
                }
            }
        }
    }
    in_str.is_none() && last_significant == ';'
}

/// Where the REPL keeps its history: `$TRAIL_HISTORY`, else the user's data directory.
pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRAIL_HISTORY") {
        return Some(PathBuf::from(p));
    }
    dirs::data_dir().map(|d| d.join("trail").join("history"))
}

struct Session<'a> {
    engine: &'a Engine,
    library: &'a Library,
    settings: Settings,
    output: Option<(PathBuf, std::fs::File)>,
}

impl Session<'_> {
    async fn sql(&mut self, sql: &str) {
        let settings = self.settings.clone();
        let engine = self.engine;
        let mut stdout = std::io::stdout();
        let out: &mut dyn Write = match &mut self.output {
            Some((_, f)) => f,
            None => &mut stdout,
        };
        let result = tokio::select! {
            r = run_sql(engine, sql, &settings, out) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        };
        match result {
            None => {
                let _ = out.flush();
                eprintln!("query cancelled");
            }
            Some(Ok(())) => {}
            Some(Err(e)) => eprintln!("{}", visible_keep_lines(&e.to_string())),
        }
    }

    /// Returns false to quit.
    async fn command(&mut self, line: &str) -> bool {
        let cmd = match Command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return true;
            }
        };
        match cmd {
            Command::Quit => return false,
            Command::Help => {
                println!("Statements end with `;`. Backslash commands:");
                for (c, a, h) in COMMANDS {
                    println!("  {:<22} {h}", format!("{c} {a}"));
                }
            }
            Command::Describe(None) => {
                self.sql(
                    "SELECT table_schema AS schema, table_name AS name, table_type AS type \
                     FROM information_schema.tables \
                     WHERE table_schema IN ('public', 'system') ORDER BY 1, 2;",
                )
                .await;
            }
            Command::Describe(Some(t)) => {
                let t = t.replace('\'', "''");
                let (schema, table) = match t.split_once('.') {
                    Some((s, t)) => (s.to_owned(), t.to_owned()),
                    None => ("public".to_owned(), t.clone()),
                };
                self.sql(&format!(
                    "SELECT column_name AS column, data_type AS type, is_nullable AS nullable \
                     FROM information_schema.columns WHERE table_schema = '{schema}' \
                     AND lower(table_name) = lower('{table}') ORDER BY ordinal_position;"
                ))
                .await;
            }
            Command::Timing(v) => {
                self.settings.timing = v.unwrap_or(!self.settings.timing);
                println!("timing {}", if self.settings.timing { "on" } else { "off" });
            }
            Command::Format(None) => println!("format {}", self.settings.format.name()),
            Command::Format(Some(f)) => match Format::parse(&f) {
                Some(f) => {
                    self.settings.format = f;
                    println!("format {}", f.name());
                }
                None => eprintln!(
                    "unknown format `{}`; use table, csv, tsv, json, ndjson or markdown",
                    visible(&f)
                ),
            },
            Command::MaxRows(None) => match self.settings.max_rows {
                Some(n) => println!("maxrows {n}"),
                None => println!("maxrows all"),
            },
            Command::MaxRows(Some(n)) => {
                if n == "all" || n == "0" {
                    self.settings.max_rows = None;
                    println!("maxrows all");
                } else if let Ok(v) = n.parse::<usize>() {
                    self.settings.max_rows = Some(v);
                    println!("maxrows {v}");
                } else {
                    eprintln!("\\maxrows takes a number or `all`");
                }
            }
            Command::Include(path) => match std::fs::read_to_string(&path) {
                Ok(sql) => self.sql(&sql).await,
                Err(e) => eprintln!("cannot read {}: {e}", visible(&path)),
            },
            Command::Output(None) => {
                self.output = None;
                println!("results go to the screen");
            }
            Command::Output(Some(path)) => match std::fs::File::create(&path) {
                Ok(f) => {
                    println!("results go to {}", visible(&path));
                    self.output = Some((PathBuf::from(path), f));
                }
                Err(e) => eprintln!("cannot write {}: {e}", visible(&path)),
            },
            Command::Queries => {
                for q in self.library.iter() {
                    println!(
                        "  {:<34} {}{}",
                        q.name,
                        q.title,
                        q.tactic
                            .as_deref()
                            .map(|t| format!("  [{t}]"))
                            .unwrap_or_default()
                    );
                }
                println!("\\run NAME [param=value ...] runs one");
            }
            Command::Run(name, params) => {
                let bound = self
                    .library
                    .get(&name)
                    .and_then(|q| parse_params(&params).and_then(|p| q.bind(&p)));
                match bound {
                    Ok(sql) => self.sql(&sql).await,
                    Err(e) => eprintln!("{}", visible(&e.to_string())),
                }
            }
        }
        true
    }
}

fn visible_keep_lines(s: &str) -> String {
    crate::display::visible_table(s)
}

/// Run the REPL until `\q` or Ctrl-D.
pub async fn run(engine: &Engine, library: &Library, format: Format) -> Result<()> {
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<TrailHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(TrailHelper::new(library.names())));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let mut session = Session {
        engine,
        library,
        settings: Settings {
            format,
            max_rows: Some(DEFAULT_MAX_ROWS),
            timing: true,
        },
        output: None,
    };
    if !std::io::stdin().is_terminal() {
        // Piped input: run it as a script (SQL until `;`, backslash commands on their own line).
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let mut pending = String::new();
        for line in text.lines() {
            if pending.trim().is_empty() && line.trim_start().starts_with('\\') {
                if !session.command(line).await {
                    return Ok(());
                }
                continue;
            }
            pending.push_str(line);
            pending.push('\n');
            if statement_complete(&pending) {
                session.sql(&pending).await;
                pending.clear();
            }
        }
        if !pending.trim().is_empty() {
            session.sql(&pending).await;
        }
        return Ok(());
    }
    println!(
        "trail {} on {} — statements end with `;`, \\? for help, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION"),
        visible(&engine.root().display().to_string())
    );
    loop {
        match editor.readline("trail> ") {
            Ok(line) => {
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(text);
                if text.starts_with('\\') {
                    if !session.command(text).await {
                        break;
                    }
                } else {
                    session.sql(text).await;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = editor.save_history(h) {
            eprintln!(
                "could not save history to {}: {e}",
                visible(&h.display().to_string())
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(Command::parse("\\q"), Ok(Command::Quit));
        assert_eq!(
            Command::parse("\\run root_account_use since=2020-01-01"),
            Ok(Command::Run(
                "root_account_use".into(),
                vec!["since=2020-01-01".into()]
            ))
        );
        assert_eq!(
            Command::parse("\\timing off"),
            Ok(Command::Timing(Some(false)))
        );
        assert!(Command::parse("\\nope").is_err());
        assert!(Command::parse("\\run").is_err());
    }

    #[test]
    fn completion() {
        let h = TrailHelper::new(vec!["root_account_use".into(), "rare_user_agents".into()]);
        let (s, c) = h.candidates("SELECT userIdentity.user", 24);
        assert_eq!(s, 7);
        assert!(c.contains(&"userIdentity.userName".to_owned()), "{c:?}");
        let (_, c) = h.candidates("sel", 3);
        assert_eq!(c, vec!["select".to_owned()]);
        let (_, c) = h.candidates("SELECT * FROM ev", 16);
        assert!(c.contains(&"events".to_owned()), "{c:?}");
        let (_, c) = h.candidates("\\run r", 6);
        assert_eq!(c.len(), 2);
        let (_, c) = h.candidates("\\ti", 3);
        assert_eq!(c, vec!["\\timing".to_owned()]);
    }

    #[test]
    fn continuation() {
        assert!(statement_complete("select 1;"));
        assert!(!statement_complete("select ';'"));
        assert!(!statement_complete("select 1 -- done;"));
        assert!(statement_complete("select 1; -- ok\n"));
    }
}
