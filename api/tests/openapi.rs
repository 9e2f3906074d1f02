//! The committed spec must match the code. Regenerate with:
//! `cargo run -p hippo-api -- openapi > openapi/openapi.json`
#[test]
fn the_committed_openapi_spec_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openapi/openapi.json"
    ))
    .expect("openapi/openapi.json exists");
    let generated = hippo_api::app::spec_json();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -p hippo-api -- openapi > openapi/openapi.json`"
    );
}

/// What generators and fuzzers need of the spec (issue 8): a stable operationId and one tag per
/// operation, no `allOf` carrying a default, a limit on every text field of a request, links
/// from each creating operation, and a `servers` entry.
#[test]
fn every_operation_is_named_tagged_once_and_every_request_text_field_is_bounded() {
    let spec: serde_json::Value =
        serde_json::from_str(&hippo_api::app::spec_json()).expect("spec is JSON");
    assert!(spec["servers"].as_array().is_some_and(|s| !s.is_empty()));
    let mut ids = std::collections::BTreeSet::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        assert!(
            !path.contains(':'),
            "{path} is not an OpenAPI path template"
        );
        for (method, op) in item.as_object().expect("operations") {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}"));
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{id}");
            // A created resource that other operations take by id links to them.
            let by_id = format!("{path}/{{id}}");
            if method == "post" && paths.keys().any(|p| p.starts_with(&by_id)) {
                assert!(
                    op["responses"]["201"]["links"].is_object(),
                    "{id} has no links"
                );
            }
        }
    }
    fn walk(v: &serde_json::Value, at: &str) {
        match v {
            serde_json::Value::Object(m) => {
                assert!(
                    !(m.contains_key("allOf") && m.contains_key("default")),
                    "allOf with a default at {at}"
                );
                for (k, x) in m {
                    walk(x, &format!("{at}/{k}"));
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, at)),
            _ => {}
        }
    }
    walk(&spec, "");
    for (name, schema) in spec["components"]["schemas"].as_object().expect("schemas") {
        if !(name.ends_with("In") || name.ends_with("Patch") || name.ends_with("Channel")) {
            continue;
        }
        for (prop, s) in schema["properties"].as_object().into_iter().flatten() {
            let s = if s["type"] == "array" { &s["items"] } else { s };
            if s["type"] == "string" && s.get("enum").is_none() {
                assert!(
                    s.get("maxLength").is_some(),
                    "{name}.{prop} has no maxLength"
                );
            }
        }
    }
}
