//! Field names as users know them, in any case.
//!
//! SQL folds unquoted identifiers to lower case, but event fields are camelCase (`eventName`,
//! `userIdentity.userName`). Before planning, every unquoted identifier (or part of a dotted
//! name) that matches a known column or nested field case-insensitively is replaced by its
//! stored spelling, quoted. `eventname`, `EVENTNAME` and `eventName` therefore all name the same
//! column; quoted identifiers are left exactly as written.
//!
//! `audit_logs` spells its fields as the `DescribeAuditLogs` API does (`UserName`, `ClientIp`),
//! and a few of them equal an event field but for case (`UserName`, `userName`). An exact
//! spelling always names itself; a name in another case takes the `audit_logs` spelling when
//! the statement reads `audit_logs` and not `events`, the event spelling otherwise.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::arrow::datatypes::{DataType, Fields};
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Query, SelectItem, SetExpr, VisitMut, VisitorMut, visit_expressions_mut,
};

static NAMES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    fn walk(fields: &Fields, map: &mut HashMap<String, String>) {
        for f in fields {
            map.entry(f.name().to_ascii_lowercase())
                .or_insert_with(|| f.name().clone());
            if let DataType::Struct(inner) = f.data_type() {
                walk(inner, map);
            }
        }
    }
    walk(crate::insight_schema().fields(), &mut map);
    for s in crate::system::schemas() {
        walk(s.fields(), &mut map);
    }
    map.insert("eventdate".into(), trail_store::schema::PART_DATE.into());
    map
});

/// The `audit_logs` spellings, by lower-case name.
static AUDIT_NAMES: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut map: HashMap<String, String> = trail_store::schema::audit_log_schema()
        .fields()
        .iter()
        .map(|f| (f.name().to_ascii_lowercase(), f.name().clone()))
        .collect();
    map.insert(
        "logdate".into(),
        trail_store::schema::AUDIT_PART_DATE.into(),
    );
    map
});

/// The stored spelling of a field name, if `name` is one in any case (event spellings first).
pub fn canonical(name: &str) -> Option<&'static str> {
    resolve(name, false)
}

fn resolve(name: &str, prefer_audit: bool) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let general = NAMES.get(&lower).map(String::as_str);
    let audit = AUDIT_NAMES.get(&lower).map(String::as_str);
    if let Some(exact) = general.into_iter().chain(audit).find(|c| *c == name) {
        return Some(exact);
    }
    if prefer_audit {
        audit.or(general)
    } else {
        general.or(audit)
    }
}

/// Does the statement read `audit_logs` and not `events`?
fn prefers_audit(statement: &datafusion::sql::sqlparser::ast::Statement) -> bool {
    use datafusion::sql::sqlparser::ast::visit_relations;
    let (mut audit, mut events) = (false, false);
    let _ = visit_relations(statement, |name| {
        if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
            audit |= last.value.eq_ignore_ascii_case("audit_logs");
            events |= last.value.eq_ignore_ascii_case(crate::EVENTS_TABLE);
        }
        ControlFlow::<()>::Continue(())
    });
    audit && !events
}

fn fix(ident: &mut Ident, prefer_audit: bool) {
    if ident.quote_style.is_some() {
        return;
    }
    if let Some(c) = resolve(&ident.value, prefer_audit) {
        // Lower-case names need no quoting; quoting keeps the others from being folded.
        if c != c.to_ascii_lowercase() {
            ident.value = c.to_owned();
            ident.quote_style = Some('"');
        } else {
            ident.value = c.to_owned();
        }
    }
}

/// Output aliases that spell a field name (`count(*) AS errorCode`) take the stored spelling
/// too, so `ORDER BY errorCode` still names the alias.
struct Aliases {
    prefer_audit: bool,
}

impl VisitorMut for Aliases {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        fn body(b: &mut SetExpr, prefer_audit: bool) {
            match b {
                SetExpr::Select(select) => {
                    for item in &mut select.projection {
                        match item {
                            SelectItem::ExprWithAlias { alias, .. } => fix(alias, prefer_audit),
                            // `userIdentity.userName` is shown as `userName`, not
                            // `events.userIdentity[userName]`.
                            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))
                                if is_nested_field(parts) =>
                            {
                                let mut alias = parts[parts.len() - 1].clone();
                                fix(&mut alias, prefer_audit);
                                if alias.quote_style.is_none() {
                                    alias.quote_style = Some('"');
                                }
                                let expr = Expr::CompoundIdentifier(std::mem::take(parts));
                                *item = SelectItem::ExprWithAlias { expr, alias };
                            }
                            _ => {}
                        }
                    }
                }
                SetExpr::SetOperation { left, right, .. } => {
                    body(left, prefer_audit);
                    body(right, prefer_audit);
                }
                _ => {}
            }
        }
        body(&mut query.body, self.prefer_audit);
        ControlFlow::Continue(())
    }
}

/// `userIdentity.x` or `t.userIdentity.x`: a field inside the one struct column.
fn is_nested_field(parts: &[Ident]) -> bool {
    let is_struct = |i: &Ident| {
        i.value
            .eq_ignore_ascii_case(trail_store::schema::USER_IDENTITY)
    };
    match parts {
        [first, _, ..] if is_struct(first) => true,
        [_, second, _, ..] if is_struct(second) => true,
        _ => false,
    }
}

/// Rewrite known field names in a statement (including inside `EXPLAIN`).
pub fn rewrite_statement(statement: &mut Statement) {
    match statement {
        Statement::Statement(s) => {
            let prefer_audit = prefers_audit(s.as_ref());
            let _ = s.as_mut().visit(&mut Aliases { prefer_audit });
            let _ = visit_expressions_mut(s.as_mut(), |e: &mut Expr| {
                match e {
                    Expr::Identifier(ident) => fix(ident, prefer_audit),
                    Expr::CompoundIdentifier(parts) => {
                        parts.iter_mut().for_each(|p| fix(p, prefer_audit))
                    }
                    _ => {}
                }
                ControlFlow::<()>::Continue(())
            });
        }
        Statement::Explain(explain) => rewrite_statement(explain.statement.as_mut()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn rewrite(sql: &str) -> String {
        let mut s = DFParser::parse_sql(sql)
            .ok()
            .and_then(|mut v| v.pop_front())
            .expect("parses");
        rewrite_statement(&mut s);
        s.to_string()
    }

    #[test]
    fn any_case_becomes_stored_spelling() {
        assert_eq!(
            rewrite("SELECT eventname, EVENTNAME, userIdentity.USERNAME FROM events"),
            r#"SELECT "eventName", "eventName", "userIdentity"."userName" AS "userName" FROM events"#
        );
        assert_eq!(
            rewrite("SELECT count(*) FROM events e WHERE e.sourceipaddress = 'x' GROUP BY REGION"),
            r#"SELECT count(*) FROM events e WHERE e."sourceIpAddress" = 'x' GROUP BY region"#
        );
    }

    #[test]
    fn audit_log_fields_in_any_case() {
        assert_eq!(
            rewrite("SELECT username, clientip, logdate FROM audit_logs WHERE effectrow > 1"),
            r#"SELECT "UserName", "ClientIp", "logDate" FROM audit_logs WHERE "EffectRow" > 1"#
        );
        // Beside events, an exact spelling names itself and another case the event field.
        assert_eq!(
            rewrite(
                "SELECT a.UserName, e.userIdentity.username FROM audit_logs a JOIN events e \
                 ON a.clientip = e.sourceipaddress"
            ),
            r#"SELECT a."UserName", e."userIdentity"."userName" AS "userName" FROM audit_logs a JOIN events e ON a."ClientIp" = e."sourceIpAddress""#
        );
    }

    #[test]
    fn quoted_and_unknown_names_stay() {
        assert_eq!(
            rewrite(
                "SELECT userIdentity.username, e.userIdentity.sessionContext.attributes.mfaauthenticated FROM events e"
            ),
            r#"SELECT "userIdentity"."userName" AS "userName", e."userIdentity"."sessionContext".attributes."mfaAuthenticated" AS "mfaAuthenticated" FROM events e"#
        );
        assert_eq!(
            rewrite("SELECT count(*) AS errorcode FROM events ORDER BY errorCode"),
            r#"SELECT count(*) AS "errorCode" FROM events ORDER BY "errorCode""#
        );
        assert_eq!(
            rewrite(r#"SELECT "eventname", foo FROM events"#),
            r#"SELECT "eventname", foo FROM events"#
        );
    }
}
