//! What keeps gc from wiping live data: plans that look like a wrong or empty
//! database are refused, and artifacts a live run still uses through KFP's
//! execution cache are kept.

use std::collections::HashMap;

use super::plan::{Action, Group};
use super::report::Totals;

/// Default for `--max-delete-share`: a plan deleting more than this share of the listed objects is refused.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;

/// Why a plan must not run without `--force`, if it must not.
pub fn refusal(runs_in_database: usize, totals: &Totals, max_share: f64) -> Option<String> {
    if totals.delete_objects == 0 {
        return None;
    }
    if runs_in_database == 0 {
        return Some(format!(
            "run_details is empty (a fresh or restored database, or the wrong database name?); \
             refusing to delete {} objects without --force",
            totals.delete_objects
        ));
    }
    let share = totals.delete_objects as f64 / totals.objects.max(1) as f64;
    (share > max_share).then(|| {
        format!(
            "the plan deletes {} of {} objects ({:.0}%), more than --max-delete-share {:.0}%; \
             check the database, or pass --force",
            totals.delete_objects,
            totals.objects,
            share * 100.0,
            max_share * 100.0
        )
    })
}

/// The object key an MLMD artifact URI (`minio://bucket/key`, `s3://bucket/key`) names in `bucket`.
pub fn uri_key<'a>(uri: &'a str, bucket: &str) -> Option<&'a str> {
    let (b, key) = uri.split_once("://")?.1.split_once('/')?;
    let key = key.trim_end_matches('/');
    (b == bucket && !key.is_empty()).then_some(key)
}

/// Artifact paths (object keys, or prefixes of a directory artifact) and the runs linked to each.
#[derive(Debug, Default)]
pub struct Links(HashMap<String, Vec<String>>);

impl Links {
    /// From MLMD's (run UUID, URI) pairs, keeping only runs `is_live` accepts.
    pub fn new(pairs: &[(String, String)], bucket: &str, is_live: impl Fn(&str) -> bool) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (run, uri) in pairs {
            if let Some(key) = uri_key(uri, bucket)
                && is_live(run)
            {
                map.entry(key.to_owned()).or_default().push(run.clone());
            }
        }
        Links(map)
    }

    /// Live runs linked to `key` or to a directory artifact containing it.
    pub fn runs_for(&self, key: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut path = key;
        loop {
            if let Some(runs) = self.0.get(path) {
                out.extend(runs.iter().map(String::as_str));
            }
            match path.rsplit_once('/') {
                Some((parent, _)) => path = parent,
                None => break,
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Live runs linked to any of `keys`.
    pub fn runs_for_any(&self, keys: &[String]) -> Vec<&str> {
        let mut out: Vec<&str> = keys.iter().flat_map(|k| self.runs_for(k)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Why a group must be kept because live runs still use its objects.
pub fn reuse_reason(runs: &[&str]) -> String {
    format!(
        "MLMD links these objects to live run(s) {} (KFP cache reuse)",
        runs.join(", ")
    )
}

/// Keeps every planned group with an object MLMD links to a live run.
pub fn keep_reused(groups: &mut [Group], links: &Links) {
    for g in groups.iter_mut().filter(|g| g.action == Action::Delete) {
        let runs = links.runs_for_any(&g.keys);
        if !runs.is_empty() {
            g.action = Action::Keep;
            g.reason = reuse_reason(&runs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_map_to_keys_in_the_bucket_only() {
        assert_eq!(
            uri_key("minio://mlpipeline/private-artifacts/a/v2/x/", "mlpipeline"),
            Some("private-artifacts/a/v2/x")
        );
        assert_eq!(uri_key("s3://mlpipeline/k", "mlpipeline"), Some("k"));
        for bad in [
            "gs://other/k",
            "mlpipeline/k",
            "minio://mlpipeline/",
            "minio://mlpipeline",
        ] {
            assert_eq!(uri_key(bad, "mlpipeline"), None, "{bad}");
        }
    }

    #[test]
    fn a_directory_artifact_covers_its_objects_only() {
        let pairs = vec![
            ("live".to_owned(), "minio://b/p/run1/train/model".to_owned()),
            ("gone".to_owned(), "minio://b/p/run1/eval".to_owned()),
        ];
        let links = Links::new(&pairs, "b", |r| r == "live");
        assert_eq!(links.runs_for("p/run1/train/model/weights.bin"), ["live"]);
        assert_eq!(links.runs_for("p/run1/train/model"), ["live"]);
        assert!(links.runs_for("p/run1/train/model2").is_empty());
        assert!(
            links.runs_for("p/run1/eval/report").is_empty(),
            "a deleted run protects nothing"
        );
    }

    #[test]
    fn empty_databases_and_large_shares_are_refused() {
        let t = |objects, delete_objects| Totals {
            objects,
            delete_objects,
            ..Totals::default()
        };
        assert!(refusal(0, &t(10, 1), 0.5).is_some_and(|m| m.contains("run_details is empty")));
        assert_eq!(refusal(0, &t(10, 0), 0.5), None);
        assert!(refusal(3, &t(10, 6), 0.5).is_some_and(|m| m.contains("6 of 10")));
        assert_eq!(refusal(3, &t(10, 5), 0.5), None);
        assert_eq!(refusal(3, &t(10, 10), 1.0), None);
    }
}
