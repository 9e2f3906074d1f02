//! The console's browser stories: a script in `console/e2e/` run by Node.js, driving Debian's
//! Chromium (playwright-core) against a running `hippo-api`. Every script gets `HIPPO_URL`,
//! `HIPPO_ADMIN_PASSWORD`, `HIPPO_ARTIFACTS` (where screenshots land: `HIPPO_E2E_ARTIFACTS`, or
//! `console/e2e/artifacts/`) and `HIPPO_CHROMIUM`, plus the story's own variables, and prints a
//! JSON summary as its last JSON line.
use crate::hippo::{ADMIN_PASSWORD, Hippo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The console's folder, with its packages installed (hippo-api's build script runs `npm ci`).
pub fn console_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("console");
    assert!(
        dir.join("node_modules").is_dir(),
        "console/node_modules is missing: build hippo-api first (its build script runs npm ci)"
    );
    dir
}

/// Debian's Chromium, or `HIPPO_CHROMIUM`; it must exist.
pub fn chromium() -> String {
    let path = std::env::var("HIPPO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the console's browser tests need Debian's Chromium \
         (apt-get install chromium; .ci/run installs it)"
    );
    path
}

/// Runs `console/<script>` (e.g. `e2e/hosts.mjs`) against `hippo` with the common variables
/// and `env`, fails the test with the script's output and Hippo's log unless it succeeds, and
/// returns the script's summary (its last line that is JSON).
pub fn run(script: &str, hippo: &Hippo, env: &[(&str, String)]) -> Value {
    let chromium = chromium();
    let dir = console_dir();
    let artifacts = std::env::var("HIPPO_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.join("e2e").join("artifacts"));
    let out = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .env("HIPPO_URL", &hippo.base)
        .env("HIPPO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("HIPPO_ARTIFACTS", &artifacts)
        .env("HIPPO_CHROMIUM", &chromium)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("node runs the browser story");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\nscreenshots: {}", artifacts.display());
    assert!(
        out.status.success(),
        "the browser story failed (screenshots in {}):\n{stdout}\n{stderr}\n--- hippo log ---\n{}",
        artifacts.display(),
        hippo.log()
    );
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the story's summary line")
}
