//! Naming rules shared by kflite's components.

use sha2::{Digest, Sha256};

/// Longest object name Kubernetes accepts (a DNS-1123 subdomain).
pub const MAX_SUBDOMAIN: usize = 253;
/// Longest namespace, label value or Service name (a DNS-1123 label).
pub const MAX_LABEL: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} {name:?} is empty")]
    Empty { what: &'static str, name: String },
    #[error("{what} {name:?} is {len} characters long; at most {max} are allowed")]
    TooLong {
        what: &'static str,
        name: String,
        len: usize,
        max: usize,
    },
    #[error(
        "{what} {name:?} is not a valid DNS-1123 {form}: use lower-case letters, digits{dot} and '-', starting and ending with a letter or digit"
    )]
    Invalid {
        what: &'static str,
        name: String,
        form: &'static str,
        dot: &'static str,
    },
    #[error("cannot derive a namespace from {email:?}: it has no letters or digits")]
    NoNamespaceFromEmail { email: String },
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn check_label(what: &'static str, name: &str, form: &'static str) -> Result<(), NameError> {
    let invalid = || NameError::Invalid {
        what,
        name: name.to_string(),
        form,
        dot: "",
    };
    let first = name.chars().next().ok_or_else(invalid)?;
    let last = name.chars().next_back().ok_or_else(invalid)?;
    if !is_alnum(first) || !is_alnum(last) || !name.chars().all(|c| is_alnum(c) || c == '-') {
        return Err(invalid());
    }
    Ok(())
}

/// A DNS-1123 label: namespaces, Service names, most controller-made names.
pub fn validate_label(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty {
            what,
            name: name.into(),
        });
    }
    if name.len() > MAX_LABEL {
        return Err(NameError::TooLong {
            what,
            name: name.into(),
            len: name.len(),
            max: MAX_LABEL,
        });
    }
    check_label(what, name, "label")
}

/// A DNS-1123 subdomain: the name of most objects.
pub fn validate_subdomain(what: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty {
            what,
            name: name.into(),
        });
    }
    if name.len() > MAX_SUBDOMAIN {
        return Err(NameError::TooLong {
            what,
            name: name.into(),
            len: name.len(),
            max: MAX_SUBDOMAIN,
        });
    }
    for part in name.split('.') {
        check_label(what, part, "subdomain").map_err(|_| NameError::Invalid {
            what,
            name: name.into(),
            form: "subdomain",
            dot: ", '.'",
        })?;
    }
    Ok(())
}

/// Name of the HTTPRoute kflite makes for the object `kind`/`namespace`/`name`.
///
/// `<kind>.<namespace>.<name>`, lower-case. Namespaces never contain '.', so
/// the first two dots split the parts unambiguously: two different sources
/// never share a route (unlike `<kind>-<ns>-<name>`, where ns `a-b` name `c`
/// and ns `a` name `b-c` collide). Past 253 characters the name is cut and
/// a hash of the full identity appended, which keeps it unique and the same
/// on every start.
pub fn route_name(kind: &str, namespace: &str, name: &str) -> String {
    let full = format!("{}.{}.{}", kind.to_ascii_lowercase(), namespace, name);
    if full.len() <= MAX_SUBDOMAIN {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    // Keep room for "-" + 16 hex digits; trim so the cut never ends in '.' or '-'.
    let keep = MAX_SUBDOMAIN - 1 - hash.len();
    let head = full[..keep].trim_end_matches(['.', '-']);
    format!("{head}-{hash}")
}

/// The namespace Kubeflow gives a user's Profile, from their e-mail:
/// `user@example.com` → `kubeflow-user-example-com`.
///
/// Lower-cased; every character other than a-z and 0-9 becomes '-'; cut to
/// 63 characters; never ends in '-'.
pub fn profile_namespace(email: &str) -> Result<String, NameError> {
    let body: String = email
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if is_alnum(c) { c } else { '-' })
        .collect();
    let body = body.trim_matches('-');
    if body.is_empty() {
        return Err(NameError::NoNamespaceFromEmail { email: email.into() });
    }
    let mut ns = format!("kubeflow-{body}");
    ns.truncate(MAX_LABEL);
    Ok(ns.trim_end_matches('-').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_collision_pair_gets_distinct_routes() {
        // The Python controller named both "notebook-a-b-c".
        let one = route_name("Notebook", "a-b", "c");
        let two = route_name("Notebook", "a", "b-c");
        assert_ne!(one, two);
        assert_eq!(one, "notebook.a-b.c");
        assert_eq!(two, "notebook.a.b-c");
        validate_subdomain("route", &one).unwrap();
        validate_subdomain("route", &two).unwrap();
    }

    #[test]
    fn kinds_do_not_collide() {
        assert_ne!(
            route_name("Notebook", "ns", "x"),
            route_name("Tensorboard", "ns", "x")
        );
        assert_ne!(
            route_name("PVCViewer", "ns", "x"),
            route_name("Notebook", "ns", "x")
        );
    }

    #[test]
    fn long_names_stay_within_253_unique_and_stable() {
        let ns = "n".repeat(63);
        let a = format!("{}a", "x".repeat(252));
        let b = format!("{}b", "x".repeat(252));
        let ra = route_name("PVCViewer", &ns, &a);
        let rb = route_name("PVCViewer", &ns, &b);
        assert!(ra.len() <= MAX_SUBDOMAIN, "{} chars", ra.len());
        assert_eq!(ra.len(), MAX_SUBDOMAIN);
        assert_ne!(ra, rb, "names differing only past the cut must not collide");
        assert_eq!(ra, route_name("PVCViewer", &ns, &a), "stable across calls");
        validate_subdomain("route", &ra).unwrap();
    }

    #[test]
    fn exactly_253_is_kept_verbatim_and_254_is_hashed() {
        let ns = "ns";
        // "notebook." + "ns." = 12 characters.
        let name = "a".repeat(MAX_SUBDOMAIN - 12);
        let at_limit = route_name("Notebook", ns, &name);
        assert_eq!(at_limit.len(), MAX_SUBDOMAIN);
        assert!(at_limit.ends_with(&name));
        let over = route_name("Notebook", ns, &format!("{name}a"));
        assert_eq!(over.len(), MAX_SUBDOMAIN);
        assert_ne!(over, at_limit);
        validate_subdomain("route", &over).unwrap();
    }

    #[test]
    fn subdomain_validation() {
        assert!(validate_subdomain("name", "my-notebook.v2").is_ok());
        let err = validate_subdomain("name", "My_Notebook").unwrap_err();
        assert!(err.to_string().contains("My_Notebook"), "{err}");
        assert!(matches!(
            validate_subdomain("name", ""),
            Err(NameError::Empty { .. })
        ));
        assert!(matches!(
            validate_subdomain("name", &"a".repeat(254)),
            Err(NameError::TooLong { len: 254, .. })
        ));
        // Kubernetes limits the whole name, not each dot-separated part.
        assert!(validate_subdomain("name", &"a".repeat(253)).is_ok());
        let dotted = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
        assert_eq!(dotted.len(), 253);
        assert!(validate_subdomain("name", &dotted).is_ok());
        assert!(validate_subdomain("name", "a..b").is_err());
        assert!(validate_subdomain("name", "-a").is_err());
    }

    #[test]
    fn label_validation() {
        assert!(validate_label("namespace", "kubeflow-user-example-com").is_ok());
        assert!(validate_label("namespace", "a.b").is_err());
        assert!(validate_label("namespace", &"a".repeat(63)).is_ok());
        assert!(matches!(
            validate_label("namespace", &"a".repeat(64)),
            Err(NameError::TooLong { .. })
        ));
        assert!(validate_label("namespace", "trailing-").is_err());
    }

    #[test]
    fn profile_namespace_from_email() {
        assert_eq!(
            profile_namespace("user@example.com").unwrap(),
            "kubeflow-user-example-com"
        );
        assert_eq!(
            profile_namespace("Jane.Doe+ml@Corp.io").unwrap(),
            "kubeflow-jane-doe-ml-corp-io"
        );
        let long = format!("{}@example.com", "x".repeat(80));
        let ns = profile_namespace(&long).unwrap();
        assert!(ns.len() <= MAX_LABEL);
        validate_label("namespace", &ns).unwrap();
        assert!(profile_namespace("@.").is_err());
        // A cut that lands on '-' is trimmed, keeping the label valid.
        let edge = format!("{}.b@c", "a".repeat(53));
        let ns = profile_namespace(&edge).unwrap();
        validate_label("namespace", &ns).unwrap();
    }
}
