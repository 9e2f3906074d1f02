//! Builds the web console (`console/`, Vue + Vite) so that `cargo run -p hippo-api` serves it,
//! and tells `src/console.rs` where the built files are (`HIPPO_CONSOLE_DIR`, embedded with
//! rust-embed). Three ways, chosen by environment variables:
//!
//! - default: `npm ci` (only when `package-lock.json` changed since the last install), then
//!   `npm run build` into this crate's `OUT_DIR`. Cargo re-runs this only when a file of the
//!   console changed. Needs Node.js 20.19 or later and npm.
//! - `HIPPO_CONSOLE_DIST=/path/to/dist`: embed files built elsewhere (the Dockerfile's console
//!   stage does this).
//! - `HIPPO_SKIP_CONSOLE=1`: build the API alone; every non-API page then says how to get the
//!   console.
use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files whose change means the console must be built again (node_modules is not one).
const INPUTS: [&str; 8] = [
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
    "tsconfig.app.json",
];

fn main() {
    println!("cargo:rerun-if-env-changed=HIPPO_SKIP_CONSOLE");
    println!("cargo:rerun-if-env-changed=HIPPO_CONSOLE_DIST");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("console");
    let console = manifest.join("..").join("console");
    let dir = if std::env::var("HIPPO_SKIP_CONSOLE").is_ok_and(|v| !v.is_empty() && v != "0") {
        println!(
            "cargo:warning=HIPPO_SKIP_CONSOLE is set: hippo-api is built without the web console"
        );
        // An empty folder: the API serves a page saying how to build the console.
        std::fs::create_dir_all(out.join("skipped")).expect("creating OUT_DIR/console/skipped");
        out.join("skipped")
    } else if let Some(dist) = std::env::var_os("HIPPO_CONSOLE_DIST").filter(|d| !d.is_empty()) {
        let dist = PathBuf::from(dist);
        println!("cargo:rerun-if-changed={}", dist.display());
        if !dist.join("index.html").is_file() {
            fail(&format!(
                "HIPPO_CONSOLE_DIST={} holds no index.html: build the console there first \
                 (cd console && npm ci && npm run build -- --outDir <dir>)",
                dist.display()
            ));
        }
        dist
    } else {
        for input in INPUTS {
            let path = console.join(input);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        build(&console, &out.join("dist"));
        out.join("dist")
    };
    println!("cargo:rustc-env=HIPPO_CONSOLE_DIR={}", dir.display());
}

fn fail(message: &str) -> ! {
    // Cargo shows a failed build script's stderr: say it plainly, once.
    let _ = writeln!(std::io::stderr(), "\nerror: {message}\n");
    std::process::exit(1);
}

const NO_NODE: &str = "hippo-api embeds the web console, which is built with Node.js 20.19 or \
    later and npm. Install them and build again, or set HIPPO_SKIP_CONSOLE=1 to build the API \
    alone (the console's pages are then not served).";

fn build(console: &Path, dist: &Path) {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(version) = version else {
        fail(&format!("`node` was not found. {NO_NODE}"));
    };
    if !node_is_recent(&version) {
        fail(&format!("Node.js {version} is too old. {NO_NODE}"));
    }
    if Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
    {
        fail(&format!("`npm` was not found. {NO_NODE}"));
    }
    // npm ci wipes node_modules: only when the lock file is newer than the last install.
    let installed = console.join("node_modules").join(".package-lock.json");
    if modified(&installed) < modified(&console.join("package-lock.json")) {
        npm(console, &["ci", "--no-audit", "--no-fund"]);
    }
    let out = dist.to_str().expect("OUT_DIR is UTF-8");
    npm(
        console,
        &["run", "build", "--", "--outDir", out, "--emptyOutDir"],
    );
    if !dist.join("index.html").is_file() {
        fail("the console's build produced no index.html");
    }
}

fn npm(dir: &Path, args: &[&str]) {
    // npm's own output goes to stderr: a build script's stdout is read by Cargo.
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .expect("duplicating stderr");
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stderr))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "`npm {}` in {} failed ({s}); see its output above. To build the API alone, set \
             HIPPO_SKIP_CONSOLE=1.",
            args.join(" "),
            dir.display()
        )),
        Err(e) => fail(&format!("could not run npm: {e}. {NO_NODE}")),
    }
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// `v20.19.0` or later (what Vite 7 needs).
fn node_is_recent(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    major > 20 || (major == 20 && minor >= 19)
}
