//! Name back-references (kustomize's `nameReferenceTransformer`): after
//! prefixes, suffixes and hashes renamed objects, every field that refers
//! to one by its old name is updated to the new name.

use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::resource::{Gvk, ResId, Resource};
use crate::target::Accumulator;
use crate::yaml::Value;

fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let diff = long.len() - short.len();
    if short.is_empty() {
        return diff == 0;
    }
    (0..short.len()).all(|i| long[i + diff] == short[i])
}

/// What name-reference selection reads of an object (its identity), taken
/// once so referrers can be edited in place.
struct Meta {
    gvk: Gvk,
    name: String,
    namespace: String,
    cluster_scoped: bool,
    prev: Vec<(String, String, String)>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    /// apiGroup and kind of a binding's roleRef.
    role_ref: Option<(String, String)>,
    /// Namespaces of ServiceAccount subjects of a RoleBinding.
    rb_namespaces: Vec<String>,
}

impl Meta {
    fn of(r: &Resource) -> Meta {
        let gvk = r.gvk();
        let role_ref = r.obj.get("roleRef").and_then(|rr| {
            Some((
                rr.get("apiGroup").and_then(Value::scalar_text)?,
                rr.get("kind").and_then(Value::scalar_text)?,
            ))
        });
        Meta {
            cluster_scoped: gvk.is_cluster_scoped(),
            gvk,
            name: r.name().to_string(),
            namespace: r.namespace().to_string(),
            prev: r.prev.clone(),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
            role_ref,
            rb_namespaces: rolebinding_namespaces(r),
        }
    }
    fn effective_namespace(&self) -> &str {
        if self.cluster_scoped {
            crate::resource::NOT_A_NAMESPACE
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }
}

fn affixes_equal(r: &Meta, o: &Meta, allow_empty: bool) -> bool {
    if allow_empty {
        let pe = r.prefixes.is_empty() || o.prefixes.is_empty();
        let se = r.suffixes.is_empty() || o.suffixes.is_empty();
        (pe || same_ending(&r.prefixes, &o.prefixes)) && (se || same_ending(&r.suffixes, &o.suffixes))
    } else {
        same_ending(&r.prefixes, &o.prefixes) && same_ending(&r.suffixes, &o.suffixes)
    }
}

/// Namespaces of ServiceAccount subjects of a RoleBinding.
fn rolebinding_namespaces(r: &Resource) -> Vec<String> {
    if r.kind() != "RoleBinding" {
        return Vec::new();
    }
    let Some(Value::Seq(subjects)) = r.obj.get("subjects") else {
        return Vec::new();
    };
    subjects
        .iter()
        .filter(|s| s.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
        .filter_map(|s| s.get("namespace").and_then(Value::as_str).map(String::from))
        .collect()
}

/// Indexes of objects the referrer could refer to.
fn candidates_for(all: &[Meta], referrer: &Meta) -> Vec<usize> {
    if referrer.cluster_scoped {
        return (0..all.len()).collect();
    }
    let rb = &referrer.rb_namespaces;
    all.iter()
        .enumerate()
        .filter(|(_, t)| {
            t.cluster_scoped
                || t.effective_namespace() == referrer.effective_namespace()
                || rb.contains(&t.namespace)
        })
        .map(|(i, _)| i)
        .collect()
}

struct Ctx<'a> {
    all: &'a [Meta],
    referrer: &'a Meta,
    target: &'a Gvk,
    path: &'a str,
}

impl Ctx<'_> {
    fn select(
        &self,
        old_name: &str,
        cands: &[usize],
        by_namespace_too: bool,
    ) -> Result<Option<usize>, String> {
        let all = self.all;
        // Only renamed objects (those with previous ids) can be referrals.
        let t = self.target;
        let mut c: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|&i| all[i].prev.iter().any(|(_, name, _)| name == old_name))
            .filter(|&i| prev_selected(&all[i], t))
            .collect();
        if self.path.ends_with("roleRef/name")
            && let Some((g, k)) = &self.referrer.role_ref
        {
            let gvk = Gvk {
                group: g.clone(),
                version: String::new(),
                kind: k.clone(),
            };
            c.retain(|&i| prev_selected(&all[i], &gvk));
        }
        let rf = self.referrer;
        if !rf.cluster_scoped {
            c.retain(|&i| {
                let m = &all[i];
                m.cluster_scoped
                    || m.gvk.kind == "ServiceAccount"
                    || m.effective_namespace() == rf.effective_namespace()
            });
        }
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&i| affixes_equal(&all[i], self.referrer, true));
        if c.len() > 1 {
            c.retain(|&i| affixes_equal(&all[i], self.referrer, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ => {
                let first = &all[c[0]];
                let same = c.iter().all(|&i| {
                    all[i].name == first.name && (!by_namespace_too || all[i].namespace == first.namespace)
                });
                if same {
                    Ok(Some(c[0]))
                } else {
                    let ids: Vec<String> = c
                        .iter()
                        .map(|&i| {
                            let m = &all[i];
                            crate::target::display_id(&ResId {
                                gvk: m.gvk.clone(),
                                name: m.name.clone(),
                                namespace: m.namespace.clone(),
                            })
                        })
                        .collect();
                    Err(format!("found multiple possible referrals: {}", ids.join(", ")))
                }
            }
        }
    }

    fn set(&self, node: &mut Value, cands: &[usize]) -> Result<(), String> {
        match node {
            Value::Null | Value::NullText => Ok(()),
            Value::Map(_) => self.set_mapping(node, cands),
            Value::Seq(items) => {
                for it in items.iter_mut() {
                    match it {
                        Value::Map(_) => self.set_mapping(it, cands)?,
                        _ => self.set_scalar(it, cands)?,
                    }
                }
                Ok(())
            }
            _ => self.set_scalar(node, cands),
        }
    }

    fn set_scalar(&self, node: &mut Value, cands: &[usize]) -> Result<(), String> {
        let Some(old) = node.scalar_text() else {
            return Ok(());
        };
        if let Some(i) = self.select(&old, cands, false)? {
            let new = &self.all[i].name;
            if *new != old {
                *node = Value::Str(new.clone());
            }
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Value, cands: &[usize]) -> Result<(), String> {
        let Value::Map(m) = node else {
            return Err("expect a mapping node".into());
        };
        let Some(old) = m.get("name").and_then(Value::scalar_text) else {
            return Err("path config error; no 'name' field in node".into());
        };
        let cands: Vec<usize> = match m.get("namespace").and_then(Value::scalar_text) {
            None => cands.to_vec(),
            Some(ns) => {
                let by_org: Vec<usize> = cands
                    .iter()
                    .copied()
                    .filter(|&i| org_namespace(&self.all[i]) == ns)
                    .collect();
                if !by_org.is_empty() {
                    by_org
                } else {
                    cands
                        .iter()
                        .copied()
                        .filter(|&i| self.all[i].namespace == ns)
                        .collect()
                }
            }
        };
        let Some(i) = self.select(&old, &cands, true)? else {
            return Ok(());
        };
        let referral = &self.all[i];
        if referral.name == old && referral.namespace.is_empty() {
            return Ok(());
        }
        m.insert("name", Value::Str(referral.name.clone()));
        if !referral.namespace.is_empty() {
            m.insert("namespace", Value::Str(referral.namespace.clone()));
        }
        Ok(())
    }
}

/// kustomize groups by "original namespace": the namespace of the oldest id
/// (empty stays empty, unlike the effective namespace).
fn org_namespace(r: &Meta) -> &str {
    match r.prev.first() {
        Some((ns, _, _)) => ns,
        None => &r.namespace,
    }
}

/// Whether a previous id of `m` (current group/version, previous kind) is selected by `sel`.
fn prev_selected(m: &Meta, sel: &Gvk) -> bool {
    (sel.group.is_empty() || sel.group == m.gvk.group)
        && (sel.version.is_empty() || sel.version == m.gvk.version)
        && m.prev
            .iter()
            .any(|(_, _, kind)| sel.kind.is_empty() || *kind == sel.kind)
}

pub fn fix_back_references(ra: &mut Accumulator) -> Result<(), String> {
    let cfg = std::sync::Arc::clone(&ra.config);
    let backrefs = &cfg.name_reference;
    let n = ra.resources.len();
    let org_ids: Vec<_> = ra.resources.iter().map(Resource::org_id).collect();
    // Filters per referrer, in back-reference order.
    let mut plans: Vec<Vec<(FieldSpec, Gvk)>> = vec![Vec::new(); n];
    for br in backrefs {
        for spec in &br.referrers {
            for (i, id) in org_ids.iter().enumerate() {
                if id.gvk.is_selected_by(&spec.gvk) {
                    plans[i].push((spec.clone(), br.gvk.clone()));
                }
            }
        }
    }
    // Identities do not change in this pass; take them once, edit in place.
    let metas: Vec<Meta> = ra.resources.iter().map(Meta::of).collect();
    for (i, plan) in plans.into_iter().enumerate() {
        if plan.is_empty() {
            continue;
        }
        let referrer = &metas[i];
        let cands = candidates_for(&metas, referrer);
        let gvk = referrer.gvk.clone();
        let mut obj = std::mem::replace(&mut ra.resources[i].obj, Value::Null);
        for (spec, target) in &plan {
            let ctx = Ctx {
                all: &metas,
                referrer,
                target,
                path: &spec.path,
            };
            let fs = FieldSpec {
                gvk: gvk.clone(),
                path: spec.path.clone(),
                create: spec.create,
            };
            fieldspec::apply(&mut obj, &gvk, &fs, CreateKind::None, &mut |node| {
                ctx.set(node, &cands)
            })
            .map_err(|e| {
                format!(
                    "updating name reference in '{}' field of '{}': {e}",
                    spec.path,
                    crate::target::display_id(&ResId {
                        gvk: referrer.gvk.clone(),
                        name: referrer.name.clone(),
                        namespace: referrer.namespace.clone()
                    })
                )
            })?;
        }
        ra.resources[i].obj = obj;
    }
    Ok(())
}
