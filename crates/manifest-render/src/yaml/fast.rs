//! A fast reader for the YAML that Kubernetes manifests are made of: block
//! mappings and sequences, single-line plain and quoted scalars, literal
//! blocks, empty flow collections, comments, `---` separators.
//!
//! It gives up (returns `None`) on anything else — anchors, tags, flow
//! content, multi-line plain or quoted scalars, folded blocks, tabs, CRs,
//! directives, duplicate keys — and the caller then uses the full libyaml
//! parser. A test checks that whatever it accepts from the upstream tree,
//! it reads exactly as libyaml does.

use super::resolve::{Version, resolve};
use super::{Map, Value};

struct Line<'a> {
    indent: usize,
    /// Text after the indentation.
    text: &'a str,
    /// The whole line (for block scalars).
    raw: &'a str,
}

fn blank_or_comment(l: &Line) -> bool {
    l.text.is_empty() || l.text.starts_with('#')
}

struct P<'a> {
    lines: Vec<Line<'a>>,
    i: usize,
    /// End of the current document (index of its `---` line or of the end).
    end: usize,
    /// Block nodes open around the current one.
    depth: usize,
}

/// Parses `text`, or `None` if it uses YAML outside the fast subset.
pub(crate) fn parse(text: &str) -> Option<Vec<Value>> {
    // Without a final line break a last literal block reads differently.
    if text.contains(['\t', '\r']) || text.starts_with('\u{feff}') || !text.ends_with('\n') {
        return None;
    }
    let lines: Vec<Line> = text
        .lines()
        .map(|raw| {
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            Line {
                indent,
                text: raw[indent..].trim_end_matches(' '),
                raw,
            }
        })
        .collect();
    // Within the limits, or the full parser reports which one is passed.
    if lines.len() + text.matches(',').count() > super::limits::MAX_NODES {
        return None;
    }
    let mut p = P {
        lines,
        i: 0,
        end: 0,
        depth: 0,
    };
    let mut docs = Vec::new();
    let mut explicit = false;
    loop {
        // Find the end of this document.
        let start = p.i;
        let mut end = start;
        while end < p.lines.len() && !is_doc_marker(&p.lines[end]) {
            end += 1;
        }
        p.end = end;
        p.skip_blank();
        if p.i < end {
            let v = p.node(0)?;
            p.skip_blank();
            if p.i != end {
                return None;
            }
            docs.push(v);
        } else if explicit {
            docs.push(Value::Null);
        }
        if end >= p.lines.len() {
            break;
        }
        let marker = &p.lines[end];
        if marker.raw != "---" {
            return None;
        }
        explicit = true;
        p.i = end + 1;
    }
    Some(docs)
}

fn is_doc_marker(l: &Line) -> bool {
    l.indent == 0 && (l.raw.starts_with("---") || l.raw.starts_with("...") || l.raw.starts_with('%'))
}

/// Splits `key: rest` (or `key:`) at the mapping indicator.
fn split_key(text: &str) -> Option<(Value, &str)> {
    let (key, rest) = if let Some(q) = text.strip_prefix('"') {
        let end = q.find('"')?;
        let key = &q[..end];
        if key.contains('\\') {
            return None;
        }
        (Value::Str(key.to_string()), q[end + 1..].strip_prefix(':')?)
    } else if let Some(q) = text.strip_prefix('\'') {
        let end = q.find('\'')?;
        if q[end + 1..].starts_with('\'') {
            return None;
        }
        (Value::Str(q[..end].to_string()), q[end + 1..].strip_prefix(':')?)
    } else {
        let b = text.as_bytes();
        let mut pos = None;
        for (i, &c) in b.iter().enumerate() {
            if c == b':' && (i + 1 == b.len() || b[i + 1] == b' ') {
                pos = Some(i);
                break;
            }
            if c == b'#' && i > 0 && b[i - 1] == b' ' {
                return None;
            }
        }
        let pos = pos?;
        let key = text[..pos].trim_end();
        if key.is_empty() || !plain_start_ok(key) || key == "<<" {
            return None;
        }
        (plain(key), &text[pos + 1..])
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key, rest.trim_start_matches(' ')))
}

/// A plain scalar may not start with an indicator character.
fn plain_start_ok(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        None => false,
        Some(b'-' | b'?' | b':') => b.get(1).is_some_and(|c| *c != b' '),
        Some(
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%'
            | b'@' | b'`',
        ) => false,
        Some(_) => true,
    }
}

fn plain(s: &str) -> Value {
    match resolve(s, Version::V3) {
        super::resolve::Resolved::Null if s.is_empty() => Value::Null,
        super::resolve::Resolved::Null => Value::NullText,
        super::resolve::Resolved::Bool(b) => Value::Bool(b),
        super::resolve::Resolved::Int(i) => Value::Int(i),
        super::resolve::Resolved::Uint(u) => Value::Uint(u),
        super::resolve::Resolved::Float(f) => Value::Float(f),
        super::resolve::Resolved::Timestamp(t) => Value::Str(t),
        super::resolve::Resolved::Merge | super::resolve::Resolved::Str => Value::Str(s.to_string()),
    }
}

/// Strips a trailing ` # comment` from an inline value.
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 1..b.len() {
        if b[i] == b'#' && b[i - 1] == b' ' {
            return s[..i].trim_end_matches(' ');
        }
    }
    s
}

/// One escape after a backslash: the character and the bytes it used.
fn unescape(s: &str) -> Option<(char, usize)> {
    let e = s.chars().next()?;
    let hex = |n: usize| -> Option<(char, usize)> {
        let digits = s.get(1..1 + n)?;
        Some((char::from_u32(u32::from_str_radix(digits, 16).ok()?)?, 1 + n))
    };
    Some(match e {
        '0' => ('\0', 1),
        'a' => ('\x07', 1),
        'b' => ('\x08', 1),
        't' => ('\t', 1),
        'n' => ('\n', 1),
        'v' => ('\x0b', 1),
        'f' => ('\x0c', 1),
        'r' => ('\r', 1),
        'e' => ('\x1b', 1),
        ' ' => (' ', 1),
        '"' => ('"', 1),
        '/' => ('/', 1),
        '\\' => ('\\', 1),
        'N' => ('\u{85}', 1),
        '_' => ('\u{a0}', 1),
        'L' => ('\u{2028}', 1),
        'P' => ('\u{2029}', 1),
        'x' => return hex(2),
        'u' => return hex(4),
        'U' => return hex(8),
        _ => return None,
    })
}

/// A one-line flow sequence of scalars: `[a, "b", 'c']`.
fn flow_seq(s: &str) -> Option<Value> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    if inner.contains(['[', ']', '{', '}', '#']) {
        return None;
    }
    let mut items = Vec::new();
    let mut rest = inner.trim_start_matches(' ');
    while !rest.is_empty() {
        let (item, after) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"')?;
            if q[..end].contains('\\') {
                return None;
            }
            (Value::Str(q[..end].to_string()), &q[end + 1..])
        } else if let Some(q) = rest.strip_prefix('\'') {
            let end = q.find('\'')?;
            if q[end + 1..].starts_with('\'') {
                return None;
            }
            (Value::Str(q[..end].to_string()), &q[end + 1..])
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let t = rest[..end].trim_end_matches(' ');
            if t.is_empty() || !plain_start_ok(t) || t.contains(':') {
                return None;
            }
            (plain(t), &rest[end..])
        };
        items.push(item);
        let after = after.trim_start_matches(' ');
        rest = match after.strip_prefix(',') {
            Some(r) => r.trim_start_matches(' '),
            None if after.is_empty() => after,
            None => return None,
        };
        if rest.is_empty() && after.starts_with(',') {
            // A trailing comma: leave it to libyaml.
            return None;
        }
    }
    Some(Value::Seq(items))
}

/// What may follow a quoted scalar on its line: nothing or a comment.
fn only_comment(rest: &str) -> bool {
    let r = rest.trim_start_matches(' ');
    r.is_empty() || (r.starts_with('#') && rest.starts_with(' '))
}

impl<'a> P<'a> {
    fn skip_blank(&mut self) {
        while self.i < self.end && blank_or_comment(&self.lines[self.i]) {
            self.i += 1;
        }
    }

    /// Indentation and text of the next significant line.
    fn peek(&mut self) -> Option<(usize, &'a str)> {
        self.skip_blank();
        (self.i < self.end).then(|| (self.lines[self.i].indent, self.lines[self.i].text))
    }

    /// A block node starting at the current line, indented `>= min`.
    fn node(&mut self, min: usize) -> Option<Value> {
        let (indent, text) = self.peek()?;
        if indent < min || self.depth >= super::limits::MAX_DEPTH / 2 {
            return None;
        }
        self.depth += 1;
        let v = if text == "-" || text.starts_with("- ") {
            self.sequence(indent)
        } else {
            self.mapping(indent, None)
        };
        self.depth -= 1;
        v
    }

    fn sequence(&mut self, indent: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some((ind, text)) = self.peek() {
            if ind != indent || !(text == "-" || text.starts_with("- ")) {
                break;
            }
            let rest = text[1..].trim_start_matches(' ');
            let col = indent + (text.len() - rest.len());
            self.i += 1;
            if rest.is_empty() || rest.starts_with('#') {
                // The item is the block below, or null.
                match self.peek() {
                    Some((n, _)) if n > indent => items.push(self.node(indent + 1)?),
                    _ => items.push(Value::Null),
                }
                continue;
            }
            if rest.starts_with("- ") || rest == "-" || rest.starts_with('|') || rest.starts_with('>') {
                return None;
            }
            if let Some((key, after)) = split_key(rest) {
                // `- key: value` starts a mapping at the key's column.
                items.push(self.mapping(col, Some((key, after)))?);
                continue;
            }
            items.push(self.inline_scalar(rest, indent)?);
        }
        Some(Value::Seq(items))
    }

    /// A scalar written on its line (no block scalars, no continuation).
    fn inline_scalar(&mut self, text: &'a str, parent: usize) -> Option<Value> {
        let v = if let Some(q) = text.strip_prefix('"') {
            let (s, rest) = self.quoted(q, true)?;
            if !only_comment(rest) {
                return None;
            }
            Value::Str(s)
        } else if let Some(q) = text.strip_prefix('\'') {
            let (s, rest) = self.quoted(q, false)?;
            if !only_comment(rest) {
                return None;
            }
            Value::Str(s)
        } else {
            let s = strip_comment(text);
            if s == "[]" {
                Value::Seq(Vec::new())
            } else if s.starts_with('[') {
                flow_seq(s)?
            } else if s == "{}" {
                Value::Map(Map::new())
            } else {
                if !plain_start_ok(s) || s.contains(": ") || s.ends_with(':') {
                    return None;
                }
                if s.len() != text.len() {
                    // A comment ends the scalar; no continuation may follow.
                    return self.no_continuation(parent).then(|| plain(s));
                }
                let folded = self.plain_continuation(s, parent)?;
                return Some(plain(&folded));
            }
        };
        // A more-indented line after it would continue the scalar.
        if let Some((n, _)) = self.peek()
            && n > parent
        {
            return None;
        }
        Some(v)
    }

    /// A quoted scalar from just after its opening quote, over as many lines
    /// as it takes, folded as libyaml folds flow scalars. Returns the value
    /// and the rest of the line after the closing quote.
    fn quoted(&mut self, first: &'a str, double: bool) -> Option<(String, &'a str)> {
        let mut out = String::new();
        let mut cur: &'a str = first;
        loop {
            // A run of non-space characters.
            let b = cur.as_bytes();
            let mut pos = 0;
            let mut escaped_break = false;
            while pos < b.len() {
                match b[pos] {
                    b'\'' if !double => {
                        if b.get(pos + 1) == Some(&b'\'') {
                            out.push('\'');
                            pos += 2;
                            continue;
                        }
                        return Some((out, &cur[pos + 1..]));
                    }
                    b'"' if double => return Some((out, &cur[pos + 1..])),
                    b'\\' if double => {
                        if pos + 1 == b.len() {
                            escaped_break = true;
                            pos += 1;
                            break;
                        }
                        let (decoded, used) = unescape(&cur[pos + 1..])?;
                        out.push(decoded);
                        pos += 1 + used;
                    }
                    b' ' => break,
                    _ => {
                        let ch = cur[pos..].chars().next()?;
                        out.push(ch);
                        pos += ch.len_utf8();
                    }
                }
            }
            // Spaces within the line are kept; at a line break they fold.
            let mut spaces = 0;
            while pos < b.len() && b[pos] == b' ' {
                spaces += 1;
                pos += 1;
            }
            if pos < b.len() && !escaped_break {
                out.extend(std::iter::repeat_n(' ', spaces));
                cur = &cur[pos..];
                continue;
            }
            // Line break(s): one folds to a space, k blank lines give k breaks.
            let mut trailing = 0;
            loop {
                if self.i >= self.end {
                    return None;
                }
                let l = &self.lines[self.i];
                self.i += 1;
                if l.raw.starts_with("---") || l.raw.starts_with("...") {
                    return None;
                }
                if l.text.is_empty() {
                    trailing += 1;
                    continue;
                }
                if escaped_break || trailing > 0 {
                    out.extend(std::iter::repeat_n('\n', trailing));
                } else {
                    out.push(' ');
                }
                cur = l.text;
                // Trailing spaces of the line were trimmed from `text`; a
                // closing quote after them is still found on this line.
                if l.raw.len() > l.indent + l.text.len() {
                    cur = &l.raw[l.indent..];
                }
                break;
            }
        }
    }

    /// Whether no line more indented than `parent` follows.
    fn no_continuation(&mut self, parent: usize) -> bool {
        self.peek().is_none_or(|(n, _)| n <= parent)
    }

    /// A plain scalar's continuation lines (indented more than `parent`),
    /// folded as YAML does: one break is a space, k blank lines are k breaks.
    fn plain_continuation(&mut self, first: &str, parent: usize) -> Option<String> {
        let mut out = first.to_string();
        let mut j = self.i;
        let mut breaks = 0;
        let mut consumed = self.i;
        while j < self.end {
            let l = &self.lines[j];
            if l.text.is_empty() {
                breaks += 1;
                j += 1;
                continue;
            }
            if l.indent <= parent {
                break;
            }
            let t = l.text;
            if t.starts_with('#') || t.contains(": ") || t.ends_with(':') || t.contains(" #") {
                return None;
            }
            if breaks == 0 {
                out.push(' ');
            } else {
                out.extend(std::iter::repeat_n('\n', breaks));
            }
            out.push_str(t);
            breaks = 0;
            j += 1;
            consumed = j;
        }
        self.i = consumed;
        Some(out)
    }

    fn mapping(&mut self, indent: usize, first: Option<(Value, &'a str)>) -> Option<Value> {
        let mut m = Map::new();
        let mut pending = first;
        loop {
            let (key, rest) = match pending.take() {
                Some(kr) => kr,
                None => {
                    let Some((ind, text)) = self.peek() else { break };
                    if ind != indent {
                        break;
                    }
                    let (k, r) = split_key(text)?;
                    self.i += 1;
                    (k, r)
                }
            };
            let Value::Str(key) = key else { return None };
            if m.contains_key(&key) {
                return None;
            }
            let value = self.value(rest, indent)?;
            m.insert(key, value);
        }
        Some(Value::Map(m))
    }

    /// The value after `key:` (`rest`) of a mapping at `indent`.
    fn value(&mut self, rest: &'a str, indent: usize) -> Option<Value> {
        if rest.is_empty() || rest.starts_with('#') {
            return match self.peek() {
                Some((n, _)) if n > indent => self.node(indent + 1),
                // An indentless sequence under the key.
                Some((n, t)) if n == indent && (t == "-" || t.starts_with("- ")) => self.sequence(indent),
                _ => Some(Value::Null),
            };
        }
        if let Some(h) = rest.strip_prefix('|') {
            let chomp = match h {
                "" => 'c',
                "-" => '-',
                "+" => '+',
                _ => return None,
            };
            return self.literal(indent, chomp);
        }
        self.inline_scalar(rest, indent)
    }

    /// A literal block scalar's lines, more indented than `parent`.
    fn literal(&mut self, parent: usize, chomp: char) -> Option<Value> {
        // The content indentation is that of the first non-empty line.
        let mut j = self.i;
        while j < self.end && self.lines[j].text.is_empty() {
            if self.lines[j].raw.len() > parent + 1 {
                // Leading blank lines with spaces: leave them to libyaml.
                return None;
            }
            j += 1;
        }
        let ci = if j < self.end && self.lines[j].indent > parent {
            self.lines[j].indent
        } else {
            return None;
        };
        let mut body = String::new();
        let mut trailing = 0usize;
        let mut k = self.i;
        while k < self.end {
            let l = &self.lines[k];
            if l.text.is_empty() {
                if l.raw.len() > ci {
                    // Spaces beyond the indentation are content.
                    for _ in 0..trailing {
                        body.push('\n');
                    }
                    trailing = 0;
                    body.push_str(&l.raw[ci..]);
                    body.push('\n');
                } else {
                    trailing += 1;
                }
                k += 1;
                continue;
            }
            if l.indent < ci {
                break;
            }
            for _ in 0..trailing {
                body.push('\n');
            }
            trailing = 0;
            body.push_str(&l.raw[ci..]);
            body.push('\n');
            k += 1;
        }
        self.i = k;
        match chomp {
            '-' => {
                while body.ends_with('\n') {
                    body.pop();
                }
            }
            '+' => {
                for _ in 0..trailing {
                    body.push('\n');
                }
            }
            _ => {}
        }
        Some(Value::Str(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(text: &str) -> Result<Vec<Value>, super::super::ParseError> {
        super::super::parse::parse_slow(text)
    }

    #[test]
    fn agrees_with_libyaml_on_samples() {
        for text in [
            "a: 1\nb:\n  c: [] # x\n  d: {}\nl:\n- x\n- 'y'\n- \"z\\n\"\n- k: v\n  k2: ~\ne:\n",
            "---\na: |\n  one\n\n  two\n\nb: |-\n  x\nc: |+\n  y\n\n---\n",
            "# only a comment\n",
            "k: v # comment\nurl: http://x:80/y\nn: null\nt: true\nf: 1.5\ns: '1'\n",
            "list:\n- - nested\n",
            "a: b\n  c\n",
            "v: [\"v1\", 'x', 3, true]\nw: [a: b]\n",
            "d: 'multi\n  line\n\n  quoted '' x'\ne: \"esc \\\n  aped \\u00e9\"\nf: plain\n  folded\n\n  more\n",
        ] {
            if let Some(fast) = parse(text) {
                assert_eq!(Ok(fast), slow(text).map_err(|e| e.to_string()), "{text:?}");
            }
        }
        assert!(
            parse("a: 1\nb: {x: 1}\n").is_none(),
            "flow mappings are left to libyaml"
        );
    }

    #[test]
    fn agrees_with_libyaml_on_the_upstream_tree() {
        let Some(shared) = testkit::require_shared("fast_parser_agrees_with_libyaml_on_the_upstream_tree")
        else {
            return;
        };
        let mut stack = vec![shared.join("upstream")];
        let (mut total, mut fast_ok) = (0, 0);
        let mut bad = Vec::new();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if !p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                total += 1;
                if let Some(fast) = parse(&text) {
                    fast_ok += 1;
                    match slow(&text) {
                        Ok(s) if s == fast => {}
                        Ok(_) => bad.push(format!("{}: values differ", p.display())),
                        Err(e) => bad.push(format!(
                            "{}: libyaml refuses ({e}) but the fast path accepted",
                            p.display()
                        )),
                    }
                }
            }
        }
        eprintln!("fast path read {fast_ok} of {total} files");
        assert!(total > 1000, "only {total} files");
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
