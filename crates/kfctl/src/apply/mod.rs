//! `kfctl apply`: the rendered platform onto a cluster in one run.
//!
//! 1. [`preflight`]: kinds the render needs but does not define are served,
//!    the Gateway exists, the server is new enough — else nothing changes.
//! 2. Phases ([`objects::Phase`]): CRDs and Namespaces, wait until the CRDs
//!    are Established, everything else, webhook configurations last. Each
//!    object is server-side applied under one field manager.
//! 3. The applied set is an [`applyset`] (kubectl's labels and parent), so
//!    `--prune` (the `prune` module) deletes members that left the render and nothing else.
//! 4. `--diff` / `--dry-run` use server-side dry runs and change nothing.

pub mod applyset;
pub mod command;
pub mod diff;
pub mod kinds;
pub mod objects;
pub mod preflight;
mod progress;
mod prune;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use self::applyset::{Parent, Record};
use self::kinds::{Kinds, Resolved};
use self::objects::{Object, Phase};
use self::preflight::Problem;
use self::progress::Progress;
use crate::{Error, Result};

/// The field manager kfctl applies under unless told otherwise.
pub const FIELD_MANAGER: &str = "kfctl";

#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub field_manager: String,
    /// Take over fields another manager owns (kubectl's `--force-conflicts`).
    pub force_conflicts: bool,
    /// Server-side dry run: report what would happen, change nothing.
    pub dry_run: bool,
    /// Also compute the unified diff (implies a dry run).
    pub diff: bool,
    /// Delete set members that left the render.
    pub prune: bool,
    pub applyset: Parent,
    /// Namespace for namespaced objects the render leaves without one.
    pub default_namespace: String,
    /// How long to wait for CRDs to be Established and served.
    pub wait: Duration,
    /// Objects applied at once.
    pub concurrency: usize,
    /// Progress bars when stderr is a terminal.
    pub interactive: bool,
}

impl ApplyOptions {
    fn changes_nothing(&self) -> bool {
        self.dry_run || self.diff
    }
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Failed(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed(_) => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub object: String,
    pub reason: String,
}

/// The run's result; `-o json` prints it (documented in docs/kfctl.md).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// The ApplySet id (`applyset.kubernetes.io/part-of` of every member).
    pub applyset: String,
    pub dry_run: bool,
    pub created: Vec<String>,
    pub configured: Vec<String>,
    pub unchanged: Vec<String>,
    /// Pruned, or with a dry run: would be pruned.
    pub pruned: Vec<String>,
    pub failed: Vec<Failure>,
    /// Why nothing was applied.
    pub preflight: Vec<Problem>,
    /// `--diff`: the unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Summary {
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.failed.is_empty() || !self.preflight.is_empty())
    }

    pub fn to_table(&self) -> String {
        let mut out = String::new();
        if !self.preflight.is_empty() {
            out.push_str("preflight failed; nothing was changed:\n");
            for p in &self.preflight {
                out.push_str(&format!("- {p}\n"));
            }
            return out;
        }
        for f in &self.failed {
            out.push_str(&format!("{} failed: {}\n", f.object, f.reason));
        }
        // Each pruned object was reported as it went (stderr); the summary counts them.
        let would = if self.dry_run { " (dry run)" } else { "" };
        out.push_str(&format!(
            "{} created, {} configured, {} unchanged, {} pruned, {} failed{would}\n",
            self.created.len(),
            self.configured.len(),
            self.unchanged.len(),
            self.pruned.len(),
            self.failed.len()
        ));
        out
    }

    fn record(&mut self, id: String, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created.push(id),
            Outcome::Configured => self.configured.push(id),
            Outcome::Unchanged => self.unchanged.push(id),
            Outcome::Failed(reason) => self.failed.push(Failure { object: id, reason }),
        }
    }
}

/// Applies the YAML stream `yaml` (named `source` in errors).
pub async fn apply(
    client: &kube::Client,
    yaml: &str,
    source: &str,
    opts: &ApplyOptions,
    err: &mut dyn Write,
) -> Result<Summary> {
    let mut objects = objects::parse(yaml, source)?;
    let mut kinds = Kinds::discover(client, &objects).await?;
    settle_namespaces(&mut objects, &kinds, &opts.default_namespace);
    let id = opts.applyset.id();
    let mut summary = Summary {
        applyset: id.clone(),
        dry_run: opts.changes_nothing(),
        ..Default::default()
    };

    summary.preflight = preflight::check(client, &kinds, &objects).await?;
    let parent_ns_ready = namespace_exists(client, &opts.applyset.namespace).await?;
    let parent_ns_rendered = objects
        .iter()
        .any(|o| o.gvk.group.is_empty() && o.gvk.kind == "Namespace" && o.name == opts.applyset.namespace);
    if !parent_ns_ready && !parent_ns_rendered {
        summary.preflight.push(Problem {
            problem: format!(
                "namespace {} of the ApplySet parent Secret {} does not exist",
                opts.applyset.namespace, opts.applyset.name
            ),
            fix: format!(
                "kubectl create namespace {}, or pass --applyset-namespace",
                opts.applyset.namespace
            ),
        });
    }
    if !summary.preflight.is_empty() {
        return Ok(summary);
    }
    let old = opts.applyset.read(client).await?.unwrap_or_default();
    let new = Record {
        group_kinds: objects.iter().map(|o| objects::gvk_group_kind(&o.gvk)).collect(),
        namespaces: objects
            .iter()
            .filter(|o| !o.namespace.is_empty())
            .map(|o| o.namespace.clone())
            .collect(),
    };
    let write_params = PatchParams {
        field_manager: Some(opts.field_manager.clone()),
        force: opts.force_conflicts,
        dry_run: false,
        field_validation: None,
    };
    // Record the union first, as kubectl does: a run that stops half-way
    // leaves every member findable by the next prune.
    let mut parent_written = false;
    if !opts.changes_nothing() && parent_ns_ready {
        opts.applyset
            .write(client, &old.union(&new), &write_params)
            .await?;
        parent_written = true;
    }

    let mut progress = Progress::new(err, opts.interactive);
    let verb = if opts.changes_nothing() {
        "dry run:"
    } else {
        "applying"
    };
    let mut pairs = Vec::new();
    for phase in Phase::ALL {
        let batch: Vec<&Object> = objects.iter().filter(|o| o.phase() == phase).collect();
        if batch.is_empty() {
            continue;
        }
        progress.phase(phase, batch.len(), verb);
        let kinds_now = &kinds;
        let mut results =
            futures::stream::iter(batch.iter().map(|o| apply_one(client, kinds_now, o, opts, &id)))
                .buffered(opts.concurrency.max(1));
        let mut crds = Vec::new();
        let mut i = 0;
        while let Some((outcome, pair)) = results.next().await {
            let o = batch[i];
            i += 1;
            progress.object(&o.id(), &outcome);
            if o.crd_defines().is_some() && !matches!(outcome, Outcome::Failed(_)) {
                crds.push(o.name.clone());
            }
            pairs.extend(pair);
            summary.record(o.id(), outcome);
        }
        drop(results);
        progress.finish_phase(phase);
        if phase == Phase::Definitions && !opts.changes_nothing() {
            if !crds.is_empty() {
                progress.line(&format!("waiting for {} CRD(s) to be Established", crds.len()));
                if let Err(e) = kinds::wait_established(client, &crds, opts.wait).await {
                    summary.failed.push(Failure {
                        object: "CustomResourceDefinitions".into(),
                        reason: e.to_string(),
                    });
                }
                kinds = kinds::rediscover(client, &objects, opts.wait).await?;
            }
            if !parent_written {
                opts.applyset
                    .write(client, &old.union(&new), &write_params)
                    .await?;
                parent_written = true;
            }
        }
    }

    if opts.prune {
        if summary.failed.is_empty() {
            let applied: BTreeSet<(String, String, String, String)> = objects
                .iter()
                .map(|o| {
                    (
                        o.gvk.group.clone(),
                        o.gvk.kind.clone(),
                        o.namespace.clone(),
                        o.name.clone(),
                    )
                })
                .collect();
            prune::prune(
                client,
                &kinds,
                &opts.applyset,
                &old.union(&new),
                &applied,
                opts,
                &mut summary,
                &mut pairs,
                &mut progress,
            )
            .await?;
            if !opts.changes_nothing() && summary.failed.is_empty() {
                opts.applyset.write(client, &new, &write_params).await?;
            }
        } else {
            progress.line(&format!(
                "prune skipped: {} object(s) failed",
                summary.failed.len()
            ));
        }
    }
    if opts.diff {
        summary.diff = Some(diff::render(pairs)?);
    }
    Ok(summary)
}

/// Namespaced objects without a namespace get the default one; cluster-scoped ones lose any.
fn settle_namespaces(objects: &mut [Object], kinds: &Kinds, default_namespace: &str) {
    for o in objects {
        let namespaced = match kinds.resolve(&o.gvk) {
            Resolved::Served { namespaced, .. } | Resolved::FromRender { namespaced } => namespaced,
            Resolved::Missing => continue,
        };
        if !namespaced {
            o.namespace.clear();
        } else if o.namespace.is_empty() {
            o.namespace = default_namespace.to_string();
        }
    }
}

fn api_for(
    client: &kube::Client,
    resource: &ApiResource,
    namespaced: bool,
    namespace: &str,
) -> Api<DynamicObject> {
    if namespaced {
        Api::namespaced_with(client.clone(), namespace, resource)
    } else {
        Api::all_with(client.clone(), resource)
    }
}

fn to_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

fn without_managed_fields(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn api_error_reason(e: kube::Error, force: bool) -> String {
    match e {
        kube::Error::Api(s) if s.code == 409 && !force => format!(
            "{} (another field manager owns these fields; --force-conflicts takes them over)",
            s.message
        ),
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

async fn apply_one(
    client: &kube::Client,
    kinds: &Kinds,
    o: &Object,
    opts: &ApplyOptions,
    id: &str,
) -> (Outcome, Option<diff::Pair>) {
    let mut body = o.body.clone();
    applyset::label_member(&mut body, id);
    match body.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(meta) if !o.namespace.is_empty() => {
            meta.insert("namespace".into(), Value::String(o.namespace.clone()));
        }
        // A cluster-scoped object has no namespace (the API server would drop it).
        Some(meta) => {
            meta.remove("namespace");
        }
        None => {}
    }
    let file = diff::file_name(&o.gvk.group, &o.gvk.version, &o.gvk.kind, &o.namespace, &o.name);
    let (resource, namespaced) = match kinds.resolve(&o.gvk) {
        Resolved::Served { resource, namespaced } => (resource, namespaced),
        // Its CRD is in this render and a dry run did not create it: no object of it exists yet.
        Resolved::FromRender { .. } if opts.changes_nothing() => {
            let pair = diff::Pair {
                file,
                live: None,
                merged: Some(body),
            };
            return (Outcome::Created, Some(pair));
        }
        Resolved::FromRender { .. } => {
            return (
                Outcome::Failed(format!(
                    "{} is defined by a CRD in the render that the server does not serve yet",
                    objects::gvk_group_kind(&o.gvk)
                )),
                None,
            );
        }
        Resolved::Missing => {
            return (
                Outcome::Failed(format!(
                    "the server does not serve {}/{}",
                    o.gvk.api_version(),
                    o.gvk.kind
                )),
                None,
            );
        }
    };
    let api = api_for(client, &resource, namespaced, &o.namespace);
    let live = match api.get_opt(&o.name).await {
        Ok(l) => l.as_ref().map(to_value),
        Err(e) => return (Outcome::Failed(api_error_reason(e, opts.force_conflicts)), None),
    };
    let params = PatchParams {
        field_manager: Some(opts.field_manager.clone()),
        force: opts.force_conflicts,
        dry_run: opts.changes_nothing(),
        field_validation: None,
    };
    let after = match api.patch(&o.name, &params, &Patch::Apply(&body)).await {
        Ok(a) => to_value(&a),
        Err(e) => return (Outcome::Failed(api_error_reason(e, opts.force_conflicts)), None),
    };
    let outcome = match &live {
        None => Outcome::Created,
        Some(l) if opts.changes_nothing() => {
            if without_managed_fields(l.clone()) == without_managed_fields(after.clone()) {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            }
        }
        Some(l) if l.pointer("/metadata/resourceVersion") == after.pointer("/metadata/resourceVersion") => {
            Outcome::Unchanged
        }
        Some(_) => Outcome::Configured,
    };
    let pair = opts.diff.then(|| diff::Pair {
        file,
        live,
        merged: Some(after),
    });
    (outcome, pair)
}

async fn namespace_exists(client: &kube::Client, name: &str) -> Result<bool> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.get_opt(name)
        .await
        .map(|n| n.is_some())
        .map_err(|e| Error::kube(format!("reading namespace {name}"), e))
}
