//! GPU architectures (`sm_XY`), and which code runs on which device.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

/// Suffix of an architecture name: `sm_90a` (arch-specific) or `sm_100f`
/// (family-specific). Plain `sm_90` has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// `a`: uses features of exactly this architecture; runs on nothing else.
    Specific,
    /// `f`: runs on the same family (same major, minor at least this).
    Family,
}

/// A compute capability as `sm_XY`: `major` 12, `minor` 0 is `sm_120`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SmArch {
    pub major: u32,
    pub minor: u32,
    pub variant: Option<Variant>,
}

impl SmArch {
    pub const fn new(major: u32, minor: u32) -> Self {
        SmArch {
            major,
            minor,
            variant: None,
        }
    }

    /// From the number the fatbin and the CUDA tools use: 90 → 9.0, 120 → 12.0.
    pub const fn from_number(n: u32) -> Self {
        SmArch::new(n / 10, n % 10)
    }

    pub const fn number(self) -> u32 {
        self.major * 10 + self.minor
    }

    pub fn with_variant(mut self, variant: Option<Variant>) -> Self {
        self.variant = variant;
        self
    }

    /// The same architecture without its `a`/`f` suffix.
    pub fn plain(self) -> Self {
        SmArch::new(self.major, self.minor)
    }

    /// "12.0", as NVML and `nvidia-smi` print the compute capability.
    pub fn capability(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// The name `cuobjdump --list-elf` uses: it prints `a` but drops `f`.
    pub fn cuobjdump_name(self) -> String {
        match self.variant {
            Some(Variant::Specific) => format!("sm_{}a", self.number()),
            _ => format!("sm_{}", self.number()),
        }
    }

    /// Whether machine code (SASS) built for `self` runs on `device`.
    ///
    /// SASS is binary-compatible only within one major version, upwards in
    /// minor (sm_80 runs on sm_86, never on sm_90 or sm_120); `a` code runs
    /// only on exactly its architecture.
    pub fn sass_runs_on(self, device: SmArch) -> bool {
        match self.variant {
            Some(Variant::Specific) => self.plain() == device.plain(),
            _ => self.major == device.major && self.minor <= device.minor,
        }
    }

    /// Whether the driver can JIT-compile PTX for `self` into code for
    /// `device`: any later architecture, except for `a`/`f` PTX.
    pub fn ptx_jits_to(self, device: SmArch) -> bool {
        match self.variant {
            Some(Variant::Specific) => self.plain() == device.plain(),
            Some(Variant::Family) => self.major == device.major && self.minor <= device.minor,
            None => self.plain() <= device.plain(),
        }
    }
}

impl fmt::Display for SmArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.variant {
            None => "",
            Some(Variant::Specific) => "a",
            Some(Variant::Family) => "f",
        };
        write!(f, "sm_{}{}", self.number(), suffix)
    }
}

/// Error for an architecture name that is not `sm_XY[a|f]`, `compute_XY` or `X.Y`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GPU architecture: {0:?} (expected e.g. sm_120, sm_90a or 12.0)")]
pub struct ParseArchError(pub String);

impl FromStr for SmArch {
    type Err = ParseArchError;

    /// Accepts `sm_120`, `sm_90a`, `sm_100f`, `compute_90`, `12.0`, `120`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseArchError(s.to_string());
        let t = s.trim();
        if let Some((major, minor)) = t.split_once('.') {
            let major = major.parse().map_err(|_| err())?;
            let minor: u32 = minor.parse().map_err(|_| err())?;
            if minor > 9 {
                return Err(err());
            }
            return Ok(SmArch::new(major, minor));
        }
        let body = t
            .strip_prefix("sm_")
            .or_else(|| t.strip_prefix("compute_"))
            .unwrap_or(t);
        let (digits, variant) = match body.as_bytes().last() {
            Some(b'a') => (&body[..body.len() - 1], Some(Variant::Specific)),
            Some(b'f') => (&body[..body.len() - 1], Some(Variant::Family)),
            _ => (body, None),
        };
        if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let n: u32 = digits.parse().map_err(|_| err())?;
        Ok(SmArch::from_number(n).with_variant(variant))
    }
}

impl Serialize for SmArch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SmArch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The CUDA release that introduced a PTX ISA version, as (major, minor):
/// a driver older than that cannot JIT it ("the provided PTX was compiled
/// with an unsupported toolchain"). `None` for versions this table predates.
pub fn cuda_for_ptx_isa(major: u16, minor: u16) -> Option<(u32, u32)> {
    // From the PTX ISA release notes: 6.0 came with CUDA 9.0, 7.x with 11.x,
    // 8.0–8.8 with 12.0–12.9 (8.5 served 12.5 and 12.6), 9.0 with 13.0.
    let cuda = match (major, minor) {
        (6, m @ 0..=2) => (9, u32::from(m)),
        (6, m @ 3..=5) => (10, u32::from(m) - 3),
        (7, m @ 0..=8) => (11, u32::from(m)),
        (8, m @ 0..=5) => (12, u32::from(m)),
        (8, m @ 6..=8) => (12, u32::from(m) + 1),
        (9, m) => (13, u32::from(m)),
        (v, _) if v < 6 => (8, 0),
        _ => return None,
    };
    Some(cuda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_names() {
        for name in ["sm_50", "sm_90", "sm_90a", "sm_100f", "sm_120", "sm_121"] {
            assert_eq!(name.parse::<SmArch>().unwrap().to_string(), name);
        }
        assert_eq!("12.0".parse::<SmArch>().unwrap(), SmArch::new(12, 0));
        assert_eq!("compute_86".parse::<SmArch>().unwrap(), SmArch::new(8, 6));
        assert!("sm_x".parse::<SmArch>().is_err());
        assert!("sm_9".parse::<SmArch>().is_err());
        assert!("1.10".parse::<SmArch>().is_err());
    }

    #[test]
    fn sass_compat_is_same_major_upwards() {
        let a = |s: &str| s.parse::<SmArch>().unwrap();
        assert!(a("sm_80").sass_runs_on(a("sm_86")));
        assert!(!a("sm_86").sass_runs_on(a("sm_80")));
        assert!(!a("sm_90").sass_runs_on(a("sm_120")));
        assert!(a("sm_120").sass_runs_on(a("sm_120")));
        assert!(a("sm_90a").sass_runs_on(a("sm_90")));
        assert!(!a("sm_100a").sass_runs_on(a("sm_103")));
        assert!(a("sm_100f").sass_runs_on(a("sm_103")));
        assert!(!a("sm_100").sass_runs_on(a("sm_120")));
    }

    #[test]
    fn ptx_jits_forward_only() {
        let a = |s: &str| s.parse::<SmArch>().unwrap();
        assert!(a("sm_90").ptx_jits_to(a("sm_120")));
        assert!(a("sm_52").ptx_jits_to(a("sm_90")));
        assert!(!a("sm_121").ptx_jits_to(a("sm_120")));
        assert!(!a("sm_90a").ptx_jits_to(a("sm_120")));
        assert!(a("sm_90a").ptx_jits_to(a("sm_90")));
    }

    #[test]
    fn ptx_isa_to_cuda() {
        assert_eq!(cuda_for_ptx_isa(8, 8), Some((12, 9)));
        assert_eq!(cuda_for_ptx_isa(8, 5), Some((12, 5)));
        assert_eq!(cuda_for_ptx_isa(7, 8), Some((11, 8)));
        assert_eq!(cuda_for_ptx_isa(9, 0), Some((13, 0)));
        assert_eq!(cuda_for_ptx_isa(6, 4), Some((10, 1)));
    }
}
