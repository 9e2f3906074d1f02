//! Git webhooks, cloning a config and the Git server's host key, told by a browser: Debian's
//! Chromium driven by playwright-core (`console/e2e/git.mjs`) against the real `hippo-api`, two
//! real sshd target hosts (one in prod, one in staging) and a third sshd serving the Git
//! repository over SSH. The admin sets up a GitHub webhook on prod's config in the dialog (URL
//! and secret shown once), GitHub-format deliveries (signed, badly signed, another branch, a
//! repeat) are listed with what became of each, the accepted one runs by itself (review off,
//! auto-run on) and its release page names the stages in the chosen language; the URL and
//! secret are rotated (the old URL stops); the pinned host key is shown on the config and
//! forgotten; the config is cloned to staging with its host chosen again; a review meets an edit
//! made meanwhile (409 `changed`, explained); a developer sees the webhook but cannot change it
//! nor forget keys. Afterwards the webhook's release is checked here: requested by `webhook`,
//! the pushed commit live on the prod host. Screenshots in both languages land in
//! `console/e2e/artifacts/` (or `HIPPO_E2E_ARTIFACTS`).
use hippo_e2e::browser;
use hippo_e2e::lab::{DEPLOY, Lab, PASSWORD, VERSIONS, host_path};
use hippo_e2e::sshd::TestHost;
use serde_json::{Value, json};
use std::path::PathBuf;

#[test]
fn an_admin_sets_up_a_webhook_clones_the_config_and_forgets_the_git_servers_key_in_the_browser() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let (_, key) = h.get("/api/ssh-key");
    let public = key["public_key"].as_str().expect("public key").to_owned();

    // The Git server: an sshd serving copies of the fixture's repositories.
    let (git_host, url) = lab.git_server(9);
    let fingerprint = git_host.host_key_fingerprint().expect("fingerprint");

    // Staging, with its own host (a second sshd), and an empty QA environment.
    let staging = h.ok(
        "/api/environments",
        &json!({"name": "Staging", "tag": "staging"}),
        201,
    )["id"]
        .as_i64()
        .expect("id");
    h.ok(
        "/api/environments",
        &json!({"name": "QA", "tag": "qa"}),
        201,
    );
    let stage_host = TestHost::start(2, &public).expect("staging sshd");
    h.ok(
        "/api/hosts",
        &json!({"environment_id": staging, "name": "stage-1", "addr": stage_host.addr,
                "port": stage_host.port, "username": "root", "category": "web"}),
        201,
    );
    // Prod's config: the repository over SSH with the platform key, no review (the webhook's
    // release runs by itself), a notice channel (a secret: not copied by the clone).
    let config = lab.config(json!({
        "repo_url": url, "repo_auth": "platform_key", "keep_versions": 3,
        "notice_channels": [{"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "notice-secret-123"}],
    }));
    // The developer: requests and edits configs in staging, only requests in prod.
    let requester = lab.role("requester", &["request"]);
    let editor = lab.role("editor", &["request", "edit_configs"]);
    lab.user(
        "dev",
        json!([{"role_id": requester, "environment_id": lab.env_id},
               {"role_id": editor, "environment_id": staging}]),
    );

    let main = lab.repo.head("main").expect("main");
    let feature = lab.repo.head("feature").expect("feature");
    let summary = browser::run(
        "e2e/git.mjs",
        h,
        &[(
            "HIPPO_GIT",
            json!({
                "config": config, "main": main, "feature": feature, "fingerprint": fingerprint,
                "dev": {"username": "dev", "password": PASSWORD},
            })
            .to_string(),
        )],
    );

    // The accepted delivery's release: requested by `webhook`, the pushed commit, live on prod.
    let id = summary["webhookRelease"].as_i64().expect("release id");
    let (_, release) = h.get(&format!("/api/releases/{id}"));
    assert_eq!(release["status"], "succeeded", "{release}");
    assert_eq!(release["requested_by_name"], "webhook", "{release}");
    assert_eq!(release["commit_id"], main.as_str(), "{release}");
    let version = release["version"].as_str().expect("version");
    let link = std::fs::read_link(host_path(&lab.hosts[0], DEPLOY)).expect("deploy link");
    assert_eq!(
        link,
        PathBuf::from(VERSIONS).join(version),
        "prod's deploy link"
    );
    // Exactly one release came of four deliveries.
    let (_, list) = h.get(&format!("/api/releases?environment_id={}", lab.env_id));
    let made: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["config_id"] == config)
        .collect();
    assert_eq!(made.len(), 1, "{list}");

    // The clone: staging's config with the staging host only, and no notice channel.
    let clone = summary["clone"].as_i64().expect("clone id");
    let (_, c) = h.get(&format!("/api/release-configs/{clone}"));
    assert_eq!(c["environment_id"], staging, "{c}");
    assert_eq!(c["host_ids"].as_array().map(Vec::len), Some(1), "{c}");
    assert_eq!(c["notice_channel_count"], 0, "{c}");
    assert_eq!(c["review_enabled"], true, "{c}");
    assert_eq!(c["repo_url"], url.as_str(), "{c}");

    // The review that met an edit: approved only after looking again, at the new commit.
    let reviewed = summary["reviewed"].as_i64().expect("reviewed id");
    let (_, r) = h.get(&format!("/api/releases/{reviewed}"));
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(r["commit_id"], feature.as_str(), "{r}");

    // The secrets shown once are in no log.
    let secret = summary["secret"].as_str().expect("secret");
    assert!(!h.log().contains(secret), "a log holds the webhook secret");
}
