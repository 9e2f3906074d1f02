//! JSON request bodies, read once at the edge: at most `HIPPO_MAX_BODY_BYTES` (413), JSON (400),
//! then checked against the body's schema in the served spec (422 naming the field) before
//! poem-openapi builds the typed value. The spec is the contract, so what it states (types,
//! `maxLength`, `pattern`, `minimum`, enums, `nullable`, required fields) is exactly what is
//! enforced: `{"name": true}` is refused, never read as `"true"`, and `null` is refused where the
//! spec does not say `nullable`.
use crate::problem::ApiError;
use crate::state::State;
use poem::{IntoResponse, Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A JSON request body of type `T`, checked against its schema.
pub struct JsonBody<T>(pub T);

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

fn fail(e: ApiError) -> poem::Error {
    poem::Error::from_response(e.into_response())
}

/// Reads a JSON body within the size limit (413 `payload_too_large` above it) and parses it
/// (400 when it is not JSON): the bytes as received and the parsed value.
async fn read_json(
    request: &Request,
    body: &mut RequestBody,
) -> poem::Result<(bytes::Bytes, Value)> {
    let limit = request
        .data::<Arc<State>>()
        .map_or(hippo_shared::config::DEFAULT_MAX_BODY_BYTES, |s| {
            s.settings.max_body_bytes
        });
    let data = body.take()?.into_bytes_limit(limit).await.map_err(|e| {
        if matches!(e, poem::error::ReadBodyError::PayloadTooLarge) {
            fail(ApiError::TooLarge(crate::problem::p(
                "payload_too_large",
                format!("the request body is larger than {limit} bytes"),
                None,
            )))
        } else {
            fail(ApiError::bad_request(format!(
                "could not read the body: {e}"
            )))
        }
    })?;
    let value: Value = serde_json::from_slice(&data)
        .map_err(|e| fail(ApiError::bad_request(format!("the body is not JSON: {e}"))))?;
    Ok((data, value))
}

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let (_, value) = read_json(request, body).await?;
        let schema = serde_json::to_value(T::schema_ref()).unwrap_or(Value::Null);
        let empty = Map::new();
        let schemas = crate::app::spec_value()
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        Checker { schemas }
            .check(&schema, &value, "")
            .map_err(|(field, message)| fail(ApiError::invalid(&field, message)))?;
        let value = T::parse_from_json(Some(value))
            .map_err(|e| fail(ApiError::invalid("body", e.into_message())))?;
        Ok(Self(value))
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);

/// A JSON body kept as received (bytes, for a signature over them) and as parsed: a Git
/// webhook's payload, in the provider's own format. Same size limit (413) and JSON check (400)
/// as [`JsonBody`]; the schema is any JSON object.
pub struct RawJson {
    pub bytes: bytes::Bytes,
    pub value: Value,
}

impl Payload for RawJson {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        <JsonBody<Value> as Payload>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        <std::collections::BTreeMap<String, Value> as Type>::schema_ref()
    }
}

impl ParsePayload for RawJson {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let (data, value) = read_json(request, body).await?;
        Ok(Self { bytes: data, value })
    }
}

poem_openapi::impl_apirequest_for_payload!(RawJson,);

/// Compiled `pattern`s, by source.
fn pattern(source: &str) -> Option<regex::Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().ok()?;
    cache
        .entry(source.to_owned())
        .or_insert_with(|| regex::Regex::new(source).ok())
        .clone()
}

/// Checks a value against an OpenAPI 3.0 schema (the subset the spec uses).
pub struct Checker<'a> {
    pub schemas: &'a Map<String, Value>,
}

type Found = (String, String);

fn at(path: &str) -> String {
    if path.is_empty() {
        "body".into()
    } else {
        path.into()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Checker<'_> {
    pub fn check(&self, schema: &Value, v: &Value, path: &str) -> Result<(), Found> {
        let Some(s) = schema.as_object() else {
            return Ok(());
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            return match self.schemas.get(name) {
                Some(target) => self.check(target, v, path),
                None => Ok(()),
            };
        }
        if v.is_null() {
            if s.get("nullable").and_then(Value::as_bool) == Some(true) {
                return Ok(());
            }
            let expected = s.get("type").and_then(Value::as_str).unwrap_or("a value");
            return Err((
                at(path),
                format!("{} must be {expected}, not null", at(path)),
            ));
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.check(sub, v, path)?;
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            self.one_of(s, one, v, path)?;
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array)
            && !values.contains(v)
        {
            let names: Vec<String> = values.iter().map(|x| x.to_string()).collect();
            return Err((
                at(path),
                format!("{} must be one of {}", at(path), names.join(", ")),
            ));
        }
        match s.get("type").and_then(Value::as_str) {
            Some("string") => self.string(s, v, path),
            Some("integer") => self.integer(s, v, path),
            Some("number") if !v.is_number() => Err(wrong(path, "a number", v)),
            Some("boolean") if !v.is_boolean() => Err(wrong(path, "true or false", v)),
            Some("array") => self.array(s, v, path),
            Some("object") => self.object(s, v, path),
            _ => Ok(()),
        }
    }

    fn one_of(
        &self,
        s: &Map<String, Value>,
        one: &[Value],
        v: &Value,
        path: &str,
    ) -> Result<(), Found> {
        if let Some(d) = s.get("discriminator") {
            let prop = d
                .get("propertyName")
                .and_then(Value::as_str)
                .unwrap_or("type");
            let field = join(path, prop);
            let Some(tag) = v.get(prop).and_then(Value::as_str) else {
                return Err((field.clone(), format!("{field} is required")));
            };
            let target = d
                .get("mapping")
                .and_then(|m| m.get(tag))
                .and_then(Value::as_str);
            let Some(target) = target else {
                let names: Vec<&str> = d
                    .get("mapping")
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                return Err((
                    field.clone(),
                    format!("{field} must be one of {}", names.join(", ")),
                ));
            };
            return self.check(&serde_json::json!({"$ref": target}), v, path);
        }
        let mut first = None;
        for sub in one {
            match self.check(sub, v, path) {
                Ok(()) => return Ok(()),
                Err(e) => first = first.or(Some(e)),
            }
        }
        Err(first.unwrap_or_else(|| (at(path), format!("{} matches no schema", at(path)))))
    }

    fn string(&self, s: &Map<String, Value>, v: &Value, path: &str) -> Result<(), Found> {
        let Some(text) = v.as_str() else {
            return Err(wrong(path, "a string", v));
        };
        let len = text.chars().count();
        let name = at(path);
        if let Some(min) = s.get("minLength").and_then(Value::as_u64)
            && (len as u64) < min
        {
            let msg = if min == 1 {
                format!("{name} must not be empty")
            } else {
                format!("{name} must be at least {min} characters")
            };
            return Err((name, msg));
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
            && len as u64 > max
        {
            return Err((
                name.clone(),
                format!("{name} must be at most {max} characters (it has {len})"),
            ));
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str)
            && let Some(re) = pattern(p)
            && !re.is_match(text)
        {
            let what = s
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!(" ({})", d.lines().next().unwrap_or_default()))
                .unwrap_or_default();
            return Err((name.clone(), format!("{name} is not valid{what}")));
        }
        Ok(())
    }

    fn integer(&self, s: &Map<String, Value>, v: &Value, path: &str) -> Result<(), Found> {
        let n = match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => n.as_f64().unwrap_or(f64::MAX),
            _ => return Err(wrong(path, "an integer", v)),
        };
        let (lo, hi) = match s.get("format").and_then(Value::as_str) {
            Some("int32") => (f64::from(i32::MIN), f64::from(i32::MAX)),
            Some("uint32") => (0.0, f64::from(u32::MAX)),
            Some("uint16") => (0.0, f64::from(u16::MAX)),
            Some("uint64") => (0.0, u64::MAX as f64),
            _ => (i64::MIN as f64, i64::MAX as f64),
        };
        let min = s.get("minimum").and_then(Value::as_f64).unwrap_or(lo);
        let max = s.get("maximum").and_then(Value::as_f64).unwrap_or(hi);
        if n < min || n > max {
            let name = at(path);
            return Err((
                name.clone(),
                format!("{name} must be between {min} and {max}"),
            ));
        }
        Ok(())
    }

    fn array(&self, s: &Map<String, Value>, v: &Value, path: &str) -> Result<(), Found> {
        let Some(items) = v.as_array() else {
            return Err(wrong(path, "an array", v));
        };
        let name = at(path);
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && items.len() as u64 > max
        {
            return Err((name.clone(), format!("{name} has more than {max} items")));
        }
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            return Err((name.clone(), format!("{name} needs at least {min} items")));
        }
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                self.check(item, x, &format!("{name}[{i}]"))?;
            }
        }
        Ok(())
    }

    fn object(&self, s: &Map<String, Value>, v: &Value, path: &str) -> Result<(), Found> {
        let Some(obj) = v.as_object() else {
            return Err(wrong(path, "an object", v));
        };
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(r) {
                let field = join(path, r);
                return Err((field.clone(), format!("{field} is required")));
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, sub) in props {
                if let Some(x) = obj.get(k) {
                    self.check(sub, x, &join(path, k))?;
                }
            }
        }
        Ok(())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn wrong(path: &str, expected: &str, v: &Value) -> Found {
    let name = at(path);
    (
        name.clone(),
        format!("{name} must be {expected}, not {}", kind(v)),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn check(schema: Value, v: Value) -> Result<(), Found> {
        let schemas = Map::new();
        Checker { schemas: &schemas }.check(&schema, &v, "")
    }

    #[test]
    fn a_boolean_for_a_string_field_is_refused_naming_the_field() {
        let s = json!({"type": "object", "required": ["name"],
                       "properties": {"name": {"type": "string", "maxLength": 3}}});
        let (field, msg) = check(s.clone(), json!({"name": true})).unwrap_err();
        assert_eq!(field, "name");
        assert!(msg.contains("must be a string"), "{msg}");
        assert_eq!(check(s.clone(), json!({})).unwrap_err().0, "name");
        assert!(
            check(s.clone(), json!({"name": "abcd"}))
                .unwrap_err()
                .1
                .contains("at most 3")
        );
        assert!(check(s, json!({"name": "abc"})).is_ok());
    }

    #[test]
    fn null_is_refused_unless_nullable() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "integer", "format": "int64"},
            "b": {"type": "integer", "format": "int64", "nullable": true}}});
        assert_eq!(check(s.clone(), json!({"a": null})).unwrap_err().0, "a");
        assert!(check(s, json!({"b": null})).is_ok());
    }

    #[test]
    fn integers_keep_to_their_format_and_bounds() {
        let s = json!({"type": "integer", "format": "uint16", "minimum": 1.0});
        assert!(check(s.clone(), json!(22)).is_ok());
        assert!(check(s.clone(), json!(0)).is_err());
        assert!(check(s.clone(), json!(70000)).is_err());
        assert!(check(s, json!(1.5)).is_err());
    }

    #[test]
    fn nested_fields_are_named_with_their_path() {
        let s = json!({"type": "object", "properties": {"roles": {"type": "array", "items":
            {"type": "object", "properties": {"role_id": {"type": "integer"}}}}}});
        let (field, _) =
            check(s, json!({"roles": [{"role_id": 1}, {"role_id": "x"}]})).unwrap_err();
        assert_eq!(field, "roles[1].role_id");
    }
}
