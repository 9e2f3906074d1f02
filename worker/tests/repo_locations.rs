//! A config (or a submodule of its repository) that names a local path inside Hippo's data
//! folder would read another config's repository cache: refused.
#![allow(clippy::unwrap_used)]
use hippo_worker::git::{RepoAuth, RepoCache};
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "A")
        .env("GIT_COMMITTER_EMAIL", "a@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_repository_or_submodule_inside_the_data_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    // "Another config's mirror": a repository inside the data folder.
    std::fs::create_dir_all(data.join("repos")).unwrap();
    git(
        &data.join("repos"),
        &["init", "-q", "--bare", "-b", "main", "victim.git"],
    );
    git(root, &["init", "-q", "-b", "main", "victim-work"]);
    std::fs::write(root.join("victim-work/secret.txt"), "top secret\n").unwrap();
    git(&root.join("victim-work"), &["add", "-A"]);
    git(&root.join("victim-work"), &["commit", "-q", "-m", "secret"]);
    let victim = data.join("repos/victim.git");
    git(
        &root.join("victim-work"),
        &["push", "-q", victim.to_str().unwrap(), "main"],
    );

    // The attacker's repository, outside: its submodule is the victim.
    git(root, &["init", "-q", "-b", "main", "app"]);
    let app = root.join("app");
    std::fs::write(app.join("index.html"), "hi\n").unwrap();
    git(
        &app,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            victim.to_str().unwrap(),
            "lib/victim",
        ],
    );
    git(&app, &["commit", "-q", "-m", "with submodule"]);
    let commit = head(&app);

    let cache = RepoCache::new(data.join("repos")).refusing_local_paths_in(vec![data.clone()]);
    let auth = RepoAuth::None;

    // Directly, by path and as file://, also through a link.
    std::os::unix::fs::symlink(&data, root.join("innocent")).unwrap();
    for url in [
        victim.to_str().unwrap().to_owned(),
        format!("file://{}", victim.display()),
        format!("{}/innocent/repos/victim.git", root.display()),
    ] {
        let e = cache.sync(&url, &auth).unwrap_err().to_string();
        assert!(e.contains("data folder"), "{url}: {e}");
    }

    // As a submodule of an allowed repository: the export fails, nothing of it is written.
    let url = app.to_str().unwrap();
    cache.sync(url, &auth).unwrap();
    let dest = root.join("out");
    std::fs::create_dir_all(&dest).unwrap();
    let e = cache
        .export(url, &auth, &commit, &dest)
        .unwrap_err()
        .to_string();
    assert!(e.contains("data folder"), "{e}");
    assert!(!dest.join("lib/victim/secret.txt").exists());

    // Without the refusal (how it was), the secret would have been exported.
    let open = RepoCache::new(root.join("other-cache"));
    open.sync(url, &auth).unwrap();
    let dest2 = root.join("out2");
    std::fs::create_dir_all(&dest2).unwrap();
    open.export(url, &auth, &commit, &dest2).unwrap();
    assert!(dest2.join("lib/victim/secret.txt").exists());
}
