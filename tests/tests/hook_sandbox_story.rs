//! Issue 9, item 1: a user who may edit one config's hooks tries to read Hippo's secrets from
//! a release-server hook, and to take the machine down with one. The real binary, real hosts,
//! real hooks in the real sandbox (bubblewrap).
use hippo_e2e::lab::Lab;
use hippo_e2e::proc::processes;
use serde_json::{Value, json};
use std::time::Duration;

fn output(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["status"] == "output")
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

fn all_text(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_release_server_hook_finds_no_master_key_no_database_and_no_data_folder_but_builds_fine() {
    let lab = Lab::new(1, &[]);
    let root = lab.hippo.data.path().to_str().expect("utf-8").to_owned();
    let data = format!("{root}/data");
    // Make sure the probes aim at files that exist on this machine (else they prove nothing).
    let key_file = format!("{data}/master.key");
    let db_file = format!("{data}/hippo.db");
    let standalone_sqlite = std::path::Path::new(&db_file).exists();
    if !lab.hippo.is_cluster() {
        assert!(std::path::Path::new(&key_file).exists(), "{key_file}");
    }
    let probes = "\
od -An -tx1 ../../../master.key || true
od -An -tx1 ../../master.key || true
od -An -tx1 \"$KEY\" || true
cat ../../../hippo.db || true
cat \"$DB\" || true
ls \"$DATA\" || true
ls \"$ROOT\" || true
ls \"$DATA/repos\" || true
cat /proc/1/environ || true
echo probes done
";
    let build = "\
mkdir -p build
echo \"built $HIPPO_COMMIT\" > build/out.txt
sh -c 'echo sh runs'
tar -czf /tmp/tree.tgz index.html && tar -tzf /tmp/tree.tgz
git --version >/dev/null && echo git runs
test -x /usr/bin/env && echo usr readable
echo scratch > /tmp/scratch && cat /tmp/scratch
echo \"home is $HOME\"
";
    let config_id = lab.config(json!({
        "variables": format!("ROOT={root}\nDATA={data}\nKEY={key_file}\nDB={db_file}\n"),
        "hooks": {
            "before_checkout": probes,
            "after_checkout": format!("{probes}{build}"),
        },
    }));
    let commit = lab.repo.head("main").expect("head");
    let r = lab.request(config_id, "probe", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r);
    assert_eq!(
        release["status"],
        "succeeded",
        "{release}\n{:#?}\n{}",
        output(&events),
        lab.hippo.log()
    );
    let lines = output(&events);
    let text = lines.join("\n");

    // Every probe, in both hooks, met a file that does not exist.
    for (what, needle) in [
        (
            "relative master key",
            "od: ../../../master.key: No such file or directory",
        ),
        (
            "relative master key",
            "od: ../../master.key: No such file or directory",
        ),
        (
            "absolute master key",
            &format!("od: {key_file}: No such file or directory"),
        ),
        (
            "relative database",
            "cat: ../../../hippo.db: No such file or directory",
        ),
        (
            "absolute database",
            &format!("cat: {db_file}: No such file or directory"),
        ),
        (
            "data folder",
            &format!("ls: cannot access '{data}': No such file or directory"),
        ),
        (
            "data folder's parent",
            &format!("ls: cannot access '{root}': No such file or directory"),
        ),
        (
            "repository caches",
            &format!("ls: cannot access '{data}/repos': No such file or directory"),
        ),
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.as_str() == needle).count(),
            2,
            "{what}: {needle:?} once per hook in:\n{text}"
        );
    }
    assert_eq!(
        lines.iter().filter(|l| *l == "probes done").count(),
        2,
        "{text}"
    );
    // The sandbox's init is not the hook's to read.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("cat: /proc/1/environ: Permission denied")),
        "{text}"
    );

    // Nothing secret reached any event.
    let everything = all_text(&events);
    let key = lab.hippo.master_key_hex();
    assert_eq!(key.len(), 64, "master key known to the test");
    let od_form: String = key
        .as_bytes()
        .chunks(2)
        .take(8)
        .map(|b| format!(" {}", String::from_utf8_lossy(b)))
        .collect();
    for secret in [
        key.as_str(),
        &key[..16],
        od_form.trim(),
        "SQLite format 3",
        "$argon2",
        hippo_e2e::hippo::ADMIN_PASSWORD,
        "HIPPO_MASTER_KEY",
        "HIPPO_DATABASE_URL",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret:?} leaked into the events"
        );
    }
    if standalone_sqlite {
        // The database the probes aimed at is there (they failed because of the sandbox).
        assert!(std::fs::metadata(&db_file).expect("db").len() > 0);
    }

    // A normal build works: it writes its tree, reads /usr, runs sh, tar and git, has a /tmp.
    for want in [
        "sh runs",
        "index.html",
        "git runs",
        "usr readable",
        "scratch",
        "home is /tmp",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want:?} in:\n{text}");
    }
    let host = &lab.hosts[0];
    let live = lab.live(host).expect("switched");
    assert_eq!(
        std::fs::read_to_string(live.join("build/out.txt")).expect("built file shipped"),
        format!("built {commit}\n")
    );
}

#[test]
fn a_fork_bomb_a_memory_hog_and_a_hook_that_never_ends_are_stopped_by_the_sandbox() {
    let lab = Lab::new(
        1,
        &[
            ("HIPPO_HOOK_MAX_PROCESSES", "40"),
            ("HIPPO_HOOK_MEMORY_MB", "128"),
        ],
    );
    let config_id = lab.config(json!({}));
    let run_with = |hook: &str, timeout: u64| -> (Value, Vec<Value>) {
        let mut body = lab.config_body(json!({"hook_timeout_secs": timeout}));
        body["hooks"] = json!({"after_checkout": hook});
        let (s, b) = lab
            .hippo
            .put(&format!("/api/release-configs/{config_id}"), &body);
        assert_eq!(s, 200, "{b}");
        let r = lab.request(config_id, "runaway", json!({"branch": "main"}));
        lab.hippo.run_release(r)
    };

    // A fork bomb: the process limit stops it, and the release says so.
    let (release, events) = run_with("for i in $(seq 1 400); do sleep 987.25 & done\nwait\n", 120);
    assert_eq!(release["status"], "failed", "{release}");
    let error = release["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("after_checkout hook exited")
            && error.contains("limit of 40 processes")
            && error.contains("HIPPO_HOOK_MAX_PROCESSES"),
        "{error}\n{events:#?}"
    );
    assert!(
        processes("987.25").is_empty(),
        "the bomb's processes outlived the hook"
    );

    // A memory hog: the memory limit stops it.
    let (release, events) = run_with(
        "x=$(head -c 400000000 /dev/zero | tr '\\0' a)\necho \"got ${#x} bytes\"\n",
        120,
    );
    assert_eq!(release["status"], "failed", "{release}");
    let error = release["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ran out of memory") && error.contains("128 MiB"),
        "{error}\n{events:#?}"
    );
    assert!(
        !output(&events).iter().any(|l| l.starts_with("got ")),
        "{events:#?}"
    );

    // A hook that never ends: the time-out stops it and everything it started.
    let started = std::time::Instant::now();
    let (release, events) = run_with("sleep 986.25 &\nsleep 985.25\n", 3);
    assert_eq!(release["status"], "failed", "{release}");
    let error = release["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("after_checkout hook timed out after 3 s"),
        "{error}\n{events:#?}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        processes("986.25").is_empty() && processes("985.25").is_empty(),
        "the hook's processes outlived its time-out"
    );

    // And the config still releases once the hook is sane again.
    let (release, _) = run_with("echo fine\n", 60);
    assert_eq!(release["status"], "succeeded", "{release}");
}

#[test]
fn a_repository_url_inside_hippos_data_folder_is_refused_naming_repo_url() {
    let lab = Lab::new(1, &[]);
    let data = lab.hippo.data.path().join("data");
    // A real repository cache is there once the lab's config has been fetched.
    let first = lab.config(json!({}));
    let (s, _) = lab
        .hippo
        .get(&format!("/api/release-configs/{first}/git/branches"));
    assert_eq!(s, 200);
    let cache = std::fs::read_dir(data.join("repos"))
        .expect("repository cache")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("a mirror");
    let (_, app) = lab
        .hippo
        .post("/api/apps", &json!({"name": "Thief", "tag": "thief"}));
    let link = lab.hippo.data.path().join("innocent-link");
    std::os::unix::fs::symlink(&data, &link).expect("symlink");
    for url in [
        cache.to_str().expect("utf-8").to_owned(),
        format!("file://{}", cache.display()),
        format!("{}/repos/../master.key", data.display()),
        format!("{}/repos/x", link.display()),
    ] {
        let mut body = lab.config_body(json!({"repo_url": url}));
        body["app_id"] = app["id"].clone();
        let (s, problem) = lab.hippo.post("/api/release-configs", &body);
        assert_eq!(s, 422, "{url}: {problem}");
        assert_eq!(problem["field"], "repo_url", "{problem}");
        assert!(
            problem["message"]
                .as_str()
                .is_some_and(|m| m.contains("data folder")),
            "{problem}"
        );
    }
}
