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
use std::process::ExitCode;

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
use trail_query::sqltext::{self, NameContext};

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
    Format(Option<Format>),
    MaxRows(Option<Option<usize>>),
    Include(String),
    Output(Option<String>),
    Queries,
    Run(String, Vec<String>),
}

/// One backslash command: its names, arguments, help, and how its arguments parse. `\?`,
/// completion and parsing all read this table, so they cannot disagree.
pub struct Spec {
    pub names: &'static [&'static str],
    pub args: &'static str,
    pub help: &'static str,
    parse: fn(&[String]) -> Result<Command, String>,
}

fn first(rest: &[String]) -> Option<String> {
    rest.first().cloned()
}

/// The backslash commands, in the order `\?` lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        names: &["\\q", "\\quit"],
        args: "",
        help: "quit (Ctrl-D too)",
        parse: |_| Ok(Command::Quit),
    },
    Spec {
        names: &["\\?", "\\h", "\\help"],
        args: "",
        help: "this help",
        parse: |_| Ok(Command::Help),
    },
    Spec {
        names: &["\\d"],
        args: "[TABLE]",
        help: "list tables, or the columns of TABLE",
        parse: |rest| Ok(Command::Describe(first(rest))),
    },
    Spec {
        names: &["\\timing"],
        args: "[on|off]",
        help: "show how long each statement took",
        parse: |rest| {
            Ok(Command::Timing(match first(rest).as_deref() {
                None => None,
                Some("on") => Some(true),
                Some("off") => Some(false),
                Some(o) => return Err(format!("\\timing takes on or off, not `{}`", visible(o))),
            }))
        },
    },
    Spec {
        names: &["\\format"],
        args: "FMT",
        help: "result format (\\format alone shows the current one and the choices)",
        parse: |rest| match first(rest) {
            None => Ok(Command::Format(None)),
            Some(f) => Format::parse(&f)
                .map(|f| Command::Format(Some(f)))
                .ok_or_else(|| {
                    format!(
                        "unknown format `{}`; use one of: {}",
                        visible(&f),
                        Format::names().join(", ")
                    )
                }),
        },
    },
    Spec {
        names: &["\\maxrows"],
        args: "N|all",
        help: "rows shown per result (default 40)",
        parse: |rest| match first(rest).as_deref() {
            None => Ok(Command::MaxRows(None)),
            Some("all" | "0") => Ok(Command::MaxRows(Some(None))),
            Some(n) => n
                .parse::<usize>()
                .map(|v| Command::MaxRows(Some(Some(v))))
                .map_err(|_| "\\maxrows takes a number or `all`".to_owned()),
        },
    },
    Spec {
        names: &["\\i"],
        args: "FILE",
        help: "run the SQL in FILE",
        parse: |rest| {
            Ok(Command::Include(
                first(rest).ok_or("\\i needs a file name")?,
            ))
        },
    },
    Spec {
        names: &["\\o"],
        args: "[FILE]",
        help: "send results to FILE (no FILE: back to the screen)",
        parse: |rest| Ok(Command::Output(first(rest))),
    },
    Spec {
        names: &["\\queries"],
        args: "",
        help: "list saved analyses",
        parse: |_| Ok(Command::Queries),
    },
    Spec {
        names: &["\\run"],
        args: "NAME [k=v ...]",
        help: "run a saved analysis with parameters",
        parse: |rest| {
            let name = first(rest).ok_or("\\run needs a saved query name; \\queries lists them")?;
            Ok(Command::Run(name, rest[1..].to_vec()))
        },
    },
];

impl Command {
    /// Parse a backslash line.
    pub fn parse(line: &str) -> Result<Command, String> {
        let line = line.trim().trim_end_matches(';').trim();
        let mut words = line.split_whitespace();
        let head = words.next().unwrap_or("");
        let rest: Vec<String> = words.map(str::to_owned).collect();
        let spec = COMMANDS
            .iter()
            .find(|c| c.names.contains(&head))
            .ok_or_else(|| format!("unknown command `{}`; \\? lists them", visible(head)))?;
        (spec.parse)(&rest)
    }
}

/// Words offered where a keyword may come (the start of a statement, after a complete term).
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
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
    "PARTITION BY",
    "ROWS",
];

/// Tab completion and statement continuation for rustyline.
pub struct TrailHelper {
    names: trail_query::CompletionNames,
    queries: Vec<String>,
}

impl TrailHelper {
    pub fn new(names: trail_query::CompletionNames, queries: Vec<String>) -> Self {
        TrailHelper { names, queries }
    }

    /// Candidates for the word ending at `pos`: `(start, candidates)`. What is offered depends
    /// on where the word is: tables after `FROM`/`JOIN`, columns and functions in a select
    /// list or a condition, keywords after a complete term.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '\\'))
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        let word = &before[start..];
        let lower = word.to_lowercase();
        let matching = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter(|n| n.to_lowercase().starts_with(&lower))
                .cloned()
                .collect()
        };
        let trimmed = before.trim_start();
        if trimmed.starts_with("\\run ") || trimmed.starts_with("\\run\t") {
            return (start, sorted(matching(&self.queries)));
        }
        if word.starts_with('\\') {
            let names = COMMANDS
                .iter()
                .flat_map(|c| c.names.iter().take(1))
                .map(|n| (*n).to_owned())
                .filter(|n| n.starts_with(word))
                .collect();
            return (start, names);
        }
        if trimmed.starts_with("\\format ") {
            let formats: Vec<String> = Format::names().iter().map(|f| (*f).to_owned()).collect();
            return (start, sorted(matching(&formats)));
        }
        if word.is_empty() {
            return (start, Vec::new());
        }
        let out = match trail_query::sqltext::name_context(before) {
            NameContext::Table => matching(&self.names.tables),
            NameContext::Column => {
                // Below a dot, the nested fields; otherwise top-level names and functions.
                let mut v: Vec<String> = matching(&self.names.columns)
                    .into_iter()
                    .filter(|c| word.contains('.') || !c.contains('.'))
                    .collect();
                if !word.contains('.') {
                    v.extend(matching(&self.names.functions));
                }
                v
            }
            NameContext::Keyword => {
                let upper = word.chars().next().is_some_and(char::is_uppercase);
                KEYWORDS
                    .iter()
                    .filter(|k| k.to_lowercase().starts_with(&lower))
                    .map(|k| {
                        if upper {
                            (*k).to_owned()
                        } else {
                            k.to_lowercase()
                        }
                    })
                    .collect()
            }
        };
        (start, sorted(out))
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
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
        if input.is_empty() || input.starts_with('\\') || sqltext::is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for TrailHelper {}

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
    /// Statements and commands that failed (a piped script exits non-zero when any did).
    failures: usize,
}

/// What a backslash command asks of the session.
enum Next {
    Continue,
    Quit,
}

impl Session<'_> {
    fn failed(&mut self, message: &str) {
        eprintln!("{}", crate::display::visible_table(message));
        self.failures += 1;
    }

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
                self.failed("query cancelled");
            }
            Some(Ok(())) => {}
            Some(Err(e)) => self.failed(&e.to_string()),
        }
    }

    async fn command(&mut self, line: &str) -> Next {
        let cmd = match Command::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.failed(&e);
                return Next::Continue;
            }
        };
        match cmd {
            Command::Quit => return Next::Quit,
            Command::Help => {
                println!("Statements end with `;`. Backslash commands:");
                for c in COMMANDS {
                    println!("  {:<22} {}", format!("{} {}", c.names[0], c.args), c.help);
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
            Command::Format(None) => println!(
                "format {} (one of {})",
                self.settings.format.name(),
                Format::names().join(", ")
            ),
            Command::Format(Some(f)) => {
                self.settings.format = f;
                println!("format {}", f.name());
            }
            Command::MaxRows(None) => match self.settings.max_rows {
                Some(n) => println!("maxrows {n}"),
                None => println!("maxrows all"),
            },
            Command::MaxRows(Some(n)) => {
                self.settings.max_rows = n;
                match n {
                    Some(v) => println!("maxrows {v}"),
                    None => println!("maxrows all"),
                }
            }
            Command::Include(path) => match std::fs::read_to_string(&path) {
                Ok(sql) => self.sql(&sql).await,
                Err(e) => self.failed(&format!("cannot read {}: {e}", visible(&path))),
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
                Err(e) => self.failed(&format!("cannot write {}: {e}", visible(&path))),
            },
            Command::Queries => {
                for q in self.library.iter() {
                    println!("  {:<34} {}{}", q.name, q.title, crate::tactic(q));
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
                    Err(e) => self.failed(&visible(&e.to_string())),
                }
            }
        }
        Next::Continue
    }

    /// Run piped input as a script: SQL until `;`, backslash commands on their own line.
    async fn script(&mut self, text: &str) {
        let mut pending = String::new();
        for line in text.lines() {
            if pending.trim().is_empty() && line.trim_start().starts_with('\\') {
                if let Next::Quit = self.command(line).await {
                    return;
                }
                continue;
            }
            pending.push_str(line);
            pending.push('\n');
            if sqltext::is_complete(&pending) {
                self.sql(&pending).await;
                pending.clear();
            }
        }
        if !pending.trim().is_empty() {
            self.sql(&pending).await;
        }
    }
}

/// Run the REPL until `\q` or Ctrl-D; piped input runs as a script, which exits with 1 when
/// any statement or command in it failed.
pub async fn run(engine: &Engine, library: &Library, format: Format) -> Result<ExitCode> {
    let mut session = Session {
        engine,
        library,
        settings: Settings {
            format,
            max_rows: Some(DEFAULT_MAX_ROWS),
            timing: true,
        },
        output: None,
        failures: 0,
    };
    if !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        session.script(&text).await;
        return Ok(if session.failures > 0 {
            eprintln!(
                "{} statement{} failed",
                session.failures,
                if session.failures == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)?
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<TrailHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(TrailHelper::new(
        engine.completion_names(),
        library.names(),
    )));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "trail {} on {} — statements end with `;`, \\? for help, Ctrl-D to leave",
        env!("CARGO_PKG_VERSION"),
        visible(&engine.store().location())
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
                    if let Next::Quit = session.command(text).await {
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
    Ok(ExitCode::SUCCESS)
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
    fn every_command_parses_and_is_listed() {
        for c in COMMANDS {
            let args = match c.args {
                "FMT" => "csv",
                "[on|off]" => "on",
                "N|all" => "5",
                "NAME [k=v ...]" => "q a=1",
                "" => "",
                _ => "x",
            };
            for name in c.names {
                let line = format!("{name} {args}");
                assert!(Command::parse(&line).is_ok(), "{line}");
            }
        }
        assert_eq!(
            Command::parse("\\format csv"),
            Ok(Command::Format(Some(Format::Csv)))
        );
        assert!(Command::parse("\\format nope").is_err_and(|e| e.contains("markdown")));
        assert_eq!(
            Command::parse("\\maxrows all"),
            Ok(Command::MaxRows(Some(None)))
        );
    }

    fn helper() -> TrailHelper {
        let names = trail_query::CompletionNames {
            tables: vec!["events".into(), "insights".into(), "system.files".into()],
            columns: vec![
                "eventName".into(),
                "eventTime".into(),
                "userIdentity".into(),
                "userIdentity.userName".into(),
                "userIdentity.type".into(),
            ],
            functions: vec!["count".into(), "json_get_str".into(), "upper".into()],
        };
        TrailHelper::new(
            names,
            vec!["root_account_use".into(), "rare_user_agents".into()],
        )
    }

    #[test]
    fn completion_knows_where_it_is() {
        let h = helper();
        let (s, c) = h.candidates("SELECT userIdentity.user", 24);
        assert_eq!(s, 7);
        assert_eq!(c, vec!["userIdentity.userName".to_owned()]);
        let (_, c) = h.candidates("sel", 3);
        assert_eq!(c, vec!["select".to_owned()]);
        // After FROM: tables only, not the `event*` columns.
        let line = "SELECT count(*) FROM eve";
        assert_eq!(h.candidates(line, line.len()).1, vec!["events".to_owned()]);
        let line = "SELECT * FROM sys";
        assert_eq!(
            h.candidates(line, line.len()).1,
            vec!["system.files".to_owned()]
        );
        // In a select list or a condition: columns and functions, no tables.
        let line = "SELECT eve";
        assert_eq!(
            h.candidates(line, line.len()).1,
            vec!["eventName".to_owned(), "eventTime".to_owned()]
        );
        let line = "SELECT * FROM events WHERE u";
        assert_eq!(
            h.candidates(line, line.len()).1,
            vec!["upper".to_owned(), "userIdentity".to_owned()]
        );
        // After a complete term: keywords.
        let line = "SELECT eventName FR";
        assert_eq!(h.candidates(line, line.len()).1, vec!["FROM".to_owned()]);
        let (_, c) = h.candidates("\\run r", 6);
        assert_eq!(c.len(), 2);
        let (_, c) = h.candidates("\\ti", 3);
        assert_eq!(c, vec!["\\timing".to_owned()]);
        let line = "\\format m";
        assert_eq!(
            h.candidates(line, line.len()).1,
            vec!["markdown".to_owned()]
        );
    }
}
