//! `trail-detect`: detections over a trail store — Sigma rules compiled to DataFusion
//! expressions ([`sigma`]), saved analyses marked as detections, and the job that runs them
//! over what arrived since its last run and keeps the findings ([`job`]).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let loaded = trail_detect::load_sigma(&["rules/".into()])?;
//! for r in &loaded.rejected {
//!     println!("{}: {}", r.path.display(), r.reason);
//! }
//! # Ok(()) }
//! ```

pub mod job;
pub mod sigma;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, plan_err};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{Expr, lit};
use serde_json::Value;

/// Errors of the detection layer.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Query(#[from] trail_query::QueryError),
    #[error(transparent)]
    Store(#[from] trail_store::StoreError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("writing a findings file")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// What the user gave is wrong (a rule directory, a saved query).
    #[error("{0}")]
    Usage(String),
    #[error("internal error: {0} (please report it)")]
    Internal(String),
}

/// A `Result` with [`DetectError`].
pub type Result<T, E = DetectError> = std::result::Result<T, E>;

/// How serious a detection says its findings are (Sigma's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// A Sigma rule ready to run.
#[derive(Debug, Clone)]
pub struct SigmaDetection {
    pub rule: sigma::Rule,
    pub path: PathBuf,
    /// The rule's predicate over `events`.
    pub predicate: Expr,
}

impl SigmaDetection {
    /// The rule's id, or its file name when it has none.
    pub fn id(&self) -> String {
        self.rule.id.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    pub fn level(&self) -> Level {
        self.rule
            .level
            .as_deref()
            .and_then(Level::parse)
            .unwrap_or(Level::Medium)
    }
}

/// A rule file (or one rule of it) that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub title: Option<String>,
    pub reason: String,
}

/// The Sigma rules of some files and directories.
#[derive(Debug, Clone, Default)]
pub struct LoadedRules {
    pub rules: Vec<SigmaDetection>,
    pub rejected: Vec<Rejected>,
}

fn rule_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| DetectError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| DetectError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let symlink = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        if symlink {
            continue;
        }
        if p.is_dir() {
            rule_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Load and compile the Sigma rules in `paths` (files, or directories searched recursively
/// for `*.yml` and `*.yaml`). Rules that cannot be used are listed with the reason.
pub fn load_sigma(paths: &[PathBuf]) -> Result<LoadedRules> {
    let mut files = Vec::new();
    for p in paths {
        rule_files(p, &mut files)?;
    }
    let mut out = LoadedRules::default();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.rejected.push(Rejected {
                    path,
                    title: None,
                    reason: format!("cannot read it: {e}"),
                });
                continue;
            }
        };
        match sigma::parse(&text) {
            Err(e) => out.rejected.push(Rejected {
                path,
                title: None,
                reason: e.to_string(),
            }),
            Ok(rules) => {
                for rule in rules {
                    match sigma::compile(&rule) {
                        Ok(predicate) => out.rules.push(SigmaDetection {
                            rule,
                            path: path.clone(),
                            predicate,
                        }),
                        Err(e) => out.rejected.push(Rejected {
                            path: path.clone(),
                            title: Some(rule.title.clone()),
                            reason: e.to_string(),
                        }),
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `ip_in_cidr(e, net)` as an expression.
pub(crate) fn ip_in_cidr(e: Expr, net: &str) -> Expr {
    match trail_query::ip::function("ip_in_cidr") {
        Some(f) => Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(f),
            vec![e, lit(net.to_owned())],
        )),
        None => lit(false),
    }
}

/// `json_path_text(e, path)` as an expression (see [`JsonPathText`]).
pub(crate) fn json_path_text(e: Expr, path: &str) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::from(JsonPathText::new())),
        vec![e, lit(path.to_owned())],
    ))
}

/// `json_path_text(json, 'a.b.c')`: every value the dotted path reaches in a JSON text,
/// through arrays at any level, each as text (strings unquoted; numbers, booleans and null as
/// JSON; objects and arrays as compact JSON), joined as `\n` v1 `\n` v2 `\n`; NULL when the
/// path reaches nothing. Keys match case-insensitively when no key matches exactly.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonPathText {
    signature: Signature,
}

impl JsonPathText {
    pub fn new() -> Self {
        JsonPathText {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for JsonPathText {
    fn default() -> Self {
        Self::new()
    }
}

fn reach<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match (v, path.split_first()) {
        (Value::Array(items), _) => {
            for i in items {
                reach(i, path, out);
            }
        }
        (_, None) => out.push(v),
        (Value::Object(map), Some((key, rest))) => {
            let found = map.get(*key).or_else(|| {
                map.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            });
            if let Some(next) = found {
                reach(next, rest, out);
            }
        }
        _ => {}
    }
}

/// The values a path reaches, joined as [`JsonPathText`] documents.
pub fn path_text(json: &str, path: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let keys: Vec<&str> = path.split('.').filter(|k| !k.is_empty()).collect();
    let mut found = Vec::new();
    match &v {
        // The top level is an object; an array at the top holds records.
        Value::Object(_) | Value::Array(_) => reach(&v, &keys, &mut found),
        _ => return None,
    }
    if found.is_empty() {
        return None;
    }
    let mut out = String::from("\n");
    for f in found {
        match f {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        out.push('\n');
    }
    Some(out)
}

impl ScalarUDFImpl for JsonPathText {
    fn name(&self) -> &str {
        "json_path_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        if args.len() != 2 {
            return plan_err!("json_path_text(json, path) takes two arguments");
        }
        Ok(vec![DataType::Utf8, DataType::Utf8])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let json = cast(&args.args[0].clone().into_array(rows)?, &DataType::Utf8)?;
        let path = cast(&args.args[1].clone().into_array(rows)?, &DataType::Utf8)?;
        let (json, path) = (json.as_string::<i32>(), path.as_string::<i32>());
        let mut b = StringBuilder::with_capacity(rows, rows * 8);
        for i in 0..rows {
            if json.is_null(i) || path.is_null(i) {
                b.append_null();
                continue;
            }
            b.append_option(path_text(json.value(i), path.value(i)));
        }
        let out: ArrayRef = Arc::new(b.finish());
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_reach_through_arrays() {
        let j = r#"{"containerDefinitions":[{"command":["sh","-c","curl x"]},{"command":"id"}],"enable":false,"n":3,"o":{"A":"b"}}"#;
        assert_eq!(
            path_text(j, "containerDefinitions.command").as_deref(),
            Some("\nsh\n-c\ncurl x\nid\n")
        );
        assert_eq!(path_text(j, "enable").as_deref(), Some("\nfalse\n"));
        assert_eq!(path_text(j, "n").as_deref(), Some("\n3\n"));
        assert_eq!(path_text(j, "o.a").as_deref(), Some("\nb\n"));
        assert_eq!(path_text(j, "o").as_deref(), Some("\n{\"A\":\"b\"}\n"));
        assert_eq!(path_text(j, "missing"), None);
        assert_eq!(path_text("not json", "a"), None);
    }

    #[test]
    fn levels() {
        assert_eq!(Level::parse("HIGH"), Some(Level::High));
        assert!(Level::Critical > Level::Low);
        assert_eq!(Level::parse("nope"), None);
    }
}
