//! `patchesStrategicMerge`, `patches` and `patchesJson6902`.

use crate::pattern::Anchored;
use crate::resource::{Gvk, Resource};
use crate::target::{Accumulator, Target, display_id, resources_from_text};
use crate::yaml::{Map, Value, parse_documents};
use crate::{Error, Result, smp};

/// A patch target (kustomize's `types.Selector`); strings are regexes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

impl Selector {
    pub fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let m = v.as_map().ok_or("a patch target must be a mapping")?;
        let s = |k: &str| m.get(k).and_then(Value::scalar_text).unwrap_or_default();
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                "group" | "version" | "kind" | "name" | "namespace" | "labelSelector" | "annotationSelector"
            ) {
                return Err(format!("unknown field \"{k}\" in patch target"));
            }
        }
        Ok(Selector {
            gvk: Gvk {
                group: s("group"),
                version: s("version"),
                kind: s("kind"),
            },
            name: s("name"),
            namespace: s("namespace"),
            label_selector: s("labelSelector"),
            annotation_selector: s("annotationSelector"),
        })
    }
}

/// `resWrangler.Select`: indexes of resources the selector picks.
pub(crate) fn select(resources: &[Resource], s: &Selector) -> std::result::Result<Vec<usize>, String> {
    let (g, v, k) = (
        Anchored::new(&s.gvk.group)?,
        Anchored::new(&s.gvk.version)?,
        Anchored::new(&s.gvk.kind)?,
    );
    let (name, ns) = (Anchored::new(&s.name)?, Anchored::new(&s.namespace)?);
    let labels = LabelSelector::parse(&s.label_selector)?;
    let annos = LabelSelector::parse(&s.annotation_selector)?;
    let m = crate::pattern::matches;
    let mut out = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let cur = r.cur_id();
        let org = r.org_id();
        if !m(&ns, org.effective_namespace()) && !m(&ns, cur.effective_namespace()) {
            continue;
        }
        if !m(&name, &org.name) && !m(&name, &cur.name) {
            continue;
        }
        let gvk = r.gvk();
        if !(m(&g, &gvk.group) && m(&v, &gvk.version) && m(&k, &gvk.kind)) {
            continue;
        }
        if !labels.matches(&r.labels()) || !annos.matches(&r.annotations()) {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

/// A Kubernetes label selector (`a=b,c!=d,e in (f,g),!h`).
#[derive(Debug, Default)]
pub(crate) struct LabelSelector {
    reqs: Vec<(String, String, Vec<String>)>,
}

impl LabelSelector {
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let mut reqs = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            // Split one requirement, keeping `(a,b)` sets whole.
            let mut depth = 0;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    ',' if depth == 0 => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let req = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("").trim();
            if req.is_empty() {
                return Err(format!("invalid selector '{s}'"));
            }
            let words: Vec<&str> = req.split_whitespace().collect();
            if words.len() >= 2 && (words[1] == "in" || words[1] == "notin") {
                let set = req
                    .split_once('(')
                    .and_then(|(_, r)| r.rsplit_once(')'))
                    .map(|(i, _)| i)
                    .ok_or(format!("invalid selector '{s}'"))?;
                let vals = set
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                reqs.push((words[0].to_string(), words[1].to_string(), vals));
            } else if let Some((k, v)) = req.split_once("!=") {
                reqs.push((k.trim().into(), "!=".into(), vec![v.trim().into()]));
            } else if let Some((k, v)) = req.split_once("==") {
                reqs.push((k.trim().into(), "=".into(), vec![v.trim().into()]));
            } else if let Some((k, v)) = req.split_once('=') {
                reqs.push((k.trim().into(), "=".into(), vec![v.trim().into()]));
            } else if let Some(k) = req.strip_prefix('!') {
                reqs.push((k.trim().into(), "!".into(), vec![]));
            } else {
                reqs.push((req.into(), "exists".into(), vec![]));
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn matches(&self, set: &[(String, String)]) -> bool {
        self.reqs.iter().all(|(k, op, vals)| {
            let v = set.iter().find(|(kk, _)| kk == k).map(|(_, v)| v);
            match op.as_str() {
                "=" | "in" => v.is_some_and(|v| vals.contains(v)),
                "!=" | "notin" => v.is_none_or(|v| !vals.contains(v)),
                "!" => v.is_none(),
                _ => v.is_some(),
            }
        })
    }
}

/// Applies a strategic-merge patch to the resource at `idx`, as
/// `Resource.ApplySmPatch` does (name, namespace and kind are kept).
fn apply_sm(ra: &mut Accumulator, idx: usize, patch: &Resource) -> std::result::Result<(), String> {
    let r = &mut ra.resources[idx];
    let (name, ns, kind) = (
        r.name().to_string(),
        r.namespace().to_string(),
        r.kind().to_string(),
    );
    if patch.allow_name_change || patch.allow_kind_change {
        r.store_previous_id();
    }
    let mut p = patch.obj.clone();
    if let Some(m) = p.as_map_mut() {
        m.insert("apiVersion", Value::Str(r.api_version().to_string()));
    }
    let merged = smp::merge(std::mem::replace(&mut r.obj, Value::Null), p)
        .map_err(|e| format!("applying patch to {}: {e}", display_id(&r.cur_id())))?;
    r.obj = merged.unwrap_or(Value::Null);
    if r.is_empty() {
        return Ok(());
    }
    if !patch.allow_kind_change {
        r.set_kind(&kind);
    }
    if !patch.allow_name_change {
        r.set_name(&name);
    }
    if ns.is_empty() {
        if let Some(Value::Map(meta)) = r.obj.get_mut("metadata") {
            meta.remove("namespace");
        }
    } else {
        r.set_namespace(&ns);
    }
    Ok(())
}

fn find_by_id(ra: &Accumulator, patch: &Resource) -> std::result::Result<usize, String> {
    let id = patch.org_id();
    let hits: Vec<usize> = ra
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_empty() && r.any_id(|x| x.equals(&id)))
        .map(|(i, _)| i)
        .collect();
    match hits.len() {
        1 => Ok(hits[0]),
        0 => Err(format!(
            "no resource matches strategic merge patch \"{}\": no matches for Id {}; failed to find unique target for patch {}",
            display_id(&id),
            display_id(&id),
            display_id(&id)
        )),
        _ => Err(format!(
            "multiple matches for Id {}; failed to find unique target for patch {}",
            display_id(&id),
            display_id(&id)
        )),
    }
}

fn drop_deleted(ra: &mut Accumulator) {
    ra.resources.retain(|r| !r.is_empty());
}

/// Parses strategic-merge patches from text: every document needs kind and name.
fn sm_patches(text: &str, file: &std::path::Path) -> Result<Vec<Resource>> {
    resources_from_text(text, file)
}

pub fn patches_strategic_merge(t: &Target, ra: &mut Accumulator) -> Result<()> {
    let k = &t.kust;
    if k.patches_strategic_merge.is_empty() {
        return Ok(());
    }
    let mut loaded = Vec::new();
    for entry in &k.patches_strategic_merge {
        // An entry is inline YAML when it parses as objects; otherwise a path.
        let inline = entry.contains('\n')
            && parse_documents(entry).is_ok_and(|d| d.iter().any(|x| x.as_map().is_some()));
        if inline {
            loaded.extend(sm_patches(entry, &t.file)?);
        } else {
            let (file, text) = t
                .root
                .load(entry)
                .map_err(|e| e.context(&t.file, format!("patchesStrategicMerge '{entry}'")))?;
            loaded.extend(sm_patches(&text, &file)?);
        }
    }
    if loaded.is_empty() {
        return Err(Error::invalid(&t.file, "patch appears to be empty"));
    }
    for p in &loaded {
        let idx = find_by_id(ra, p).map_err(|m| Error::invalid(&t.file, m))?;
        apply_sm(ra, idx, p).map_err(|m| Error::invalid(&t.file, m))?;
        drop_deleted(ra);
    }
    Ok(())
}

enum Loaded {
    Sm(Vec<Resource>),
    Json(Vec<Value>),
}

/// Decides whether patch text is strategic merge or JSON 6902, as
/// kustomize's PatchTransformer does.
fn load_patch(text: &str, file: &std::path::Path, source: &str) -> Result<Loaded> {
    let sm = sm_patches(text, file);
    let json = json_ops(text);
    match (sm, json) {
        (Ok(s), Ok(j)) if !s.is_empty() && !j.is_empty() => Err(Error::invalid(
            file,
            format!("illegally qualifies as both an SM and JSON patch: {source}"),
        )),
        (Ok(s), _) => Ok(Loaded::Sm(s)),
        (Err(_), Ok(j)) => Ok(Loaded::Json(j)),
        (Err(e), Err(_)) => Err(Error::invalid(
            file,
            format!("unable to parse SM or JSON patch from {source}: {e}"),
        )),
    }
}

/// A JSON 6902 operation list, from JSON or YAML text.
fn json_ops(text: &str) -> std::result::Result<Vec<Value>, String> {
    if text.trim().is_empty() {
        return Err("empty json patch operations".into());
    }
    let docs = parse_documents(text).map_err(|e| e.to_string())?;
    match docs.into_iter().next() {
        Some(Value::Seq(ops)) => {
            for op in &ops {
                let m = op.as_map().ok_or("a JSON patch operation must be an object")?;
                if m.get("op").and_then(Value::as_str).is_none() {
                    return Err("a JSON patch operation needs 'op'".into());
                }
            }
            Ok(ops)
        }
        _ => Err("a JSON patch must be a list of operations".into()),
    }
}

pub fn patches(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for entry in &t.kust.patches {
        let m = entry
            .as_map()
            .ok_or_else(|| Error::invalid(&t.file, "entries of 'patches' must be mappings"))?;
        for key in m.keys() {
            if !matches!(key.as_str(), "path" | "patch" | "target" | "options") {
                return Err(Error::invalid(
                    &t.file,
                    format!("unknown field \"{key}\" in patches entry"),
                ));
            }
        }
        let patch = m
            .get("patch")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        let path = m.get("path").and_then(Value::as_str).unwrap_or("");
        let (text, file, source) = match (patch.is_empty(), path.is_empty()) {
            (true, true) => {
                return Err(Error::invalid(
                    &t.file,
                    "a patches entry must specify one of patch and path",
                ));
            }
            (false, false) => {
                return Err(Error::invalid(
                    &t.file,
                    "a patches entry can't set both patch and path",
                ));
            }
            (false, true) => (patch.clone(), t.file.clone(), format!("[patch: {patch:?}]")),
            (true, false) => {
                let (file, text) = t
                    .root
                    .load(path)
                    .map_err(|e| e.context(&t.file, format!("patch '{path}'")))?;
                (text, file, format!("[path: {path:?}]"))
            }
        };
        let target = match m.get("target") {
            None | Some(Value::Null | Value::NullText) => None,
            Some(v) => Some(Selector::from_value(v).map_err(|e| Error::invalid(&t.file, e))?),
        };
        let opts = m
            .get("options")
            .and_then(Value::as_map)
            .cloned()
            .unwrap_or_default();
        let flag = |k: &str| matches!(opts.get(k), Some(Value::Bool(true)));
        match load_patch(&text, &file, &source)? {
            Loaded::Sm(mut ps) => {
                for p in &mut ps {
                    p.allow_name_change = flag("allowNameChange");
                    p.allow_kind_change = flag("allowKindChange");
                }
                apply_sm_patches(t, ra, ps, target.as_ref(), &source)?;
            }
            Loaded::Json(ops) => {
                let Some(target) = target else {
                    return Err(Error::invalid(
                        &t.file,
                        format!("must specify a target for JSON patch {source}"),
                    ));
                };
                apply_json(t, ra, &ops, &target)?;
            }
        }
    }
    Ok(())
}

fn apply_sm_patches(
    t: &Target,
    ra: &mut Accumulator,
    ps: Vec<Resource>,
    target: Option<&Selector>,
    source: &str,
) -> Result<()> {
    let err = |m: String| Error::invalid(&t.file, m);
    match target {
        Some(sel) => {
            if ps.len() > 1 {
                return Err(err(format!(
                    "Multiple Strategic-Merge Patches in one `patches` entry is not allowed to set `patches.target` field: {source}"
                )));
            }
            let Some(p) = ps.into_iter().next() else {
                return Ok(());
            };
            let hits = select(&ra.resources, sel).map_err(err)?;
            for idx in hits {
                let mut pc = p.clone();
                let kind = p.kind().to_string();
                pc.set_api_version(ra.resources[idx].api_version());
                pc.set_kind(&kind);
                apply_sm(ra, idx, &pc).map_err(err)?;
            }
            drop_deleted(ra);
        }
        None => {
            for p in &ps {
                let idx = find_by_id(ra, p).map_err(err)?;
                apply_sm(ra, idx, p).map_err(err)?;
                drop_deleted(ra);
            }
        }
    }
    Ok(())
}

fn apply_json(t: &Target, ra: &mut Accumulator, ops: &[Value], target: &Selector) -> Result<()> {
    let hits = select(&ra.resources, target).map_err(|m| Error::invalid(&t.file, m))?;
    for idx in hits {
        let r = &mut ra.resources[idx];
        r.store_previous_id();
        let id = r.cur_id();
        for op in ops {
            json_patch::apply(&mut r.obj, op).map_err(|m| {
                Error::invalid(
                    &t.file,
                    format!("applying JSON patch to {}: {m}", display_id(&id)),
                )
            })?;
        }
    }
    Ok(())
}

pub fn patches_json6902(t: &Target, ra: &mut Accumulator) -> Result<()> {
    for entry in &t.kust.patches_json6902 {
        let m = entry
            .as_map()
            .ok_or_else(|| Error::invalid(&t.file, "entries of 'patchesJson6902' must be mappings"))?;
        let target = match m.get("target") {
            Some(v) if !v.is_null() => Selector::from_value(v).map_err(|e| Error::invalid(&t.file, e))?,
            _ => {
                return Err(Error::invalid(
                    &t.file,
                    "a patchesJson6902 entry must specify a target",
                ));
            }
        };
        if target.name.is_empty() {
            return Err(Error::invalid(&t.file, "must specify the target name"));
        }
        let path = m.get("path").and_then(Value::as_str).unwrap_or("");
        let inline = m.get("patch").and_then(Value::as_str).unwrap_or("");
        let text = match (path.is_empty(), inline.is_empty()) {
            (true, true) => return Err(Error::invalid(&t.file, "empty file path and empty jsonOp")),
            (false, false) => {
                return Err(Error::invalid(
                    &t.file,
                    "must specify a file path or jsonOp, not both",
                ));
            }
            (false, true) => {
                t.root
                    .load(path)
                    .map_err(|e| e.context(&t.file, format!("patch '{path}'")))?
                    .1
            }
            (true, false) => inline.to_string(),
        };
        let ops = json_ops(&text).map_err(|m| Error::invalid(&t.file, format!("decoding patch: {m}")))?;
        if ops.is_empty() {
            return Err(Error::invalid(&t.file, "patch appears to be empty"));
        }
        apply_json(t, ra, &ops, &target)?;
    }
    Ok(())
}

/// JSON patch (RFC 6902) on [`Value`]s, with evanphx/json-patch's errors.
pub(crate) mod json_patch {
    use super::{Map, Value};

    fn unescape(s: &str) -> String {
        s.replace("~1", "/").replace("~0", "~")
    }

    fn pointer(path: &str) -> Result<Vec<String>, String> {
        if path.is_empty() {
            return Ok(Vec::new());
        }
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| format!("JSON pointer must start with '/': {path}"))?;
        Ok(rest.split('/').map(unescape).collect())
    }

    fn index(s: &str, len: usize, allow_end: bool) -> Result<usize, String> {
        if s == "-" && allow_end {
            return Ok(len);
        }
        let i: usize = s.parse().map_err(|_| format!("invalid array index '{s}'"))?;
        if i > len || (!allow_end && i == len) {
            return Err(format!("array index {i} out of bounds"));
        }
        Ok(i)
    }

    fn get<'a>(doc: &'a Value, path: &[String]) -> Result<&'a Value, String> {
        let mut cur = doc;
        for p in path {
            cur = match cur {
                Value::Map(m) => m
                    .get(p)
                    .ok_or_else(|| format!("doc is missing path: /{}", path.join("/")))?,
                Value::Seq(s) => {
                    let i = index(p, s.len(), false)?;
                    &s[i]
                }
                _ => return Err(format!("doc is missing path: /{}", path.join("/"))),
            };
        }
        Ok(cur)
    }

    fn parent<'a>(doc: &'a mut Value, path: &[String]) -> Result<&'a mut Value, String> {
        let mut cur = doc;
        for p in &path[..path.len() - 1] {
            cur = match cur {
                Value::Map(m) => m
                    .get_mut(p)
                    .ok_or_else(|| format!("doc is missing path: /{}", path.join("/")))?,
                Value::Seq(s) => {
                    let i = index(p, s.len(), false)?;
                    &mut s[i]
                }
                _ => return Err(format!("doc is missing path: /{}", path.join("/"))),
            };
        }
        Ok(cur)
    }

    fn add(doc: &mut Value, path: &[String], v: Value) -> Result<(), String> {
        if path.is_empty() {
            *doc = v;
            return Ok(());
        }
        let last = &path[path.len() - 1];
        match parent(doc, path)? {
            Value::Map(m) => {
                m.insert(last.clone(), v);
                Ok(())
            }
            Value::Seq(s) => {
                let i = index(last, s.len(), true)?;
                s.insert(i, v);
                Ok(())
            }
            _ => Err(format!(
                "add operation does not apply: doc is missing path: /{}",
                path.join("/")
            )),
        }
    }

    fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
        let Some(last) = path.last() else {
            return Err("cannot remove the whole document".into());
        };
        match parent(doc, path)? {
            Value::Map(m) => m.remove(last).ok_or_else(|| {
                format!(
                    "remove operation does not apply: doc is missing key: /{}",
                    path.join("/")
                )
            }),
            Value::Seq(s) => {
                let i = index(last, s.len(), false)?;
                Ok(s.remove(i))
            }
            _ => Err(format!(
                "remove operation does not apply: doc is missing path: /{}",
                path.join("/")
            )),
        }
    }

    pub fn apply(doc: &mut Value, op: &Value) -> Result<(), String> {
        let m: &Map = op.as_map().ok_or("a JSON patch operation must be an object")?;
        let kind = m.get("op").and_then(Value::as_str).unwrap_or("");
        let path = pointer(
            m.get("path")
                .and_then(Value::as_str)
                .ok_or("operation is missing 'path'")?,
        )?;
        let value = || {
            m.get("value")
                .cloned()
                .ok_or_else(|| format!("{kind} operation is missing 'value'"))
        };
        match kind {
            "add" => add(doc, &path, value()?),
            "remove" => remove(doc, &path).map(|_| ()),
            "replace" => {
                let v = value()?;
                if path.is_empty() {
                    *doc = v;
                    return Ok(());
                }
                let last = &path[path.len() - 1];
                match parent(doc, &path)? {
                    Value::Map(mm) => {
                        // json-patch v4 reads a missing map key as null and
                        // replaces it anyway.
                        mm.insert(last.clone(), v);
                        Ok(())
                    }
                    Value::Seq(s) => {
                        let i = index(last, s.len(), false)?;
                        s[i] = v;
                        Ok(())
                    }
                    _ => Err(format!(
                        "replace operation does not apply: doc is missing path: /{}",
                        path.join("/")
                    )),
                }
            }
            "move" => {
                let from = pointer(
                    m.get("from")
                        .and_then(Value::as_str)
                        .ok_or("move operation is missing 'from'")?,
                )?;
                let v = remove(doc, &from)?;
                add(doc, &path, v)
            }
            "copy" => {
                let from = pointer(
                    m.get("from")
                        .and_then(Value::as_str)
                        .ok_or("copy operation is missing 'from'")?,
                )?;
                let v = get(doc, &from)?.clone();
                add(doc, &path, v)
            }
            "test" => {
                let v = value()?;
                if get(doc, &path)? == &v {
                    Ok(())
                } else {
                    Err(format!("testing value /{} failed", path.join("/")))
                }
            }
            other => Err(format!("unexpected JSON patch operation '{other}'")),
        }
    }
}
