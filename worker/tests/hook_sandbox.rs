//! The hook sandbox on its own: how variables travel (never through the privileged start),
//! and that the unconfined mode keeps the same semantics. The attacks themselves are in
//! `tests/tests/hook_sandbox_story.rs` (the real binary).
#![allow(clippy::unwrap_used)]
use hippo_shared::config::Settings;
use hippo_worker::sandbox::{SRC_INSIDE, Sandbox, WorkDir};
use std::time::Duration;

fn settings(data: &std::path::Path, sandboxed: bool) -> Settings {
    let mut s = Settings {
        data_dir: data.to_path_buf(),
        ..Settings::default()
    };
    s.hook_sandbox.enabled = sandboxed;
    s
}

const VALUES: [(&str, &str); 5] = [
    ("LD_PRELOAD", "/nonexistent/evil-preload.so"),
    (
        "GREETING",
        "hello $(touch /tmp/hippo-sandbox-pwned) `id` world",
    ),
    ("MULTI", "line one\nline two"),
    ("UID", "12345"),
    ("HIPPO_COMMIT", "0123456789abcdef"),
];

async fn run(sandbox: &Sandbox, dir: &std::path::Path) -> (std::process::ExitStatus, String) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let env: Vec<(String, String)> = VALUES
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let script = "printf '%s\\n' \"$GREETING\" \"$MULTI\" \"$HIPPO_COMMIT\"\necho \"uid set: $([ \"$UID\" = 12345 ] && echo yes || echo no)\"\nunset LD_PRELOAD\npwd\n";
    let prepared = sandbox
        .prepare(
            "after_checkout",
            script,
            WorkDir {
                host: &src,
                inside: SRC_INSIDE,
                writable: true,
            },
            &dir.join("scratch"),
            &env,
            Duration::from_secs(30),
        )
        .unwrap();
    let std_cmd = prepared.command.as_std();
    // The privileged start (bwrap, setpriv, prlimit) never sees a variable or its value.
    let envs: Vec<String> = std_cmd
        .get_envs()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k.to_string_lossy(),
                v.map(|v| v.to_string_lossy()).unwrap_or_default()
            )
        })
        .collect();
    let args: Vec<String> = std_cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if prepared.confined {
        for (k, v) in VALUES {
            assert!(
                !envs
                    .iter()
                    .any(|e| e.starts_with(&format!("{k}=")) || e.contains(v)),
                "{k} in the start's environment: {envs:?}"
            );
            assert!(
                !args.iter().any(|a| a.contains(v)),
                "{k}'s value on the command line: {args:?}"
            );
        }
    }
    let mut command = prepared.command;
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

fn check(text: &str, pwd: &str) {
    let want = format!(
        "hello $(touch /tmp/hippo-sandbox-pwned) `id` world\nline one\nline two\n0123456789abcdef\nuid set: no\n{pwd}\n"
    );
    assert!(text.ends_with(&want), "{text:?}");
    assert!(!std::path::Path::new("/tmp/hippo-sandbox-pwned").exists());
}

#[tokio::test]
async fn variables_reach_the_sandboxed_script_as_data_and_never_the_privileged_start() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::detect(&settings(&dir.path().join("data"), true));
    let (status, text) = run(&sandbox, dir.path()).await;
    assert!(status.success(), "{}\n{text}", sandbox.describe());
    check(&text, SRC_INSIDE);
}

#[tokio::test]
async fn unconfined_hooks_get_the_same_variables() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::detect(&settings(&dir.path().join("data"), false));
    let (status, text) = run(&sandbox, dir.path()).await;
    assert!(status.success(), "{text}");
    check(&text, dir.path().join("src").to_str().unwrap());
}

#[test]
fn read_only_paths_holding_the_data_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir.path().join("data"), true);
    s.hook_sandbox.read_only_paths = vec![dir.path().to_path_buf()];
    let d = Sandbox::detect(&s).describe();
    assert!(
        d.contains("hooks will fail") && d.contains("HIPPO_HOOK_READ_ONLY_PATHS"),
        "{d}"
    );
}

/// Hooks keep the worker's network (builds fetch packages), loopback included — the gap
/// docs/security.md warns about; `HIPPO_HOOK_NETWORK=off` takes it away.
#[tokio::test]
async fn the_network_is_kept_unless_turned_off() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for network in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(&dir.path().join("data"), true);
        s.hook_sandbox.network = network;
        let sandbox = Sandbox::detect(&s);
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let prepared = sandbox
            .prepare(
                "after_checkout",
                "if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then echo connected; else echo no-network; fi\n",
                WorkDir {
                    host: &src,
                    inside: SRC_INSIDE,
                    writable: true,
                },
                &dir.path().join("scratch"),
                &[("PORT".to_owned(), port.clone())],
                Duration::from_secs(30),
            )
            .unwrap();
        let mut command = prepared.command;
        let out = command.output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let want = if network {
            "connected\n"
        } else {
            "no-network\n"
        };
        assert_eq!(
            text,
            want,
            "network {network}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
