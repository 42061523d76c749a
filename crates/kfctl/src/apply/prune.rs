//! `--prune`: the ApplySet's members that left the render, found by their
//! `applyset.kubernetes.io/part-of` label in every recorded kind and
//! namespace, and deleted (or listed, in a dry run).

use std::collections::BTreeSet;

use kube::api::{DeleteParams, ListParams};

use super::applyset::{self, Parent, Record};
use super::kinds::Kinds;
use super::progress::Progress;
use super::{ApplyOptions, Failure, Summary, api_error_reason, api_for, diff, objects, to_value};
use crate::{Error, Result};

/// Deletes (or, in a dry run, lists) the set's members that left the render.
#[allow(clippy::too_many_arguments)]
pub(super) async fn prune(
    client: &kube::Client,
    kinds: &Kinds,
    parent: &Parent,
    record: &Record,
    applied: &BTreeSet<(String, String, String, String)>,
    opts: &ApplyOptions,
    summary: &mut Summary,
    pairs: &mut Vec<diff::Pair>,
    progress: &mut Progress<'_>,
) -> Result<()> {
    let selector = format!("{}={}", applyset::PART_OF_LABEL, parent.id());
    for gk in &record.group_kinds {
        let (kind, group) = gk.split_once('.').unwrap_or((gk.as_str(), ""));
        let Some((resource, namespaced)) = kinds.recommended(group, kind) else {
            // A kind the server no longer serves has no objects left to prune.
            continue;
        };
        let scopes: Vec<String> = if namespaced {
            record.all_namespaces(parent).into_iter().collect()
        } else {
            vec![String::new()]
        };
        for ns in scopes {
            let api = api_for(client, &resource, namespaced, &ns);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| Error::kube(format!("listing {gk} for pruning"), e))?;
            for item in list.items {
                let name = item.metadata.name.clone().unwrap_or_default();
                let part_of = item
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(applyset::PART_OF_LABEL));
                let key = (group.to_string(), kind.to_string(), ns.clone(), name.clone());
                if part_of != Some(&parent.id())
                    || applied.contains(&key)
                    || item.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let oid = objects::object_id(group, kind, &ns, &name);
                let params = DeleteParams {
                    dry_run: opts.changes_nothing(),
                    ..DeleteParams::background()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => {
                        progress.line(&format!(
                            "{oid} {}",
                            if opts.changes_nothing() {
                                "would be pruned"
                            } else {
                                "pruned"
                            }
                        ));
                        if opts.diff {
                            pairs.push(diff::Pair {
                                file: diff::file_name(group, &resource.version, kind, &ns, &name),
                                live: Some(to_value(&item)),
                                merged: None,
                            });
                        }
                        summary.pruned.push(oid);
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => summary.failed.push(Failure {
                        object: oid,
                        reason: format!("prune: {}", api_error_reason(e, false)),
                    }),
                }
            }
        }
    }
    Ok(())
}
