//! Cloning a release config: prod's config becomes staging's (or another app's) with one call,
//! everything copied but the hosts (chosen again) and the secrets (set again), permission-checked
//! on both sides and audited.
use hippo_e2e::lab::Lab;
use serde_json::json;

#[test]
fn a_config_is_cloned_to_staging_without_its_hosts_and_secrets_and_the_clone_releases() {
    let lab = Lab::new(2, &[]);
    let h = &lab.hippo;
    let source = lab.config(json!({
                "variables": "GREETING=hello\n",
        "hooks": {"after_checkout": "echo built > BUILD\n"},
        "notice_channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "notice-secret-123"}],
    }));
    let staging = h.ok(
        "/api/environments",
        &json!({"name": "Staging", "tag": "staging"}),
        201,
    )["id"]
        .as_i64()
        .expect("id");
    // The staging host is the second lab sshd, recorded in staging: the clone's hosts are
    // chosen again, there.
    let stage_host = h.ok(
        "/api/hosts",
        &json!({"environment_id": staging, "name": "stage-1", "addr": lab.hosts[1].addr,
                "port": lab.hosts[1].port, "username": "root", "category": "web"}),
        201,
    )["id"]
        .as_i64()
        .expect("id");

    // Hosts of the source's environment are refused for a staging clone, naming the field.
    let (s, body) = h.post(
        &format!("/api/release-configs/{source}/clone"),
        &json!({"environment_id": staging, "host_ids": [lab.host_ids[0]]}),
    );
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("host_ids")),
        "{body}"
    );
    let (s, body) = h.post(
        &format!("/api/release-configs/{source}/clone"),
        &json!({"environment_id": 9999, "host_ids": [stage_host]}),
    );
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("environment_id")),
        "{body}"
    );
    // The source itself is no clone.
    let (s, body) = h.post(
        &format!("/api/release-configs/{source}/clone"),
        &json!({"host_ids": [lab.host_ids[0]]}),
    );
    assert_eq!(s, 409, "{body}");
    let (s, body) = h.post(
        "/api/release-configs/9999/clone",
        &json!({"environment_id": staging, "host_ids": [stage_host]}),
    );
    assert_eq!(s, 404, "{body}");
    // Nothing was half-written by the refusals.
    let (_, list) = h.get("/api/release-configs");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // The clone: everything but the hosts and the secrets, and the answer says so.
    let (s, clone) = h.post(
        &format!("/api/release-configs/{source}/clone"),
        &json!({"environment_id": staging, "host_ids": [stage_host]}),
    );
    assert_eq!(s, 201, "{clone}");
    assert_eq!(clone["environment_id"], staging);
    assert_eq!(clone["environment_name"], "Staging");
    assert_eq!(clone["app_id"], lab.app_id);
    assert_eq!(clone["host_ids"], json!([stage_host]));
    assert_eq!(clone["not_copied"], json!(["hosts", "notice_channels"]));
    assert_eq!(clone["notice_channel_count"], 0);
    let (_, original) = h.get(&format!("/api/release-configs/{source}"));
    for k in [
        "repo_url",
        "repo_auth",
        "review_enabled",
        "deploy_path",
        "versions_path",
        "keep_versions",
        "filter_mode",
        "filter",
        "hooks",
        "variables",
        "failure_policy",
        "hook_timeout_secs",
    ] {
        assert_eq!(clone[k], original[k], "{k}");
    }
    assert!(!clone.to_string().contains("notice-secret-123"), "{clone}");
    let clone_id = clone["id"].as_i64().expect("id");
    let (s, got) = h.get(&format!("/api/release-configs/{clone_id}"));
    assert_eq!((s, &got["host_ids"]), (200, &json!([stage_host])), "{got}");

    // A second clone to the same place is a conflict.
    let (s, body) = h.post(
        &format!("/api/release-configs/{source}/clone"),
        &json!({"environment_id": staging, "host_ids": [stage_host]}),
    );
    assert_eq!(s, 409, "{body}");

    // The audit trail records the clone with its source.
    let (_, audit) = h.get(&format!("/api/audit?entity=config&entity_id={clone_id}"));
    let entry = &audit.as_array().expect("entries")[0];
    assert_eq!(entry["action"], "create", "{audit}");
    let from = entry["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["field"] == "cloned_from");
    assert_eq!(
        from.map(|c| c["to"].clone()),
        Some(json!(source.to_string())),
        "{audit}"
    );

    // The clone releases to its own host.
    let rid = lab.request(clone_id, "first staging", json!({"branch": "main"}));
    let (release, events) = h.run_release(rid);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
    assert!(lab.live(&lab.hosts[1]).is_some());
    assert!(lab.live(&lab.hosts[0]).is_none());

    // Permissions: the source must be visible, the target editable.
    let shop = h.ok(
        "/api/apps",
        &json!({"name": "Shop", "tag": "shop", "description": "another app"}),
        201,
    )["id"]
        .as_i64()
        .expect("id");
    let viewer = lab.role("viewer", &["request"]);
    let editor = lab.role("editor", &["edit_configs"]);
    let stranger = lab.user(
        "stranger",
        json!([{"role_id": editor, "environment_id": staging}]),
    );
    let (s, body) = h.call(
        &stranger,
        "POST",
        &format!("/api/release-configs/{source}/clone"),
        &json!({"environment_id": staging, "app_id": shop, "host_ids": [stage_host]}),
    );
    assert_eq!(s, 404, "the source is not the stranger's to see: {body}");
    let dev = lab.user(
        "dev",
        json!([{"role_id": viewer, "environment_id": lab.env_id},
               {"role_id": editor, "environment_id": staging, "app_id": lab.app_id}]),
    );
    let (s, body) = h.call(
        &dev,
        "POST",
        &format!("/api/release-configs/{source}/clone"),
        &json!({"environment_id": staging, "app_id": shop, "host_ids": [stage_host]}),
    );
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("edit_configs")),
        "{body}"
    );
    // Another app in the same environment: hosts chosen again there too.
    let (s, body) = h.call(
        &dev,
        "POST",
        &format!("/api/release-configs/{clone_id}/clone"),
        &json!({"environment_id": staging, "host_ids": [stage_host]}),
    );
    assert_eq!(s, 409, "{body}");
    let (s, shop_clone) = h.post(
        &format!("/api/release-configs/{source}/clone"),
        &json!({"app_id": shop, "host_ids": [lab.host_ids[0]]}),
    );
    assert_eq!(s, 201, "{shop_clone}");
    assert_eq!(shop_clone["environment_id"], lab.env_id);
    assert_eq!(shop_clone["app_name"], "Shop");
}
