//! SQL text as the tokenizer sees it: statements, completeness, `:name` placeholders and the
//! clause a cursor is in.
//!
//! Every question here is answered from sqlparser's tokenizer (the one DataFusion parses with),
//! so strings, quoted identifiers, `--` and `/* */` comments, `::` casts and dollar quoting are
//! understood the same way everywhere: by the REPL deciding whether a statement is finished, by
//! scripts split into statements, and by saved queries binding their parameters.

use std::ops::Range;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, TokenizerError, Whitespace};

/// A token with the byte range of `sql` it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub range: Range<usize>,
}

/// Tokenize `sql`, keeping each token's byte range. An error means the text ends inside a
/// string, quoted identifier or comment (or holds a character SQL cannot start a token with).
pub fn tokens(sql: &str) -> Result<Vec<Spanned>, TokenizerError> {
    let dialect = GenericDialect {};
    let located = Tokenizer::new(&dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()?;
    // The tokenizer counts lines and columns in characters; walk the text once to turn them
    // into byte offsets (tokens come in order, so the walk only moves forward).
    let mut walker = Walker {
        sql,
        byte: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::with_capacity(located.len());
    for t in located {
        let start = walker.seek(t.span.start.line, t.span.start.column);
        let end = walker.seek(t.span.end.line, t.span.end.column);
        out.push(Spanned {
            token: t.token,
            range: start..end,
        });
    }
    Ok(out)
}

struct Walker<'a> {
    sql: &'a str,
    byte: usize,
    line: u64,
    col: u64,
}

impl Walker<'_> {
    fn seek(&mut self, line: u64, col: u64) -> usize {
        while (self.line, self.col) < (line, col) {
            let Some(c) = self.sql[self.byte..].chars().next() else {
                break;
            };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
        self.byte
    }
}

fn is_blank(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF)
}

fn is_comment(t: &Token) -> bool {
    matches!(
        t,
        Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_))
    )
}

/// The statements of a script, without their `;`, each trimmed; statements holding only
/// comments and blanks are left out. Text the tokenizer cannot read to its end (an
/// unterminated string) is one last statement, so the parser reports where it went wrong.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let Ok(toks) = tokens(sql) else {
        let t = sql.trim();
        return if t.is_empty() { vec![] } else { vec![t] };
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    for t in &toks {
        match &t.token {
            Token::SemiColon => {
                if has_code {
                    out.push(sql[start..t.range.start].trim());
                }
                start = t.range.end;
                has_code = false;
            }
            tok if is_blank(tok) => {}
            _ => has_code = true,
        }
    }
    if has_code {
        out.push(sql[start..].trim());
    }
    out
}

/// True when `sql` ends with a `;` that ends a statement (not one inside a string or a
/// comment), with nothing but blanks and comments after it.
pub fn is_complete(sql: &str) -> bool {
    let Ok(toks) = tokens(sql) else {
        return false;
    };
    toks.iter()
        .rev()
        .find(|t| !is_blank(&t.token))
        .is_some_and(|t| t.token == Token::SemiColon)
}

/// One piece of a saved query's SQL: text to keep, or a `:name` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Split SQL into text and `:name` placeholders. A placeholder is a `:` directly followed by
/// a name, outside strings and comments, and not part of a `::` cast.
pub fn pieces(sql: &str) -> Vec<Piece<'_>> {
    let Ok(toks) = tokens(sql) else {
        return vec![Piece::Text(sql)];
    };
    let mut out = Vec::new();
    let mut plain = 0;
    let mut i = 0;
    while i < toks.len() {
        if toks[i].token == Token::Colon
            && let Some(next) = toks.get(i + 1)
            && next.range.start == toks[i].range.end
            && let Token::Word(w) = &next.token
            && w.quote_style.is_none()
            && w.value
                .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        {
            out.push(Piece::Text(&sql[plain..toks[i].range.start]));
            out.push(Piece::Placeholder(&sql[next.range.clone()]));
            plain = next.range.end;
            i += 2;
            continue;
        }
        i += 1;
    }
    out.push(Piece::Text(&sql[plain..]));
    out.retain(|p| *p != Piece::Text(""));
    out
}

/// What a name typed at the end of `before` (text up to the cursor) can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameContext {
    /// After `FROM`, `JOIN`, `INTO`, `TABLE`, `DESCRIBE` (or a comma in a `FROM` list): a table.
    Table,
    /// In a select list, a condition, a grouping or ordering: a column or a function.
    Column,
    /// After a complete term (`SELECT eventName `) or at the start: a keyword.
    Keyword,
}

/// The clause the word being typed at the end of `before` belongs to. The word itself (the
/// trailing run of name characters, dots included) is ignored.
pub fn name_context(before: &str) -> NameContext {
    let word_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
        .last()
        .map_or(before.len(), |(i, _)| i);
    let Ok(toks) = tokens(&before[..word_start]) else {
        return NameContext::Column;
    };
    let significant: Vec<&Token> = toks
        .iter()
        .map(|t| &t.token)
        .filter(|t| !is_blank(t) && !is_comment(t))
        .collect();
    let clause = |toks: &[&Token]| -> NameContext {
        for t in toks.iter().rev() {
            if let Token::Word(w) = t {
                match w.keyword {
                    Keyword::FROM | Keyword::JOIN => return NameContext::Table,
                    Keyword::SELECT
                    | Keyword::WHERE
                    | Keyword::BY
                    | Keyword::HAVING
                    | Keyword::ON
                    | Keyword::SET => return NameContext::Column,
                    _ => {}
                }
            }
            if **t == Token::SemiColon {
                break;
            }
        }
        NameContext::Column
    };
    match significant.last() {
        None | Some(Token::SemiColon) => NameContext::Keyword,
        Some(Token::Word(w)) if w.quote_style.is_none() => match w.keyword {
            Keyword::FROM
            | Keyword::JOIN
            | Keyword::INTO
            | Keyword::TABLE
            | Keyword::UPDATE
            | Keyword::DESCRIBE => NameContext::Table,
            Keyword::SELECT
            | Keyword::WHERE
            | Keyword::BY
            | Keyword::HAVING
            | Keyword::ON
            | Keyword::AND
            | Keyword::OR
            | Keyword::NOT
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
            | Keyword::CASE
            | Keyword::DISTINCT
            | Keyword::SET
            | Keyword::IN
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::BETWEEN
            | Keyword::IS => NameContext::Column,
            _ => NameContext::Keyword,
        },
        Some(Token::Comma) => clause(&significant),
        Some(
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::Word(_)
            | Token::RParen
            | Token::Mul,
        ) => NameContext::Keyword,
        Some(_) => NameContext::Column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_strings_and_comments() {
        let sql = "SELECT ';' AS a; -- one; two\nSELECT \"x;y\" FROM t /* ; */;\n\n;  SELECT 3";
        assert_eq!(
            split_statements(sql),
            vec![
                "SELECT ';' AS a",
                "-- one; two\nSELECT \"x;y\" FROM t /* ; */",
                "SELECT 3"
            ]
        );
        assert!(split_statements("  -- only a comment\n").is_empty());
        assert_eq!(split_statements("SELECT 'open"), vec!["SELECT 'open"]);
        assert_eq!(
            split_statements("SELECT 'é;'; SELECT 2"),
            vec!["SELECT 'é;'", "SELECT 2"]
        );
    }

    #[test]
    fn completeness_needs_a_real_semicolon() {
        assert!(is_complete("select 1;"));
        assert!(is_complete("select 1; -- ok\n"));
        assert!(is_complete("select 'a;b'\n;"));
        assert!(!is_complete("select ';'"));
        assert!(!is_complete("select 1 -- done;"));
        assert!(!is_complete("select 1 /* ; */"));
        assert!(!is_complete("select 'unterminated;"));
        assert!(!is_complete(""));
    }

    #[test]
    fn placeholders_outside_strings_comments_and_casts() {
        let sql = "SELECT ':user', a::text, :n FROM e -- :user\nWHERE u = :user /* :n */";
        let names: Vec<&str> = pieces(sql)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Placeholder(n) => Some(n),
                Piece::Text(_) => None,
            })
            .collect();
        assert_eq!(names, vec!["n", "user"]);
        let text: String = pieces(sql)
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_owned(),
                Piece::Placeholder(n) => format!("<{n}>"),
            })
            .collect();
        assert_eq!(
            text,
            "SELECT ':user', a::text, <n> FROM e -- :user\nWHERE u = <user> /* :n */"
        );
        // A colon followed by a space is not a placeholder.
        assert_eq!(pieces("SELECT a : b"), vec![Piece::Text("SELECT a : b")]);
    }

    #[test]
    fn clause_of_the_cursor() {
        use NameContext::*;
        assert_eq!(name_context("SELECT count(*) FROM eve"), Table);
        assert_eq!(name_context("SELECT * FROM events e JOIN ins"), Table);
        assert_eq!(name_context("SELECT * FROM events, sys"), Table);
        assert_eq!(name_context("SELECT even"), Column);
        assert_eq!(name_context("SELECT eventName, user"), Column);
        assert_eq!(
            name_context("SELECT * FROM events WHERE userIdentity.us"),
            Column
        );
        assert_eq!(name_context("SELECT a FROM t WHERE x = 1 AND sou"), Column);
        assert_eq!(name_context("SELECT a FROM t GROUP BY ev"), Column);
        assert_eq!(name_context("SELECT lower(ev"), Column);
        assert_eq!(name_context("SELECT eventName FR"), Keyword);
        assert_eq!(name_context("sel"), Keyword);
        assert_eq!(name_context("SELECT 1; sel"), Keyword);
        assert_eq!(name_context("SELECT 'open str"), Column);
    }
}
