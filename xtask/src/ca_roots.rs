//! The CA certificates the images carry: Mozilla's root store as compiled
//! into the `webpki-root-certs` crate at the version `Cargo.lock` pins, so
//! the same commit ships the same roots whatever the build host has
//! installed. The image records the source and the bundle's sha256 in a
//! label ([`LABEL`]).

/// The pinned source (crate and version; a test holds it to `Cargo.lock`).
pub const SOURCE: &str = "webpki-root-certs 1.0.11";

/// The image label naming the roots.
pub const LABEL: &str = "dev.kflite.ca-roots";

/// The CA bundle for an image and what the label says about it.
pub struct CaRoots {
    pub pem: Vec<u8>,
    pub label: String,
}

/// The pinned roots as one PEM bundle (the ca-certificates.crt format).
pub fn pinned() -> CaRoots {
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = crate::registry::base64(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    described(pem.into_bytes(), SOURCE)
}

/// A bundle from `source` (the pinned crate, or a file the operator passed).
pub fn described(pem: Vec<u8>, source: &str) -> CaRoots {
    CaRoots {
        label: format!("{source}, {}", crate::oci::sha256(&pem)),
        pem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOURCE names the version Cargo.lock builds: bumping the crate
    /// without updating the label fails here.
    #[test]
    fn source_is_the_locked_version() {
        let lock = std::fs::read_to_string(crate::project_root().join("Cargo.lock")).unwrap();
        let (name, version) = SOURCE.split_once(' ').unwrap();
        let locked: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains(&format!("name = \"{name}\"\n")))
            .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'))
            .collect();
        assert_eq!(locked, [version], "Cargo.lock has {name} {locked:?}");
        let roots = pinned();
        let text = String::from_utf8(roots.pem).unwrap();
        assert!(text.matches("-----BEGIN CERTIFICATE-----").count() > 100);
        assert!(roots.label.starts_with(SOURCE));
    }
}
