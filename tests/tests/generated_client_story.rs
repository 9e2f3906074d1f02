//! An integrator's story: openapi-generator makes a Python client from the committed spec, and
//! that client alone drives a release to real hosts and rolls it back (tests/client/drive.py).
//! The tools come from `.ci/python-tools` (a pinned venv, `HIPPO_PY_VENV` or
//! `~/.cache/hippo-py`; made on first use).
use hippo_e2e::hippo::ADMIN_PASSWORD;
use hippo_e2e::lab::{DEPLOY, Lab, VERSIONS};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// The venv with openapi-generator-cli and the client's dependencies.
fn venv() -> PathBuf {
    let venv = std::env::var("HIPPO_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/hippo-py")
        });
    let status = Command::new("bash")
        .arg(repo_root().join(".ci/python-tools"))
        .env("HIPPO_PY_VENV", &venv)
        .status()
        .expect("running .ci/python-tools");
    assert!(status.success(), ".ci/python-tools failed");
    venv
}

#[test]
fn a_python_client_generated_from_the_spec_releases_and_rolls_back_on_its_own() {
    let venv = venv();
    let generated = tempfile::tempdir().expect("tempdir");
    let out = Command::new(venv.join("bin/openapi-generator-cli"))
        .args(["generate", "-g", "python", "--package-name", "hippo_client"])
        .arg("-i")
        .arg(repo_root().join("openapi/openapi.json"))
        .arg("-o")
        .arg(generated.path())
        .args([
            "--global-property",
            "apiTests=false,modelTests=false,apiDocs=false,modelDocs=false",
        ])
        .output()
        .expect("running openapi-generator-cli");
    assert!(
        out.status.success(),
        "generation failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let lab = Lab::new(2, &[]);
    let input = json!({
        "base": lab.hippo.base,
        "password": ADMIN_PASSWORD,
        "repo_url": lab.repo.bare.to_str().expect("utf-8"),
        "environment_id": lab.env_id,
        "host_ids": lab.host_ids,
        "deploy_path": DEPLOY,
        "versions_path": VERSIONS,
    });
    let run = Command::new(venv.join("bin/python"))
        .arg(repo_root().join("tests/client/drive.py"))
        .arg(input.to_string())
        .env("PYTHONPATH", generated.path())
        .output()
        .expect("running the client");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the generated client failed:\n{stdout}\n{}\n--- hippo log ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        lab.hippo.log()
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let back = result["rollback_version"].as_str().expect("version");
    // On the hosts: every deploy link points at the version rolled back to.
    for host in &lab.hosts {
        let live = lab.live(host).expect("deploy link");
        assert_eq!(
            live.file_name().and_then(|n| n.to_str()),
            Some(back),
            "{}",
            live.display()
        );
    }
}
