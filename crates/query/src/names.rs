//! Field names as users know them, in any case.
//!
//! SQL folds unquoted identifiers to lower case, but event fields are camelCase (`eventName`,
//! `userIdentity.userName`). Before planning, every unquoted identifier (or part of a dotted
//! name) that matches a known column or nested field case-insensitively is replaced by its
//! stored spelling, quoted. `eventname`, `EVENTNAME` and `eventName` therefore all name the same
//! column; quoted identifiers are left exactly as written.

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

/// The stored spelling of a field name, if `name` is one in any case.
pub fn canonical(name: &str) -> Option<&'static str> {
    NAMES.get(&name.to_ascii_lowercase()).map(String::as_str)
}

fn fix(ident: &mut Ident) {
    if ident.quote_style.is_some() {
        return;
    }
    if let Some(c) = canonical(&ident.value) {
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
struct Aliases;

impl VisitorMut for Aliases {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        fn body(b: &mut SetExpr) {
            match b {
                SetExpr::Select(select) => {
                    for item in &mut select.projection {
                        match item {
                            SelectItem::ExprWithAlias { alias, .. } => fix(alias),
                            // `userIdentity.userName` is shown as `userName`, not
                            // `events.userIdentity[userName]`.
                            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))
                                if is_nested_field(parts) =>
                            {
                                let mut alias = parts[parts.len() - 1].clone();
                                fix(&mut alias);
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
                    body(left);
                    body(right);
                }
                _ => {}
            }
        }
        body(&mut query.body);
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
            let _ = s.as_mut().visit(&mut Aliases);
            let _ = visit_expressions_mut(s.as_mut(), |e: &mut Expr| {
                match e {
                    Expr::Identifier(ident) => fix(ident),
                    Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(fix),
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
