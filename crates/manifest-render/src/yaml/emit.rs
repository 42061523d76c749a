//! Prints [`Value`]s exactly as kustomize does: `JSONToYAML`, i.e. JSON
//! numbers re-read by go-yaml v2, keys sorted by v2's natural order, and
//! go-yaml v2's emitter (indent 2, width 80, sequences in mappings not
//! indented, strings with newlines as literal blocks).
//!
//! The emitter mirrors libyaml's state machine as go-yaml v2 ports it: the
//! same column/indent/whitespace bookkeeping decides every space and line
//! break, so folding of long scalars matches byte for byte.

use std::cmp::Ordering;

use super::resolve::{Resolved, Version, is_base60_float, resolve};
use super::{Map, Value};

const BEST_INDENT: i64 = 2;
const BEST_WIDTH: i64 = 80;

/// One object as kustomize prints it (ends with a newline).
pub fn emit_document(v: &Value) -> String {
    let mut e = Emitter::new();
    e.emit_node(v, true, false, false, false);
    // Document end: the implicit end still breaks the last line.
    e.indent = -1;
    e.write_indent();
    String::from_utf8(e.out).unwrap_or_default()
}

/// Objects joined with `---` lines, as `kustomize build` prints them.
pub fn emit_documents<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&emit_document(d));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

struct Emitter {
    out: Vec<u8>,
    column: i64,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
    flow_level: u32,
    mapping_context: bool,
    simple_key_context: bool,
}

fn width(b: u8) -> usize {
    if b & 0x80 == 0 {
        1
    } else if b & 0xE0 == 0xC0 {
        2
    } else if b & 0xF0 == 0xE0 {
        3
    } else if b & 0xF8 == 0xF0 {
        4
    } else {
        1
    }
}

fn at(v: &[u8], i: usize) -> u8 {
    v.get(i).copied().unwrap_or(0)
}

fn is_space(v: &[u8], i: usize) -> bool {
    at(v, i) == b' '
}

fn is_break(v: &[u8], i: usize) -> bool {
    let b = at(v, i);
    b == b'\r'
        || b == b'\n'
        || (b == 0xC2 && at(v, i + 1) == 0x85)
        || (b == 0xE2 && at(v, i + 1) == 0x80 && (at(v, i + 2) == 0xA8 || at(v, i + 2) == 0xA9))
}

/// Whether `v` holds a line break (what makes a scalar "multiline").
fn has_break(v: &[u8]) -> bool {
    (0..v.len()).any(|i| is_break(v, i))
}

fn is_blank(v: &[u8], i: usize) -> bool {
    at(v, i) == b' ' || at(v, i) == b'\t'
}

fn is_blankz(v: &[u8], i: usize) -> bool {
    is_blank(v, i) || is_break(v, i) || at(v, i) == 0
}

fn is_printable(v: &[u8], i: usize) -> bool {
    let b = at(v, i);
    let b1 = at(v, i + 1);
    let b2 = at(v, i + 2);
    b == 0x0A
        || (0x20..=0x7E).contains(&b)
        || (b == 0xC2 && b1 >= 0xA0)
        || (b > 0xC2 && b < 0xED)
        || (b == 0xED && b1 < 0xA0)
        || b == 0xEE
        || (b == 0xEF && !(b1 == 0xBB && b2 == 0xBF) && !(b1 == 0xBF && (b2 == 0xBE || b2 == 0xBF)))
}

/// Characters that can never make a scalar need quoting or a block style.
fn is_safe_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-')
}

fn analyze(value: &[u8]) -> Analysis {
    // Fast path: most keys and values are identifiers, names, paths.
    if value.first().is_some_and(u8::is_ascii_alphanumeric) && value.iter().all(|&b| is_safe_byte(b)) {
        return Analysis {
            multiline: false,
            flow_plain_allowed: true,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
    }
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain_allowed: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let (mut block_ind, mut flow_ind, mut line_breaks, mut special) = (false, false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut prev_space, mut prev_break) = (false, false, false, false);
    if value.starts_with(b"---") || value.starts_with(b"...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_by_ws = true;
    let mut i = 0;
    while i < value.len() {
        let w = width(value[i]);
        let followed_by_ws = i + w >= value.len() || is_blank(value, i + w);
        let c = value[i];
        if i == 0 {
            match c {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"'
                | b'%' | b'@' | b'`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                b'?' | b':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                b'-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                b',' | b'?' | b'[' | b']' | b'{' | b'}' => flow_ind = true,
                b':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                b'#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        if !is_printable(value, i) {
            special = true;
        }
        if is_space(value, i) {
            if i == 0 {
                leading_space = true;
            }
            if i + w == value.len() {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(value, i) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + w == value.len() {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blankz(value, i);
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain_allowed: true,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if flow_ind {
        a.flow_plain_allowed = false;
    }
    if block_ind {
        a.block_plain_allowed = false;
    }
    a
}

impl Emitter {
    fn new() -> Self {
        Emitter {
            out: Vec::with_capacity(4096),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            flow_level: 0,
            mapping_context: false,
            simple_key_context: false,
        }
    }

    fn put(&mut self, b: u8) {
        self.out.push(b);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
    }

    /// Copies one character of `v` at `*i`.
    fn write(&mut self, v: &[u8], i: &mut usize) {
        let w = width(v[*i]).min(v.len() - *i);
        self.out.extend_from_slice(&v[*i..*i + w]);
        self.column += 1;
        *i += w;
    }

    fn write_all(&mut self, s: &[u8]) {
        let mut i = 0;
        while i < s.len() {
            self.write(s, &mut i);
        }
    }

    fn write_break(&mut self, v: &[u8], i: &mut usize) {
        if v[*i] == b'\n' {
            self.put_break();
            *i += 1;
        } else {
            self.write(v, i);
            self.column = 0;
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(b' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, ind: &[u8], need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(b' ');
        }
        self.write_all(ind);
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn emit_node(&mut self, v: &Value, _root: bool, _sequence: bool, mapping: bool, simple_key: bool) {
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match v {
            Value::Null | Value::NullText => self.emit_scalar(b"null", Style::Plain),
            Value::Bool(b) => self.emit_scalar(if *b { b"true" } else { b"false" }, Style::Plain),
            Value::Int(i) => self.emit_scalar(i.to_string().as_bytes(), Style::Plain),
            Value::Uint(u) => self.emit_scalar(u.to_string().as_bytes(), Style::Plain),
            Value::Float(f) => {
                // kustomize's JSON step: json.Marshal prints the float, then
                // go-yaml v2 reads that text back as an int or a float.
                let text = go_json_float(*f);
                let s = match resolve(&text, Version::V2) {
                    Resolved::Float(f) => go_format_g(f),
                    _ => text,
                };
                self.emit_scalar(s.as_bytes(), Style::Plain)
            }
            Value::Str(s) => {
                let style = if s.contains('\n') {
                    Style::Literal
                } else if resolve(s, Version::V2) == Resolved::Str && !is_base60_float(s) {
                    Style::Plain
                } else {
                    Style::Double
                };
                self.emit_scalar(s.as_bytes(), style)
            }
            Value::Seq(items) if items.is_empty() || self.flow_level > 0 => {
                self.write_indicator(b"[", true, true, false);
                self.increase_indent(true, false);
                self.flow_level += 1;
                // Only empty sequences reach flow style in kustomize output.
                self.flow_level -= 1;
                self.pop_indent();
                self.write_indicator(b"]", false, false, false);
            }
            Value::Map(m) if m.is_empty() || self.flow_level > 0 => {
                self.write_indicator(b"{", true, true, false);
                self.increase_indent(true, false);
                self.flow_level += 1;
                self.flow_level -= 1;
                self.pop_indent();
                self.write_indicator(b"}", false, false, false);
            }
            Value::Seq(items) => {
                let indentless = self.mapping_context && !self.indention;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator(b"-", true, false, true);
                    self.emit_node(item, false, true, false, false);
                }
                self.pop_indent();
            }
            Value::Map(m) => {
                self.increase_indent(false, false);
                for (k, val) in sorted_entries(m) {
                    self.write_indent();
                    let kb = k.as_bytes();
                    let simple = kb.len() <= 128 && !has_break(kb);
                    if simple {
                        self.emit_node(&Value::Str(k.clone()), false, false, true, true);
                        self.write_indicator(b":", false, false, false);
                    } else {
                        self.write_indicator(b"?", true, false, true);
                        self.emit_node(&Value::Str(k.clone()), false, false, true, false);
                        self.write_indent();
                        self.write_indicator(b":", true, false, true);
                    }
                    self.emit_node(val, false, false, true, false);
                }
                self.pop_indent();
            }
        }
    }

    fn emit_scalar(&mut self, value: &[u8], requested: Style) {
        let a = analyze(value);
        let mut style = requested;
        if self.simple_key_context && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            if (self.flow_level > 0 && !a.flow_plain_allowed)
                || (self.flow_level == 0 && !a.block_plain_allowed)
            {
                style = Style::Single;
            }
            if value.is_empty() && (self.flow_level > 0 || self.simple_key_context) {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || self.flow_level > 0 || self.simple_key_context) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !self.simple_key_context;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::Single => self.write_single(value, allow_breaks),
            Style::Double => self.write_double(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, v: &[u8], allow_breaks: bool) {
        if !self.whitespace {
            self.put(b' ');
        }
        // Without breaks, and with no space past the width, nothing folds:
        // copy the value at once.
        let chars = if v.is_ascii() {
            v.len()
        } else {
            std::str::from_utf8(v).map_or(usize::MAX, |s| s.chars().count())
        };
        if chars != usize::MAX
            && !has_break(v)
            && (!allow_breaks || self.column + chars as i64 <= BEST_WIDTH + 1 || !v.contains(&b' '))
        {
            self.out.extend_from_slice(v);
            self.column += chars as i64;
            self.whitespace = false;
            self.indention = false;
            return;
        }
        self.write_flowing(v, allow_breaks, false);
    }

    fn write_single(&mut self, v: &[u8], allow_breaks: bool) {
        self.write_indicator(b"'", true, false, false);
        self.write_flowing(v, allow_breaks, true);
        self.write_indicator(b"'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The body of a plain or single-quoted scalar: spaces may fold past
    /// the width, breaks are doubled, and quotes double inside `'…'`.
    fn write_flowing(&mut self, v: &[u8], allow_breaks: bool, quoted: bool) {
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < v.len() {
            if is_space(v, i) {
                // A quoted scalar never folds at its first or last character.
                let inner = !quoted || (i > 0 && i < v.len() - 1);
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner && !is_space(v, i + 1) {
                    self.write_indent();
                    i += 1;
                } else {
                    self.write(v, &mut i);
                }
                spaces = true;
            } else if is_break(v, i) {
                if !breaks && v[i] == b'\n' {
                    self.put_break();
                }
                self.write_break(v, &mut i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if quoted && v[i] == b'\'' {
                    self.put(b'\'');
                }
                self.write(v, &mut i);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, v: &[u8], allow_breaks: bool) {
        // go-yaml checks for a BOM at the start of the value on every
        // character (an upstream quirk), which escapes the whole string.
        let bom = v.starts_with(&[0xEF, 0xBB, 0xBF]);
        let mut spaces = false;
        self.write_indicator(b"\"", true, false, false);
        let mut i = 0;
        while i < v.len() {
            if !is_printable(v, i) || bom || is_break(v, i) || v[i] == b'"' || v[i] == b'\\' {
                let w = width(v[i]).min(v.len() - i);
                let ch = std::str::from_utf8(&v[i..i + w])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('\u{FFFD}');
                i += w;
                self.put(b'\\');
                let code = ch as u32;
                let esc = match code {
                    0x00 => Some(b'0'),
                    0x07 => Some(b'a'),
                    0x08 => Some(b'b'),
                    0x09 => Some(b't'),
                    0x0A => Some(b'n'),
                    0x0B => Some(b'v'),
                    0x0C => Some(b'f'),
                    0x0D => Some(b'r'),
                    0x1B => Some(b'e'),
                    0x22 => Some(b'"'),
                    0x5C => Some(b'\\'),
                    0x85 => Some(b'N'),
                    0xA0 => Some(b'_'),
                    0x2028 => Some(b'L'),
                    0x2029 => Some(b'P'),
                    _ => None,
                };
                match esc {
                    Some(c) => self.put(c),
                    None => {
                        let (letter, digits) = if code <= 0xFF {
                            (b'x', 2)
                        } else if code <= 0xFFFF {
                            (b'u', 4)
                        } else {
                            (b'U', 8)
                        };
                        self.put(letter);
                        for k in (0..digits).rev() {
                            let d = ((code >> (k * 4)) & 0xF) as u8;
                            self.put(if d < 10 { b'0' + d } else { b'A' + d - 10 });
                        }
                    }
                }
                spaces = false;
            } else if is_space(v, i) {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < v.len() - 1 {
                    self.write_indent();
                    if is_space(v, i + 1) {
                        self.put(b'\\');
                    }
                    i += 1;
                } else {
                    self.write(v, &mut i);
                }
                spaces = true;
            } else {
                self.write(v, &mut i);
                spaces = false;
            }
        }
        self.write_indicator(b"\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, v: &[u8]) {
        self.write_indicator(b"|", true, false, false);
        // Block scalar hints: an indentation indicator when the text starts
        // with a space or break, then the chomping indicator.
        if is_space(v, 0) || is_break(v, 0) {
            self.write_indicator(&[b'0' + BEST_INDENT as u8], false, false, false);
        }
        let chomp = if v.is_empty() {
            Some(b'-')
        } else {
            let mut i = v.len() - 1;
            while i > 0 && v[i] & 0xC0 == 0x80 {
                i -= 1;
            }
            if !is_break(v, i) {
                Some(b'-')
            } else if i == 0 {
                Some(b'+')
            } else {
                i -= 1;
                while i > 0 && v[i] & 0xC0 == 0x80 {
                    i -= 1;
                }
                if is_break(v, i) { Some(b'+') } else { None }
            }
        };
        if let Some(c) = chomp {
            self.write_indicator(&[c], false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        if !v.iter().any(|&b| b == b'\r' || b == 0xC2 || b == 0xE2) {
            // Only '\n' breaks: copy each line's text at once.
            let mut breaks = true;
            let mut rest = v;
            while !rest.is_empty() {
                if rest[0] == b'\n' {
                    self.put_break();
                    self.indention = true;
                    breaks = true;
                    rest = &rest[1..];
                    continue;
                }
                if breaks {
                    self.write_indent();
                }
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                let run = &rest[..end];
                self.out.extend_from_slice(run);
                self.column += if run.is_ascii() {
                    run.len()
                } else {
                    std::str::from_utf8(run).map_or(run.len(), |s| s.chars().count())
                } as i64;
                self.indention = false;
                breaks = false;
                rest = &rest[end..];
            }
            return;
        }
        let mut breaks = true;
        let mut i = 0;
        while i < v.len() {
            if is_break(v, i) {
                self.write_break(v, &mut i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write(v, &mut i);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// Map entries in go-yaml v2's key order (a "natural" order: runs of digits
/// compare as numbers, letters sort before non-letters).
fn sorted_entries(m: &Map) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = m.iter().collect();
    v.sort_by(|a, b| key_cmp(a.0, b.0));
    v
}

fn key_less(a: &str, b: &str) -> bool {
    // Most keys are ASCII: compare bytes without collecting chars.
    if a.is_ascii() && b.is_ascii() {
        return natural_less(
            a.as_bytes(),
            b.as_bytes(),
            |c| c.is_ascii_alphabetic(),
            |c| c.is_ascii_digit(),
            u32::from,
        );
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    natural_less(&ar, &br, |c| c.is_alphabetic(), |c| c.is_numeric(), |c| c as u32)
}

/// go-yaml v2's `keyList.Less` over runes (or bytes when all ASCII).
fn natural_less<T: Copy + PartialEq + PartialOrd>(
    ar: &[T],
    br: &[T],
    letter: impl Fn(T) -> bool,
    digit: impl Fn(T) -> bool,
    code: impl Fn(T) -> u32,
) -> bool {
    let zero = u32::from(b'0');
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = letter(ar[i]);
        let bl = letter(br[i]);
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if code(ar[i]) == zero || code(br[i]) == zero {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !digit(ar[j]) {
                    break;
                }
                if code(ar[j]) != zero {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && digit(ar[ai]) {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(code(ar[ai])).wrapping_sub(i64::from(zero)));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && digit(br[bi]) {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(code(br[bi])).wrapping_sub(i64::from(zero)));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

fn key_cmp(a: &str, b: &str) -> Ordering {
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Shortest decimal digits and decimal exponent of `f` (`d.ddd × 10^exp`).
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    (digits, exp.parse().unwrap_or(0))
}

/// Go's `strconv.FormatFloat(f, 'e', -1, 64)`.
fn go_format_e(f: f64) -> String {
    let (digits, exp) = shortest_digits(f);
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let mant = if digits.len() > 1 {
        format!("{}.{}", &digits[..1], &digits[1..])
    } else {
        digits
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{mant}e{esign}{:02}", exp.abs())
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
fn go_format_f(f: f64) -> String {
    let (digits, exp) = shortest_digits(f);
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{}{}", digits, "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    format!("{sign}{body}")
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` with go-yaml's spellings of
/// the specials.
fn go_format_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (_, exp) = shortest_digits(f);
    // For the shortest form Go decides with a fixed precision of 6.
    if !(-4..6).contains(&exp) {
        go_format_e(f)
    } else {
        go_format_f(f)
    }
}

/// How Go's `encoding/json` prints a float64.
pub fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = go_format_e(f);
        // json trims a leading zero of a negative two-digit exponent: e-07 → e-7.
        if let Some(pos) = s.find("e-0") {
            return format!("{}e-{}", &s[..pos], &s[pos + 3..]);
        }
        return s;
    }
    go_format_f(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    fn roundtrip(s: &str) -> String {
        emit_documents(&parse_documents(s).unwrap())
    }

    #[test]
    fn floats_match_go() {
        assert_eq!(go_format_g(0.5), "0.5");
        assert_eq!(go_format_g(1e-6), "1e-06");
        assert_eq!(go_format_g(1234567.5), "1.2345675e+06");
        assert_eq!(go_format_g(1e21), "1e+21");
        assert_eq!(go_json_float(1e-7), "1e-7");
        assert_eq!(go_json_float(100.0), "100");
        assert_eq!(go_json_float(0.25), "0.25");
        assert_eq!(roundtrip("a: 1.0\nb: 1.5\nc: 1e3\n"), "a: 1\nb: 1.5\nc: 1000\n");
    }

    #[test]
    fn key_order_is_natural() {
        assert_eq!(
            roundtrip("b10: 1\nb9: 1\na: 1\nB: 1\n_x: 1\n"),
            "_x: 1\nB: 1\na: 1\nb9: 1\nb10: 1\n"
        );
    }

    #[test]
    fn styles() {
        assert_eq!(
            roundtrip(
                "a: 'yes'\nb: ''\nc: '1'\nd: \"x\\ny\"\ne: '- x'\nf: []\ng: {}\nh:\n- a: 1\n  b: [1]\n"
            ),
            "a: \"yes\"\nb: \"\"\nc: \"1\"\nd: |-\n  x\n  y\ne: '- x'\nf: []\ng: {}\nh:\n- a: 1\n  b:\n  - 1\n"
        );
    }
}
