//! `kfctl profile add|list`.

use kfmodel::naming::{profile_namespace, validate_label};
use kfmodel::profile::ProfileOwner;
use kfmodel::{Profile, ProfileSpec};
use kube::api::{Api, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resources::{self as r, name};
use crate::{Error, Result};

/// The Profile `kfctl profile add EMAIL [--namespace NS]` creates: named like
/// its namespace (Kubeflow's profile controller makes the namespace of the
/// Profile's name), owned by the user.
pub fn profile_object(email: &str, namespace: Option<&str>) -> Result<Profile> {
    let email = email.trim();
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(Error::Invalid(format!(
            "{email:?} is not an e-mail address (the dashboard's user id, e.g. user@example.com)"
        )));
    }
    let ns = match namespace {
        Some(ns) => {
            validate_label("namespace", ns)?;
            ns.to_string()
        }
        None => profile_namespace(email)?,
    };
    Ok(Profile::new(
        &ns,
        ProfileSpec {
            owner: Some(ProfileOwner::user(email)),
            ..Default::default()
        },
    ))
}

/// Create the Profile; fails (naming the current owner) when it exists.
pub async fn add(client: &kube::Client, profile: &Profile) -> Result<Profile> {
    let api: Api<Profile> = Api::all(client.clone());
    let ns = profile.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), profile).await {
        Ok(p) => Ok(p),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let owner = api
                .get_opt(&ns)
                .await
                .ok()
                .flatten()
                .and_then(|p| p.spec.owner.map(|o| o.name));
            Err(Error::Exists {
                what: format!("Profile {ns}"),
                detail: owner.map(|o| format!(" (owner {o})")).unwrap_or_default(),
            })
        }
        Err(e) => Err(Error::kube(format!("creating Profile {ns}"), e)),
    }
}

/// One row of `kfctl profile list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileRow {
    pub name: String,
    /// `spec.owner.name` (`null` when unset).
    pub owner: Option<String>,
    /// Whether the profile controller has made the namespace.
    pub namespace_exists: bool,
}

pub async fn list(client: &kube::Client) -> Result<Vec<ProfileRow>> {
    let profiles = r::list_all(client, &r::profile()).await?.ok_or_else(|| {
        Error::Invalid("the Profile kind is not served: install Kubeflow's profiles CRDs".into())
    })?;
    let namespaces = r::list_all(client, &r::namespace()).await?.unwrap_or_default();
    let mut rows: Vec<ProfileRow> = profiles
        .iter()
        .map(|p| ProfileRow {
            name: name(p).to_string(),
            owner: p
                .pointer("/spec/owner/name")
                .and_then(Value::as_str)
                .map(str::to_string),
            namespace_exists: namespaces.iter().any(|n| name(n) == name(p)),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_derived_or_given() {
        let p = profile_object("Jane.Doe@Example.com", None).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("kubeflow-jane-doe-example-com"));
        assert_eq!(p.spec.owner.unwrap().name, "Jane.Doe@Example.com");
        let p = profile_object("a@b.c", Some("team-a")).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("team-a"));
        assert!(
            profile_object("a@b.c", Some("Team_A"))
                .unwrap_err()
                .to_string()
                .contains("Team_A")
        );
        assert!(profile_object("nobody", None).is_err());
    }
}
