//! Lookups into the compact OpenAPI tables of [`crate::builtin_data`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// FNV-1a: the tables are small and fixed; SipHash showed up in profiles.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

use crate::builtin_data::{SCHEMA_DEFS, SCHEMA_KINDS};

/// One field of a schema definition that matters to strategic merge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldSchema {
    /// Definition of the value (or of the list elements), when it matters.
    pub def: Option<&'static str>,
    pub strategy: &'static str,
    pub keys: &'static str,
}

struct Tables {
    defs: FastMap<&'static str, FastMap<&'static str, FieldSchema>>,
    kinds: FastMap<(&'static str, &'static str, &'static str), (&'static str, u8)>,
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let defs = SCHEMA_DEFS
            .iter()
            .map(|(name, fields)| {
                let fields = fields
                    .iter()
                    .map(|(f, def, strategy, keys)| {
                        (
                            *f,
                            FieldSchema {
                                def: (!def.is_empty()).then_some(*def),
                                strategy,
                                keys,
                            },
                        )
                    })
                    .collect();
                (*name, fields)
            })
            .collect();
        let kinds = SCHEMA_KINDS
            .iter()
            .map(|(g, v, k, def, scope)| ((*g, *v, *k), (*def, *scope)))
            .collect();
        Tables { defs, kinds }
    })
}

/// The definition for a top-level kind, when the schema knows it.
pub(crate) fn def_for_kind(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    tables()
        .kinds
        .get(&(group, version, kind))
        .map(|(d, _)| *d)
        .filter(|d| !d.is_empty())
}

/// A field of a definition (`*` stands for map values).
pub(crate) fn field(def: &str, name: &str) -> Option<FieldSchema> {
    let fields = tables().defs.get(def)?;
    fields.get(name).or_else(|| fields.get("*")).copied()
}

/// Whether the schema says the kind is cluster-scoped (unknown kinds are not).
pub(crate) fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    tables()
        .kinds
        .get(&(group, version, kind))
        .is_some_and(|(_, s)| *s == 2)
}

/// Whether the schema knows the kind's scope, and it is namespaced.
pub(crate) fn namespace_scope(group: &str, version: &str, kind: &str) -> Option<bool> {
    match tables().kinds.get(&(group, version, kind)).map(|(_, s)| *s) {
        Some(1) => Some(true),
        Some(2) => Some(false),
        _ => None,
    }
}
