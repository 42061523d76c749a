//! kustomize matches selector names, kinds and image names as Go regular
//! expressions. Nearly all of them are plain names, and compiling a regex
//! for each selector was a sixth of a render, so plain names (where `.` is
//! the only metacharacter) are matched directly and only the rest compile.

/// A pattern anchored at both ends, as kustomize's `^(?:p)$`.
#[derive(Debug, Clone)]
pub(crate) enum Anchored {
    /// Letters, digits and `-_:/@` match themselves; `.` matches any one
    /// character but a newline, as in a regex.
    Plain(Box<str>),
    Regex(regex::Regex),
}

/// Characters that mean themselves in a regex (outside a class).
fn is_literal(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '_'
                | ':'
                | '/'
                | '@'
                | '='
                | ','
                | '%'
                | '~'
                | '"'
                | '\''
                | '<'
                | '>'
                | ' '
                | '!'
                | ';'
                | '&'
                | '#'
        )
}

fn is_plain(p: &str) -> bool {
    p.chars().all(|c| c == '.' || is_literal(c))
}

/// Matches `pattern` (plain) against the start of `text`; returns the rest.
fn plain_prefix<'t>(pattern: &str, text: &'t str) -> Option<&'t str> {
    let mut chars = text.char_indices();
    for p in pattern.chars() {
        let (_, c) = chars.next()?;
        if !(p == c || (p == '.' && c != '\n')) {
            return None;
        }
    }
    Some(chars.next().map_or("", |(i, _)| &text[i..]))
}

impl Anchored {
    /// `None` for an empty pattern, which selects everything.
    pub(crate) fn new(p: &str) -> Result<Option<Anchored>, String> {
        if p.is_empty() {
            return Ok(None);
        }
        if is_plain(p) {
            return Ok(Some(Anchored::Plain(p.into())));
        }
        regex::Regex::new(&format!("^(?:{p})$"))
            .map(|r| Some(Anchored::Regex(r)))
            .map_err(|e| format!("invalid regular expression '{p}': {e}"))
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        match self {
            Anchored::Plain(p) => plain_prefix(p, text) == Some(""),
            Anchored::Regex(r) => r.is_match(text),
        }
    }
}

/// `None` (no pattern) matches everything.
pub(crate) fn matches(p: &Option<Anchored>, text: &str) -> bool {
    p.as_ref().is_none_or(|p| p.is_match(text))
}

/// kustomize's image matcher: the name used as a regex, then an optional
/// `:tag` and an optional `@sha256:digest`.
#[derive(Debug, Clone)]
pub(crate) enum ImagePattern {
    Plain(Box<str>),
    Regex(regex::Regex),
}

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '{' | '}' | '-')
}

impl ImagePattern {
    /// `None` where kustomize's regex would not compile (it then matches nothing).
    pub(crate) fn new(name: &str) -> Option<ImagePattern> {
        if is_plain(name) {
            return Some(ImagePattern::Plain(name.into()));
        }
        regex::Regex::new(&format!(
            "^{name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
        ))
        .ok()
        .map(ImagePattern::Regex)
    }

    pub(crate) fn is_match(&self, value: &str) -> bool {
        match self {
            ImagePattern::Regex(r) => r.is_match(value),
            // A plain name has a fixed length, so the regex's match is
            // unambiguous: the name, then the optional groups in order.
            ImagePattern::Plain(p) => {
                let Some(mut rest) = plain_prefix(p, value) else {
                    return false;
                };
                if let Some(tag) = rest.strip_prefix(':') {
                    rest = tag.trim_start_matches(is_tag_char);
                }
                if let Some(digest) = rest.strip_prefix("@sha256:") {
                    rest = digest.trim_start_matches(is_tag_char);
                }
                rest.is_empty()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path agrees with the regex kustomize would compile.
    #[test]
    fn plain_patterns_match_like_their_regex() {
        let patterns = [
            "web",
            "a.b",
            "kubeflow-user-example-com",
            "",
            ".",
            "x/y:z",
            "n@m",
            "é.x",
            "ab",
        ];
        let texts = [
            "web",
            "webx",
            "xweb",
            "a.b",
            "axb",
            "a\nb",
            "ab",
            "kubeflow-user-example-com",
            "",
            "é",
            "ée",
            "x/y:z",
            "n@m",
            "éax",
            "éx",
        ];
        for p in patterns {
            let fast = Anchored::new(p).unwrap();
            let re = (!p.is_empty()).then(|| regex::Regex::new(&format!("^(?:{p})$")).unwrap());
            for t in texts {
                let want = re.as_ref().is_none_or(|r| r.is_match(t));
                assert_eq!(matches(&fast, t), want, "pattern {p:?} on {t:?}");
            }
        }
        assert!(matches!(Anchored::new("a|b").unwrap(), Some(Anchored::Regex(_))));
        assert!(
            Anchored::new("(")
                .unwrap_err()
                .contains("invalid regular expression '('")
        );
    }

    #[test]
    fn plain_images_match_like_their_regex() {
        let names = [
            "nginx",
            "gcr.io/app",
            "ghcr.io/kubeflow/notebook-controller",
            "a.b",
        ];
        let values = [
            "nginx",
            "nginx:1.2",
            "nginx@sha256:abc",
            "nginx:1.2@sha256:abc",
            "nginx:",
            "nginx:1.2:3",
            "nginx@sha256:",
            "nginxx",
            "nginx:{{tag}}",
            "nginx:1@sha512:x",
            "gcr.io/app:v1",
            "gcrxio/app",
            "gcr.io/app/x",
            "ghcr.io/kubeflow/notebook-controller:v1.10",
            "axb:1",
            "a.b",
            "a:b",
            "nginx:a b",
        ];
        for n in names {
            let fast = ImagePattern::new(n).unwrap();
            assert!(matches!(fast, ImagePattern::Plain(_)));
            let re = regex::Regex::new(&format!(
                "^{n}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$"
            ))
            .unwrap();
            for v in values {
                assert_eq!(fast.is_match(v), re.is_match(v), "image {n:?} on {v:?}");
            }
        }
    }
}
