//! The certificates a one-node control plane needs, made fresh at every start:
//! a CA, the API server's serving certificate (loopback only), client
//! certificates for the admin and the controller manager, and the key that
//! signs ServiceAccount tokens. ECDSA P-256 throughout: fast to generate and
//! accepted by Go's TLS, rustls and the API server's token signer.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

use super::ControlPlaneError;

/// Paths of the files [`write`] made.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_key: PathBuf,
    /// Its public half, which the API server verifies tokens with.
    pub sa_public_key: PathBuf,
    pub admin: ClientCert,
    pub controller_manager: ClientCert,
}

/// A client certificate and key, in PEM.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
}

fn err(what: &'static str) -> impl FnOnce(rcgen::Error) -> ControlPlaneError {
    move |source| ControlPlaneError::Pki { what, source }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn client(
    issuer: &Issuer<'_, KeyPair>,
    user: &str,
    group: Option<&str>,
) -> Result<ClientCert, ControlPlaneError> {
    let key = KeyPair::generate().map_err(err("client key"))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err("client params"))?;
    params.distinguished_name = name(user, group);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .signed_by(&key, issuer)
        .map_err(err("client certificate"))?;
    Ok(ClientCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Makes every certificate and key and writes the server-side ones into `dir`.
pub fn write(dir: &Path) -> Result<Pki, ControlPlaneError> {
    let ca_key = KeyPair::generate().map_err(err("CA key"))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err("CA params"))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name = name("kflite-test-ca", None);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(err("CA certificate"))?;
    let issuer = Issuer::new(ca, ca_key);

    let serving_key = KeyPair::generate().map_err(err("serving key"))?;
    let mut serving = CertificateParams::new(vec!["localhost".to_string(), "kubernetes".to_string()])
        .map_err(err("serving params"))?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    serving.distinguished_name = name("kube-apiserver", None);
    serving.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving
        .signed_by(&serving_key, &issuer)
        .map_err(err("serving certificate"))?;

    let sa_key = KeyPair::generate().map_err(err("service-account key"))?;

    let pki = Pki {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_public_key: dir.join("sa.pub"),
        admin: client(&issuer, "kflite-test-admin", Some("system:masters"))?,
        controller_manager: client(&issuer, "system:kube-controller-manager", None)?,
    };
    let files = [
        (&pki.ca_cert, ca_cert.pem()),
        (&pki.serving_cert, serving_cert.pem()),
        (&pki.serving_key, serving_key.serialize_pem()),
        (&pki.sa_key, sa_key.serialize_pem()),
        (&pki.sa_public_key, sa_key.public_key_pem()),
    ];
    for (path, pem) in files {
        std::fs::write(path, pem).map_err(|source| ControlPlaneError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(pki)
}
