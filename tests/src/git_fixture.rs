//! A real Git repository made with the `git` CLI: several commits on `main`, a branch, tags, a
//! submodule with a relative URL, a file with a space and a non-ASCII name, an executable file
//! and a symlink.
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct GitFixture {
    _dir: tempfile::TempDir,
    /// The bare repository Hippo releases from.
    pub bare: PathBuf,
    /// A working clone used to make commits.
    pub work: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "protocol.file.allow=always",
            "-c",
            "user.name=Test Author",
            "-c",
            "user.email=author@example.com",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .with_context(|| format!("git {args:?}"))?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl GitFixture {
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("hippo-git-").tempdir()?;
        let root = dir.path();
        // The submodule: its own bare repo beside the main one (relative URL ../lib.git).
        let sub_work = root.join("lib-work");
        std::fs::create_dir(&sub_work)?;
        git(&sub_work, &["init", "-q"])?;
        std::fs::write(sub_work.join("lib.txt"), "library v1\n")?;
        git(&sub_work, &["add", "."])?;
        git(&sub_work, &["commit", "-qm", "lib v1"])?;
        git(root, &["clone", "-q", "--bare", "lib-work", "lib.git"])?;

        let work = root.join("work");
        std::fs::create_dir(&work)?;
        git(&work, &["init", "-q"])?;
        std::fs::create_dir_all(work.join("docs"))?;
        std::fs::create_dir_all(work.join("bin"))?;
        std::fs::write(work.join("index.html"), "<h1>v1</h1>\n")?;
        std::fs::write(work.join("docs/guide.md"), "docs are excluded\n")?;
        std::fs::write(work.join("debug.log"), "logs are excluded\n")?;
        std::fs::write(work.join("my file é.txt"), "space and non-ASCII\n")?;
        std::fs::write(work.join("bin/run.sh"), "#!/bin/sh\necho run\n")?;
        set_exec(&work.join("bin/run.sh"))?;
        std::os::unix::fs::symlink("index.html", work.join("current.html"))?;
        git(&work, &["add", "."])?;
        git(&work, &["commit", "-qm", "first commit"])?;
        git(
            &work,
            &["submodule", "add", "-q", "../lib.git", "vendor/lib"],
        )?;
        git(&work, &["commit", "-qm", "add submodule"])?;
        git(&work, &["tag", "-a", "v1.0", "-m", "version 1.0"])?;
        git(&work, &["checkout", "-qb", "feature"])?;
        std::fs::write(work.join("feature.txt"), "feature branch\n")?;
        git(&work, &["add", "."])?;
        git(&work, &["commit", "-qm", "feature work"])?;
        git(&work, &["checkout", "-q", "main"])?;
        git(root, &["clone", "-q", "--bare", "work", "app.git"])?;
        git(&work, &["remote", "set-url", "origin", "../app.git"])
            .or_else(|_| git(&work, &["remote", "add", "origin", "../app.git"]))?;
        Ok(Self {
            bare: root.join("app.git"),
            work,
            _dir: dir,
        })
    }

    /// Commits `content` to `index.html` on main and pushes; returns the new commit id.
    pub fn commit_index(&self, content: &str, message: &str) -> anyhow::Result<String> {
        std::fs::write(self.work.join("index.html"), content)?;
        git(&self.work, &["commit", "-qam", message])?;
        git(&self.work, &["push", "-q", "origin", "main"])?;
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn head(&self, rev: &str) -> anyhow::Result<String> {
        git(&self.bare, &["rev-parse", rev])
    }

    /// The tree of `commit` as a fresh recursive clone would have it, without `.git` entries.
    pub fn checkout(&self, commit: &str, dest: &Path) -> anyhow::Result<()> {
        let parent = dest.parent().context("dest has no parent")?;
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .context("dest name")?;
        git(
            parent,
            &["clone", "-q", self.bare.to_str().context("path")?, name],
        )?;
        git(dest, &["checkout", "-q", commit])?;
        git(
            dest,
            &["submodule", "update", "-q", "--init", "--recursive"],
        )?;
        remove_git_dirs(dest)?;
        Ok(())
    }
}

fn set_exec(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn remove_git_dirs(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if entry.file_name() == ".git" {
            if ft.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        } else if ft.is_dir() {
            remove_git_dirs(&path)?;
        }
    }
    Ok(())
}
