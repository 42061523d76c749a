//! YAML text to [`Value`]s, resolving scalars as go-yaml v3 does when
//! kyaml decodes a node into `map[string]interface{}`.

use std::collections::HashMap;

use libyaml_safer::{Event, EventData, Parser, ScalarStyle};

use super::limits;
use super::resolve::{Resolved, Version, resolve};
use super::{Map, Value};

/// Malformed YAML, with the 1-based line where the parser stopped.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

const TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// Every document of a YAML stream (an empty document is [`Value::Null`]).
pub fn parse_documents(text: &str) -> Result<Vec<Value>, ParseError> {
    // Most manifests use a small part of YAML, which a direct reader takes
    // several times faster than the event parser; anything else goes there.
    if let Some(docs) = super::fast::parse(text) {
        return Ok(docs);
    }
    parse_slow(text)
}

/// [`parse_documents`] where a repeated mapping key replaces the earlier
/// one instead of failing: how kustomize reads a kustomization file.
pub fn parse_documents_last_key_wins(text: &str) -> Result<Vec<Value>, ParseError> {
    if let Some(docs) = super::fast::parse(text) {
        return Ok(docs);
    }
    parse_slow_with(text, true)
}

/// [`parse_documents`] through libyaml-safer's event parser only.
pub(crate) fn parse_slow(text: &str) -> Result<Vec<Value>, ParseError> {
    parse_slow_with(text, false)
}

fn parse_slow_with(text: &str, last_key_wins: bool) -> Result<Vec<Value>, ParseError> {
    // libyaml-safer takes any leading 0xEF byte for a byte order mark; a
    // text that starts with another character encoded so gets a blank line.
    if text.as_bytes().first() == Some(&0xEF) && !text.starts_with('\u{feff}') {
        return parse_slow_with(&format!("\n{text}"), last_key_wins).map_err(|e| ParseError {
            line: e.line.saturating_sub(1),
            ..e
        });
    }
    // libyaml-safer panics on a block scalar that ends the input without a
    // line break; parse with one added and undo its effect on that scalar.
    let owned;
    let (input_text, eof_fix) = if text.is_empty() || text.ends_with('\n') {
        (text, None)
    } else {
        owned = format!("{text}\n");
        (owned.as_str(), Some(text.len() as u64))
    };
    // The parser is a dependency; a panic in it must not take the caller down.
    std::panic::catch_unwind(|| parse_inner(input_text, eof_fix, last_key_wins)).unwrap_or_else(|_| {
        Err(ParseError {
            line: 0,
            column: 0,
            message: "the YAML parser failed on this input".into(),
        })
    })
}

fn parse_inner(text: &str, eof_fix: Option<u64>, last_key_wins: bool) -> Result<Vec<Value>, ParseError> {
    let mut parser = Parser::new();
    let mut input = text.as_bytes();
    parser.set_input(&mut input);
    let mut b = Builder {
        parser,
        anchors: HashMap::new(),
        text,
        eof_fix,
        last_key_wins,
        cost: Cost::default(),
        depth: 0,
    };
    let mut docs = Vec::new();
    loop {
        let ev = b.next()?;
        match ev.data {
            EventData::StreamStart { .. } | EventData::DocumentEnd { .. } => {}
            EventData::StreamEnd => break,
            EventData::DocumentStart { .. } => {
                b.anchors.clear();
                let ev = b.next()?;
                docs.push(b.node(ev)?);
            }
            _ => {
                let m = EvMarks {
                    start_mark: ev.start_mark,
                    end_mark: ev.end_mark,
                };
                return Err(err_at(&m, "unexpected event at document level"));
            }
        }
    }
    Ok(docs)
}

struct Builder<'t, R> {
    parser: Parser<R>,
    /// Each anchor's value and what building it cost (charged again per alias).
    anchors: HashMap<String, (Value, Cost)>,
    text: &'t str,
    /// Length of the input before a final line break was added.
    eof_fix: Option<u64>,
    /// A repeated key replaces the earlier one (kustomization files).
    last_key_wins: bool,
    /// What the stream has built so far, aliases expanded.
    cost: Cost,
    /// Collections open around the current node.
    depth: usize,
}

/// Nodes, scalar bytes and aliases built (see [`limits`]).
#[derive(Clone, Copy, Default)]
struct Cost {
    nodes: usize,
    bytes: usize,
    aliases: usize,
}

impl Cost {
    fn since(self, start: Cost) -> Cost {
        Cost {
            nodes: self.nodes - start.nodes,
            bytes: self.bytes - start.bytes,
            aliases: self.aliases - start.aliases,
        }
    }
}

/// Where an event sits in the text.
struct EvMarks {
    start_mark: libyaml_safer::Mark,
    end_mark: libyaml_safer::Mark,
}

fn err_at(ev: &EvMarks, message: &str) -> ParseError {
    ParseError {
        line: ev.start_mark.line + 1,
        column: ev.start_mark.column + 1,
        message: message.to_string(),
    }
}

impl<R: std::io::BufRead> Builder<'_, R> {
    fn next(&mut self) -> Result<Event, ParseError> {
        self.parser.parse().map_err(|e| {
            let mark = e.problem_mark().unwrap_or_default();
            let mut message = e.problem().to_string();
            if let Some(ctx) = e.context() {
                message = format!("{message} {ctx}");
            }
            ParseError {
                line: mark.line + 1,
                column: mark.column + 1,
                message,
            }
        })
    }

    /// Whether the block scalar starting at `index` has the `-` chomping indicator.
    fn strips(&self, index: u64) -> bool {
        let rest = self.text.get(index as usize..).unwrap_or("");
        let Some(pos) = rest.find(['|', '>']) else {
            return false;
        };
        rest[pos + 1..]
            .chars()
            .take_while(|c| matches!(c, '-' | '+' | '0'..='9'))
            .any(|c| c == '-')
    }

    /// [`Self::build`] within the limits on expansion and nesting.
    fn node(&mut self, ev: Event) -> Result<Value, ParseError> {
        let marks = EvMarks {
            start_mark: ev.start_mark,
            end_mark: ev.end_mark,
        };
        let start = self.cost;
        let anchor = match &ev.data {
            EventData::Scalar { anchor, value, .. } => {
                self.cost.bytes += value.len();
                anchor.clone()
            }
            EventData::SequenceStart { anchor, .. } | EventData::MappingStart { anchor, .. } => {
                if self.depth >= limits::MAX_DEPTH {
                    return Err(err_at(&marks, &limits::too_deep()));
                }
                anchor.clone()
            }
            EventData::Alias { anchor } => {
                let cost = self.anchors.get(anchor).map(|(_, c)| *c).unwrap_or_default();
                self.cost.nodes += cost.nodes;
                self.cost.bytes += cost.bytes;
                self.cost.aliases += cost.aliases + 1;
                None
            }
            _ => None,
        };
        self.cost.nodes += 1;
        // Checked before an alias is cloned, so a bomb never gets built.
        if let Some(m) = limits::check_expansion(self.cost.nodes, self.cost.bytes, self.cost.aliases) {
            return Err(err_at(&marks, &m));
        }
        let nested = matches!(
            ev.data,
            EventData::SequenceStart { .. } | EventData::MappingStart { .. }
        );
        self.depth += usize::from(nested);
        let v = self.build(ev);
        self.depth -= usize::from(nested);
        let v = v?;
        if let Some(a) = anchor {
            self.anchors.insert(a, (v.clone(), self.cost.since(start)));
        }
        Ok(v)
    }

    fn build(&mut self, ev: Event) -> Result<Value, ParseError> {
        let Event {
            data,
            start_mark,
            end_mark,
            ..
        } = ev;
        let ev = EvMarks { start_mark, end_mark };
        match data {
            EventData::Alias { anchor } => self
                .anchors
                .get(&anchor)
                .map(|(v, _)| v.clone())
                .ok_or_else(|| err_at(&ev, &format!("unknown anchor '{anchor}' referenced"))),
            EventData::Scalar {
                tag, value, style, ..
            } => {
                let mut value = value;
                if let Some(len) = self.eof_fix
                    && matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && ev.end_mark.index > len
                    && !self.strips(ev.start_mark.index)
                    && value.ends_with('\n')
                {
                    value.pop();
                }
                let (line, column) = (ev.start_mark.line + 1, ev.start_mark.column + 1);
                let v = scalar(value, tag.as_deref(), style).map_err(|message| ParseError {
                    line,
                    column,
                    message,
                })?;
                Ok(v)
            }
            EventData::SequenceStart { .. } => {
                let mut items = Vec::new();
                loop {
                    let ev = self.next()?;
                    if matches!(ev.data, EventData::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev)?);
                }
                Ok(Value::Seq(items))
            }
            EventData::MappingStart { .. } => {
                let mut map = Map::new();
                let mut merges = Vec::new();
                let mut lines: HashMap<String, u64> = HashMap::new();
                loop {
                    let kev = self.next()?;
                    if matches!(kev.data, EventData::MappingEnd) {
                        break;
                    }
                    let is_merge = matches!(&kev.data,
                        EventData::Scalar { value, style: ScalarStyle::Plain, tag: None, .. } if value == "<<");
                    let line = kev.start_mark.line + 1;
                    let key = match self.node(kev)? {
                        Value::Str(s) => s,
                        Value::Null | Value::NullText => String::new(),
                        other => other.scalar_text().ok_or_else(|| ParseError {
                            line,
                            column: 1,
                            message: "a mapping key must be a scalar".into(),
                        })?,
                    };
                    let vev = self.next()?;
                    let value = self.node(vev)?;
                    if is_merge {
                        merges.push((line, value));
                        continue;
                    }
                    if let Some(first) = lines.get(&key).filter(|_| !self.last_key_wins) {
                        return Err(ParseError {
                            line,
                            column: 1,
                            message: format!("mapping key \"{key}\" already defined at line {first}"),
                        });
                    }
                    lines.insert(key.clone(), line);
                    map.insert(key, value);
                }
                for (line, m) in merges {
                    let sources = match m {
                        Value::Seq(s) => s,
                        other => vec![other],
                    };
                    for src in sources {
                        let Value::Map(src) = src else {
                            return Err(ParseError {
                                line,
                                column: 1,
                                message: "map merge requires map or sequence of maps as the value".into(),
                            });
                        };
                        for (k, v) in src {
                            if !map.contains_key(&k) {
                                map.insert(k, v);
                            }
                        }
                    }
                }
                Ok(Value::Map(map))
            }
            _ => Err(err_at(&ev, "expected a node")),
        }
    }
}

fn scalar(value: String, tag: Option<&str>, style: ScalarStyle) -> Result<Value, String> {
    let short = tag.map(|t| {
        t.strip_prefix(TAG_PREFIX)
            .map_or(t.to_string(), |s| format!("!!{s}"))
    });
    match short.as_deref() {
        None => {
            if style != ScalarStyle::Plain {
                return Ok(Value::Str(value));
            }
            Ok(from_resolved(resolve(&value, Version::V3), value))
        }
        Some("!!str") => Ok(Value::Str(value)),
        Some("!!binary") => decode_base64(&value).map(Value::Str),
        Some(t @ ("!!int" | "!!float" | "!!bool" | "!!null" | "!!timestamp")) => {
            let r = resolve(&value, Version::V3);
            let ok = matches!(
                (t, &r),
                ("!!int", Resolved::Int(_) | Resolved::Uint(_))
                    | ("!!float", Resolved::Float(_))
                    | ("!!bool", Resolved::Bool(_))
                    | ("!!null", Resolved::Null)
                    | ("!!timestamp", Resolved::Timestamp(_))
            );
            match (t, r) {
                ("!!float", Resolved::Int(i)) => Ok(Value::Float(i as f64)),
                (_, r) if ok => Ok(from_resolved(r, value)),
                _ => Err(format!("cannot decode `{value}` as a {t}")),
            }
        }
        // Unknown tags keep the text (go-yaml does not resolve them).
        Some(_) => Ok(Value::Str(value)),
    }
}

fn from_resolved(r: Resolved, text: String) -> Value {
    match r {
        Resolved::Null if text.is_empty() => Value::Null,
        Resolved::Null => Value::NullText,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Int(i),
        Resolved::Uint(u) => Value::Uint(u),
        Resolved::Float(f) => Value::Float(f),
        Resolved::Timestamp(t) => Value::Str(t),
        Resolved::Merge | Resolved::Str => Value::Str(text),
    }
}

fn decode_base64(s: &str) -> Result<String, String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let d = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or("!!binary value contains invalid base64 data")?;
        acc = (acc << 6) | d as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).map_err(|_| "!!binary data is not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_and_types() {
        let docs = parse_documents("a: 1\nb: '1'\nc: yes\nd: ~\ne: [x, 2.5]\nf: |\n  x\n").unwrap();
        let m = docs[0].as_map().unwrap();
        assert_eq!(m.get("a"), Some(&Value::Int(1)));
        assert_eq!(m.get("b"), Some(&Value::Str("1".into())));
        assert_eq!(m.get("c"), Some(&Value::Str("yes".into())));
        assert_eq!(m.get("d"), Some(&Value::NullText));
        assert_eq!(
            m.get("e"),
            Some(&Value::Seq(vec![Value::Str("x".into()), Value::Float(2.5)]))
        );
        assert_eq!(m.get("f"), Some(&Value::Str("x\n".into())));
    }

    #[test]
    fn anchors_merge_and_errors() {
        let docs = parse_documents("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n").unwrap();
        let d = docs[0].get("d").unwrap().as_map().unwrap();
        assert_eq!(d.get("x"), Some(&Value::Int(1)));
        assert_eq!(d.get("y"), Some(&Value::Int(3)));
        let e = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            parse_slow("\u{fb13}: 1\n").unwrap()[0].get("\u{fb13}"),
            Some(&Value::Int(1))
        );
        let docs = parse_documents("a: |\n  x\nb: |-\n  y\nc: |\n  z").unwrap();
        assert_eq!(docs[0].get("a"), Some(&Value::Str("x\n".into())));
        assert_eq!(docs[0].get("b"), Some(&Value::Str("y".into())));
        assert_eq!(docs[0].get("c"), Some(&Value::Str("z".into())));
        let e = parse_documents("a: [1\nb: 2\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
    }
}
