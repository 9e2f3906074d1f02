//! The web console, told by a browser: Debian's Chromium driven by playwright-core
//! (`console/e2e/story.mjs`) against the real `hippo-api` (which serves the console it
//! embeds), two real sshd hosts and a real Git repository. The story reads the hosts' deploy
//! links on disk as it goes (after the rollback they point at the first version again);
//! afterwards they are checked here too, and the release page must have shown every stored
//! event once, also across a connection dropped mid-release. Screenshots of every page,
//! in both languages, land in `console/e2e/artifacts/` (or `HIPPO_E2E_ARTIFACTS`).
use hippo_e2e::browser;
use hippo_e2e::git_fixture::GitFixture;
use hippo_e2e::hippo::Hippo;
use hippo_e2e::lab::{DEPLOY, VERSIONS, host_path};
use hippo_e2e::sshd::TestHost;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// `npm` in `console/` (its packages are installed by hippo-api's build script).
fn npm(args: &[&str]) -> std::process::Output {
    Command::new("npm")
        .args(args)
        .current_dir(browser::console_dir())
        .env("CI", "true")
        .output()
        .unwrap_or_else(|e| panic!("npm {args:?}: {e} (Node.js 20.19+ and npm are needed)"))
}

#[test]
fn the_console_unit_tests_pass_and_its_generated_api_types_match_the_spec() {
    let out = npm(&["test", "--silent"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "vitest failed:\n{text}");
    println!("{text}");
}

/// Where the host's deploy link points (the version folder's name).
fn live_version(host: &TestHost) -> Option<String> {
    let target = std::fs::read_link(host_path(host, DEPLOY)).ok()?;
    Some(target.file_name()?.to_str()?.to_owned())
}

#[test]
fn an_admin_sets_up_an_app_in_the_browser_a_developer_requests_a_reviewer_approves_and_a_rollback_restores_the_first_version()
 {
    browser::chromium();
    let hippo = Hippo::start(&[
        // The story's DingTalk robot listens on 127.0.0.1.
        ("HIPPO_INTERNAL_ALLOWLIST", "127.0.0.1"),
        // A user name locked out at its first limit, so the lockouts page has something to
        // show without waiting for several windows.
        ("HIPPO_LOGIN_LOCKOUT_AFTER", "1"),
    ])
    .expect("hippo starts");
    let (_, key) = hippo.get("/api/ssh-key");
    let public = key["public_key"].as_str().expect("public key").to_owned();
    let hosts: Vec<TestHost> = (1..=2)
        .map(|i| TestHost::start(i, &public).expect("sshd starts"))
        .collect();
    let repo = GitFixture::new().expect("git fixture");
    let host_list: Vec<Value> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            json!({
                "name": format!("web-{}", i + 1), "addr": h.addr, "port": h.port,
                "link": host_path(h, DEPLOY),
            })
        })
        .collect();

    let summary = browser::run(
        "e2e/story.mjs",
        &hippo,
        &[
            ("HIPPO_REPO", repo.bare.to_str().expect("utf-8").to_owned()),
            ("HIPPO_HOSTS", Value::from(host_list).to_string()),
        ],
    );

    // What the browser did is what happened: the rollback went back to the first release's
    // version on both hosts, and both versions are still kept.
    let release = |key: &str| {
        let id = summary[key].as_i64().expect("release id");
        let (s, r) = hippo.get(&format!("/api/releases/{id}"));
        assert_eq!(s, 200, "{r}");
        r
    };
    let (first, second, rollback) = (release("first"), release("second"), release("rollback"));
    for r in [&first, &second, &rollback] {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    assert_eq!(rollback["kind"], "rollback");
    let v1 = first["version"].as_str().expect("version").to_owned();
    let v2 = second["version"].as_str().expect("version").to_owned();
    assert_eq!(rollback["version"], v1.as_str(), "{rollback}");
    assert_eq!(first["reviewed_by"], rollback["reviewed_by"]);
    // The release page, opened after the release, showed every stored event's lines once.
    let events = hippo
        .events(
            first["id"].as_i64().expect("id"),
            None,
            Duration::from_secs(30),
        )
        .expect("events");
    let lines: usize = events
        .iter()
        .map(|e| match e["message"].as_str().unwrap_or_default() {
            "" => 1,
            m => m.split('\n').count(),
        })
        .sum();
    assert_eq!(
        summary["firstLines"].as_u64(),
        Some(lines as u64),
        "the release page's log vs the stored events: {events:#?}"
    );
    // And so did the page that lived through a dropped connection mid-release (it resumed with
    // Last-Event-ID: nothing lost, nothing doubled).
    assert_eq!(
        summary["resumedLines"].as_u64(),
        Some(lines as u64),
        "the resumed release page's log vs the stored events: {events:#?}"
    );
    for h in &hosts {
        assert_eq!(
            live_version(h).as_deref(),
            Some(v1.as_str()),
            "{}: the deploy link must point at the first version",
            h.name
        );
        let kept: Vec<String> = std::fs::read_dir(host_path(h, VERSIONS))
            .expect("versions dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert!(
            kept.contains(&v1) && kept.contains(&v2),
            "{}: kept {kept:?}",
            h.name
        );
    }
}

#[test]
fn hippo_api_serves_the_console_on_every_page_path_and_leaves_the_api_paths_alone() {
    let hippo = Hippo::start(&[]).expect("hippo starts");
    let http = hippo_e2e::hippo::client_builder().build().expect("client");
    // `gzip`: say the client takes it (the body then stays compressed: reqwest is built
    // without decompression here).
    let fetch = |path: &str, gzip: bool| {
        let mut req = http.get(format!("{}{path}", hippo.base));
        if gzip {
            req = req.header("accept-encoding", "gzip");
        }
        let r = req.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (ty, cache, enc) = (
            header("content-type"),
            header("cache-control"),
            header("content-encoding"),
        );
        (
            r.status().as_u16(),
            ty,
            cache,
            enc,
            r.bytes().unwrap_or_default(),
        )
    };
    let get = |path: &str| fetch(path, false);

    // Any page path is the app (its router shows the page), never cached.
    for path in ["/", "/releases", "/releases/42", "/system/users?x=1"] {
        let (status, ty, cache, _, body) = get(path);
        assert_eq!(status, 200, "{path}");
        assert!(ty.starts_with("text/html"), "{path}: {ty}");
        assert_eq!(cache, "no-cache", "{path}");
        assert!(
            String::from_utf8_lossy(&body).contains("<div id=\"app\">"),
            "{path}"
        );
    }
    // The hashed files it names are immutable and compressed.
    let (_, _, _, _, index) = get("/");
    let index = String::from_utf8_lossy(&index).into_owned();
    let script = index
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("index.html names its script")
        .to_owned();
    let (status, ty, cache, enc, _) = fetch(&script, true);
    assert_eq!(status, 200);
    assert!(ty.starts_with("text/javascript"), "{ty}");
    assert_eq!(cache, "public, max-age=31536000, immutable");
    assert_eq!(enc, "gzip");
    // A missing asset is a 404, not the page (a browser would run HTML as a script).
    let (status, ty, ..) = get("/assets/missing-0000.js");
    assert_eq!(status, 404);
    assert!(!ty.starts_with("text/html"), "{ty}");
    // The API and the service paths are unchanged.
    let (status, ty, ..) = get("/api/no-such-route");
    assert_eq!(status, 404);
    assert!(ty.starts_with("application/json"), "{ty}");
    let (status, ..) = get("/api/environments");
    assert_eq!(status, 401, "the API still wants a token");
    for (path, want) in [
        ("/openapi.json", "application/json"),
        ("/docs", "text/html"),
        ("/healthz", "text/plain"),
        ("/readyz", "text/plain"),
        ("/metrics", "text/plain"),
    ] {
        let (status, ty, ..) = get(path);
        assert_eq!(status, 200, "{path}");
        assert!(ty.starts_with(want), "{path}: {ty}");
    }
}
