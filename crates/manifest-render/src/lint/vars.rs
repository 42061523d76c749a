//! Rule `unexpanded-var`: `$(NAME)` left in the output where Kubernetes
//! never expands it.
//!
//! Kubernetes expands `$(VAR)` only in a container's `command`, `args`,
//! `env[].value` and `volumeMounts[].subPathExpr` (from the container's
//! environment; `$$` escapes; unknown names stay as they are). Everywhere
//! else the text is taken literally: a kustomize var that was never
//! replaced ships as a Profile named `$(profile-name)`. CRD schemas quote
//! the syntax in their descriptions, so they are not looked at.

use super::{Context, Finding, Rule};
use crate::resource::Resource;
use crate::yaml::Value;

/// Lists whose elements are containers, in any object (Pods, workloads,
/// pod templates inside custom resources such as Notebooks or TrainJobs).
const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub(super) fn check(cx: &Context, r: &Resource, out: &mut Vec<Finding>) {
    let is_crd = r.kind() == "CustomResourceDefinition" && r.gvk().group == "apiextensions.k8s.io";
    let mut path = Vec::new();
    walk(cx, r, is_crd, &r.obj, &mut path, out);
}

fn walk<'a>(
    cx: &Context,
    r: &Resource,
    is_crd: bool,
    v: &'a Value,
    path: &mut Vec<Seg<'a>>,
    out: &mut Vec<Finding>,
) {
    match v {
        Value::Str(s) if !expanded_by_kubernetes(path) => report(cx, r, path, None, s, out),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                walk(cx, r, is_crd, item, path, out);
                path.pop();
            }
        }
        Value::Map(m) => {
            if is_crd && crd_schema(path) {
                return;
            }
            for (k, item) in m.iter() {
                report(cx, r, path, Some(k), k, out);
                path.push(Seg::Key(k));
                walk(cx, r, is_crd, item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `spec.versions[i].schema` (apiextensions/v1) or `spec.validation` (v1beta1).
fn crd_schema(path: &[Seg]) -> bool {
    matches!(
        path,
        [
            Seg::Key("spec"),
            Seg::Key("versions"),
            Seg::Index(_),
            Seg::Key("schema")
        ] | [Seg::Key("spec"), Seg::Key("validation")]
    )
}

/// Whether a string at `path` is a field the kubelet expands `$(VAR)` in.
fn expanded_by_kubernetes(path: &[Seg]) -> bool {
    let in_container = |list: &str| CONTAINER_LISTS.contains(&list);
    match path {
        [
            ..,
            Seg::Key(list),
            Seg::Index(_),
            Seg::Key("command" | "args"),
            Seg::Index(_),
        ] => in_container(list),
        [
            ..,
            Seg::Key(list),
            Seg::Index(_),
            Seg::Key("env"),
            Seg::Index(_),
            Seg::Key("value"),
        ] => in_container(list),
        [
            ..,
            Seg::Key(list),
            Seg::Index(_),
            Seg::Key("volumeMounts"),
            Seg::Index(_),
            Seg::Key("subPathExpr"),
        ] => in_container(list),
        _ => false,
    }
}

/// The `$(NAME)` references in `s` (NAME as kustomize vars and environment
/// variables are spelled; shell's `$(cmd args)` has spaces and is not one).
pub(crate) fn references(s: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find("$(") {
        let after = &rest[at + 2..];
        let len = after
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphabetic()
                    || *c == '_'
                    || (*i > 0 && (c.is_ascii_digit() || *c == '-' || *c == '.'))
            })
            .count();
        if len > 0 && after[len..].starts_with(')') {
            found.push(&rest[at..at + 2 + len + 1]);
        }
        rest = after;
    }
    found
}

fn report(cx: &Context, r: &Resource, path: &[Seg], key: Option<&str>, text: &str, out: &mut Vec<Finding>) {
    if !text.contains("$(") {
        return;
    }
    let refs = references(text);
    if refs.is_empty() {
        return;
    }
    let mut field = render_path(path);
    let what = match key {
        Some(k) => {
            push_key(&mut field, k);
            "key"
        }
        None => "value",
    };
    let shown: String = if text.len() > 120 {
        format!("{}…", &text[..text.floor_char_boundary(120)])
    } else {
        text.to_string()
    };
    out.push(cx.finding(
        Rule::UnexpandedVar,
        r,
        Some(field),
        format!(
            "{what} {shown:?} holds {} — kustomize variable text that Kubernetes does not expand here (only container command, args, env values and subPathExpr are expanded)",
            refs.join(", ")
        ),
    ));
}

fn push_key(field: &mut String, k: &str) {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(k);
    } else {
        field.push_str(&format!("[{k:?}]"));
    }
}

fn render_path(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => push_key(&mut s, k),
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::references;

    #[test]
    fn reference_syntax() {
        assert_eq!(references("$(profile-name)"), vec!["$(profile-name)"]);
        assert_eq!(references("a-$(X_1).b-$(kfp.app)"), vec!["$(X_1)", "$(kfp.app)"]);
        assert_eq!(references("$$(ESCAPED)"), vec!["$(ESCAPED)"]);
        assert!(references("for i in $(seq 1 120); do").is_empty());
        assert!(references("$() $(1abc) $(-x) $(open").is_empty());
        assert!(references("${trialParameters.lr} {{inputs.parameters.x}}").is_empty());
    }
}
