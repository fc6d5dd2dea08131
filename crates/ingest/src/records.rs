//! Splitting a file's bytes into records, whatever shape it was delivered in.
//!
//! * one event per line (NDJSON): every line stands alone, so a bad line costs only itself;
//! * one JSON document: a single event, an array of events, `{"Records": [...]}`, or a saved
//!   `DescribeAuditLogs` response page (`{"Items": [...], "TotalCount": ...}`). Elements
//!   are read one at a time, so a document truncated or corrupted in the middle still yields
//!   every record before the damage;
//! * CloudTrail digest files (`digestStartTime`, `logFiles`) are recognized and skipped.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// Where a record was found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of the record's first byte.
    pub line: u64,
    /// 0-based index within the file's `Records` array or top-level array, if any.
    pub index: Option<u64>,
}

/// What the splitter found.
#[derive(Debug)]
pub enum Item<'a> {
    /// The JSON text of one record (an object, as far as the splitter checked).
    Record(&'a str, Location),
    /// The text of what looks like one record (it opens with `{` and closes with `}`), not
    /// checked: the receiver parses it once, as an event, and returns `true` if it took it. On
    /// `false` the splitter checks the text itself and emits what it finds (a `Record`, a
    /// document of records, `Bad`), just as if no candidate had been offered. This keeps a
    /// well-formed record to one parse.
    Candidate(&'a str, Location),
    /// A piece of the file that is not a usable record, with the reason.
    Bad {
        text: &'a [u8],
        loc: Location,
        error: String,
    },
    /// The whole file is a CloudTrail digest file, not events.
    Digest,
}

/// Receives a splitter's items in order; its answer matters only for an [`Item::Candidate`].
pub type Emit<'e, 'a> = dyn FnMut(Item<'a>) -> bool + 'e;

/// Byte-order mark that some tools put in front of UTF-8 files.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() && matches!(buf[pos], b' ' | b'\t' | b'\n' | b'\r') {
        pos += 1;
    }
    pos
}

/// The number of line breaks in `buf`.
pub fn newlines(buf: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', buf).count() as u64
}

/// `buf` without JSON whitespace at its end.
fn trim_ws_end(buf: &[u8]) -> &[u8] {
    let end = buf
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    &buf[..end]
}

/// `text` as a candidate record if it is shaped like one object: `{`...`}` in UTF-8.
fn candidate(text: &[u8]) -> Option<&str> {
    (text.first() == Some(&b'{') && text.last() == Some(&b'}'))
        .then(|| std::str::from_utf8(text).ok())
        .flatten()
}

fn line_at(buf: &[u8], offset: usize, first_line: u64) -> u64 {
    first_line + newlines(&buf[..offset.min(buf.len())])
}

/// Does `buf` hold one JSON value per line? True when its first non-blank line is a complete
/// JSON value on its own and more content follows; or when that first line looks like a whole
/// record that is broken inside (it opens and closes like one) and the next line is complete.
pub fn looks_like_lines(buf: &[u8]) -> bool {
    let buf = buf.strip_prefix(BOM).unwrap_or(buf);
    let mut lines = buf
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty());
    let (Some(first), Some(second)) = (lines.next(), lines.next()) else {
        return false;
    };
    let complete = |l: &[u8]| serde_json::from_slice::<IgnoredAny>(l).is_ok();
    if complete(first) {
        return true;
    }
    let whole_shape =
        matches!(first.first(), Some(b'{' | b'[')) && matches!(first.last(), Some(b'}' | b']'));
    whole_shape && matches!(second.first(), Some(b'{' | b'[')) && complete(second)
}

/// Where the array of records opens in the start of a document, for the shapes that can be
/// split as they stream in: a top-level array (`[`) or an object whose first key is `Records`
/// (`{"Records": [`). `None` for anything else (read whole).
pub fn array_start(buf: &[u8]) -> Option<usize> {
    let base = if buf.starts_with(BOM) { BOM.len() } else { 0 };
    let pos = skip_ws(buf, base);
    match buf.get(pos)? {
        b'[' => Some(pos),
        b'{' => {
            let pos = skip_ws(buf, pos + 1);
            let key = b"\"Records\"";
            if !buf.get(pos..)?.starts_with(key) {
                return None;
            }
            let pos = skip_ws(buf, pos + key.len());
            (buf.get(pos) == Some(&b':')).then_some(())?;
            let pos = skip_ws(buf, pos + 1);
            (buf.get(pos) == Some(&b'[')).then_some(pos)
        }
        _ => None,
    }
}

/// A scanner of the top level of a JSON array's elements, fed the bytes after its `[` in
/// pieces: it finds the commas between elements and the closing `]` without parsing the
/// elements (strings and nesting are tracked, nothing else). Damage inside an element is left
/// for [`split_document`] to find and report.
#[derive(Debug, Default, Clone)]
pub struct ElementScanner {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

/// What [`ElementScanner::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Boundary {
    /// A comma between two elements, at this position.
    Comma(usize),
    /// The array's closing `]`, at this position.
    End(usize),
}

impl ElementScanner {
    /// The next boundary in `buf[from..]`, or `None` if `buf` ends first (scan again from
    /// `buf.len()` once more bytes are appended; the state carries over).
    pub fn next(&mut self, buf: &[u8], from: usize) -> Option<Boundary> {
        let mut i = from;
        while i < buf.len() {
            let b = buf[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if let Some(n) = memchr::memchr2(b'"', b'\\', &buf[i + 1..]) {
                    // Skip the rest of the string's plain bytes at once.
                    i += n;
                } else {
                    return None;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' if self.depth > 0 => self.depth -= 1,
                    b']' => return Some(Boundary::End(i)),
                    b',' if self.depth == 0 => return Some(Boundary::Comma(i)),
                    _ => {}
                }
            }
            i += 1;
        }
        None
    }
}

/// Split a whole file (already decompressed). `emit` is called for every item in order.
pub fn split_file<'a>(buf: &'a [u8], emit: &mut Emit<'_, 'a>) {
    let body = buf.strip_prefix(BOM).unwrap_or(buf);
    let base = buf.len() - body.len();
    if skip_ws(body, 0) == body.len() {
        emit(Item::Bad {
            text: b"",
            loc: Location {
                line: 1,
                index: None,
            },
            error: if body.is_empty() {
                "the file is empty".into()
            } else {
                "the file holds only whitespace".into()
            },
        });
        return;
    }
    if looks_like_lines(body) {
        split_lines(body, 1, emit);
    } else {
        split_document(&buf[base..], 1, emit);
    }
}

/// Split a chunk of complete lines starting at line `first_line`.
pub fn split_lines<'a>(buf: &'a [u8], first_line: u64, emit: &mut Emit<'_, 'a>) {
    let mut start = 0;
    for this in first_line.. {
        let end = memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |n| start + n);
        let line = &buf[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(BOM).unwrap_or(line);
        let first = skip_ws(line, 0);
        if first < line.len() {
            let offered = candidate(trim_ws_end(&line[first..])).is_some_and(|text| {
                emit(Item::Candidate(
                    text,
                    Location {
                        line: this,
                        index: None,
                    },
                ))
            });
            if !offered {
                split_document(line, this, emit);
            }
        }
        if end == buf.len() {
            break;
        }
        start = end + 1;
    }
}

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(rename = "Records", alias = "records", borrow)]
    records: Option<&'a RawValue>,
    /// The records of a `DescribeAuditLogs` response page.
    #[serde(rename = "Items", alias = "items", borrow)]
    items: Option<&'a RawValue>,
    #[serde(rename = "digestStartTime")]
    digest_start: Option<IgnoredAny>,
    #[serde(rename = "logFiles")]
    log_files: Option<IgnoredAny>,
}

fn describe(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Split one JSON document (a whole file, or one line) starting at line `first_line`.
pub fn split_document<'a>(doc: &'a [u8], first_line: u64, emit: &mut Emit<'_, 'a>) {
    let start = skip_ws(doc, 0);
    let loc = Location {
        line: line_at(doc, start, first_line),
        index: None,
    };
    match doc.get(start) {
        Some(b'[') => {
            if let Some(end) = split_array(doc, start, first_line, emit) {
                let rest = skip_ws(doc, end);
                if rest < doc.len() {
                    emit(Item::Bad {
                        text: &doc[rest..],
                        loc: Location {
                            line: line_at(doc, rest, first_line),
                            index: None,
                        },
                        error: "unexpected data after the array of events".into(),
                    });
                }
            }
        }
        Some(b'{') => match serde_json::from_slice::<Top<'a>>(doc) {
            Ok(top) => {
                let listed = match (top.records, top.items) {
                    (Some(r), _) => Some(("Records", r)),
                    (None, Some(i)) => Some(("Items", i)),
                    (None, None) => None,
                };
                if let Some((key, records)) = listed {
                    if records.get().starts_with('[') {
                        let offset = records.get().as_ptr() as usize - doc.as_ptr() as usize;
                        split_array(doc, offset, first_line, emit);
                    } else {
                        emit(Item::Bad {
                            text: doc,
                            loc,
                            error: format!(
                                "`{key}` is {}, not an array of records",
                                describe(records.get())
                            ),
                        });
                    }
                } else if top.digest_start.is_some() && top.log_files.is_some() {
                    emit(Item::Digest);
                } else {
                    // A single event; checked to be one complete value by the parse above.
                    match std::str::from_utf8(&doc[start..]) {
                        Ok(text) => emit(Item::Record(text.trim_end(), loc)),
                        Err(e) => emit(Item::Bad {
                            text: doc,
                            loc,
                            error: format!("invalid UTF-8: {e}"),
                        }),
                    };
                }
            }
            Err(err) => salvage_object(doc, start, first_line, err, emit),
        },
        _ => {
            let error = match serde_json::from_slice::<&RawValue>(doc) {
                Ok(v) => format!("the record is {}, not an event object", describe(v.get())),
                Err(e) => format!("invalid JSON: {e}"),
            };
            emit(Item::Bad {
                text: doc,
                loc,
                error,
            });
        }
    }
}

/// Parse one JSON value at `pos`; returns the value's text and the position after it.
fn value_at(doc: &[u8], pos: usize) -> Result<(&RawValue, usize), serde_json::Error> {
    let mut stream = serde_json::Deserializer::from_slice(&doc[pos..]).into_iter::<&RawValue>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, pos + stream.byte_offset())),
        Some(Err(e)) => Err(e),
        None => Err(serde::de::Error::custom("unexpected end of input")),
    }
}

/// Emit the elements of the array opening at `open`; returns the position after its `]`, or
/// `None` when the array was broken (the damage is emitted as a bad item).
fn split_array<'a>(
    doc: &'a [u8],
    open: usize,
    first_line: u64,
    emit: &mut Emit<'_, 'a>,
) -> Option<usize> {
    let mut pos = skip_ws(doc, open + 1);
    let mut index = 0u64;
    if doc.get(pos) == Some(&b']') {
        return Some(pos + 1);
    }
    // Line numbers are counted incrementally: each byte is scanned once.
    let (mut line, mut counted) = (first_line, 0usize);
    let mut line_of = |to: usize| {
        let to = to.min(doc.len());
        if to > counted {
            line += newlines(&doc[counted..to]);
            counted = to;
        }
        line
    };
    loop {
        let loc = Location {
            line: line_of(pos),
            index: Some(index),
        };
        // Offered unchecked first: its end is found by scanning, not by parsing it.
        let taken = match ElementScanner::default().next(doc, pos) {
            Some(Boundary::Comma(end) | Boundary::End(end)) => {
                candidate(trim_ws_end(&doc[pos..end]))
                    .is_some_and(|text| emit(Item::Candidate(text, loc)))
                    .then_some(end)
            }
            None => None,
        };
        let checked = match taken {
            Some(end) => Ok(end),
            None => value_at(doc, pos).map(|(value, end)| {
                let text = value.get();
                if text.starts_with('{') {
                    emit(Item::Record(text, loc));
                } else {
                    emit(Item::Bad {
                        text: text.as_bytes(),
                        loc,
                        error: format!("record {index} is {}, not an event object", describe(text)),
                    });
                }
                end
            }),
        };
        match checked {
            Ok(end) => {
                pos = skip_ws(doc, end);
                match doc.get(pos) {
                    Some(b',') => pos = skip_ws(doc, pos + 1),
                    Some(b']') => return Some(pos + 1),
                    _ => {
                        emit(Item::Bad {
                            text: &doc[pos..],
                            loc: Location {
                                line: line_of(pos),
                                index: Some(index + 1),
                            },
                            error: format!(
                                "the array is cut off or broken after record {index}: {}",
                                if pos >= doc.len() {
                                    "the file ends here (truncated?)".to_owned()
                                } else {
                                    format!("found `{}` where `,` or `]` belongs", doc[pos] as char)
                                }
                            ),
                        });
                        return None;
                    }
                }
                index += 1;
            }
            Err(e) => {
                emit(Item::Bad {
                    text: &doc[pos..],
                    loc,
                    error: format!(
                        "record {index} is not valid JSON ({e}); it and the rest of the file \
                         ({} bytes) are quarantined",
                        doc.len() - pos
                    ),
                });
                return None;
            }
        }
    }
}

/// The document is an object that failed to parse: look for a `Records` array before the damage
/// so the records ahead of it are still ingested.
fn salvage_object<'a>(
    doc: &'a [u8],
    start: usize,
    first_line: u64,
    err: serde_json::Error,
    emit: &mut Emit<'_, 'a>,
) {
    let mut pos = skip_ws(doc, start + 1);
    while doc.get(pos) == Some(&b'"') {
        let Ok((key, end)) = value_at(doc, pos) else {
            break;
        };
        pos = skip_ws(doc, end);
        if doc.get(pos) != Some(&b':') {
            break;
        }
        pos = skip_ws(doc, pos + 1);
        let is_records = matches!(
            key.get(),
            "\"Records\"" | "\"records\"" | "\"Items\"" | "\"items\""
        );
        if is_records && doc.get(pos) == Some(&b'[') {
            if let Some(end) = split_array(doc, pos, first_line, emit) {
                // The records are whole, but the document around them is not.
                emit(Item::Bad {
                    text: &doc[end..],
                    loc: Location {
                        line: line_at(doc, end, first_line),
                        index: None,
                    },
                    error: format!("the document is damaged after its Records array: {err}"),
                });
            }
            return;
        }
        let Ok((_, end)) = value_at(doc, pos) else {
            break;
        };
        pos = skip_ws(doc, end);
        if doc.get(pos) != Some(&b',') {
            break;
        }
        pos = skip_ws(doc, pos + 1);
    }
    emit(Item::Bad {
        text: doc,
        loc: Location {
            line: line_at(doc, start, first_line),
            index: None,
        },
        error: format!("invalid JSON: {err}"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    type Split = (Vec<(String, Location)>, Vec<(Location, String)>, bool);

    /// Split `buf`; candidates are taken when `take` and they parse as events, as the ingest
    /// does, else handed back to the splitter.
    fn split_taking(buf: &[u8], take: bool) -> Split {
        let mut good = vec![];
        let mut bad = vec![];
        let mut digest = false;
        split_file(buf, &mut |item| {
            match item {
                Item::Record(t, l) => good.push((t.to_owned(), l)),
                Item::Candidate(t, l) => {
                    let taken = take && crate::event::parse_event(t).is_ok_and(|e| !e.wrapper_key);
                    if taken {
                        good.push((t.to_owned(), l));
                    }
                    return taken;
                }
                Item::Bad { loc, error, .. } => bad.push((loc, error)),
                Item::Digest => digest = true,
            }
            true
        });
        (good, bad, digest)
    }

    /// Split `buf`, and check that taking candidates changes nothing: the same records, at the
    /// same places, and the same errors as when the splitter checks every one itself.
    fn run(buf: &[u8]) -> Split {
        let checked = split_taking(buf, false);
        assert_eq!(
            split_taking(buf, true),
            checked,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
        checked
    }

    /// Pieces of documents, good and broken, that the property test below strings together.
    const PIECES: &[&str] = &[
        "{\"eventName\":\"a\",\"eventTime\":\"2024-01-01T00:00:00Z\"}",
        "{\"eventName\":\"b\\\"}]\",\"requestParameters\":{\"x\":[1,{\"y\":\"]\"}]}}",
        "{\"Records\":[",
        "{\"records\":",
        "{\"R\\u0065cords\":[{\"eventName\":\"q\"}]}",
        "{\"Items\":[{\"LogTime\":1}],\"TotalCount\":1}",
        "{\"digestStartTime\":\"x\",\"logFiles\":[]}",
        "{\"digestStartTime\":\"x\"}",
        "{\"eventName\":{\"not\":\"a string\"}}",
        "{\"eventId\":\"1\",\"eventId\":\"2\"}",
        "{\"a\":1}}",
        "{\"a\":[1}",
        "\"text\"",
        "42",
        "[",
        "]",
        "{",
        "}",
        ",",
        " ",
        "\n",
        "\r\n",
        "\u{feff}",
        "\u{a0}",
        "\u{c}",
        "\\",
    ];

    proptest::proptest! {
        #[test]
        fn taking_candidates_changes_nothing(
            picks in proptest::collection::vec(0..PIECES.len(), 1..14),
            cut in 0usize..400,
            invalid_utf8 in proptest::bool::ANY,
        ) {
            let mut doc: Vec<u8> = picks.iter().flat_map(|&i| PIECES[i].bytes()).collect();
            if invalid_utf8 && !doc.is_empty() {
                let at = cut % doc.len();
                doc.insert(at, 0xff);
            }
            run(&doc);
            // The same pieces cut short, as a truncated delivery would be.
            run(&doc[..cut.min(doc.len())]);
        }
    }

    #[test]
    fn shapes() {
        let (g, b, _) = run(br#"{"eventName":"a"}"#);
        assert_eq!((g.len(), b.len()), (1, 0));
        let (g, b, _) = run(b"[{\"a\":1},\n{\"b\":2}]");
        assert_eq!((g.len(), b.len()), (2, 0));
        assert_eq!(
            g[1].1,
            Location {
                line: 2,
                index: Some(1)
            }
        );
        let (g, b, _) = run(b"{\"Records\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!((g.len(), b.len()), (2, 0));
        let (g, b, _) = run(b"{\"a\":1}\n\n{\"b\":2}\r\n{bad\n{\"c\":3}\n");
        assert_eq!(g.len(), 3);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0.line, 4);
        let (g, _, d) = run(br#"{"digestStartTime":"x","logFiles":[]}"#);
        assert!(g.is_empty() && d);
        let (g, b, _) = run(b"{\n  \"eventName\": \"pretty\",\n  \"x\": 1\n}\n");
        assert_eq!((g.len(), b.len()), (1, 0));
    }

    #[test]
    fn truncated_records_keep_the_good_ones() {
        let (g, b, _) = run(b"{\"Records\":[{\"a\":1},{\"b\":2},{\"c\":");
        assert_eq!(g.len(), 2);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].0.index, Some(2));
        let (g, b, _) = run(b"{\"Records\":[{\"a\":1}");
        assert_eq!((g.len(), b.len()), (1, 1));
        let (g, b, _) = run(
            b"{\"RequestId\":\"r\",\"Items\":[{\"LogTime\":1},{\"LogTime\":2}],\"TotalCount\":2}",
        );
        assert_eq!((g.len(), b.len()), (2, 0));
        let (g, b, _) = run(b"{\"Items\":[{\"LogTime\":1},{\"Log");
        assert_eq!((g.len(), b.len()), (1, 1));
        let (g, b, _) = run(b"{\"Records\":\"nope\"}");
        assert_eq!(g.len(), 0);
        assert!(b[0].1.contains("not an array"), "{}", b[0].1);
    }

    #[test]
    fn element_boundaries_ignore_strings_and_nesting() {
        let doc = br#"{"Records": [{"a":"x,]\"}"},{"b":[1,2,{"c":"]"}]} ,{"d":1}], "more": 1}"#;
        let open = array_start(doc).unwrap();
        assert_eq!(doc[open], b'[');
        let mut sc = ElementScanner::default();
        let mut found = vec![];
        let mut pos = open + 1;
        // Fed in two pieces, the second arriving mid-string.
        let cut = 20;
        while let Some(b) = sc.next(&doc[..cut], pos) {
            pos = match b {
                Boundary::Comma(i) | Boundary::End(i) => i + 1,
            };
            found.push(b);
        }
        pos = pos.max(cut);
        while let Some(b) = sc.next(doc, pos) {
            let end = matches!(b, Boundary::End(_));
            pos = match b {
                Boundary::Comma(i) | Boundary::End(i) => i + 1,
            };
            found.push(b);
            if end {
                break;
            }
        }
        let text = |b: &Boundary| match b {
            Boundary::Comma(i) | Boundary::End(i) => doc[*i] as char,
        };
        assert_eq!(found.iter().map(text).collect::<String>(), ",,]");
        assert_eq!(array_start(b" \n[1]"), Some(2));
        assert_eq!(array_start(b"{\"Items\": []}"), None);
        assert_eq!(array_start(b"{\"eventId\": 1}"), None);
    }

    #[test]
    fn empty_and_bom() {
        let (g, b, _) = run(b"");
        assert_eq!((g.len(), b.len()), (0, 1));
        let (g, b, _) = run(b"\xEF\xBB\xBF{\"a\":1}");
        assert_eq!((g.len(), b.len()), (1, 0));
        let (_, b, _) = run(b"42");
        assert!(b[0].1.contains("a number"));
    }
}
