//! `--output table|json|yaml`.

use serde::Serialize;

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                l.push_str(cell);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `value` as JSON (pretty, with a final newline) or YAML.
pub fn encode<T: Serialize>(value: &T, format: Format) -> Result<String> {
    match format {
        Format::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| Error::Encode(e.to_string())),
        Format::Yaml | Format::Table => {
            serde_yaml_ng::to_string(value).map_err(|e| Error::Encode(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = table(
            &["A", "LONGER", "C"],
            &[vec!["xyz".into(), "1".into(), "last".into()]],
        );
        assert_eq!(t, "A    LONGER  C\nxyz  1       last\n");
    }
}
