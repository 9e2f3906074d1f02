//! The custom release editor in a browser: Debian's Chromium driven by playwright-core
//! (`console/e2e/custom.mjs`) against the real `hippo-api`, one real sshd host and a real Git
//! repository. The admin builds a custom config in the wizard — steps added, moved up, one added
//! and removed, an empty destination refused on its step — and requests a release choosing the
//! file of its upload step on the new-release page, in both languages. Then the release runs
//! here and the file reaches the host intact (checksum), after the build and the transfer ran
//! in the order the editor left them. Screenshots land in `console/e2e/artifacts/` (or
//! `HIPPO_E2E_ARTIFACTS`).
use hippo_e2e::lab::{Lab, host_path};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

fn console_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("console")
}

#[test]
fn an_admin_orders_the_steps_of_a_custom_release_and_uploads_its_file_in_the_browser() {
    let chromium = std::env::var("HIPPO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium"
    );
    assert!(
        console_dir().join("node_modules").is_dir(),
        "console/node_modules is missing: build hippo-api first (its build script runs npm ci)"
    );
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let files = tempfile::tempdir().expect("tempdir");
    let file = files.path().join("app.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &data).expect("file");
    let artifacts = std::env::var("HIPPO_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| console_dir().join("e2e").join("artifacts"));
    let out = Command::new("node")
        .arg("e2e/custom.mjs")
        .current_dir(console_dir())
        .env("HIPPO_URL", &h.base)
        .env("HIPPO_ADMIN_PASSWORD", hippo_e2e::hippo::ADMIN_PASSWORD)
        .env("HIPPO_ARTIFACTS", &artifacts)
        .env("HIPPO_CHROMIUM", &chromium)
        .env(
            "HIPPO_CUSTOM",
            json!({"app": lab.app_id, "env": lab.env_id,
                   "repo": lab.repo.bare.to_str().expect("utf-8"), "file": file})
            .to_string(),
        )
        .output()
        .expect("node runs the browser story");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\nscreenshots: {}", artifacts.display());
    assert!(
        out.status.success(),
        "the browser story failed (screenshots in {}):\n{stdout}\n{stderr}\n--- hippo log ---\n{}",
        artifacts.display(),
        h.log()
    );
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the story's summary line");

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
