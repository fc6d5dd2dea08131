//! Partition pruning from the filters users write.
//!
//! Files live under `region=<acsRegion>/eventDate=<UTC date of eventTime>/`, but users filter on
//! `acsRegion` and `eventTime`, not on the partition columns. For every filter over a table that
//! has all four columns, each conjunct that bounds `acsRegion` or `eventTime` by constants gets
//! an implied conjunct on `region` or `eventDate` added next to it:
//!
//! | written                          | added                                  |
//! |----------------------------------|----------------------------------------|
//! | `acsRegion = 'r'`                | `region = 'r'`                         |
//! | `acsRegion IN ('a', 'b')`        | `region IN ('a', 'b')`                 |
//! | `eventTime >= t`, `eventTime > t`| `eventDate >= CAST(t AS DATE)`         |
//! | `eventTime <= t`                 | `eventDate <= CAST(t AS DATE)`         |
//! | `eventTime < t`                  | `eventDate <= CAST(t - 1µs AS DATE)`   |
//! | `eventTime = t`                  | `eventDate = CAST(t AS DATE)`          |
//! | `eventTime BETWEEN a AND b`      | `eventDate BETWEEN CAST(a..) AND ..`   |
//!
//! The added conjuncts are implied by the written ones (the partition values are computed from
//! exactly these fields at ingest), so results never change; DataFusion then skips whole
//! directories. Region literals are only mirrored when they are stored verbatim (`[a-z0-9-]`).
//!
//! A bound at UTC midnight says no more than its partition filter: on a table scan,
//! `eventTime >= t` is `eventDate >= date(t)` and `eventTime < t` is `eventDate < date(t)`,
//! because every event is stored under the date of its own eventTime. There the written
//! conjunct is replaced rather than joined, so the scan skips directories and evaluates
//! nothing per row (`WHERE eventTime >= TIMESTAMP '2026-10-01'` costs no more than a date
//! filter).

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Filter, LogicalPlan, Operator, cast};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use trail_store::schema;

/// Add partition filters implied by `acsRegion`/`eventTime` filters anywhere in `plan`.
pub fn derive_partition_filters(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Filter(filter) = node else {
            return Ok(Transformed::no(node));
        };
        let schema = filter.input.schema().clone();
        let on_scan = scans_stored_columns(&filter.input);
        let mut kept = Vec::new();
        let mut added = Vec::new();
        let target = |c: &Column, name: &str| {
            let target = Column::new(c.relation.clone(), name);
            schema.has_column(&target).then_some(target)
        };
        for conjunct in split_conjunction(&filter.predicate) {
            match on_scan
                .then(|| exact_day_bound(conjunct, &target))
                .flatten()
            {
                Some(replacement) => added.push(replacement),
                None => {
                    kept.push(conjunct.clone());
                    derive(conjunct, &mut added, &target);
                }
            }
        }
        if added.is_empty() {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        let predicate =
            conjunction(kept.into_iter().chain(added)).unwrap_or(filter.predicate.clone());
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(
            predicate,
            filter.input,
        )?)))
    })
    .map(|t| t.data)
}

/// Whether `plan` is a scan (possibly aliased) whose columns are the stored ones, so that
/// `eventDate` there is the date of `eventTime` in the same row.
fn scans_stored_columns(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(_) => true,
        LogicalPlan::SubqueryAlias(a) => scans_stored_columns(&a.input),
        _ => false,
    }
}

const DAY_US: i64 = 86_400_000_000;

/// `eventTime >= t` or `eventTime < t` with `t` a constant at UTC midnight, as the equivalent
/// filter on `eventDate`.
fn exact_day_bound(e: &Expr, target: &dyn Fn(&Column, &str) -> Option<Column>) -> Option<Expr> {
    let Expr::BinaryExpr(b) = e else {
        return None;
    };
    let (col_side, value, op) = column_op_constant(b)?;
    // Only the column itself: a cast could truncate (to seconds, to a date) and change which
    // rows the bound keeps.
    let Expr::Column(c) = col_side else {
        return None;
    };
    if c.name != schema::EVENT_TIME || !matches!(op, Operator::GtEq | Operator::Lt) {
        return None;
    }
    let utc = cast(
        value.clone(),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    );
    let folded = ExprSimplifier::new(SimplifyContext::default())
        .simplify(utc)
        .ok()?;
    let Expr::Literal(ScalarValue::TimestampMicrosecond(Some(us), _), _) = folded else {
        return None;
    };
    if us.rem_euclid(DAY_US) != 0 {
        return None;
    }
    let days = i32::try_from(us.div_euclid(DAY_US)).ok()?;
    let t = target(c, schema::PART_DATE)?;
    Some(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(Expr::Column(t)),
        op,
        Box::new(Expr::Literal(ScalarValue::Date32(Some(days)), None)),
    )))
}

/// `column op constant`, with the operator flipped when the constant is written first.
fn column_op_constant(b: &BinaryExpr) -> Option<(&Expr, &Expr, Operator)> {
    if constant(&b.right) {
        Some((&b.left, &b.right, b.op))
    } else if constant(&b.left) {
        Some((&b.right, &b.left, flip(b.op)?))
    } else {
        None
    }
}

fn column_named<'a>(e: &'a Expr, name: &str) -> Option<&'a Column> {
    match e {
        Expr::Column(c) if c.name == name => Some(c),
        Expr::Cast(c) => column_named(&c.expr, name),
        _ => None,
    }
}

fn constant(e: &Expr) -> bool {
    e.column_refs().is_empty() && !matches!(e, Expr::ScalarSubquery(_))
}

fn is_plain_region(e: &Expr) -> bool {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => {
            !s.is_empty()
                && s.len() <= trail_store::layout::MAX_REGION_BYTES
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
        _ => false,
    }
}

fn to_date(e: &Expr) -> Expr {
    // A bare timestamp literal is read as UTC, like eventTime itself.
    let utc = cast(
        e.clone(),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    );
    cast(utc, DataType::Date32)
}

/// The date of the last microsecond before `e`: `eventTime < t` implies
/// `eventDate <= date(t - 1µs)`, so a bound at midnight excludes that day.
fn date_before(e: &Expr) -> Expr {
    let utc = cast(
        e.clone(),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    );
    let one_us = Expr::Literal(ScalarValue::new_interval_mdn(0, 0, 1_000), None);
    cast(
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(utc),
            Operator::Minus,
            Box::new(one_us),
        )),
        DataType::Date32,
    )
}

fn flip(op: Operator) -> Option<Operator> {
    Some(match op {
        Operator::Eq => Operator::Eq,
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        _ => return None,
    })
}

fn derive(e: &Expr, out: &mut Vec<Expr>, target: &dyn Fn(&Column, &str) -> Option<Column>) {
    match e {
        Expr::BinaryExpr(b) => {
            let Some((col_side, value, op)) = column_op_constant(b) else {
                return;
            };
            if let Some(c) = column_named(col_side, schema::ACS_REGION) {
                if op == Operator::Eq
                    && is_plain_region(value)
                    && let Some(t) = target(c, schema::PART_REGION)
                {
                    out.push(Expr::Column(t).eq(value.clone()));
                }
            } else if let Some(c) = column_named(col_side, schema::EVENT_TIME) {
                let Some(t) = target(c, schema::PART_DATE) else {
                    return;
                };
                let (date_op, bound) = match op {
                    Operator::Eq => (Operator::Eq, to_date(value)),
                    Operator::Gt | Operator::GtEq => (Operator::GtEq, to_date(value)),
                    Operator::LtEq => (Operator::LtEq, to_date(value)),
                    Operator::Lt => (Operator::LtEq, date_before(value)),
                    _ => return,
                };
                out.push(Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(Expr::Column(t)),
                    date_op,
                    Box::new(bound),
                )));
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            if let Some(c) = column_named(expr, schema::ACS_REGION)
                && !list.is_empty()
                && list.iter().all(is_plain_region)
                && let Some(t) = target(c, schema::PART_REGION)
            {
                out.push(Expr::Column(t).in_list(list.clone(), false));
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if constant(low) && constant(high) => {
            if let Some(c) = column_named(expr, schema::EVENT_TIME)
                && let Some(t) = target(c, schema::PART_DATE)
            {
                out.push(Expr::Column(t).between(to_date(low), to_date(high)));
            }
        }
        _ => {}
    }
}
