//! Repository cache and export against fixture repositories built with the git CLI.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hippo_shared::domain::GitRef;
use hippo_worker::git::{GitError, RepoAuth, RepoCache};

const T0: i64 = 1_700_000_000;

fn git_at(dir: &Path, time: i64, args: &[&str]) -> String {
    let date = format!("@{time} +0000");
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Alice Author")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "Carl Committer")
        .env("GIT_COMMITTER_EMAIL", "carl@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_at(dir, T0, args)
}

fn write(path: &Path, content: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn commit(dir: &Path, time: i64, message: &str) -> String {
    git_at(dir, time, &["add", "-A"]);
    git_at(dir, time, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

struct Fixture {
    tmp: tempfile::TempDir,
    /// Bare `main.git`.
    main_url: String,
    /// Non-bare working repository of main (pushes to `main.git`).
    work: PathBuf,
    sub_v1: String,
    sub_v2: String,
    /// c1: first commit (annotated tag v1.0), submodule at sub_v1.
    c1: String,
    /// c2: README v2, only-in-c1.txt removed, submodule at sub_v2.
    c2: String,
    /// c3: head of main (lightweight tag zz-light).
    c3: String,
    /// c4: head of `feature` (branched from c2).
    c4: String,
}

impl Fixture {
    fn cache(&self) -> RepoCache {
        RepoCache::new(self.tmp.path().join("cache"))
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();

    // The submodule: bare sub.git with two commits.
    git(root, &["init", "-q", "--bare", "-b", "main", "sub.git"]);
    git(root, &["init", "-q", "-b", "main", "sub-work"]);
    let sub_work = root.join("sub-work");
    write(&sub_work.join("sub.txt"), "sub v1\n", 0o644);
    let sub_v1 = commit(&sub_work, T0 + 10, "Sub one");
    git(&sub_work, &["push", "-q", "../sub.git", "main"]);

    // The main repository.
    git(root, &["init", "-q", "--bare", "-b", "main", "main.git"]);
    git(root, &["init", "-q", "-b", "main", "work"]);
    let work = root.join("work");
    let main_git = root.join("main.git");
    git(
        &work,
        &["remote", "add", "origin", main_git.to_str().unwrap()],
    );
    write(&work.join("README.md"), "v1\n", 0o644);
    write(&work.join("run.sh"), "#!/bin/sh\necho run\n", 0o755);
    write(&work.join("données é.txt"), "accents\n", 0o644);
    write(&work.join("with space.txt"), "space\n", 0o644);
    write(&work.join("only-in-c1.txt"), "old\n", 0o644);
    write(&work.join("nested/dir/file.txt"), "nested\n", 0o644);
    symlink("README.md", work.join("link")).unwrap();
    git(
        &work,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            "../sub.git",
            "lib/sub",
        ],
    );
    let c1 = commit(&work, T0 + 100, "First commit");
    git_at(
        &work,
        T0 + 100,
        &["tag", "-a", "v1.0", "-m", "Release 1.0", &c1],
    );

    // Submodule moves on to v2, main records it in c2.
    write(&sub_work.join("sub.txt"), "sub v2\n", 0o644);
    let sub_v2 = commit(&sub_work, T0 + 150, "Sub two");
    git(&sub_work, &["push", "-q", "../sub.git", "main"]);
    let sub_in_work = work.join("lib/sub");
    git(&sub_in_work, &["fetch", "-q", "origin"]);
    git(&sub_in_work, &["checkout", "-q", &sub_v2]);
    write(&work.join("README.md"), "v2\n", 0o644);
    fs::remove_file(work.join("only-in-c1.txt")).unwrap();
    let c2 = commit(&work, T0 + 200, "Second commit");

    git(&work, &["checkout", "-q", "-b", "feature"]);
    write(&work.join("feature.txt"), "feature\n", 0o644);
    let c4 = commit(&work, T0 + 250, "Feature work");

    git(&work, &["checkout", "-q", "main"]);
    write(&work.join("c3.txt"), "third\n", 0o644);
    let c3 = commit(&work, T0 + 300, "Third commit\n\nWith a body.");
    git(&work, &["tag", "zz-light", &c3]);

    git(&work, &["push", "-q", "origin", "main", "feature"]);
    git(&work, &["push", "-q", "origin", "--tags"]);

    Fixture {
        main_url: main_git.to_str().unwrap().to_string(),
        tmp,
        work,
        sub_v1,
        sub_v2,
        c1,
        c2,
        c3,
        c4,
    }
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// All paths under `dir`, relative, sorted.
fn tree_of(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn sync_lists_branches_tags_and_commits() {
    let f = fixture();
    let cache = f.cache();
    let dir = cache.sync(&f.main_url, &RepoAuth::None).unwrap();
    assert!(dir.starts_with(f.path("cache")));
    assert!(dir.join("HEAD").is_file(), "bare mirror expected");
    assert_eq!(dir, cache.mirror_dir(&f.main_url));

    let branches = cache.branches(&f.main_url).unwrap();
    let names: Vec<&str> = branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["feature", "main"]);
    assert_eq!(branches[0].commit, f.c4);
    assert_eq!(branches[1].commit, f.c3);
    assert_eq!(branches[1].time, T0 + 300);

    let tags = cache.tags(&f.main_url).unwrap();
    let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["zz-light", "v1.0"], "newest first");
    assert_eq!(tags[1].commit, f.c1, "annotated tag peeled to its commit");
    assert_eq!(tags[1].time, T0 + 100);

    let commits = cache.commits(&f.main_url, "main", 2).unwrap();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0].id, f.c3);
    assert_eq!(commits[0].short_id, f.c3[..7]);
    assert_eq!(commits[0].message, "Third commit");
    assert_eq!(commits[0].author, "Alice Author");
    assert_eq!(commits[0].time, T0 + 300);
    assert_eq!(commits[1].id, f.c2);
    let all = cache.commits(&f.main_url, "main", 100).unwrap();
    let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [&f.c3, &f.c2, &f.c1]);
    let feature = cache.commits(&f.main_url, "feature", 1).unwrap();
    assert_eq!(feature[0].id, f.c4);
    assert!(matches!(
        cache.commits(&f.main_url, "nope", 5),
        Err(GitError::RefNotFound { kind: "branch", .. })
    ));

    // Not synced yet: a clear error.
    let other = f.path("nothing.git");
    assert!(matches!(
        cache.branches(other.to_str().unwrap()),
        Err(GitError::NotSynced { .. })
    ));
}

#[test]
fn resolve_refs() {
    let f = fixture();
    let cache = f.cache();
    cache.sync(&f.main_url, &RepoAuth::None).unwrap();
    let url = f.main_url.as_str();
    assert_eq!(
        cache
            .resolve(url, &GitRef::Branch("feature".into()))
            .unwrap()
            .id,
        f.c4
    );
    assert_eq!(
        cache
            .resolve(url, &GitRef::Branch("main".into()))
            .unwrap()
            .id,
        f.c3
    );
    let tag = cache.resolve(url, &GitRef::Tag("v1.0".into())).unwrap();
    assert_eq!(tag.id, f.c1);
    assert_eq!(tag.message, "First commit");
    assert_eq!(
        cache
            .resolve(url, &GitRef::Tag("zz-light".into()))
            .unwrap()
            .id,
        f.c3
    );
    assert_eq!(
        cache
            .resolve(url, &GitRef::Commit(f.c2[..7].to_string()))
            .unwrap()
            .id,
        f.c2
    );
    assert_eq!(
        cache
            .resolve(url, &GitRef::Commit(f.c1.clone()))
            .unwrap()
            .id,
        f.c1
    );
    match cache.resolve(url, &GitRef::Branch("missing".into())) {
        Err(GitError::RefNotFound { kind, name }) => {
            assert_eq!(kind, "branch");
            assert_eq!(name, "missing");
        }
        other => panic!("expected RefNotFound, got {other:?}"),
    }
    assert!(matches!(
        cache.resolve(url, &GitRef::Tag("v9".into())),
        Err(GitError::RefNotFound { kind: "tag", .. })
    ));
    assert!(matches!(
        cache.resolve(url, &GitRef::Commit("0000000000".into())),
        Err(GitError::RefNotFound { kind: "commit", .. })
    ));
    assert!(matches!(
        cache.resolve(url, &GitRef::Commit("abc".into())),
        Err(GitError::InvalidCommitId(_))
    ));
    // 41 hex digits: refused like the API refuses it (the two rules are one: `GitRef::commit`).
    assert!(matches!(
        cache.resolve(url, &GitRef::Commit("a".repeat(41))),
        Err(GitError::InvalidCommitId(_))
    ));
    // A commit picked from a branch: the tip or an ancestor is on it; another branch's is not.
    assert_eq!(
        cache.resolve_on_branch(url, &f.c3, "main").unwrap().id,
        f.c3
    );
    assert_eq!(
        cache
            .resolve_on_branch(url, &f.c2[..8], "feature")
            .unwrap()
            .id,
        f.c2
    );
    assert_eq!(
        cache.resolve_on_branch(url, &f.c1, "main").unwrap().id,
        f.c1
    );
    match cache.resolve_on_branch(url, &f.c4, "main") {
        Err(GitError::NotOnBranch { commit, branch }) => {
            assert_eq!((commit.as_str(), branch.as_str()), (f.c4.as_str(), "main"));
        }
        other => panic!("expected NotOnBranch, got {other:?}"),
    }
    assert!(matches!(
        cache.resolve_on_branch(url, &f.c3, "missing"),
        Err(GitError::RefNotFound { kind: "branch", .. })
    ));
    assert!(matches!(
        cache.resolve(url, &GitRef::Branch("../etc".into())),
        Err(GitError::RefNotFound { .. })
    ));
}

#[test]
fn export_old_commit_with_submodule() {
    let f = fixture();
    let cache = f.cache();
    cache.sync(&f.main_url, &RepoAuth::None).unwrap();

    let dest = f.path("out-c1");
    let info = cache
        .export(&f.main_url, &RepoAuth::None, &f.c1, &dest)
        .unwrap();
    assert_eq!(info.submodules, 1);
    assert_eq!(
        tree_of(&dest),
        [
            ".gitmodules",
            "README.md",
            "données é.txt",
            "lib",
            "lib/sub",
            "lib/sub/sub.txt",
            "link",
            "nested",
            "nested/dir",
            "nested/dir/file.txt",
            "only-in-c1.txt",
            "run.sh",
            "with space.txt",
        ]
    );
    // 8 regular files (.gitmodules and the submodule's included) + 1 symlink
    assert_eq!(info.files, 9);
    assert_eq!(fs::read_to_string(dest.join("README.md")).unwrap(), "v1\n");
    assert_eq!(
        fs::read_to_string(dest.join("lib/sub/sub.txt")).unwrap(),
        "sub v1\n",
        "submodule at the commit recorded in c1"
    );
    assert_eq!(mode_of(&dest.join("run.sh")), 0o755);
    assert_eq!(mode_of(&dest.join("README.md")), 0o644);
    assert!(
        fs::symlink_metadata(dest.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_link(dest.join("link")).unwrap(),
        Path::new("README.md")
    );
    assert_eq!(
        fs::read_to_string(dest.join("données é.txt")).unwrap(),
        "accents\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("with space.txt")).unwrap(),
        "space\n"
    );

    // The head of main: different tree, submodule at v2.
    let dest3 = f.path("out-c3");
    cache
        .export(&f.main_url, &RepoAuth::None, &f.c3[..10], &dest3)
        .unwrap();
    assert_eq!(fs::read_to_string(dest3.join("README.md")).unwrap(), "v2\n");
    assert_eq!(
        fs::read_to_string(dest3.join("lib/sub/sub.txt")).unwrap(),
        "sub v2\n"
    );
    assert!(dest3.join("c3.txt").is_file());
    assert!(!dest3.join("only-in-c1.txt").exists());
    assert!(!dest3.join("feature.txt").exists());
    assert!(
        tree_of(&dest3)
            .iter()
            .all(|p| !p.split('/').any(|c| c == ".git"))
    );

    // The submodule has its own mirror in the cache.
    let sub_url = f.path("sub.git").to_str().unwrap().to_string();
    let sub_branches = cache.branches(&sub_url).unwrap();
    assert_eq!(sub_branches[0].commit, f.sub_v2);
    assert_eq!(
        cache
            .resolve(&sub_url, &GitRef::Commit(f.sub_v1.clone()))
            .unwrap()
            .message,
        "Sub one"
    );

    // The destination must be empty.
    let err = cache
        .export(&f.main_url, &RepoAuth::None, &f.c1, &dest)
        .unwrap_err();
    assert!(matches!(err, GitError::Destination { .. }), "{err:?}");
    // An empty existing directory is fine.
    let empty = f.path("empty-dest");
    fs::create_dir(&empty).unwrap();
    cache
        .export(&f.main_url, &RepoAuth::None, &f.c2, &empty)
        .unwrap();
    assert_eq!(
        fs::read_to_string(empty.join("lib/sub/sub.txt")).unwrap(),
        "sub v2\n"
    );
    // Unknown commit.
    let err = cache
        .export(
            &f.main_url,
            &RepoAuth::None,
            "0123456789abcdef",
            &f.path("x"),
        )
        .unwrap_err();
    assert!(
        matches!(err, GitError::RefNotFound { kind: "commit", .. }),
        "{err:?}"
    );
}

#[test]
fn export_without_prior_sync() {
    let f = fixture();
    let cache = f.cache();
    let dest = f.path("out");
    let info = cache
        .export(&f.main_url, &RepoAuth::None, &f.c4, &dest)
        .unwrap();
    assert!(info.files > 0);
    assert!(dest.join("feature.txt").is_file());
    assert_eq!(
        fs::read_to_string(dest.join("lib/sub/sub.txt")).unwrap(),
        "sub v2\n"
    );
}

#[test]
fn second_sync_sees_new_commits_and_prunes() {
    let f = fixture();
    let cache = f.cache();
    cache.sync(&f.main_url, &RepoAuth::None).unwrap();
    let main = GitRef::Branch("main".into());
    assert_eq!(cache.resolve(&f.main_url, &main).unwrap().id, f.c3);

    write(&f.work.join("c5.txt"), "five\n", 0o644);
    let c5 = commit(&f.work, T0 + 500, "Fifth commit");
    git(&f.work, &["tag", "v2.0", &c5]);
    git(&f.work, &["push", "-q", "origin", "main", "v2.0"]);
    git(&f.work, &["push", "-q", "origin", "--delete", "feature"]);

    // Nothing changes until the next sync.
    assert_eq!(cache.resolve(&f.main_url, &main).unwrap().id, f.c3);
    cache.sync(&f.main_url, &RepoAuth::None).unwrap();
    assert_eq!(cache.resolve(&f.main_url, &main).unwrap().id, c5);
    assert_eq!(cache.tags(&f.main_url).unwrap()[0].name, "v2.0");
    let names: Vec<String> = cache
        .branches(&f.main_url)
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["main"], "deleted branch pruned");
    // A moved (force-pushed) branch follows too.
    git(
        &f.work,
        &[
            "push",
            "-q",
            "-f",
            "origin",
            &format!("{}:refs/heads/main", f.c1),
        ],
    );
    cache.sync(&f.main_url, &RepoAuth::None).unwrap();
    assert_eq!(cache.resolve(&f.main_url, &main).unwrap().id, f.c1);
}

#[test]
fn file_url_and_non_bare_path_work() {
    let f = fixture();
    let cache = f.cache();
    let file_url = format!("file://{}", f.main_url);
    cache.sync(&file_url, &RepoAuth::None).unwrap();
    assert_eq!(
        cache
            .resolve(&file_url, &GitRef::Tag("v1.0".into()))
            .unwrap()
            .id,
        f.c1
    );
    let dest = f.path("out-file");
    let info = cache
        .export(&file_url, &RepoAuth::None, &f.c1, &dest)
        .unwrap();
    assert_eq!(info.submodules, 1);
    assert_eq!(
        fs::read_to_string(dest.join("lib/sub/sub.txt")).unwrap(),
        "sub v1\n"
    );
    // file:// and plain paths are different cache keys.
    assert_ne!(cache.mirror_dir(&file_url), cache.mirror_dir(&f.main_url));

    // A non-bare repository path works as a URL (its branches, not its remotes').
    let work_url = f.work.to_str().unwrap();
    cache.sync(work_url, &RepoAuth::None).unwrap();
    let names: Vec<String> = cache
        .branches(work_url)
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["feature", "main"]);
    assert_eq!(
        cache
            .resolve(work_url, &GitRef::Branch("feature".into()))
            .unwrap()
            .id,
        f.c4
    );
}

#[test]
fn concurrent_syncs_are_serialised() {
    let f = fixture();
    let cache = Arc::new(f.cache());
    let url = f.main_url.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cache = Arc::clone(&cache);
            let url = url.clone();
            std::thread::spawn(move || cache.sync(&url, &RepoAuth::None).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(cache.branches(&url).unwrap().len(), 2);
    // Exports in parallel (same cache, different destinations).
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let cache = Arc::clone(&cache);
            let url = url.clone();
            let dest = f.path(&format!("par-{i}"));
            let c1 = f.c1.clone();
            std::thread::spawn(move || cache.export(&url, &RepoAuth::None, &c1, &dest))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap().submodules, 1);
    }
}

#[test]
fn fetch_errors_do_not_leak_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = RepoCache::new(tmp.path().join("cache"));
    let auth = RepoAuth::Token {
        username: "deploy".into(),
        token: "tok-s3cr3t-value".into(),
    };
    // Nothing listens on port 1: connection refused, quickly.
    let url = "https://deploy:tok-s3cr3t-value@127.0.0.1:1/owner/repo.git";
    let err = cache.sync(url, &auth).unwrap_err();
    let text = format!("{err} / {err:?}");
    eprintln!("{text}");
    assert!(matches!(err, GitError::Fetch { .. }), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(
        text.contains("https://127.0.0.1:1/owner/repo.git"),
        "{text}"
    );
    assert!(!format!("{auth:?}").contains("s3cr3t"));
    // A failed first clone leaves no mirror behind.
    assert!(matches!(
        cache.branches(url),
        Err(GitError::NotSynced { .. })
    ));

    let missing = tmp.path().join("does-not-exist.git");
    let err = cache
        .sync(missing.to_str().unwrap(), &RepoAuth::None)
        .unwrap_err();
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");
}

/// A throwaway sshd on 127.0.0.1 that accepts one key for the current user. `None` when sshd
/// cannot be started here (the test is then skipped).
struct Sshd {
    child: std::process::Child,
    port: u16,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(dir: &Path, authorized_pub: &str) -> Option<Sshd> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return None;
    }
    // sshd insists on its privilege separation directory.
    if fs::create_dir_all("/run/sshd").is_err() {
        return None;
    }
    let host_key = dir.join("host_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&host_key)
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    let authorized = dir.join("authorized_keys");
    write(&authorized, authorized_pub, 0o600);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    // An empty HOME for the session: the user's real shell rc files may be slow or noisy (on
    // one dev machine root's .bashrc waited 60 s for a pyenv lock on every connection).
    let home = dir.join("home");
    fs::create_dir_all(&home).ok()?;
    let config = dir.join("sshd_config");
    write(
        &config,
        &format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n\
             UsePAM no\nPidFile {}\nSetEnv HOME={}\n",
            host_key.display(),
            authorized.display(),
            dir.join("sshd.pid").display(),
            home.display()
        ),
        0o600,
    );
    let child = Command::new(sshd)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let user = String::from_utf8(Command::new("id").arg("-un").output().ok()?.stdout)
        .ok()?
        .trim()
        .to_string();
    let server = Sshd { child, port, user };
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

fn keygen(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let private = fs::read_to_string(&path).unwrap();
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let public = fs::read_to_string(path.with_extension("pub")).unwrap();
    (private, public)
}

#[test]
fn ssh_url_with_key_from_memory() {
    let f = fixture();
    let keys = f.path("keys");
    fs::create_dir_all(&keys).unwrap();
    let (private, public) = keygen(&keys, "deploy");
    let (wrong_private, _) = keygen(&keys, "wrong");
    let Some(sshd) = start_sshd(&keys, &public) else {
        eprintln!("sshd not available: skipping the SSH test");
        return;
    };
    let url = format!("ssh://{}@127.0.0.1:{}{}", sshd.user, sshd.port, f.main_url);
    let cache = f.cache();
    let auth = RepoAuth::SshKey {
        username: "git".into(),
        private_key_openssh: private,
    };
    cache.sync(&url, &auth).unwrap();
    assert_eq!(
        cache
            .resolve(&url, &GitRef::Branch("main".into()))
            .unwrap()
            .id,
        f.c3
    );
    // The submodule (relative URL) is fetched over SSH with the same key.
    let dest = f.path("out-ssh");
    let info = cache.export(&url, &auth, &f.c1, &dest).unwrap();
    assert_eq!(info.submodules, 1);
    assert_eq!(
        fs::read_to_string(dest.join("lib/sub/sub.txt")).unwrap(),
        "sub v1\n"
    );
    let sub_url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        f.path("sub.git").display()
    );
    assert!(cache.mirror_dir(&sub_url).is_dir());

    // A rejected key fails (and does not loop forever), without the key in the message.
    let bad = RepoAuth::SshKey {
        username: "git".into(),
        private_key_openssh: wrong_private.clone(),
    };
    let other_cache = RepoCache::new(f.path("cache2"));
    let started = std::time::Instant::now();
    let err = other_cache.sync(&url, &bad).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    eprintln!("rejected key: {err} after {:?}", started.elapsed());
    // No credentials at all.
    let err = other_cache.sync(&url, &RepoAuth::None).unwrap_err();
    eprintln!("no credentials: {err}");
    assert!(matches!(err, GitError::Fetch { .. }), "{err:?}");
}

/// Everything an export leaves under `dir`: each path with its type, mode and content (or
/// link target), sorted.
fn snapshot(dir: &Path) -> Vec<String> {
    tree_of(dir)
        .into_iter()
        .map(|rel| {
            let p = dir.join(&rel);
            let meta = fs::symlink_metadata(&p).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                "dir".to_owned()
            } else {
                format!("file {:?}", fs::read(&p).unwrap())
            };
            format!("{rel} {:o} {what}", mode_of(&p))
        })
        .collect()
}

/// An empty work repository (`<tmp>/work`, branch main) for the kept-tree tests.
fn work_repo(tmp: &Path) -> PathBuf {
    let work = tmp.join("work");
    fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    work
}

/// The work repository's mirror in a cache under `tmp`, and a kept tree (`<tmp>/kept`)
/// exported at `commit`: (cache, url, kept).
fn kept_at(tmp: &Path, work: &Path, commit: &str) -> (RepoCache, String, PathBuf) {
    let cache = RepoCache::new(tmp.join("cache"));
    let url = work.to_str().unwrap().to_owned();
    cache.sync(&url, &RepoAuth::None).unwrap();
    let kept = tmp.join("kept");
    cache.export(&url, &RepoAuth::None, commit, &kept).unwrap();
    (cache, url, kept)
}

/// A kept tree brought from one commit to another writes only what differs and ends exactly
/// as a fresh export of the new commit: files removed (and the folders that leaves empty), a
/// file changed, an exec bit, a file turned into a symlink and a symlink into a file, a file
/// turned into a folder and a folder into a file, new nested files. A change to a submodule
/// is refused (export afresh), and so is a tree that is not as the old commit left it.
#[test]
fn a_kept_tree_is_updated_to_exactly_what_a_fresh_export_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let work = work_repo(tmp.path());
    write(&work.join("README.md"), "v1\n", 0o644);
    write(&work.join("tool.sh"), "#!/bin/sh\n", 0o644);
    write(&work.join("gone/deep/only.txt"), "bye\n", 0o644);
    write(&work.join("becomes-link.txt"), "file\n", 0o644);
    symlink("README.md", work.join("becomes-file")).unwrap();
    write(&work.join("becomes-dir"), "file\n", 0o644);
    write(&work.join("dir-becomes-file/a.txt"), "a\n", 0o644);
    write(&work.join("same/unchanged.txt"), "same\n", 0o644);
    let c1 = commit(&work, T0, "one");

    fs::write(work.join("README.md"), "v2\n").unwrap();
    fs::set_permissions(work.join("tool.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_dir_all(work.join("gone")).unwrap();
    fs::remove_file(work.join("becomes-link.txt")).unwrap();
    symlink("same/unchanged.txt", work.join("becomes-link.txt")).unwrap();
    fs::remove_file(work.join("becomes-file")).unwrap();
    write(&work.join("becomes-file"), "now a file\n", 0o755);
    fs::remove_file(work.join("becomes-dir")).unwrap();
    write(&work.join("becomes-dir/inside.txt"), "inside\n", 0o644);
    fs::remove_dir_all(work.join("dir-becomes-file")).unwrap();
    write(&work.join("dir-becomes-file"), "file now\n", 0o644);
    write(&work.join("new/a/b/c.txt"), "new\n", 0o644);
    let c2 = commit(&work, T0 + 10, "two");

    let (cache, url, kept) = kept_at(tmp.path(), &work, &c1);
    let url = url.as_str();
    let unchanged = fs::metadata(kept.join("same/unchanged.txt")).unwrap();

    let info = cache.update_export(url, &c1, &c2, &kept).unwrap().unwrap();
    let fresh = tmp.path().join("fresh");
    cache.export(url, &RepoAuth::None, &c2, &fresh).unwrap();
    assert_eq!(snapshot(&kept), snapshot(&fresh));
    assert!(!kept.join("gone").exists());
    // Only the differences were written: the unchanged file is the same file.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(kept.join("same/unchanged.txt")).unwrap().ino(),
        unchanged.ino()
    );
    assert_eq!(info.removed, 7, "{info:?}");
    assert_eq!(info.written, 7, "{info:?}");

    // And back again.
    cache.update_export(url, &c2, &c1, &kept).unwrap().unwrap();
    let fresh1 = tmp.path().join("fresh1");
    cache.export(url, &RepoAuth::None, &c1, &fresh1).unwrap();
    assert_eq!(snapshot(&kept), snapshot(&fresh1));

    // A tree that is not what the old commit left: refused, not patched over.
    fs::remove_file(kept.join("README.md")).unwrap();
    assert!(cache.update_export(url, &c1, &c2, &kept).unwrap().is_none());
    // An unknown commit: refused.
    assert!(
        cache
            .update_export(url, &"0".repeat(40), &c2, &fresh1)
            .unwrap()
            .is_none()
    );
}

/// A change to a submodule is not patched: the caller exports afresh.
#[test]
fn a_kept_tree_is_not_updated_across_a_submodule_change() {
    let f = fixture();
    let cache = f.cache();
    cache.sync(&f.main_url, &RepoAuth::None).unwrap();
    let kept = f.path("kept-sub");
    cache
        .export(&f.main_url, &RepoAuth::None, &f.c1, &kept)
        .unwrap();
    assert!(
        cache
            .update_export(&f.main_url, &f.c1, &f.c2, &kept)
            .unwrap()
            .is_none()
    );
}

/// A change to `.gitmodules` alone (a submodule's URL) is not patched either: a fresh export
/// would fetch the submodule from the new URL (or fail), an update in place would not notice.
#[test]
fn a_kept_tree_is_not_updated_across_a_gitmodules_change() {
    let tmp = tempfile::tempdir().unwrap();
    let work = work_repo(tmp.path());
    write(&work.join("README.md"), "v1\n", 0o644);
    write(
        &work.join(".gitmodules"),
        "[submodule \"lib\"]\n\tpath = lib\n\turl = ../lib.git\n",
        0o644,
    );
    let c1 = commit(&work, T0, "one");
    fs::write(
        work.join(".gitmodules"),
        "[submodule \"lib\"]\n\tpath = lib\n\turl = ../other.git\n",
    )
    .unwrap();
    let c2 = commit(&work, T0 + 10, "two");

    let (cache, url, kept) = kept_at(tmp.path(), &work, &c1);
    let url = url.as_str();
    assert!(cache.update_export(url, &c1, &c2, &kept).unwrap().is_none());
}
