//! The custom release editor in a browser: Debian's Chromium driven by playwright-core
//! (`console/e2e/custom.mjs`) against the real `hippo-api`, one real sshd host and a real Git
//! repository. The admin builds a custom config in the wizard — steps added, moved up, one added
//! and removed, an empty destination refused on its step — and requests a release choosing the
//! file of its upload step on the new-release page, in both languages. Then the release runs
//! here and the file reaches the host intact (checksum), after the build and the transfer ran
//! in the order the editor left them. Screenshots land in `console/e2e/artifacts/` (or
//! `HIPPO_E2E_ARTIFACTS`).
use hippo_e2e::browser;
use hippo_e2e::lab::{Lab, host_path};
use serde_json::json;
use sha2::{Digest, Sha256};

#[test]
fn an_admin_orders_the_steps_of_a_custom_release_and_uploads_its_file_in_the_browser() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let files = tempfile::tempdir().expect("tempdir");
    let file = files.path().join("app.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).expect("file");
    let summary = browser::run(
        "e2e/custom.mjs",
        h,
        &[(
            "HIPPO_CUSTOM",
            json!({"app": lab.app_id, "env": lab.env_id,
                   "repo": lab.repo.bare.to_str().expect("utf-8"), "file": file})
            .to_string(),
        )],
    );

    // The config as the editor left it.
    let (_, configs) = h.get("/api/release-configs");
    let config = &configs[0];
    assert_eq!(config["kind"], "custom", "{config}");
    let types: Vec<&str> = config["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["server_command", "transfer", "transfer", "target_command"],
        "{config}"
    );
    assert_eq!(config["actions"][1]["path"], "dist", "{config}");
    assert_eq!(config["actions"][2]["source"], "upload", "{config}");

    // The request's file, as uploaded by the page; the release runs and delivers it.
    let sum = hex::encode(Sha256::digest(&data));
    let id = summary["release"].as_i64().expect("release id");
    let (_, uploads) = h.get(&format!("/api/releases/{id}/uploads"));
    assert_eq!(uploads[0]["step"], 3, "{uploads}");
    assert_eq!(uploads[0]["sha256"], sum.as_str(), "{uploads}");
    let (release, events) = h.run_release(id);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
    let live = lab.live(&lab.hosts[0]).expect("live");
    let got = std::fs::read(live.join("srv/app/bin/app.bin")).expect("the file");
    assert_eq!(hex::encode(Sha256::digest(&got)), sum);
    let commit = lab.repo.head("main").expect("main");
    let log = std::fs::read_to_string(host_path(&lab.hosts[0], "/srv/app/restarts.log"))
        .expect("restart log");
    assert_eq!(log, format!("restarted {commit}\n"));
}
