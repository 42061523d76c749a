//! Output order: kustomize's legacy kind order, or input order (`fifo`).

use crate::resource::{Gvk, ResId};
use crate::target::{Accumulator, Target};
use crate::yaml::Value;

const DEFAULT_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const DEFAULT_LAST: &[&str] = &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

fn gvk_sort_string(g: &Gvk) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

fn id_sort_string(id: &ResId) -> String {
    let ns = if id.namespace.is_empty() {
        "~X"
    } else {
        &id.namespace
    };
    let name = if id.name.is_empty() { "~N" } else { &id.name };
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    let gvk = format!(
        "{}.{}.{}",
        or(&id.gvk.kind, "[noKind]"),
        or(&id.gvk.version, "[noVer]"),
        or(&id.gvk.group, "[noGrp]")
    );
    format!("{gvk}|{ns}|{name}")
}

fn str_list(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_seq()
        .map(|s| s.iter().filter_map(Value::scalar_text).collect())
}

pub fn apply(t: &Target, ra: &mut Accumulator) -> Result<(), String> {
    let (first, last) = match &t.kust.sort_options {
        None => (
            DEFAULT_FIRST.iter().map(|s| s.to_string()).collect(),
            DEFAULT_LAST.iter().map(|s| s.to_string()).collect(),
        ),
        Some(opts) => {
            let order = opts.get("order").and_then(Value::as_str).unwrap_or("");
            let legacy = opts.get("legacySortOptions").filter(|v| !v.is_null());
            match order {
                "fifo" => {
                    if legacy.is_some() {
                        return Err("the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'".into());
                    }
                    return Ok(());
                }
                "legacy" => match legacy {
                    None => (
                        DEFAULT_FIRST.iter().map(|s| s.to_string()).collect(),
                        DEFAULT_LAST.iter().map(|s| s.to_string()).collect(),
                    ),
                    Some(l) => (
                        str_list(l.get("orderFirst")).unwrap_or_default(),
                        str_list(l.get("orderLast")).unwrap_or_default(),
                    ),
                },
                _ => return Err("the field 'sortOptions.order' must be one of [fifo, legacy]".into()),
            }
        }
    };
    let rank = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| k == kind) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|k| k == kind) {
            return 1 + i as i64;
        }
        0
    };
    let mut keyed: Vec<(i64, String, String, bool, crate::resource::Resource)> =
        std::mem::take(&mut ra.resources)
            .into_iter()
            .map(|r| {
                let id = r.cur_id();
                (
                    rank(&id.gvk.kind),
                    gvk_sort_string(&id.gvk),
                    id_sort_string(&id),
                    id.gvk.kind == "Namespace" && id.gvk.group.is_empty(),
                    r,
                )
            })
            .collect();
    keyed.sort_by(|a, b| {
        if a.1 != b.1 || a.0 != b.0 {
            if a.0 != b.0 {
                return a.0.cmp(&b.0);
            }
            // Core Namespaces sort in reverse gvk order against other Namespace kinds.
            if a.4.kind() == "Namespace" && b.4.kind() == "Namespace" && (a.3 || b.3) {
                return b.1.cmp(&a.1);
            }
            return a.1.cmp(&b.1);
        }
        a.2.cmp(&b.2)
    });
    ra.resources = keyed.into_iter().map(|k| k.4).collect();
    Ok(())
}
