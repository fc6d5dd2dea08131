//! Saved analysis queries: one `.sql` file per analysis with a comment header.
//!
//! ```sql
//! -- name: console_signin_without_mfa
//! -- title: Console sign-ins without MFA
//! -- description: Successful console sign-ins where no MFA device was used.
//! -- tactic: TA0001 Initial Access
//! -- flags: successful console sign-ins whose MFAUsed is false or No
//! -- ignores: failed sign-ins; SAML and SSO sign-ins (their MFA is at the identity provider)
//! -- fields: eventName, errorCode, additionalEventData.MFAUsed, userIdentity.type
//! -- detection: medium
//! -- param: since = 1970-01-01 00:00:00   (start of the window, UTC)
//! -- param: until = 2200-01-01 00:00:00
//! SELECT ... WHERE eventTime >= TIMESTAMP :since AND eventTime < TIMESTAMP :until
//! ```
//!
//! Parameters are written `:name` in the SQL and replaced by a literal: numbers as they are,
//! anything else as a quoted SQL string (quotes doubled), so a value can never change the shape
//! of the query. `:name` inside string literals, comments and `::` casts is left alone. The
//! library in the repository's `queries/` directory is compiled into the binary; a directory of
//! one's own can be added with `--queries DIR` (or `TRAIL_QUERIES`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::sqltext::{self, Piece};
use crate::{QueryError, Result};

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/saved_queries.rs"));
}

/// One parameter of a saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// `None`: the parameter must be given.
    pub default: Option<String>,
    pub help: String,
}

/// A saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    pub name: String,
    pub title: String,
    pub description: String,
    pub tactic: Option<String>,
    /// What the analysis reports.
    pub flags: String,
    /// What it deliberately does not report.
    pub ignores: String,
    /// The fields it relies on.
    pub fields: Vec<String>,
    /// `Some(level)` when `trail detect` runs it as a detection.
    pub detection: Option<String>,
    pub params: Vec<Param>,
    /// The SQL with `:param` placeholders.
    pub sql: String,
    /// Where it came from (`builtin` or a file path).
    pub origin: String,
}

impl SavedQuery {
    /// Parse a saved query from its file text.
    pub fn parse(name: &str, text: &str, origin: &str) -> Result<SavedQuery> {
        let bad = |msg: String| QueryError::Usage(format!("saved query {origin}: {msg}"));
        let mut q = SavedQuery {
            name: name.to_owned(),
            title: String::new(),
            description: String::new(),
            tactic: None,
            flags: String::new(),
            ignores: String::new(),
            fields: Vec::new(),
            detection: None,
            params: Vec::new(),
            sql: String::new(),
            origin: origin.to_owned(),
        };
        let mut body = Vec::new();
        let mut in_header = true;
        for line in text.lines() {
            let header = line.trim_start().strip_prefix("--").map(str::trim);
            match header {
                Some(h) if in_header => {
                    let Some((key, value)) = h.split_once(':') else {
                        continue;
                    };
                    let value = value.trim();
                    match key.trim() {
                        "name" if value != name => {
                            return Err(bad(format!(
                                "header name `{value}` differs from the file name `{name}`"
                            )));
                        }
                        "title" => q.title = value.to_owned(),
                        "description" => {
                            if !q.description.is_empty() {
                                q.description.push(' ');
                            }
                            q.description.push_str(value);
                        }
                        "tactic" => q.tactic = Some(value.to_owned()),
                        "flags" | "ignores" => {
                            let target = if key.trim() == "flags" {
                                &mut q.flags
                            } else {
                                &mut q.ignores
                            };
                            if !target.is_empty() {
                                target.push(' ');
                            }
                            target.push_str(value);
                        }
                        "fields" => q.fields.extend(
                            value
                                .split(',')
                                .map(str::trim)
                                .filter(|f| !f.is_empty())
                                .map(str::to_owned),
                        ),
                        "detection" => {
                            let level = value.to_ascii_lowercase();
                            if !["informational", "low", "medium", "high", "critical"]
                                .contains(&level.as_str())
                            {
                                return Err(bad(format!(
                                    "detection level `{value}` is not informational, low, medium, high or critical"
                                )));
                            }
                            q.detection = Some(level);
                        }
                        "param" => {
                            let (spec, help) = match value.split_once("  (") {
                                Some((s, h)) => (s, h.trim_end_matches(')').trim()),
                                None => (value, ""),
                            };
                            let (pname, default) = match spec.split_once('=') {
                                Some((n, d)) => (n.trim(), Some(d.trim().to_owned())),
                                None => (spec.trim(), None),
                            };
                            if pname.is_empty()
                                || !pname
                                    .bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                            {
                                return Err(bad(format!("`{pname}` is not a parameter name")));
                            }
                            q.params.push(Param {
                                name: pname.to_owned(),
                                default,
                                help: help.to_owned(),
                            });
                        }
                        _ => {}
                    }
                }
                _ => {
                    if !line.trim().is_empty() {
                        in_header = false;
                    }
                    if !in_header {
                        body.push(line);
                    }
                }
            }
        }
        q.sql = body
            .join("\n")
            .trim()
            .trim_end_matches(';')
            .trim()
            .to_owned();
        if q.sql.is_empty() {
            return Err(bad("has no SQL after its header".into()));
        }
        if q.title.is_empty() {
            q.title = name.replace('_', " ");
        }
        let used = placeholders(&q.sql);
        for p in &used {
            if !q.params.iter().any(|d| &d.name == p) {
                return Err(bad(format!(
                    "uses :{p} but declares no `-- param: {p} = ...`"
                )));
            }
        }
        Ok(q)
    }

    /// The query as JSON: name, title, description, tactic, SQL and parameters.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "tactic": self.tactic,
            "flags": self.flags,
            "ignores": self.ignores,
            "fields": self.fields,
            "detection": self.detection,
            "sql": self.sql,
            "params": self.params.iter().map(|p| serde_json::json!({
                "name": p.name,
                "default": p.default,
                "help": p.help,
                "required": p.default.is_none(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The SQL with parameters bound: `values` override the defaults.
    pub fn bind(&self, values: &BTreeMap<String, String>) -> Result<String> {
        for k in values.keys() {
            if !self.params.iter().any(|p| &p.name == k) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(QueryError::Usage(format!(
                    "{} has no parameter `{k}`; its parameters are: {}",
                    self.name,
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        for p in &self.params {
            if p.default.is_none() && !values.contains_key(&p.name) {
                return Err(QueryError::Usage(format!(
                    "{} needs the parameter `{}` ({}); give it as {}=VALUE",
                    self.name,
                    p.name,
                    if p.help.is_empty() {
                        "no default"
                    } else {
                        &p.help
                    },
                    p.name
                )));
            }
        }
        let value = |name: &str| -> Option<String> {
            let p = self.params.iter().find(|p| p.name == name)?;
            values.get(name).or(p.default.as_ref()).map(|v| literal(v))
        };
        Ok(substitute(&self.sql, &value))
    }
}

/// A value as a SQL literal: numbers bare, everything else a quoted string.
pub fn literal(v: &str) -> String {
    let numeric = !v.is_empty()
        && v.len() < 40
        && v.parse::<f64>().is_ok_and(f64::is_finite)
        && v.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    if numeric {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', "''"))
    }
}

/// The `:name` placeholders used in `sql`, in order of first use.
pub fn placeholders(sql: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in sqltext::pieces(sql) {
        if let Piece::Placeholder(n) = p
            && !out.iter().any(|o| o == n)
        {
            out.push(n.to_owned());
        }
    }
    out
}

fn substitute(sql: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    for p in sqltext::pieces(sql) {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder(n) => match value(n) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push(':');
                    out.push_str(n);
                }
            },
        }
    }
    out
}

/// The saved-query library: the built-in queries plus those in `extra_dir`.
#[derive(Debug, Clone, Default)]
pub struct Library {
    queries: BTreeMap<String, SavedQuery>,
}

impl Library {
    /// The built-in library, plus every `*.sql` in `extra_dir` (which win on a name clash).
    pub fn load(extra_dir: Option<&Path>) -> Result<Library> {
        let mut queries = BTreeMap::new();
        for (name, text) in builtin::QUERIES {
            let q = SavedQuery::parse(name, text, &format!("queries/{name}.sql"))?;
            queries.insert(q.name.clone(), q);
        }
        if let Some(dir) = extra_dir {
            let entries =
                std::fs::read_dir(dir).map_err(|e| trail_store::StoreError::io(dir, e))?;
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .collect();
            paths.sort();
            for p in paths {
                let Some(name) = p.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                let text =
                    std::fs::read_to_string(&p).map_err(|e| trail_store::StoreError::io(&p, e))?;
                let q = SavedQuery::parse(name, &text, &p.display().to_string())?;
                queries.insert(q.name.clone(), q);
            }
        }
        Ok(Library { queries })
    }

    /// Every query, by name.
    pub fn iter(&self) -> impl Iterator<Item = &SavedQuery> {
        self.queries.values()
    }

    /// One query by name.
    pub fn get(&self, name: &str) -> Result<&SavedQuery> {
        self.queries.get(name).ok_or_else(|| {
            let near: Vec<&str> = self
                .queries
                .keys()
                .filter(|k| k.contains(name) || name.contains(k.as_str()))
                .map(String::as_str)
                .take(5)
                .collect();
            QueryError::Usage(format!(
                "no saved query named `{name}`{}; `trail queries` lists them",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean {}?)", near.join(", "))
                }
            ))
        })
    }

    /// Names, for completion.
    pub fn names(&self) -> Vec<String> {
        self.queries.keys().cloned().collect()
    }
}

/// Parse one `name=value` parameter (a leading `:` on the name is allowed).
pub fn parse_param(p: &str) -> Result<(String, String)> {
    let (k, v) = p.split_once('=').ok_or_else(|| {
        QueryError::Usage(format!(
            "parameter `{}` must be written name=value",
            p.escape_debug()
        ))
    })?;
    let k = k.trim().trim_start_matches(':');
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(QueryError::Usage(format!(
            "`{}` is not a parameter name (letters, digits and _)",
            k.escape_debug()
        )));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Parse `name=value` pairs.
pub fn parse_params<S: AsRef<str>>(pairs: &[S]) -> Result<BTreeMap<String, String>> {
    pairs.iter().map(|p| parse_param(p.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "-- name: t\n-- title: T\n-- param: user = alice  (who)\n-- param: n = 5\n\
                     SELECT ':user', a::text, :n FROM e -- :user\nWHERE u = :user /* :n */;\n";

    #[test]
    fn binds_outside_strings_and_comments() {
        let q = SavedQuery::parse("t", Q, "test").expect("parses");
        assert_eq!(q.params.len(), 2);
        assert_eq!(q.params[0].help, "who");
        let mut v = BTreeMap::new();
        assert_eq!(
            q.bind(&v).expect("binds"),
            "SELECT ':user', a::text, 5 FROM e -- :user\nWHERE u = 'alice' /* :n */"
        );
        v.insert("user".to_owned(), "o'brien' OR 1=1 --".to_owned());
        assert!(
            q.bind(&v)
                .expect("binds")
                .contains("u = 'o''brien'' OR 1=1 --'")
        );
        v.insert("nope".to_owned(), "x".to_owned());
        assert!(q.bind(&v).is_err());
    }

    #[test]
    fn undeclared_parameter_is_an_error() {
        assert!(SavedQuery::parse("t", "SELECT :x", "test").is_err());
        assert!(SavedQuery::parse("u", "-- name: t\nSELECT 1", "test").is_err());
    }

    #[test]
    fn builtin_library_loads() {
        let lib = Library::load(None).expect("library loads");
        assert!(lib.iter().count() >= 25, "{}", lib.iter().count());
        for q in lib.iter() {
            assert!(!q.description.is_empty(), "{} has no description", q.name);
        }
    }
}
