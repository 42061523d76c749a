//! Credentials written in a remote URL (`https://user:token@host/...`).
//!
//! git would show them to every user of the machine if they were on its
//! command line (`ps`, `/proc/*/cmdline`). They go to git instead through
//! its credential mechanism: a helper, set by environment
//! (`GIT_CONFIG_COUNT`), that prints them from environment variables only
//! git and the helper it starts can read.

use std::process::Command;

/// A user name and password taken out of a URL.
pub(crate) struct Credentials {
    user: String,
    password: String,
}

/// The helper git runs; it reads the secret from its environment.
const HELPER: &str = "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' \"$KFLITE_GIT_USERNAME\" \"$KFLITE_GIT_PASSWORD\"; }; f";

/// Splits `scheme://user:password@host/...` into the URL without its
/// credentials and the credentials (percent-decoded, as git decodes them).
/// A URL with a user name alone (`ssh://git@host`) is left as it is.
pub(crate) fn split(url: &str) -> (String, Option<Credentials>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let Some((user, password)) = rest[..at].split_once(':') else {
        return (url.to_string(), None);
    };
    let creds = Credentials {
        user: percent_decode(user),
        password: percent_decode(password),
    };
    (format!("{scheme}://{}", &rest[at + 1..]), Some(creds))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Credentials {
    /// Sets `cmd` (a git command) up to answer credential requests with
    /// these: other helpers are reset first, as credentials in the URL would
    /// have been used before any helper.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        let base: usize = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for (i, value) in ["", HELPER].into_iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{}", base + i), "credential.helper")
                .env(format!("GIT_CONFIG_VALUE_{}", base + i), value);
        }
        cmd.env("GIT_CONFIG_COUNT", (base + 2).to_string())
            .env("KFLITE_GIT_USERNAME", &self.user)
            .env("KFLITE_GIT_PASSWORD", &self.password);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (url, c) = split("https://me:t%40k@git.example/o/r.git");
        let c = c.expect("credentials");
        assert_eq!(url, "https://git.example/o/r.git");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("me", "t@k"));
        for plain in ["ssh://git@github.com/o/r", "https://h/o/r", "git@github.com:o/r"] {
            let (u, c) = split(plain);
            assert_eq!(u, plain);
            assert!(c.is_none());
        }
    }
}
