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
