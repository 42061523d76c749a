//! Lossless containers for the parts of an object kflite does not model.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields of an object that kflite does not model, kept verbatim.
///
/// Flattened into every modelled struct so unknown fields survive a round trip.
pub type Extra = BTreeMap<String, Value>;

/// A JSON object kept as-is (for example a whole pod spec). Typed views are
/// made on demand with [`RawObject::to_typed`], so nothing is lost when a
/// newer Kubernetes adds fields that `k8s-openapi` does not know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawObject(pub Map<String, Value>);

impl RawObject {
    /// Deserialise into a typed view, e.g. `k8s_openapi::api::core::v1::PodSpec`.
    pub fn to_typed<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(Value::Object(self.0.clone()))
    }

    /// Build from a typed value (fields set to `None` are omitted).
    pub fn from_typed<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        match serde_json::to_value(value)? {
            Value::Object(map) => Ok(Self(map)),
            other => Err(serde::ser::Error::custom(format!(
                "expected a JSON object, got {}",
                type_name(&other)
            ))),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl JsonSchema for RawObject {
    fn schema_name() -> Cow<'static, str> {
        "RawObject".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}
