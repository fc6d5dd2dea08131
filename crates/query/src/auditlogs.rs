//! `DescribeAuditLogs` over the local store: the data-security service's audit-log query, with
//! its request parameters and response shape, answered from the `audit_logs` table.
//!
//! How each parameter matches (the API documents the parameters, not their matching; these
//! follow its examples and what the console's search boxes do):
//!
//! | parameter | column | match |
//! |---|---|---|
//! | `UserName`, `InstanceName`, `DatabaseName`, `RuleId`, `RuleCategory`, `MemberAccount` | same | exact, case-sensitive (identifiers) |
//! | `ProductCode`, `OperateType`, `LogSource` | same | exact, any case (`rds` = `RDS`, `insert` = `Insert`) |
//! | `ClientUa`, `SqlText`, `RuleName`, `Message`, `OssObjectKey` | same | substring, any case |
//! | `ClientIp` | `ClientIp` | an address (equal), a CIDR (`10.0.0.0/8`: inside it), or a masked address as the API shows them (`10.*.*.94`: `*` stands for one octet, and matches a stored `*` too) |
//! | `StartTime`, `EndTime` | `LogTime` | at or after / at or before (both ends inclusive), UNIX milliseconds |
//! | `ExecuteTimeRange`, `EffectRowRange` | `ExecuteTime`, `EffectRow` | `in[a b]`: from `a` to `b`, both inclusive |
//! | `ProductId` | `ProductId` | one of the documented ids (1 MaxCompute ... 25 Redis) |
//! | `WarnLevel` | `WarnLevel` | `1`, `2`, `3` or `low`, `medium`, `high` |
//! | `IpType` | `IpType` | `default` or `aliyun`; a record without one is `default`, as documented |
//!
//! All given conditions must hold. `LogQueryOpJson` (`[{"queryKey": "effectRowRange",
//! "isContain": false}]`) turns a condition into an exclusion: the records that do *not*
//! match it (a record without the field counts as not matching). A `queryKey` is a parameter
//! name in any case (`remoteClientIp` is `ClientIp`); one for a condition that is not given
//! changes nothing.
//!
//! Order and paging: newest `LogTime` first, then newest `CreationTime`, then the record's
//! text, so the order is total. A page is read from a snapshot: the files the store held at
//! one commit (`Generation` in the response). Audit-log files are only ever added, never
//! rewritten, so passing the same generation back pages through the same items while later
//! ingests add more: every item exactly once.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::prelude::{Expr, ident};
use ipnet::IpNet;
use trail_store::schema;

use crate::{Engine, QueryError, Result};

/// Most items per page, as the API.
pub const MAX_PAGE_SIZE: u32 = 50;
/// Items per page when none is asked for, as the API.
pub const DEFAULT_PAGE_SIZE: u32 = 10;

/// How a parameter's value is compared with its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Equal text.
    Exact,
    /// Equal text in any case.
    AnyCase,
    /// The value inside the column's text, in any case.
    Contains,
    /// An address, a CIDR or a masked address.
    Ip,
    /// `in[a b]`, both ends inclusive.
    Range,
    /// At or after, milliseconds.
    From,
    /// At or before, milliseconds.
    To,
    /// A documented product id.
    ProductId,
    /// A risk level.
    Level,
    /// `default` or `aliyun`.
    IpType,
}

/// A request parameter of `DescribeAuditLogs` that filters.
#[derive(Debug)]
pub struct Param {
    /// The API's name (`EffectRowRange`).
    pub name: &'static str,
    /// The column it filters.
    pub column: &'static str,
    pub kind: Match,
}

const fn p(name: &'static str, column: &'static str, kind: Match) -> Param {
    Param { name, column, kind }
}

/// Every filtering parameter, in the API's order.
pub const PARAMS: [Param; 22] = [
    p("UserName", "UserName", Match::Exact),
    p("ClientIp", "ClientIp", Match::Ip),
    p("ClientUa", "ClientUa", Match::Contains),
    p("InstanceName", "InstanceName", Match::Exact),
    p("DatabaseName", "DatabaseName", Match::Exact),
    p("StartTime", schema::AUDIT_LOG_TIME, Match::From),
    p("EndTime", schema::AUDIT_LOG_TIME, Match::To),
    p("ProductCode", "ProductCode", Match::AnyCase),
    p("ProductId", "ProductId", Match::ProductId),
    p("SqlText", "SqlText", Match::Contains),
    p("ExecuteTimeRange", "ExecuteTime", Match::Range),
    p("EffectRowRange", "EffectRow", Match::Range),
    p("RuleId", "RuleId", Match::Exact),
    p("RuleName", "RuleName", Match::Contains),
    p("OperateType", "OperateType", Match::AnyCase),
    p("WarnLevel", "WarnLevel", Match::Level),
    p("RuleCategory", "RuleCategory", Match::Exact),
    p("LogSource", "LogSource", Match::AnyCase),
    p("MemberAccount", "MemberAccount", Match::Exact),
    p("IpType", "IpType", Match::IpType),
    p("Message", "Message", Match::Contains),
    p("OssObjectKey", "OssObjectKey", Match::Contains),
];

/// The documented product ids.
pub const PRODUCTS: [(i64, &str); 12] = [
    (1, "MaxCompute"),
    (2, "OSS"),
    (3, "AnalyticDB for MySQL"),
    (4, "TableStore"),
    (5, "RDS"),
    (6, "SELF_DB"),
    (7, "PolarDB-X"),
    (8, "PolarDB"),
    (9, "AnalyticDB for PostgreSQL"),
    (10, "OceanBase"),
    (11, "MongoDB"),
    (25, "Redis"),
];

/// The parameter of an API name, in any case (`RuleID` and `remoteClientIp` included).
pub fn param(name: &str) -> Result<&'static Param> {
    let name = name.trim();
    let name = match name.to_ascii_lowercase().as_str() {
        "remoteclientip" => "ClientIp",
        _ => name,
    };
    PARAMS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            QueryError::Usage(format!(
                "`{}` is not a DescribeAuditLogs query parameter; use one of: {}",
                name.escape_debug(),
                PARAMS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
            ))
        })
}

/// A checked parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Net(IpNet),
    /// A masked address: its octets, `None` for `*`.
    Masked(Vec<Option<u8>>),
    Range(i64, i64),
    Millis(i64),
    Int(i64),
}

/// Check a value for a parameter; the error names the parameter and the accepted form.
pub fn parse_value(param: &Param, raw: &str) -> Result<Value> {
    let bad = |form: &str| {
        QueryError::Usage(format!(
            "{}: `{}` is not {form}",
            param.name,
            raw.escape_debug()
        ))
    };
    let t = raw.trim();
    Ok(match param.kind {
        Match::Exact | Match::AnyCase | Match::Contains if t.is_empty() => {
            return Err(bad("a value (it is empty)"));
        }
        Match::Exact | Match::AnyCase | Match::Contains => Value::Text(t.to_owned()),
        Match::Ip => {
            if let Some(n) = crate::ip::parse_net(t) {
                Value::Net(n)
            } else {
                let octets: Option<Vec<Option<u8>>> = t
                    .split('.')
                    .map(|o| match o {
                        "*" => Some(None),
                        o => o.parse::<u8>().ok().map(Some),
                    })
                    .collect();
                match octets {
                    Some(o) if o.len() == 4 => Value::Masked(o),
                    _ => {
                        return Err(bad(
                            "an IP address, a CIDR (10.0.0.0/8) or a masked address (10.*.*.94)",
                        ));
                    }
                }
            }
        }
        Match::Range => {
            let form = "a range `in[LOW HIGH]` of whole numbers, LOW <= HIGH (e.g. in[1000 2000])";
            let inner = t
                .strip_prefix("in[")
                .and_then(|s| s.strip_suffix(']'))
                .ok_or_else(|| bad(form))?;
            let mut parts = inner.split_whitespace().map(str::parse::<i64>);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(Ok(a)), Some(Ok(b)), None) if a <= b => Value::Range(a, b),
                _ => return Err(bad(form)),
            }
        }
        Match::From | Match::To => match t.parse::<i64>() {
            Ok(ms) if ms >= 0 => Value::Millis(ms),
            _ => Value::Millis(
                crate::time::parse_user_time(t)
                    .map_err(|_| {
                        bad("a time: UNIX milliseconds (1616068534877) or RFC 3339 \
                             (2021-03-18T12:00:00Z)")
                    })?
                    .timestamp_millis(),
            ),
        },
        Match::ProductId => match t.parse::<i64>() {
            Ok(id) if PRODUCTS.iter().any(|(p, _)| *p == id) => Value::Int(id),
            _ => {
                let ids: Vec<String> = PRODUCTS.iter().map(|(i, n)| format!("{i} {n}")).collect();
                return Err(bad(&format!("a product id: one of {}", ids.join(", "))));
            }
        },
        Match::Level => match t.to_ascii_lowercase().as_str() {
            "1" | "low" => Value::Text("1".into()),
            "2" | "medium" => Value::Text("2".into()),
            "3" | "high" => Value::Text("3".into()),
            _ => return Err(bad("a risk level: 1 (low), 2 (medium) or 3 (high)")),
        },
        Match::IpType => match t.to_ascii_lowercase().as_str() {
            v @ ("default" | "aliyun") => Value::Text(v.to_owned()),
            _ => return Err(bad("a network type: default or aliyun")),
        },
    })
}

/// Parse `LogQueryOpJson`: which conditions are exclusions (`isContain: false`).
pub fn parse_query_ops(s: &str) -> Result<Vec<(&'static Param, bool)>> {
    let bad = |why: String| {
        QueryError::Usage(format!(
            "LogQueryOpJson: `{}` is not a JSON array of {{\"queryKey\": NAME, \"isContain\": \
             true|false}} ({why})",
            s.escape_debug()
        ))
    };
    let ops: Vec<serde_json::Value> = serde_json::from_str(s).map_err(|e| bad(e.to_string()))?;
    ops.iter()
        .map(|op| {
            let field = |name: &str| {
                op.as_object().and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                })
            };
            let key = field("queryKey")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad(format!("{op} has no queryKey string")))?;
            let contain = field("isContain")
                .and_then(|v| v.as_bool())
                .ok_or_else(|| bad(format!("{op} has no isContain boolean")))?;
            Ok((param(key)?, contain))
        })
        .collect()
}

/// Which language `WarnLevelName` is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    EnUs,
}

impl Lang {
    /// The name of risk level `1`, `2` or `3`.
    pub fn level_name(self, level: &str) -> Option<&'static str> {
        let i = match level.trim() {
            "1" => 0,
            "2" => 1,
            "3" => 2,
            _ => return None,
        };
        Some(match self {
            Lang::ZhCn => ["低危", "中危", "高危"][i],
            Lang::EnUs => ["Low", "Medium", "High"][i],
        })
    }
}

/// A `DescribeAuditLogs` request.
#[derive(Debug, Clone)]
pub struct AuditLogRequest {
    pub conditions: Vec<(&'static Param, Value)>,
    /// From `LogQueryOpJson`.
    pub ops: Vec<(&'static Param, bool)>,
    pub page_size: u32,
    pub current_page: u64,
    /// `None`: `WarnLevelName` as it was delivered. Given: derived from `WarnLevel` in that
    /// language (the delivered name where the level is not 1, 2 or 3).
    pub lang: Option<Lang>,
    /// Read the store as of this commit (`None`: the latest).
    pub generation: Option<u64>,
}

impl Default for AuditLogRequest {
    fn default() -> Self {
        AuditLogRequest {
            conditions: Vec::new(),
            ops: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
            current_page: 1,
            lang: None,
            generation: None,
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL condition of one parameter value (NULL where the record has no such field).
fn condition(param: &Param, value: &Value) -> String {
    let c = format!("\"{}\"", param.column);
    match (param.kind, value) {
        (Match::AnyCase, Value::Text(t)) => format!("lower({c}) = {}", quote(&t.to_lowercase())),
        (Match::Contains, Value::Text(t)) => {
            format!("strpos(lower({c}), {}) > 0", quote(&t.to_lowercase()))
        }
        (Match::IpType, Value::Text(t)) => {
            format!("lower(coalesce({c}, 'default')) = {}", quote(t))
        }
        (_, Value::Text(t)) => format!("{c} = {}", quote(t)),
        (_, Value::Net(n)) if n.prefix_len() == n.max_prefix_len() => {
            format!(
                "({c} = {} OR ip_in_cidr({c}, {}))",
                quote(&n.addr().to_string()),
                quote(&n.to_string())
            )
        }
        (_, Value::Net(n)) => format!("ip_in_cidr({c}, {})", quote(&n.to_string())),
        (_, Value::Masked(octets)) => {
            let parts: Vec<String> = octets
                .iter()
                .map(|o| match o {
                    Some(v) => format!("({v}|\\*)"),
                    None => "[0-9*]{1,3}".to_owned(),
                })
                .collect();
            format!(
                "regexp_like({c}, {})",
                quote(&format!("^{}$", parts.join("\\.")))
            )
        }
        (_, Value::Range(a, b)) => format!("{c} BETWEEN {a} AND {b}"),
        (Match::To, Value::Millis(ms)) => format!("{c} <= to_timestamp_millis({ms})"),
        (_, Value::Millis(ms)) => format!("{c} >= to_timestamp_millis({ms})"),
        (_, Value::Int(i)) => format!("{c} = {i}"),
    }
}

/// The `WHERE` condition of a request (`true` when it has none).
pub fn filter_sql(req: &AuditLogRequest) -> String {
    let conds: Vec<String> = req
        .conditions
        .iter()
        .map(|(p, v)| {
            let c = condition(p, v);
            // The last op naming a parameter decides.
            let excluded = req
                .ops
                .iter()
                .rev()
                .find(|(q, _)| q.name == p.name)
                .is_some_and(|(_, contain)| !contain);
            if excluded {
                format!("NOT coalesce({c}, false)")
            } else {
                c
            }
        })
        .collect();
    if conds.is_empty() {
        "true".into()
    } else {
        conds.join(" AND ")
    }
}

/// One page of audit logs.
#[derive(Debug)]
pub struct AuditLogPage {
    pub current_page: u64,
    pub page_size: u32,
    pub total_count: u64,
    /// The commit the page was read at.
    pub generation: u64,
    /// The records as stored (with `WarnLevelName` in the requested language).
    pub items: Vec<serde_json::Value>,
    /// The summary columns of the page (for a table).
    pub summary: RecordBatch,
}

impl AuditLogPage {
    /// The response in the API's shape, with the generation to pass back for the next page.
    pub fn to_json(&self, req: &AuditLogRequest) -> serde_json::Value {
        let id = format!(
            "{:032X}",
            xxhash(&format!(
                "{:?}|{:?}|{}|{}|{}",
                req.conditions, req.ops, req.page_size, req.current_page, self.generation
            ))
        );
        serde_json::json!({
            "RequestId": id,
            "CurrentPage": self.current_page,
            "PageSize": self.page_size,
            "TotalCount": self.total_count,
            "Generation": self.generation,
            "Items": self.items,
        })
    }

    /// Pages needed for every matching item.
    pub fn pages(&self) -> u64 {
        self.total_count.div_ceil(u64::from(self.page_size.max(1)))
    }
}

/// A stable 128-bit digest (for the request id).
fn xxhash(s: &str) -> u128 {
    use std::hash::BuildHasher;
    let a = foldhash::quality::FixedState::with_seed(1).hash_one(s);
    let b = foldhash::quality::FixedState::with_seed(2).hash_one(s);
    (u128::from(a) << 64) | u128::from(b)
}

/// The audit-log files committed at or before `generation`, as a table (and the generation
/// read: the latest when `None`).
fn snapshot_table(
    engine: &Engine,
    generation: Option<u64>,
) -> Result<(Arc<dyn TableProvider>, u64)> {
    let snapshot = engine.store().snapshot()?;
    let latest = snapshot.generation;
    let at = match generation {
        Some(g) if g > latest => {
            return Err(QueryError::Usage(format!(
                "generation {g} is newer than the store (it is at {latest}); use a generation a \
                 previous page printed"
            )));
        }
        Some(g) => g,
        None => latest,
    };
    let paths: Vec<std::path::PathBuf> = snapshot
        .audit_logs
        .into_iter()
        .filter(|(f, _)| f.generation <= at)
        .map(|(_, p)| p)
        .collect();
    let table_schema = crate::view_schema(&schema::audit_log_schema());
    if paths.is_empty() {
        return Ok((Arc::new(MemTable::try_new(table_schema, vec![vec![]])?), at));
    }
    Ok((crate::files_table(engine, &paths, table_schema)?, at))
}

/// The columns a table of audit logs shows.
const SUMMARY: [&str; 10] = [
    "LogTime",
    "UserName",
    "ClientIp",
    "InstanceName",
    "DatabaseName",
    "OperateType",
    "EffectRow",
    "WarnLevelName",
    "RuleName",
    "SqlText",
];

/// Run a request.
pub async fn describe_audit_logs(engine: &Engine, req: &AuditLogRequest) -> Result<AuditLogPage> {
    if req.page_size == 0 || req.page_size > MAX_PAGE_SIZE {
        return Err(QueryError::Usage(format!(
            "PageSize: {} is not from 1 to {MAX_PAGE_SIZE}",
            req.page_size
        )));
    }
    if req.current_page == 0 {
        return Err(QueryError::Usage("CurrentPage: pages count from 1".into()));
    }
    let (table, generation) = snapshot_table(engine, req.generation)?;
    let df = engine.context().read_table(table)?;
    let filter = df.parse_sql_expr(&filter_sql(req))?;
    let df = df.filter(filter)?;
    let total_count = df.clone().count().await? as u64;
    let offset =
        usize::try_from((req.current_page - 1) * u64::from(req.page_size)).unwrap_or(usize::MAX);
    let level = match req.lang {
        Some(lang) => format!(
            "CASE trim(\"WarnLevel\") WHEN '1' THEN {} WHEN '2' THEN {} WHEN '3' THEN {} \
             ELSE \"WarnLevelName\" END",
            quote(lang.level_name("1").unwrap_or_default()),
            quote(lang.level_name("2").unwrap_or_default()),
            quote(lang.level_name("3").unwrap_or_default()),
        ),
        None => "\"WarnLevelName\"".into(),
    };
    let mut columns: Vec<Expr> = Vec::new();
    for c in SUMMARY {
        columns.push(if c == "WarnLevelName" {
            df.parse_sql_expr(&level)?.alias(c)
        } else {
            ident(c)
        });
    }
    columns.push(ident(schema::RAW));
    let page = df
        .sort(vec![
            ident(schema::AUDIT_LOG_TIME).sort(false, false),
            ident("CreationTime").sort(false, false),
            ident(schema::RAW).sort(true, false),
        ])?
        .limit(offset, Some(req.page_size as usize))?
        .select(columns)?;
    let batches = page.collect().await?;
    let out_schema = Arc::new(Schema::new(
        SUMMARY
            .iter()
            .map(|c| {
                let t = match *c {
                    "LogTime" => schema::event_time_type(),
                    "EffectRow" => DataType::Int64,
                    _ => DataType::Utf8,
                };
                Field::new(*c, t, true)
            })
            .collect::<Vec<_>>(),
    ));
    let mut summaries = Vec::new();
    let mut items = Vec::new();
    for b in &batches {
        let raw = cast(b.column(SUMMARY.len()), &DataType::Utf8)?;
        let raw = raw.as_string::<i32>();
        let levels = cast(b.column(7), &DataType::Utf8)?;
        let levels = levels.as_string::<i32>();
        let warn = (0..b.num_rows()).map(|r| levels.is_valid(r).then(|| levels.value(r)));
        for (r, level) in warn.enumerate() {
            let mut item: serde_json::Value = serde_json::from_str(raw.value(r))
                .unwrap_or_else(|_| serde_json::Value::String(raw.value(r).to_owned()));
            if req.lang.is_some()
                && let (Some(obj), Some(level)) = (item.as_object_mut(), level)
            {
                let key = obj
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case("WarnLevelName"))
                    .cloned()
                    .unwrap_or_else(|| "WarnLevelName".to_owned());
                obj.insert(key, serde_json::Value::String(level.to_owned()));
            }
            items.push(item);
        }
        let cols = (0..SUMMARY.len())
            .map(|i| Ok(cast(b.column(i), out_schema.field(i).data_type())?))
            .collect::<Result<Vec<_>>>()?;
        summaries.push(RecordBatch::try_new(out_schema.clone(), cols)?);
    }
    let summary = concat_batches(&out_schema, &summaries)?;
    Ok(AuditLogPage {
        current_page: req.current_page,
        page_size: req.page_size,
        total_count,
        generation,
        items,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, raw: &str) -> Result<Value> {
        parse_value(param(name)?, raw)
    }

    #[test]
    fn values_are_checked_with_the_accepted_form_named() {
        assert_eq!(
            v("EffectRowRange", "in[1 33]").ok(),
            Some(Value::Range(1, 33))
        );
        for bad in [
            "in[33 1]",
            "[1 33]",
            "in[1]",
            "in[1 2 3]",
            "in[a b]",
            "in[1 33",
        ] {
            let e = v("EffectRowRange", bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.contains("EffectRowRange") && e.contains("in[LOW HIGH]"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            v("StartTime", "1616068534877").ok(),
            Some(Value::Millis(1_616_068_534_877))
        );
        assert_eq!(
            v("EndTime", "2021-03-18T11:55:34.877Z").ok(),
            Some(Value::Millis(1_616_068_534_877))
        );
        assert!(v("StartTime", "yesterday").is_err());
        assert_eq!(v("ProductId", "25").ok(), Some(Value::Int(25)));
        assert!(v("ProductId", "12").is_err());
        assert_eq!(v("WarnLevel", "High").ok(), Some(Value::Text("3".into())));
        assert!(v("IpType", "internal").is_err());
        assert!(matches!(v("ClientIp", "10.*.*.94"), Ok(Value::Masked(_))));
        assert!(matches!(v("ClientIp", "10.0.0.0/8"), Ok(Value::Net(_))));
        assert!(v("ClientIp", "10.*.94").is_err());
        assert!(v("UserName", " ").is_err());
        assert_eq!(
            param("remoteClientIp").map(|p| p.name).ok(),
            Some("ClientIp")
        );
        assert_eq!(param("RuleID").map(|p| p.name).ok(), Some("RuleId"));
    }

    #[test]
    fn query_ops_parse_and_reject_garbage() {
        let ops = parse_query_ops(
            r#"[{"isContain": false, "queryKey": "effectRowRange"},
                {"isContain": true, "queryKey": "remoteClientIp"}]"#,
        )
        .unwrap_or_default();
        assert_eq!(ops.len(), 2);
        assert_eq!((ops[0].0.name, ops[0].1), ("EffectRowRange", false));
        assert_eq!((ops[1].0.name, ops[1].1), ("ClientIp", true));
        assert!(parse_query_ops("[{\"queryKey\": \"colour\", \"isContain\": true}]").is_err());
        assert!(parse_query_ops("{}").is_err());
    }

    #[test]
    fn values_are_quoted_and_exclusions_negate() {
        let req = AuditLogRequest {
            conditions: vec![
                (&PARAMS[0], Value::Text("x' OR 1=1 --".into())),
                (&PARAMS[11], Value::Range(1, 33)),
            ],
            ops: vec![(&PARAMS[11], false)],
            ..Default::default()
        };
        let sql = filter_sql(&req);
        assert!(sql.contains("\"UserName\" = 'x'' OR 1=1 --'"), "{sql}");
        assert!(
            sql.contains("NOT coalesce(\"EffectRow\" BETWEEN 1 AND 33, false)"),
            "{sql}"
        );
    }
}
