//! `buildMetadata: [managedByLabel]` of the top kustomization (kustomize
//! applies only the top one's: bases inherit it).

use crate::resource::Resource;

/// The label `managedByLabel` adds, with the version kustomize reports.
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kustomize-v5.8.1");

/// Runs after sorting, on the final objects (kustomize's `Kustomizer.Run`).
pub(crate) fn apply(options: &[String], resources: &mut [Resource]) {
    if !options.iter().any(|o| o == "managedByLabel") {
        return;
    }
    for r in resources {
        let mut labels = r.labels();
        match labels.iter_mut().find(|(k, _)| k == MANAGED_BY.0) {
            Some(slot) => slot.1 = MANAGED_BY.1.to_string(),
            None => labels.push((MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())),
        }
        r.set_string_map("labels", labels);
    }
}
