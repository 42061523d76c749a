//! Secret material that must never reach logs, errors, Debug output or test output.

use std::fmt;

/// A string whose `Debug` and `Display` print `<redacted>`; read it with [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is sent to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An S3/IAM key pair. The access key id is an identifier (AWS logs it too);
/// the secret access key is redacted everywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::new(secret_access_key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact_the_secret() {
        let c = Credentials::new("AKID", "very-secret-value");
        let shown = format!("{c:?} {} {:?}", c.secret_access_key, c.secret_access_key);
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(shown.contains("AKID"));
        assert_eq!(c.secret_access_key.expose(), "very-secret-value");
    }
}
