//! The YAML layer.
//!
//! kustomize prints each object as `sigs.k8s.io/yaml.JSONToYAML(json)`: the
//! object goes through JSON, then go-yaml v2 marshals a generic map. So the
//! output loses comments, key order and input styles, and what remains is a
//! JSON-typed value tree. [`Value`] models exactly that tree; [`parse`]
//! reads YAML the way kyaml (go-yaml v3) resolves it, and [`emit`] prints it
//! the way go-yaml v2 does.

mod emit;
mod fast;
pub mod limits;
mod parse;
mod resolve;

pub use emit::{emit_document, emit_documents, go_json_float};
pub use parse::{ParseError, parse_documents, parse_documents_last_key_wins};

/// Whether the fast reader takes `text` (for profiling; see `examples/parse_all.rs`).
#[doc(hidden)]
pub fn fast_path_accepts(text: &str) -> bool {
    fast::parse(text).is_some()
}

/// A JSON-typed YAML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A null written as nothing (`key:`).
    Null,
    /// A null written as a word (`null`, `~`): kyaml's strategic merge
    /// keeps these where it drops empty ones.
    NullText,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    Map(Map),
}

/// A mapping that keeps insertion order (kustomize's processing order
/// matters for some operations even though the output sorts keys).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Case-insensitive lookup (Go's JSON decoding matches struct fields so).
    pub fn get_ci(&self, key: &str) -> Option<&Value> {
        self.get(key).or_else(|| {
            self.entries
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }
    /// Sets `key`, keeping its position when it exists.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        self.entries.push((key, value));
        None
    }
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Value)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }
    pub fn retain(&mut self, mut f: impl FnMut(&str, &mut Value) -> bool) {
        self.entries.retain_mut(|(k, v)| f(k, v));
    }
    /// The entry for `key`, inserted as `default()` when absent.
    pub fn entry_or_insert_with(&mut self, key: &str, default: impl FnOnce() -> Value) -> &mut Value {
        let i = match self.entries.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.entries.push((key.to_string(), default()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[i].1
    }
}

impl FromIterator<(String, Value)> for Map {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_seq(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::NullText)
    }
    /// `self[key]` when `self` is a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.get(key)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_map_mut()?.get_mut(key)
    }
    /// Follows a path of map keys.
    pub fn get_path(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(self, |v, k| v.get(k))
    }
    /// The string a scalar prints as in kustomize's field handling
    /// (kyaml reads scalar node values as text).
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Uint(u) => Some(u.to_string()),
            Value::Float(f) => Some(emit::go_json_float(*f)),
            Value::Null | Value::NullText | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}
