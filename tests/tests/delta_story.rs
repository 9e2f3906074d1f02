//! Issue 11: a redeploy sends each host only what changed since the version it serves (hard
//! links or copies for the rest), a host whose base is gone gets the whole archive, hosts with
//! `zstd` get zstd and the others gzip — and every host ends with exactly the same tree.
use hippo_e2e::git_fixture::git;
use hippo_e2e::hippo::Options;
use hippo_e2e::lab::{Lab, VERSIONS, host_path};
use hippo_e2e::sshd::TestHost;
use hippo_e2e::tree::{self, Node};
use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Each host's "prepared" message (`web-1: delta: …` / `web-1: full: …`), in host order.
fn shipped(events: &[Value]) -> Vec<String> {
    let mut m: Vec<String> = events
        .iter()
        .filter(|e| e["stage"] == "prepare" && e["status"] == "succeeded")
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect();
    m.sort();
    m
}

fn has_message(events: &[Value], needle: &str) -> bool {
    events
        .iter()
        .any(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
}

/// Commits everything in the work tree and pushes.
fn commit_all(lab: &Lab, message: &str) {
    let w = &lab.repo.work;
    git(w, &["add", "-A"]).expect("add");
    git(w, &["commit", "-qm", message]).expect("commit");
    git(w, &["push", "-q", "origin", "main"]).expect("push");
}

fn release(lab: &Lab, config: i64, name: &str) -> (Value, Vec<Value>) {
    let id = lab.request(config, name, json!({"branch": "main"}));
    let (r, events) = lab.hippo.run_release(id);
    assert_eq!(
        r["status"],
        "succeeded",
        "{r}\n{events:#?}\n{}",
        lab.hippo.log()
    );
    (r, events)
}

/// Waits for the spare a host makes after a release beside `version` (its folder on the host's
/// side): `<versions>/.next-<name>`; the spare folder's inode.
fn wait_for_spare(version: &Path) -> u64 {
    let name = version.file_name().expect("name").to_string_lossy();
    let spare = version.with_file_name(format!(".next-{name}"));
    let started = std::time::Instant::now();
    loop {
        if let Ok(m) = std::fs::metadata(&spare) {
            return m.ino();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no spare {} after 30 s",
            spare.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn live_tree(lab: &Lab, host: &TestHost) -> std::collections::BTreeMap<String, Node> {
    let live = lab.live(host).expect("a live version");
    tree::snapshot(&live).expect("snapshot")
}

/// Host 1 has zstd, host 2 does not (`/usr/bin/zstd` hidden): host 1 gets zstd archives and
/// host 2 gzip, and both trees are identical. The second release is a delta to host 1 (a
/// removed file, a file turned into a symlink, an exec bit, an empty directory, all exact),
/// while host 2, whose live version was deleted by hand, gets the full archive.
#[test]
fn a_redeploy_sends_only_changes_and_a_host_without_its_base_or_zstd_still_ends_identical() {
    let mut lab = Lab::with_hosts(2, Options::from_env(&[]), |i, key| {
        if i == 2 {
            TestHost::start_without(i, key, &["/usr/bin/zstd"])
        } else {
            TestHost::start(i, key)
        }
    });
    let w = lab.repo.work.clone();
    std::fs::write(w.join("to-remove.txt"), "bye\n").expect("write");
    std::fs::write(w.join("to-link.txt"), "becomes a link\n").expect("write");
    std::fs::write(w.join("tool.sh"), "#!/bin/sh\necho tool\n").expect("write");
    // 512 KiB that does not compress: the full archive is big, a delta is not.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let blob: Vec<u8> = (0..512 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(w.join("bin/blob.bin"), blob).expect("write");
    for i in 0..50 {
        std::fs::write(
            w.join(format!("bin/data-{i}.txt")),
            format!("unchanged {i}\n"),
        )
        .expect("write");
    }
    commit_all(&lab, "files for the delta");
    // An empty directory (Git keeps none): made by the after-checkout hook, from the second
    // release on.
    let config = lab.config(json!({
        "hooks": {"after_checkout": "if [ -f make-empty-dir ]; then mkdir -p cache/empty; fi\n"},
    }));

    let (r1, events) = release(&lab, config, "first");
    let made_the_first_copy = lab.hippo.worker_of(&events);
    let got = shipped(&events);
    assert!(got[0].starts_with("web-1: full: "), "{got:?}");
    assert!(got[0].ends_with("(zstd)"), "{got:?}");
    assert!(got[1].starts_with("web-2: full: "), "{got:?}");
    assert!(got[1].ends_with("(gzip)"), "{got:?}");
    assert_eq!(
        live_tree(&lab, &lab.hosts[0]),
        live_tree(&lab, &lab.hosts[1])
    );
    let first = lab.live(&lab.hosts[0]).expect("live");
    let first_tree = live_tree(&lab, &lab.hosts[0]);
    // After the release each host makes, in the background, the spare of its new live version:
    // the next delta starts from it instead of linking every file then.
    let spare = wait_for_spare(&first);

    // The changes a delta must reproduce exactly.
    std::fs::remove_file(w.join("to-remove.txt")).expect("rm");
    std::fs::remove_file(w.join("to-link.txt")).expect("rm");
    std::os::unix::fs::symlink("index.html", w.join("to-link.txt")).expect("symlink");
    std::fs::set_permissions(w.join("tool.sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::write(w.join("make-empty-dir"), "").expect("write");
    std::fs::write(w.join("index.html"), "<h1>v2</h1>\n").expect("write");
    commit_all(&lab, "second");
    // Host 2's live version is deleted by hand (its manifest stays).
    let gone = lab.live(&lab.hosts[1]).expect("live");
    std::fs::remove_dir_all(&gone).expect("rm live version");

    let (r, events) = release(&lab, config, "second");
    let got = shipped(&events);
    assert!(got[0].starts_with("web-1: delta: 3 files, "), "{got:?}");
    assert!(got[0].contains("(zstd, "), "{got:?}");
    assert!(got[1].starts_with("web-2: full: "), "{got:?}");
    assert!(got[1].ends_with("(gzip)"), "{got:?}");
    assert!(
        has_message(&events, "web-2: version ") && has_message(&events, "is gone from the host"),
        "{events:#?}"
    );
    // Bytes: the delta is a small part of the full archive.
    let hosts = r["hosts"].as_array().expect("hosts");
    let bytes = |name: &str| {
        hosts
            .iter()
            .find(|h| h["host_name"] == name)
            .and_then(|h| h["bytes_sent"].as_u64())
            .unwrap_or_else(|| panic!("{name}: {r}"))
    };
    assert!(bytes("web-1") * 10 < bytes("web-2"), "{r}");

    // Host 1's new version is its spare, grown into the second version (same folder).
    let second = lab.live(&lab.hosts[0]).expect("live");
    assert_eq!(
        std::fs::metadata(&second).expect("stat").ino(),
        spare,
        "host 1's second version was not made from its spare"
    );
    wait_for_spare(&second);

    let one = live_tree(&lab, &lab.hosts[0]);
    assert_eq!(one, live_tree(&lab, &lab.hosts[1]));
    assert!(!one.contains_key("to-remove.txt"), "{one:?}");
    assert_eq!(
        one.get("to-link.txt"),
        Some(&Node::Link("index.html".into()))
    );
    assert!(matches!(
        one.get("tool.sh"),
        Some(Node::File { mode: 0o755, .. })
    ));
    assert_eq!(one.get("cache/empty"), Some(&Node::Dir));
    assert!(
        matches!(one.get("index.html"), Some(Node::File { content, .. }) if content == b"<h1>v2</h1>\n")
    );
    // Unchanged files are hard links to the first version's; changed ones are not.
    let second = lab.live(&lab.hosts[0]).expect("live");
    let ino = |p: &Path| std::fs::metadata(p).expect("stat").ino();
    assert_eq!(
        ino(&second.join("bin/data-7.txt")),
        ino(&first.join("bin/data-7.txt"))
    );
    assert_ne!(
        ino(&second.join("index.html")),
        ino(&first.join("index.html"))
    );
    assert_eq!(
        std::fs::read_to_string(first.join("index.html")).expect("read"),
        "<h1>v1</h1>\n",
        "the first version is untouched"
    );
    // Each version has its manifest beside it.
    let versions = host_path(&lab.hosts[0], VERSIONS);
    let name = second
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let manifest =
        std::fs::read_to_string(versions.join(format!(".{name}.hippo.json"))).expect("manifest");
    assert!(manifest.contains("\"shipped\":\"delta\""), "{manifest}");

    // The first version is gone from both hosts now (host 2's by hand above; host 1's here):
    // a rollback to it sends the kept copy, zstd to host 1 and gzip to host 2, which has no
    // zstd, and both serve exactly the first tree again.
    std::fs::remove_dir_all(&first).expect("rm first version");
    // In a cluster, the worker that made the first version's copy stops (it finishes what it
    // runs): the rollback runs on the other one, which finds the copy all the same, in the
    // artifact store the workers share (HIPPO_ARTIFACTS_DIR).
    if let Some(i) = made_the_first_copy {
        lab.hippo.signal_worker(i, "TERM");
        assert!(
            lab.hippo.wait_worker(i, Duration::from_secs(60)).is_some(),
            "worker {i} did not stop"
        );
    }
    let v1 = r1["version"].as_str().expect("version");
    let rb = lab.hippo.ok(
        "/api/releases",
        &json!({"config_id": config, "name": "back to the first", "kind": "rollback", "version": v1}),
        201,
    );
    let (rolled, events) = lab.hippo.run_release(rb["id"].as_i64().expect("id"));
    assert_eq!(rolled["status"], "succeeded", "{rolled}\n{events:#?}");
    for host in ["web-1", "web-2"] {
        assert!(
            has_message(
                &events,
                &format!("{host}: version {v1} is gone, sending it again")
            ),
            "{events:#?}"
        );
    }
    assert_eq!(live_tree(&lab, &lab.hosts[0]), first_tree);
    assert_eq!(live_tree(&lab, &lab.hosts[1]), first_tree);
}

/// A before-release hook that edits files in place: with hard links, appending to a changed
/// file leaves the live version's file as it was (a changed file is always a new file); with
/// `copy`, appending to an unchanged file does too.
#[test]
fn hooks_that_edit_files_in_place_never_touch_the_live_version_for_changed_files_or_in_copy_mode() {
    let lab = Lab::new(1, &[]);
    let w = lab.repo.work.clone();
    std::fs::write(w.join("settings.txt"), "setting=1\n").expect("write");
    commit_all(&lab, "settings");
    // The hook edits index.html when `a1` ships, settings.txt when `a2` does.
    let hook = "if [ -f a1 ]; then echo hooked >> index.html; fi\n\
                if [ -f a2 ]; then echo hooked >> settings.txt; fi\n";
    let config = lab.config(json!({"hooks": {"before_release": hook}}));
    let (_, got) = lab.hippo.get(&format!("/api/release-configs/{config}"));
    assert_eq!(got["delta"], "hardlink", "the default: {got}");
    release(&lab, config, "first");
    let first = lab.live(&lab.hosts[0]).expect("live");
    let read = |p: &Path| std::fs::read_to_string(p).expect("read");

    std::fs::write(w.join("a1"), "").expect("write");
    std::fs::write(w.join("index.html"), "<h1>v2</h1>\n").expect("write");
    commit_all(&lab, "second");
    let (_, events) = release(&lab, config, "second (hard links)");
    let got = shipped(&events);
    assert!(
        got[0].contains(": delta: ") && got[0].contains("hard-linked"),
        "{got:?}"
    );
    let second = lab.live(&lab.hosts[0]).expect("live");
    assert_eq!(read(&second.join("index.html")), "<h1>v2</h1>\nhooked\n");
    assert_eq!(
        read(&first.join("index.html")),
        "<h1>v1</h1>\n",
        "a changed file is new"
    );

    let (s, body) = lab.hippo.put(
        &format!("/api/release-configs/{config}"),
        &lab.config_body(json!({"delta": "copy", "hooks": {"before_release": hook}})),
    );
    assert_eq!((s, &body["delta"]), (200, &json!("copy")), "{body}");
    std::fs::remove_file(w.join("a1")).expect("rm");
    std::fs::write(w.join("a2"), "").expect("write");
    std::fs::write(w.join("index.html"), "<h1>v3</h1>\n").expect("write");
    commit_all(&lab, "third");
    let (_, events) = release(&lab, config, "third (copies)");
    let got = shipped(&events);
    assert!(
        got[0].contains(": delta: ") && got[0].contains("copied"),
        "{got:?}"
    );
    let third = lab.live(&lab.hosts[0]).expect("live");
    assert_eq!(read(&third.join("settings.txt")), "setting=1\nhooked\n");
    assert_eq!(
        read(&second.join("settings.txt")),
        "setting=1\n",
        "copy mode"
    );
    assert_eq!(read(&third.join("index.html")), "<h1>v3</h1>\n");
}
