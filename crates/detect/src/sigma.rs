//! Sigma rules: parsed from YAML, compiled to DataFusion expressions over the `events` table.
//!
//! What is supported (the [specification](https://github.com/SigmaHQ/sigma-specification)):
//!
//! * detections of maps (fields ANDed, a field's values ORed), lists of maps (ORed) and
//!   keyword lists (matched against the whole stored record, `raw`); `|all` on keywords;
//! * values: strings with `*` and `?` wildcards and `\` escapes, numbers, booleans, `null`
//!   (absent or null), `''` (empty); matching is case-insensitive unless `|cased`;
//! * modifiers: `contains`, `startswith`, `endswith`, `all`, `cased`, `exists`, `re` (with
//!   `i`, `m`, `s`), `cidr`, `gt`, `gte`, `lt`, `lte`, `neq`, `fieldref`, `windash`, `base64`,
//!   `base64offset`, and the time modifiers (`minute` ... `year`) on `eventTime`;
//! * conditions with `and`, `or`, `not`, parentheses, `1 of` / `any of` / `all of` a pattern
//!   with `*` wildcards or `them`, and a list of conditions (ORed).
//!
//! Field names are CloudTrail's (`eventSource`, `sourceIPAddress`, `userIdentity.type`,
//! `requestParameters.bucketName`), mapped onto trail's columns case-insensitively; a path into
//! `requestParameters`, `responseElements`, `additionalEventData` or `resources` reads the
//! stored JSON text (every value the path reaches, through arrays). A rule using anything else
//! (correlation rules, placeholders, an unknown modifier, a field with no mapping, UTF-16
//! encodings) is [`Unsupported`] with the reason: never compiled into something that matches
//! differently.

use std::collections::BTreeMap;

use base64::Engine as _;
use datafusion::common::ScalarValue;
use datafusion::functions::expr_fn::{date_part, get_field, regexp_like};
use datafusion::logical_expr::expr::Like;
use std::ops::Not;

use datafusion::prelude::{Expr, cast, coalesce, col, lit};
use yaml_rust2::{Yaml, YamlLoader};

/// Why a rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// The file is not a Sigma rule (YAML or structure errors).
    #[error("not a valid Sigma rule: {0}")]
    Invalid(String),
    /// A valid rule that uses something trail does not support.
    #[error("{0}")]
    Feature(String),
}

fn invalid(msg: impl Into<String>) -> Unsupported {
    Unsupported::Invalid(msg.into())
}

fn feature(msg: impl Into<String>) -> Unsupported {
    Unsupported::Feature(msg.into())
}

/// A value in a detection.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Value {
    fn from_yaml(y: &Yaml) -> Result<Value, Unsupported> {
        Ok(match y {
            Yaml::String(s) => Value::Str(s.clone()),
            Yaml::Integer(i) => Value::Int(*i),
            Yaml::Real(r) => Value::Float(
                r.parse()
                    .map_err(|_| invalid(format!("`{r}` is not a number")))?,
            ),
            Yaml::Boolean(b) => Value::Bool(*b),
            Yaml::Null => Value::Null,
            other => return Err(invalid(format!("a value cannot be {other:?}"))),
        })
    }

    fn text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
        }
    }
}

/// One `field|modifiers: values` item of a selection.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMatch {
    /// `None` for keywords (the whole record).
    pub field: Option<String>,
    pub modifiers: Vec<String>,
    pub values: Vec<Value>,
}

/// A search identifier: an OR of ANDs of field matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub any_of: Vec<Vec<FieldMatch>>,
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Ref(String),
    /// `1 of pattern` (or `any of`).
    OneOf(String),
    /// `all of pattern`.
    AllOf(String),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
}

/// A parsed Sigma rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub references: Vec<String>,
    pub level: Option<String>,
    pub tags: Vec<String>,
    pub product: Option<String>,
    pub service: Option<String>,
    pub selections: BTreeMap<String, Selection>,
    /// ORed.
    pub conditions: Vec<Condition>,
}

fn str_of(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn list_of(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(str_of).collect(),
        other => str_of(other).into_iter().collect(),
    }
}

/// Parse every rule of a YAML text (documents separated by `---`).
pub fn parse(text: &str) -> Result<Vec<Rule>, Unsupported> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| invalid(e.to_string()))?;
    if docs.is_empty() {
        return Err(invalid("the file holds no YAML document"));
    }
    docs.iter().map(parse_doc).collect()
}

fn parse_doc(doc: &Yaml) -> Result<Rule, Unsupported> {
    let Yaml::Hash(map) = doc else {
        return Err(invalid("a rule is a YAML mapping"));
    };
    let get = |k: &str| map.get(&Yaml::String(k.to_owned()));
    if get("correlation").is_some() {
        return Err(feature(
            "correlation rules (counting across events) are not supported",
        ));
    }
    if get("action").is_some() {
        return Err(feature(
            "rule collections (`action: global`) are not supported",
        ));
    }
    if get("filter").is_some() && get("detection").is_none() {
        return Err(feature("Sigma filters (meta filters) are not supported"));
    }
    let title = get("title")
        .and_then(str_of)
        .ok_or_else(|| invalid("the rule has no title"))?;
    let detection = match get("detection") {
        Some(Yaml::Hash(d)) => d,
        _ => return Err(invalid("the rule has no detection mapping")),
    };
    let mut selections = BTreeMap::new();
    let mut conditions = Vec::new();
    for (k, v) in detection {
        let Some(name) = str_of(k) else {
            return Err(invalid("a search identifier must be a string"));
        };
        if name == "condition" {
            for c in list_of(v) {
                conditions.push(parse_condition(&c)?);
            }
            if conditions.is_empty() {
                return Err(invalid("the condition is empty"));
            }
            continue;
        }
        if name == "timeframe" {
            return Err(feature(
                "`timeframe` (aggregation over time) is not supported",
            ));
        }
        selections.insert(name.clone(), parse_selection(&name, v)?);
    }
    if conditions.is_empty() {
        return Err(invalid("the detection has no condition"));
    }
    let logsource = get("logsource");
    let ls = |k: &str| {
        logsource
            .and_then(|l| l.as_hash())
            .and_then(|h| h.get(&Yaml::String(k.to_owned())))
            .and_then(str_of)
    };
    Ok(Rule {
        id: get("id").and_then(str_of),
        title,
        status: get("status").and_then(str_of),
        description: get("description").and_then(str_of),
        author: get("author").and_then(str_of),
        references: get("references").map(list_of).unwrap_or_default(),
        level: get("level").and_then(str_of),
        tags: get("tags").map(list_of).unwrap_or_default(),
        product: ls("product"),
        service: ls("service"),
        selections,
        conditions,
    })
}

fn parse_values(v: &Yaml) -> Result<Vec<Value>, Unsupported> {
    match v {
        Yaml::Array(a) => a.iter().map(Value::from_yaml).collect(),
        other => Ok(vec![Value::from_yaml(other)?]),
    }
}

fn parse_map(map: &yaml_rust2::yaml::Hash) -> Result<Vec<FieldMatch>, Unsupported> {
    let mut out = Vec::new();
    for (k, v) in map {
        let key = str_of(k).ok_or_else(|| invalid("a field name must be a string"))?;
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default().to_owned();
        let modifiers: Vec<String> = parts.map(str::to_owned).collect();
        out.push(FieldMatch {
            field: (!field.is_empty()).then_some(field),
            modifiers,
            values: parse_values(v)?,
        });
    }
    Ok(out)
}

fn parse_selection(name: &str, v: &Yaml) -> Result<Selection, Unsupported> {
    match v {
        Yaml::Hash(map) => Ok(Selection {
            any_of: vec![parse_map(map)?],
        }),
        Yaml::Array(items) if items.iter().all(|i| matches!(i, Yaml::Hash(_))) => Ok(Selection {
            any_of: items
                .iter()
                .filter_map(Yaml::as_hash)
                .map(parse_map)
                .collect::<Result<_, _>>()?,
        }),
        Yaml::Array(items) => {
            // Keywords: any of the values, anywhere in the record.
            let values = items
                .iter()
                .map(Value::from_yaml)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Selection {
                any_of: values
                    .into_iter()
                    .map(|v| {
                        vec![FieldMatch {
                            field: None,
                            modifiers: vec![],
                            values: vec![v],
                        }]
                    })
                    .collect(),
            })
        }
        Yaml::String(_) | Yaml::Integer(_) => Ok(Selection {
            any_of: vec![vec![FieldMatch {
                field: None,
                modifiers: vec![],
                values: vec![Value::from_yaml(v)?],
            }]],
        }),
        _ => Err(invalid(format!(
            "search identifier `{name}` is neither a map nor a list"
        ))),
    }
}

/// Parse a condition: `or` < `and` < `not` < `x of` < parentheses.
pub fn parse_condition(text: &str) -> Result<Condition, Unsupported> {
    let tokens = tokenize(text)?;
    let mut p = CondParser { t: &tokens, i: 0 };
    let c = p.or()?;
    if p.i != tokens.len() {
        return Err(invalid(format!(
            "condition `{text}`: unexpected `{}`",
            tokens[p.i]
        )));
    }
    Ok(c)
}

fn tokenize(text: &str) -> Result<Vec<String>, Unsupported> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '|' => {
                return Err(feature(
                    "aggregation in conditions (`| count() ...`) is not supported",
                ));
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    if out.is_empty() {
        return Err(invalid("the condition is empty"));
    }
    Ok(out)
}

struct CondParser<'a> {
    t: &'a [String],
    i: usize,
}

impl CondParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).map(String::as_str)
    }

    fn next(&mut self) -> Option<&str> {
        let t = self.t.get(self.i).map(String::as_str);
        self.i += 1;
        t
    }

    fn or(&mut self) -> Result<Condition, Unsupported> {
        let mut left = self.and()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("or")) {
            self.i += 1;
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, Unsupported> {
        let mut left = self.not()?;
        while self.peek().is_some_and(|t| t.eq_ignore_ascii_case("and")) {
            self.i += 1;
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, Unsupported> {
        if self.peek().is_some_and(|t| t.eq_ignore_ascii_case("not")) {
            self.i += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Condition, Unsupported> {
        let Some(t) = self.next().map(str::to_owned) else {
            return Err(invalid("the condition ends too early"));
        };
        if t == "(" {
            let c = self.or()?;
            if self.next() != Some(")") {
                return Err(invalid("a `(` in the condition is not closed"));
            }
            return Ok(c);
        }
        let quantifier = if t == "1" || t.eq_ignore_ascii_case("any") {
            Some(true)
        } else if t.eq_ignore_ascii_case("all") {
            Some(false)
        } else if t.parse::<u32>().is_ok() {
            return Err(feature(format!(
                "`{t} of` (other than 1 or all) is not supported"
            )));
        } else {
            None
        };
        if let Some(one) = quantifier
            && self.peek().is_some_and(|x| x.eq_ignore_ascii_case("of"))
        {
            self.i += 1;
            let pattern = self
                .next()
                .ok_or_else(|| invalid(format!("`{t} of` needs a pattern or `them`")))?
                .to_owned();
            return Ok(if one {
                Condition::OneOf(pattern)
            } else {
                Condition::AllOf(pattern)
            });
        }
        if matches!(t.to_ascii_lowercase().as_str(), "and" | "or" | ")") {
            return Err(invalid(format!("unexpected `{t}` in the condition")));
        }
        Ok(Condition::Ref(t))
    }
}

/// Where a CloudTrail field lives in trail's events table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A top-level text column.
    Column(&'static str),
    /// A field inside `userIdentity` (a path of struct fields).
    Nested(Vec<&'static str>),
    /// A path into a JSON text column (empty: the whole JSON text).
    Json(&'static str, Vec<String>),
    /// `readOnly`: derived from `eventRW`.
    ReadOnly,
    /// `eventTime`, a timestamp.
    Time,
}

/// Top-level columns, CloudTrail spellings included.
const COLUMNS: &[(&str, &str)] = &[
    ("eventid", "eventId"),
    ("eventversion", "eventVersion"),
    ("eventsource", "eventSource"),
    ("eventname", "eventName"),
    ("eventtype", "eventType"),
    ("eventcategory", "eventCategory"),
    ("eventrw", "eventRW"),
    ("awsregion", "acsRegion"),
    ("acsregion", "acsRegion"),
    ("servicename", "serviceName"),
    ("apiversion", "apiVersion"),
    ("requestid", "requestId"),
    ("sourceipaddress", "sourceIpAddress"),
    ("useragent", "userAgent"),
    ("errorcode", "errorCode"),
    ("errormessage", "errorMessage"),
    ("recipientaccountid", "recipientAccountId"),
    ("resourcetype", "resourceType"),
    ("resourcename", "resourceName"),
    ("vpcendpointid", "vpcId"),
    ("vpcid", "vpcId"),
    ("sharedeventid", "sharedEventId"),
];

const IDENTITY: &[&str] = &[
    "type",
    "principalId",
    "accountId",
    "accessKeyId",
    "userName",
    "arn",
    "invokedBy",
];
const ATTRIBUTES: &[&str] = &["mfaAuthenticated", "creationDate"];
const ISSUER: &[&str] = &["type", "principalId", "arn", "accountId", "userName"];

const JSON_COLUMNS: &[(&str, &str)] = &[
    ("requestparameters", "requestParameters"),
    ("responseelements", "responseElements"),
    ("additionaleventdata", "additionalEventData"),
    ("resources", "referencedResources"),
    ("referencedresources", "referencedResources"),
];

fn find(list: &[&'static str], name: &str) -> Option<&'static str> {
    list.iter().find(|f| f.eq_ignore_ascii_case(name)).copied()
}

fn target(field: &str) -> Result<Target, Unsupported> {
    let parts: Vec<&str> = field.split('.').collect();
    let head = parts[0].to_ascii_lowercase();
    let none = || {
        feature(format!(
            "field `{field}` has no mapping onto trail's columns"
        ))
    };
    if parts.len() == 1 {
        if head == "eventtime" {
            return Ok(Target::Time);
        }
        if head == "readonly" {
            return Ok(Target::ReadOnly);
        }
        if let Some((_, c)) = COLUMNS.iter().find(|(k, _)| *k == head) {
            return Ok(Target::Column(c));
        }
    }
    if let Some((_, c)) = JSON_COLUMNS.iter().find(|(k, _)| *k == head) {
        return Ok(Target::Json(
            c,
            parts[1..].iter().map(|s| (*s).to_owned()).collect(),
        ));
    }
    if head == "useridentity" {
        let rest = &parts[1..];
        let path = match rest {
            [f] => vec!["userIdentity", find(IDENTITY, f).ok_or_else(none)?],
            [s, a, f]
                if s.eq_ignore_ascii_case("sessionContext")
                    && a.eq_ignore_ascii_case("attributes") =>
            {
                vec![
                    "userIdentity",
                    "sessionContext",
                    "attributes",
                    find(ATTRIBUTES, f).ok_or_else(none)?,
                ]
            }
            [s, i, f]
                if s.eq_ignore_ascii_case("sessionContext")
                    && i.eq_ignore_ascii_case("sessionIssuer") =>
            {
                vec![
                    "userIdentity",
                    "sessionContext",
                    "sessionIssuer",
                    find(ISSUER, f).ok_or_else(none)?,
                ]
            }
            _ => return Err(none()),
        };
        return Ok(Target::Nested(path));
    }
    Err(none())
}

/// The text of a field, for string matching (NULL when absent).
fn text_expr(t: &Target) -> Expr {
    match t {
        Target::Column(c) => col(format!("\"{c}\"")),
        Target::Nested(path) => {
            let mut e = col(format!("\"{}\"", path[0]));
            for f in &path[1..] {
                e = get_field(e, *f);
            }
            e
        }
        // The whole JSON text, with nested documents stored as strings (a policy document)
        // unescaped, so `"s3:GetObject"` matches inside them too.
        Target::Json(c, path) if path.is_empty() => {
            datafusion::functions::expr_fn::replace(col(format!("\"{c}\"")), lit("\\\""), lit("\""))
        }
        Target::Json(c, path) => crate::json_path_text(col(format!("\"{c}\"")), &path.join(".")),
        Target::ReadOnly => Expr::Case(datafusion::logical_expr::Case {
            expr: Some(Box::new(col("\"eventRW\""))),
            when_then_expr: vec![
                (Box::new(lit("Read")), Box::new(lit("true"))),
                (Box::new(lit("Write")), Box::new(lit("false"))),
            ],
            else_expr: None,
        }),
        Target::Time => cast(
            col("\"eventTime\""),
            datafusion::arrow::datatypes::DataType::Utf8,
        ),
    }
}

/// For a JSON path, values are joined as `\n` + v1 + `\n` + v2 + `\n`: a pattern for one whole
/// value is anchored between newlines.
fn is_multi(t: &Target) -> bool {
    matches!(t, Target::Json(_, p) if !p.is_empty())
}

/// A Sigma value with wildcards as a LIKE pattern (`\` escapes).
fn like_pattern(value: &str, prefix_any: bool, suffix_any: bool, multi: bool) -> String {
    let mut out = String::new();
    if multi {
        out.push('%');
        if !prefix_any {
            out.push('\n');
        }
    } else if prefix_any {
        out.push('%');
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('*') | Some('?') | Some('\\') => {
                    let n = chars.next().unwrap_or('\\');
                    if n == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(n);
                    }
                }
                _ => out.push_str("\\\\"),
            },
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' => out.push_str("\\%"),
            '_' => out.push_str("\\_"),
            c => out.push(c),
        }
    }
    if multi {
        if !suffix_any {
            out.push('\n');
        }
        out.push('%');
    } else if suffix_any {
        out.push('%');
    }
    out
}

fn like(e: Expr, pattern: String, case_insensitive: bool) -> Expr {
    Expr::Like(Like {
        negated: false,
        expr: Box::new(e),
        pattern: Box::new(lit(pattern)),
        escape_char: Some('\\'),
        case_insensitive,
    })
}

/// Two-valued logic: a test on an absent field is false, so `not filter` matches it.
fn known(e: Expr) -> Expr {
    coalesce(vec![e, lit(false)])
}

const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

fn windash(v: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for c in v.chars() {
        if DASHES.contains(&c) && out.len() < 625 {
            out = out
                .iter()
                .flat_map(|p| DASHES.iter().map(move |d| format!("{p}{d}")))
                .collect();
        } else {
            for p in &mut out {
                p.push(c);
            }
        }
    }
    out
}

fn base64_offsets(v: &str) -> Vec<String> {
    let engine = base64::engine::general_purpose::STANDARD;
    let b = v.as_bytes();
    (0..3)
        .filter_map(|shift| {
            let mut padded = vec![b' '; shift];
            padded.extend_from_slice(b);
            let enc = engine.encode(&padded);
            // Drop the characters that depend on the unknown bytes before and after.
            let start = [0usize, 2, 3][shift];
            let end_trim = [0usize, 3, 2][(b.len() + shift) % 3];
            let s: String = enc.trim_end_matches('=').to_owned();
            let end = s.len().saturating_sub(end_trim);
            (start < end).then(|| s[start..end].to_owned())
        })
        .collect()
}

const KNOWN_MODIFIERS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "cased",
    "exists",
    "re",
    "i",
    "m",
    "s",
    "cidr",
    "gt",
    "gte",
    "lt",
    "lte",
    "neq",
    "fieldref",
    "windash",
    "base64",
    "base64offset",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
];

/// Compile one field match.
fn compile_match(m: &FieldMatch) -> Result<Expr, Unsupported> {
    for md in &m.modifiers {
        let md = md.to_ascii_lowercase();
        if !KNOWN_MODIFIERS.contains(&md.as_str()) {
            return Err(feature(match md.as_str() {
                "utf16" | "utf16le" | "utf16be" | "wide" => format!(
                    "modifier `{md}`: audit records are UTF-8 JSON text, where UTF-16 encoded values cannot occur"
                ),
                "expand" => {
                    "modifier `expand`: placeholders need value lists, and none is configured"
                        .into()
                }
                _ => format!("unknown modifier `{md}`"),
            }));
        }
    }
    let has = |x: &str| m.modifiers.iter().any(|md| md.eq_ignore_ascii_case(x));
    let Some(field) = &m.field else {
        // Keywords: anywhere in the whole record.
        let all = has("all");
        let tests: Vec<Expr> = m
            .values
            .iter()
            .map(|v| {
                let text = v
                    .text()
                    .ok_or_else(|| invalid("a keyword cannot be null"))?;
                Ok(known(like(
                    col("raw"),
                    like_pattern(&text, true, true, false),
                    !has("cased"),
                )))
            })
            .collect::<Result<_, Unsupported>>()?;
        return Ok(combine(tests, all));
    };
    let t = target(field)?;
    let multi = is_multi(&t);
    let text = text_expr(&t);
    if has("exists") {
        let want = match m.values.as_slice() {
            [Value::Bool(b)] => *b,
            [Value::Str(s)] if s.eq_ignore_ascii_case("true") => true,
            [Value::Str(s)] if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(invalid(format!("`{field}|exists` takes true or false"))),
        };
        return Ok(if want {
            text.is_not_null()
        } else {
            text.is_null()
        });
    }
    let time_part = ["minute", "hour", "day", "week", "month", "year"]
        .into_iter()
        .find(|p| has(p));
    let numeric = ["gt", "gte", "lt", "lte"].into_iter().find(|p| has(p));
    let all = has("all");
    if all && m.values.len() < 2 {
        return Err(invalid(format!("`{field}|all` needs several values")));
    }
    let mut tests = Vec::new();
    for v in &m.values {
        if let Value::Null = v {
            if m.modifiers.is_empty() {
                let absent = text.clone().is_null();
                tests.push(if multi {
                    absent.or(known(text.clone().eq(lit("\nnull\n"))))
                } else {
                    absent
                });
                continue;
            }
            return Err(invalid(format!("`{field}`: null takes no modifier")));
        }
        if let Some(part) = time_part {
            if t != Target::Time {
                return Err(feature(format!(
                    "modifier `{part}` applies to eventTime only"
                )));
            }
            let n = match v {
                Value::Int(i) => *i,
                _ => return Err(invalid(format!("`{field}|{part}` takes a number"))),
            };
            let part = if part == "day" { "day" } else { part };
            tests.push(known(
                date_part(lit(part), col("\"eventTime\""))
                    .eq(lit(ScalarValue::Int32(Some(n as i32)))),
            ));
            continue;
        }
        if let Some(op) = numeric {
            let n = match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                Value::Str(s) => s
                    .parse()
                    .map_err(|_| invalid(format!("`{field}|{op}` takes a number, not `{s}`")))?,
                _ => return Err(invalid(format!("`{field}|{op}` takes a number"))),
            };
            let num = if multi {
                datafusion::prelude::try_cast(
                    datafusion::functions::expr_fn::btrim(vec![text.clone(), lit("\n")]),
                    datafusion::arrow::datatypes::DataType::Float64,
                )
            } else {
                datafusion::prelude::try_cast(
                    text.clone(),
                    datafusion::arrow::datatypes::DataType::Float64,
                )
            };
            let n = lit(n);
            tests.push(known(match op {
                "gt" => num.gt(n),
                "gte" => num.gt_eq(n),
                "lt" => num.lt(n),
                _ => num.lt_eq(n),
            }));
            continue;
        }
        let raw = v.text().unwrap_or_default();
        if has("fieldref") {
            let other_target = target(&raw)?;
            let single = |t: &Target, e: Expr| {
                if is_multi(t) {
                    datafusion::functions::expr_fn::btrim(vec![e, lit("\n")])
                } else {
                    e
                }
            };
            let other = single(&other_target, text_expr(&other_target));
            let text = single(&t, text.clone());
            let e = if has("cased") {
                text.clone().eq(other)
            } else {
                datafusion::functions::expr_fn::lower(text.clone())
                    .eq(datafusion::functions::expr_fn::lower(other))
            };
            tests.push(known(e));
            continue;
        }
        if has("cidr") {
            let net = trail_query::ip::parse_net(&raw)
                .ok_or_else(|| invalid(format!("`{raw}` is not a CIDR")))?;
            tests.push(known(crate::ip_in_cidr(text.clone(), &net.to_string())));
            continue;
        }
        if has("re") {
            let mut flags = String::new();
            for f in ["i", "m", "s"] {
                if has(f) {
                    flags.push_str(f);
                }
            }
            regex_check(&raw)?;
            tests.push(known(regexp_like(
                text.clone(),
                lit(raw.clone()),
                (!flags.is_empty()).then(|| lit(flags)),
            )));
            continue;
        }
        let mut variants = vec![raw.clone()];
        if has("windash") {
            variants = variants.iter().flat_map(|v| windash(v)).collect();
        }
        if has("base64offset") {
            variants = variants.iter().flat_map(|v| base64_offsets(v)).collect();
        } else if has("base64") {
            let engine = base64::engine::general_purpose::STANDARD;
            variants = variants
                .iter()
                .map(|v| engine.encode(v.as_bytes()))
                .collect();
        }
        let (pre, post) = (
            has("contains") || has("endswith") || has("base64offset"),
            has("contains") || has("startswith") || has("base64offset"),
        );
        let mut alts: Vec<Expr> = variants
            .iter()
            .map(|v| {
                // base64 output holds no wildcards to interpret.
                let v = if has("base64") || has("base64offset") {
                    v.replace('\\', "\\\\")
                        .replace('*', "\\*")
                        .replace('?', "\\?")
                } else {
                    v.clone()
                };
                known(like(
                    text.clone(),
                    like_pattern(&v, pre, post, multi),
                    !has("cased"),
                ))
            })
            .collect();
        let one = if alts.len() == 1 {
            alts.remove(0)
        } else {
            combine(alts, false)
        };
        tests.push(if has("neq") {
            // Different from the value: a present field that does not match.
            text.clone().is_not_null().and(one.not())
        } else {
            one
        });
    }
    // `neq` over several values: different from all of them.
    Ok(combine(tests, all || has("neq")))
}

/// Reject regular expressions outside the specification's flavour that Rust's regex
/// engine would read differently (back-references, look-around).
fn regex_check(re: &str) -> Result<(), Unsupported> {
    for bad in ["(?=", "(?!", "(?<=", "(?<!", "\\1", "\\2"] {
        if re.contains(bad) {
            return Err(feature(format!(
                "regular expression `{re}` uses `{bad}`, outside Sigma's regex flavour"
            )));
        }
    }
    regex_syntax_ok(re)
}

fn regex_syntax_ok(re: &str) -> Result<(), Unsupported> {
    regex::Regex::new(re)
        .map(|_| ())
        .map_err(|e| invalid(format!("regular expression `{re}`: {e}")))
}

fn combine(tests: Vec<Expr>, all: bool) -> Expr {
    let mut it = tests.into_iter();
    let first = it.next().unwrap_or_else(|| lit(all));
    it.fold(first, |a, b| if all { a.and(b) } else { a.or(b) })
}

fn compile_selection(s: &Selection) -> Result<Expr, Unsupported> {
    let ors = s
        .any_of
        .iter()
        .map(|ands| {
            let tests = ands
                .iter()
                .map(compile_match)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(combine(tests, true))
        })
        .collect::<Result<Vec<_>, Unsupported>>()?;
    Ok(combine(ors, false))
}

fn matching<'a>(rule: &'a Rule, pattern: &str) -> Vec<&'a str> {
    let names = rule.selections.keys().map(String::as_str);
    if pattern == "them" {
        return names.filter(|n| !n.starts_with('_')).collect();
    }
    names.filter(|n| wildcard_match(pattern, n)).collect()
}

/// `*` matches any run of characters; everything else matches itself.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let Some(rest) = name.strip_prefix(parts[0]) else {
        return false;
    };
    let mut pos = parts[0].len();
    for (i, p) in parts.iter().enumerate().skip(1) {
        if i == parts.len() - 1 {
            return name.len() >= pos + p.len() && name[pos..].ends_with(p);
        }
        match name[pos..].find(p) {
            Some(k) => pos += k + p.len(),
            None => return false,
        }
    }
    let _ = rest;
    true
}

fn compile_condition(
    rule: &Rule,
    c: &Condition,
    compiled: &BTreeMap<&str, Expr>,
) -> Result<Expr, Unsupported> {
    let sel = |name: &str| {
        compiled.get(name).cloned().ok_or_else(|| {
            invalid(format!(
                "the condition names `{name}`, which the detection does not define"
            ))
        })
    };
    Ok(match c {
        Condition::Ref(name) => sel(name)?,
        Condition::OneOf(p) | Condition::AllOf(p) => {
            let names = matching(rule, p);
            if names.is_empty() {
                return Err(invalid(format!("no search identifier matches `{p}`")));
            }
            let exprs = names
                .iter()
                .map(|n| sel(n))
                .collect::<Result<Vec<_>, _>>()?;
            combine(exprs, matches!(c, Condition::AllOf(_)))
        }
        Condition::And(a, b) => {
            compile_condition(rule, a, compiled)?.and(compile_condition(rule, b, compiled)?)
        }
        Condition::Or(a, b) => {
            compile_condition(rule, a, compiled)?.or(compile_condition(rule, b, compiled)?)
        }
        Condition::Not(a) => compile_condition(rule, a, compiled)?.not(),
    })
}

/// Compile a rule into a predicate over the `events` table.
pub fn compile(rule: &Rule) -> Result<Expr, Unsupported> {
    if let Some(p) = &rule.product
        && !p.eq_ignore_ascii_case("aws")
        && !p.eq_ignore_ascii_case("alibaba")
        && !p.eq_ignore_ascii_case("alibabacloud")
    {
        return Err(feature(format!(
            "log source product `{p}`: trail holds cloud audit events (aws, alibaba)"
        )));
    }
    if let Some(s) = &rule.service
        && !["cloudtrail", "actiontrail"].contains(&s.to_ascii_lowercase().as_str())
    {
        return Err(feature(format!(
            "log source service `{s}`: trail holds CloudTrail and ActionTrail management events"
        )));
    }
    let mut compiled = BTreeMap::new();
    for (name, s) in &rule.selections {
        compiled.insert(name.as_str(), compile_selection(s)?);
    }
    let mut exprs = Vec::new();
    for c in &rule.conditions {
        exprs.push(compile_condition(rule, c, &compiled)?);
    }
    Ok(combine(exprs, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_with_precedence() {
        use Condition::*;
        let r = |s: &str| Ref(s.to_owned());
        assert_eq!(
            parse_condition("a or b and not c").unwrap(),
            Or(
                Box::new(r("a")),
                Box::new(And(Box::new(r("b")), Box::new(Not(Box::new(r("c"))))))
            )
        );
        assert_eq!(
            parse_condition("(a or b) and 1 of sel_* and not all of filter*").unwrap(),
            And(
                Box::new(And(
                    Box::new(Or(Box::new(r("a")), Box::new(r("b")))),
                    Box::new(OneOf("sel_*".into()))
                )),
                Box::new(Not(Box::new(AllOf("filter*".into()))))
            )
        );
        assert!(parse_condition("a and").is_err());
        assert!(parse_condition("(a or b").is_err());
        assert!(matches!(
            parse_condition("sel | count() > 5"),
            Err(Unsupported::Feature(_))
        ));
        assert!(matches!(
            parse_condition("2 of sel*"),
            Err(Unsupported::Feature(_))
        ));
    }

    #[test]
    fn wildcards_become_like_patterns() {
        assert_eq!(like_pattern("a*b?c", false, false, false), "a%b_c");
        assert_eq!(like_pattern("50%_x", true, false, false), "%50\\%\\_x");
        assert_eq!(like_pattern("a\\*b", false, false, false), "a*b");
        assert_eq!(
            like_pattern("C:\\Windows", false, false, false),
            "C:\\\\Windows"
        );
        assert_eq!(like_pattern("x", false, false, true), "%\nx\n%");
        assert_eq!(like_pattern("x", true, true, true), "%x%");
        assert!(wildcard_match("selection_*", "selection_a"));
        assert!(wildcard_match("*filter*", "main_filter_1"));
        assert!(!wildcard_match("sel_*", "filter"));
    }

    #[test]
    fn windash_and_base64_expand_values() {
        let v = windash("-a");
        assert_eq!(v.len(), 5);
        assert!(v.contains(&"/a".to_owned()));
        let offsets = base64_offsets("http://");
        assert_eq!(offsets.len(), 3);
        let engine = base64::engine::general_purpose::STANDARD;
        for prefix in ["", "x", "xy"] {
            let enc = engine.encode(format!("{prefix}http://example"));
            assert!(
                offsets.iter().any(|o| enc.contains(o.as_str())),
                "{enc} {offsets:?}"
            );
        }
    }

    #[test]
    fn field_mapping() {
        assert_eq!(
            target("sourceIPAddress").unwrap(),
            Target::Column("sourceIpAddress")
        );
        assert_eq!(target("awsRegion").unwrap(), Target::Column("acsRegion"));
        assert_eq!(
            target("userIdentity.sessionContext.sessionIssuer.type").unwrap(),
            Target::Nested(vec![
                "userIdentity",
                "sessionContext",
                "sessionIssuer",
                "type"
            ])
        );
        assert_eq!(
            target("requestParameters.bucketPolicy.Statement").unwrap(),
            Target::Json(
                "requestParameters",
                vec!["bucketPolicy".into(), "Statement".into()]
            )
        );
        assert!(matches!(target("status"), Err(Unsupported::Feature(m)) if m.contains("`status`")));
        assert!(target("userIdentity.nosuch").is_err());
    }
}
