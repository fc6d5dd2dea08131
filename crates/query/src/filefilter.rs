//! Which committed event files a scan's filters may match, from the manifest and the files'
//! summaries ([`trail_store::summary`]) alone, before any file is opened.
//!
//! A filter is read conjunct by conjunct (DataFusion hands a scan its filters split at `AND`).
//! What it recognizes, anywhere under `AND` and `OR`:
//!
//! * `c = 'v'`, `'v' = c` and `c IN ('v', …)` on a summarized column (`eventName`, `eventId`,
//!   `sourceIpAddress`, `userIdentity.userName`, `userIdentity.accessKeyId`): a file whose
//!   summary certainly lacks every value is skipped;
//! * `eventTime` compared with a constant (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`): a file whose
//!   `[min, max]` eventTime (in the manifest) cannot satisfy it is skipped.
//!
//! Anything else admits every file, so the answer never changes: the summaries only ever say
//! "certainly not here".

use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::{InList, ScalarFunction};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use trail_store::schema;
use trail_store::summary::{self, Summary};

/// What the manifest says about a committed file.
#[derive(Debug, Clone)]
pub(crate) struct FileFacts {
    pub rows: u64,
    pub min_time_us: i64,
    pub max_time_us: i64,
    /// The summary's path relative to the store and its size.
    pub summary: Option<(String, u64)>,
}

/// Whether any of `filters` could use a summary (so summaries are worth loading).
pub(crate) fn wants_summaries(filters: &[Expr]) -> bool {
    fn walk(e: &Expr) -> bool {
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::And | Operator::Or => walk(left) || walk(right),
                Operator::Eq => {
                    (summarized(left).is_some() && text(right).is_some())
                        || (summarized(right).is_some() && text(left).is_some())
                }
                _ => false,
            },
            Expr::InList(InList {
                expr,
                list,
                negated: false,
            }) => summarized(expr).is_some() && list.iter().all(|v| text(v).is_some()),
            _ => false,
        }
    }
    filters.iter().any(walk)
}

/// Whether any of `filters` bounds `eventTime` by a constant.
pub(crate) fn bounds_time(filters: &[Expr]) -> bool {
    let never = FileFacts {
        rows: 0,
        min_time_us: i64::MIN,
        max_time_us: i64::MIN,
        summary: None,
    };
    // A file that holds only the earliest instant is excluded by any lower bound; check the
    // latest too, for upper bounds.
    let late = FileFacts {
        min_time_us: i64::MAX,
        max_time_us: i64::MAX,
        ..never.clone()
    };
    filters
        .iter()
        .any(|f| !admits(f, &never, None) || !admits(f, &late, None))
}

/// Whether a file with these facts (and summary, if loaded) may hold rows matching `filter`.
pub(crate) fn admits(filter: &Expr, facts: &FileFacts, summary: Option<&Summary>) -> bool {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => admits(left, facts, summary) && admits(right, facts, summary),
            Operator::Or => admits(left, facts, summary) || admits(right, facts, summary),
            Operator::Eq => {
                if let Some(hit) =
                    member(left, right, summary).or_else(|| member(right, left, summary))
                {
                    return hit;
                }
                time_admits(left, *op, right, facts)
            }
            Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                time_admits(left, *op, right, facts)
            }
            _ => true,
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => match (summarized(expr), summary) {
            (Some(column), Some(s)) => {
                let mut known = true;
                let hit = list.iter().any(|v| match text(v) {
                    Some(v) => s.may_contain(column, v).unwrap_or(true),
                    None => {
                        known = false;
                        true
                    }
                });
                hit || !known
            }
            _ => true,
        },
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            time_admits(expr, Operator::GtEq, low, facts)
                && time_admits(expr, Operator::LtEq, high, facts)
        }
        _ => true,
    }
}

/// `column = value` against a summary: `None` when this is not such a comparison or nothing
/// is known.
fn member(column: &Expr, value: &Expr, summary: Option<&Summary>) -> Option<bool> {
    let column = summarized(column)?;
    let value = text(value)?;
    summary?.may_contain(column, value)
}

/// `c op t` (or `t op c`) for `c` = eventTime and a constant `t`: may a row of a file whose
/// eventTimes span `[min, max]` satisfy it?
fn time_admits(left: &Expr, op: Operator, right: &Expr, facts: &FileFacts) -> bool {
    let (op, t) = if is_event_time(left) {
        match micros(right) {
            Some(t) => (op, t),
            None => return true,
        }
    } else if is_event_time(right) {
        match (micros(left), op.swap()) {
            (Some(t), Some(op)) => (op, t),
            _ => return true,
        }
    } else {
        return true;
    };
    let (lo, hi) = (facts.min_time_us, facts.max_time_us);
    match op {
        Operator::Eq => lo <= t && t <= hi,
        Operator::Lt => lo < t,
        Operator::LtEq => lo <= t,
        Operator::Gt => hi > t,
        Operator::GtEq => hi >= t,
        _ => true,
    }
}

/// The summarized column `e` names (a column, or a field of `userIdentity`).
fn summarized(e: &Expr) -> Option<&'static str> {
    let path = match e {
        Expr::Column(c) => c.name.clone(),
        Expr::ScalarFunction(ScalarFunction { func, args }) if func.name() == "get_field" => {
            match args.as_slice() {
                [Expr::Column(c), field] => format!("{}.{}", c.name, text(field)?),
                _ => return None,
            }
        }
        _ => return None,
    };
    summary::COLUMNS.iter().copied().find(|c| *c == path)
}

fn is_event_time(e: &Expr) -> bool {
    matches!(e, Expr::Column(c) if c.name == schema::EVENT_TIME)
}

/// A non-null string constant.
fn text(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => Some(s.as_str()),
            ScalarValue::Dictionary(_, inner) => match inner.as_ref() {
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.as_str()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A non-null timestamp constant in microseconds since the epoch (UTC). Other units are
/// converted only where exact (a nanosecond bound inside a microsecond is not).
fn micros(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    match v {
        ScalarValue::TimestampMicrosecond(Some(t), _) => Some(*t),
        ScalarValue::TimestampMillisecond(Some(t), _) => t.checked_mul(1000),
        ScalarValue::TimestampSecond(Some(t), _) => t.checked_mul(1_000_000),
        ScalarValue::TimestampNanosecond(Some(t), _) if t % 1000 == 0 => Some(t / 1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::{ident as col, lit};
    use std::sync::Arc;
    use trail_store::summary::SummaryBuilder;

    fn facts(lo: i64, hi: i64) -> FileFacts {
        FileFacts {
            rows: 1,
            min_time_us: lo,
            max_time_us: hi,
            summary: None,
        }
    }

    fn summary_of(ips: &[&str]) -> Summary {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "sourceIpAddress",
                DataType::Utf8,
                true,
            )])),
            vec![Arc::new(StringArray::from(ips.to_vec()))],
        )
        .unwrap();
        let mut b = SummaryBuilder::new(ips.len());
        b.add(&batch);
        Summary::parse(&b.finish()).unwrap()
    }

    fn ts(us: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(us),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn equality_and_in_lists_consult_the_summary() {
        let s = summary_of(&["10.0.0.1", "10.0.0.2"]);
        let f = facts(0, 10);
        let ip = || col("sourceIpAddress");
        assert!(admits(&ip().eq(lit("10.0.0.1")), &f, Some(&s)));
        assert!(!admits(&ip().eq(lit("192.0.2.7")), &f, Some(&s)));
        assert!(!admits(&lit("192.0.2.7").eq(ip()), &f, Some(&s)));
        assert!(admits(
            &ip().in_list(vec![lit("x"), lit("10.0.0.2")], false),
            &f,
            Some(&s)
        ));
        assert!(!admits(
            &ip().in_list(vec![lit("x"), lit("y")], false),
            &f,
            Some(&s)
        ));
        // Negated lists, other operators and unknown columns admit.
        assert!(admits(&ip().in_list(vec![lit("x")], true), &f, Some(&s)));
        assert!(admits(&ip().not_eq(lit("x")), &f, Some(&s)));
        assert!(admits(
            &col("recipientAccountId").eq(lit("x")),
            &f,
            Some(&s)
        ));
        // A covered column with no values in the file admits nothing.
        assert!(!admits(&col("eventId").eq(lit("x")), &f, Some(&s)));
        // OR admits if either side may; AND needs both.
        let other = ip().eq(lit("x"));
        assert!(admits(
            &other.clone().or(ip().eq(lit("10.0.0.1"))),
            &f,
            Some(&s)
        ));
        assert!(!admits(&other.and(ip().eq(lit("10.0.0.1"))), &f, Some(&s)));
        // Without a summary, everything is admitted.
        assert!(admits(&ip().eq(lit("192.0.2.7")), &f, None));
        assert!(wants_summaries(&[ip().eq(lit("x"))]));
        assert!(!wants_summaries(&[ip().not_eq(lit("x"))]));
    }

    #[test]
    fn time_bounds_use_the_manifest_range() {
        let f = facts(100, 200);
        let t = || col("eventTime");
        assert!(admits(&t().gt_eq(ts(200)), &f, None));
        assert!(!admits(&t().gt(ts(200)), &f, None));
        assert!(!admits(&t().lt(ts(100)), &f, None));
        assert!(admits(&t().lt_eq(ts(100)), &f, None));
        assert!(!admits(&ts(99).gt_eq(t()), &f, None));
        assert!(admits(&t().eq(ts(150)), &f, None));
        assert!(!admits(&t().between(ts(201), ts(300)), &f, None));
        assert!(admits(&t().between(ts(0), ts(100)), &f, None));
        assert!(bounds_time(&[t().gt(ts(5))]));
        assert!(!bounds_time(&[col("eventName").gt(lit("a"))]));
    }
}
