//! Delta redeploys (issue 11): what a host that already has a version (the base) needs to be
//! sent to make the new one. Pure functions of two manifests, unit-tested; the shipping module
//! builds the archives and `commands::receive_delta` applies them on the host.
//!
//! The new version folder is made on the host from scratch, not by editing a copy of the base:
//! - every regular file whose content (sha256), mode and presence are the same in both
//!   manifests is taken from the base (hard link, or a copy with [`LinkMode::Copy`]) — the
//!   `keep` list. Hard links share the inode with the base (and so with the live version):
//!   a hook that edits such a file in place edits the live one too; see docs/release-engine.md;
//! - the delta archive carries every directory (so empty ones and mode changes come along),
//!   every symlink (a header each) and every other file (new or changed, a mode change
//!   included). A changed file is always a new inode: never written through a link;
//! - anything else in the base (removed files, what a hook left in the folder) is simply not
//!   taken.
//!
//! When the host has a **spare** of the base (`.next-<base>`: hard links to every regular file
//! of the base's manifest, made on the host after the release that made the base live, see
//! `commands::clean_versions`), the folder starts as that spare instead, and the [`Plan::drop`]
//! paths are removed from it first: regular files of the base that are not kept, and
//! directories of the base that are not directories in the new tree. What is left is exactly
//! the keep list's files, as if they had just been linked (the check below is the same).
//!
//! Before the folder is renamed into place the host lists it (type, mode, size, mtime of files;
//! mode of directories; target of symlinks) and compares the hash of that listing with
//! [`Plan::listing_sha256`]. A base file that was changed in place shows in its size or mtime;
//! a mismatch (or a base that is gone) makes the host refuse, and it gets the full archive.
//! Content hashes are not checked on the host (that would read every byte of every host's tree
//! on every release): the check is the one `rsync` relies on by default (size and mtime).
use crate::package::{EntryKind, ManifestEntry};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// How the unchanged files of a delta are made on the host (the config's `delta` setting).
pub use hippo_shared::domain::DeltaMode;

/// The manifest file beside each version on a host (`<versions>/.<version>.hippo.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HostManifest {
    #[serde(default)]
    pub release_id: Option<serde_json::Value>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    /// How this version came to the host: `full` or `delta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped: Option<String>,
    pub files: Vec<ManifestEntry>,
}

/// What one host with a given base gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Regular files taken from the base (paths relative to the version folder).
    pub keep: Vec<String>,
    /// Paths the delta archive carries (directories, symlinks, new and changed files).
    pub send: Vec<String>,
    /// Paths to remove from the base's spare: its regular files that are not kept, its
    /// directories that are not directories in the new tree.
    pub drop: Vec<String>,
    /// New or changed regular files (what "delta: N files" counts) and their bytes.
    pub changed_files: u64,
    pub changed_bytes: u64,
    /// The new version's manifest as it will be on the host: kept files have the base's
    /// mtime (they are the base's inodes, or copies that keep their times).
    pub manifest: Vec<ManifestEntry>,
    /// sha256 of [`listing`] of `manifest`: what the host must find before renaming.
    pub listing_sha256: String,
}

impl Plan {
    /// A delta is worth sending when it keeps something.
    pub fn worth_it(&self) -> bool {
        !self.keep.is_empty()
    }
}

/// Whether `path` stays inside the version folder: relative, no `.` or `..` component, no
/// empty one. Manifests read from a host are the host's data; a path that is not plain is never
/// kept or dropped (so it is sent, or the check fails and the host gets the full archive).
fn plain(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The plan for a host whose base is `base`. Files of the base without a recorded mtime
/// (manifests written before deltas existed) are never kept.
pub fn plan(new: &[ManifestEntry], base_entries: &[ManifestEntry]) -> Plan {
    let base: HashMap<&str, &ManifestEntry> =
        base_entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut keep = Vec::new();
    let mut send = Vec::new();
    let mut manifest = Vec::with_capacity(new.len());
    let (mut changed_files, mut changed_bytes) = (0u64, 0u64);
    for e in new {
        let kept = e.kind == EntryKind::File
            && plain(&e.path)
            && base.get(e.path.as_str()).is_some_and(|b| {
                b.kind == EntryKind::File
                    && b.sha256.is_some()
                    && b.sha256 == e.sha256
                    && b.mode == e.mode
                    && b.size == e.size
                    && b.mtime.is_some()
            });
        if kept {
            let b = base[e.path.as_str()];
            keep.push(e.path.clone());
            manifest.push(ManifestEntry {
                mtime: b.mtime,
                ..e.clone()
            });
        } else {
            if e.kind == EntryKind::File {
                changed_files += 1;
                changed_bytes += e.size;
            }
            send.push(e.path.clone());
            manifest.push(e.clone());
        }
    }
    let kept: std::collections::HashSet<&str> = keep.iter().map(String::as_str).collect();
    let new_dirs: std::collections::HashSet<&str> = new
        .iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .map(|e| e.path.as_str())
        .collect();
    let drop = base_entries
        .iter()
        .filter(|b| plain(&b.path))
        .filter(|b| match b.kind {
            EntryKind::File => !kept.contains(b.path.as_str()),
            EntryKind::Dir => !new_dirs.contains(b.path.as_str()),
            // A spare holds no symlinks.
            EntryKind::Symlink => false,
        })
        .map(|b| b.path.clone())
        .collect();
    let listing_sha256 = hex::encode(Sha256::digest(listing(&manifest)));
    Plan {
        keep,
        send,
        drop,
        changed_files,
        changed_bytes,
        manifest,
        listing_sha256,
    }
}

/// What the host's check prints for a tree with this manifest, sorted bytewise: one
/// NUL-ended record per entry, exactly as `commands::receive_delta`'s `find -printf` writes them
/// (`f <mode> <size> <mtime>.0000000000 ./<path>`, `d <mode> ./<path>`,
/// `l ./<path> <target>`; modes in octal).
pub fn listing(manifest: &[ManifestEntry]) -> Vec<u8> {
    let mut records: Vec<Vec<u8>> = manifest
        .iter()
        .map(|e| {
            let mut r = match e.kind {
                EntryKind::File => format!(
                    "f {:o} {} {}.0000000000 ./{}",
                    e.mode,
                    e.size,
                    e.mtime.unwrap_or(0),
                    e.path
                ),
                EntryKind::Dir => format!("d {:o} ./{}", e.mode, e.path),
                EntryKind::Symlink => {
                    format!("l ./{} {}", e.path, e.target.as_deref().unwrap_or_default())
                }
            }
            .into_bytes();
            r.push(0);
            r
        })
        .collect();
    records.sort();
    records.concat()
}

/// gzip of `data`, as `commands::receive_delta` reads its manifest and keep list.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

/// A path list as `commands::receive_delta` (keep and drop lists) and
/// `commands::clean_versions` (a spare's files) read it, before [`gzip`]: NUL-ended paths.
pub fn path_list<S: AsRef<str>>(paths: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(paths.iter().map(|k| k.as_ref().len() + 1).sum());
    for k in paths.iter().map(AsRef::as_ref) {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(path: &str, sha: &str, mode: u32, mtime: i64) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode,
            size: 3,
            sha256: Some(sha.into()),
            target: None,
            mtime: Some(mtime),
        }
    }
    fn dir(path: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            size: 0,
            sha256: None,
            target: None,
            mtime: None,
        }
    }
    fn link(path: &str, target: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            kind: EntryKind::Symlink,
            mode: 0o777,
            size: target.len() as u64,
            sha256: None,
            target: Some(target.into()),
            mtime: None,
        }
    }

    #[test]
    fn unchanged_files_are_kept_with_the_base_mtime_and_the_rest_is_sent() {
        let base = vec![
            dir("a"),
            file("a/same", "s1", 0o644, 100),
            file("a/edited", "e1", 0o644, 100),
            file("a/chmod", "c1", 0o644, 100),
            file("gone", "g1", 0o644, 100),
            file("to-link", "l1", 0o644, 100),
        ];
        let new = vec![
            dir("a"),
            file("a/chmod", "c1", 0o755, 200),
            file("a/edited", "e2", 0o644, 200),
            file("a/same", "s1", 0o644, 200),
            dir("empty"),
            link("to-link", "a/same"),
        ];
        let p = plan(&new, &base);
        assert_eq!(p.keep, vec!["a/same"]);
        assert_eq!(p.send, vec!["a", "a/chmod", "a/edited", "empty", "to-link"]);
        assert_eq!((p.changed_files, p.changed_bytes), (2, 6));
        assert!(p.worth_it());
        let same = p.manifest.iter().find(|e| e.path == "a/same").unwrap();
        assert_eq!(same.mtime, Some(100));
        let edited = p.manifest.iter().find(|e| e.path == "a/edited").unwrap();
        assert_eq!(edited.mtime, Some(200));
    }

    #[test]
    fn a_base_without_mtimes_keeps_nothing() {
        let mut old = file("x", "s", 0o644, 1);
        old.mtime = None;
        let p = plan(&[file("x", "s", 0o644, 2)], &[old]);
        assert!(p.keep.is_empty());
        assert!(!p.worth_it());
    }

    #[test]
    fn the_listing_is_what_find_prints_sorted() {
        let m = vec![
            file("b c", "s", 0o4755, 1700000000),
            dir("a"),
            link("l", "../x y"),
        ];
        assert_eq!(
            listing(&m),
            b"d 755 ./a\0f 4755 3 1700000000.0000000000 ./b c\0l ./l ../x y\0".to_vec()
        );
        assert_eq!(path_list(&["a", "b c"]), b"a\0b c\0".to_vec());
    }

    /// Runs a rendered command with `sh -c`, feeding `stdin`; (exit code, stderr).
    fn sh(rendered: &str, stdin: &[u8]) -> (i32, String) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(rendered)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Path → (kind, mode, content or target), like the e2e stories' tree snapshots.
    fn tree(root: &std::path::Path) -> Vec<(String, String)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let mode = m.permissions().mode() & 0o7777;
                let v = if m.file_type().is_symlink() {
                    format!("link {}", std::fs::read_link(&p).unwrap().display())
                } else if m.is_dir() {
                    stack.push(p.clone());
                    format!("dir {mode:o}")
                } else {
                    format!(
                        "file {mode:o} {}",
                        String::from_utf8_lossy(&std::fs::read(&p).unwrap())
                    )
                };
                out.push((rel, v));
            }
        }
        out.sort();
        out
    }

    fn manifest_json(files: &[ManifestEntry]) -> Vec<u8> {
        serde_json::to_vec(&HostManifest {
            release_id: None,
            commit: None,
            version: None,
            shipped: None,
            files: files.to_vec(),
        })
        .unwrap()
    }

    /// Sends `src` to `<versions>/<name>` as a delta from `base` (whose manifest is
    /// `base_files`); the exit code.
    fn send_delta(
        versions: &str,
        name: &str,
        base: &str,
        base_files: &[ManifestEntry],
        src: &std::path::Path,
        mode: &str,
    ) -> (i32, String, Plan) {
        use crate::commands::{self, Codec};
        use crate::package::{FileFilter, build_archive_with, manifest};
        let new = manifest(src, &FileFilter::all()).unwrap();
        let p = plan(&new, base_files);
        let only: std::collections::HashSet<&str> = p.send.iter().map(String::as_str).collect();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("d.tar.zst");
        build_archive_with(src, &FileFilter::all(), &archive, Codec::Zstd, Some(&only)).unwrap();
        let m = gzip(&manifest_json(&p.manifest));
        let k = gzip(&path_list(&p.keep));
        let d = gzip(&path_list(&p.drop));
        let mut input = commands::delta_input(&m, &k, &d);
        input.extend_from_slice(&m);
        input.extend_from_slice(&k);
        input.extend_from_slice(&d);
        input.extend_from_slice(&std::fs::read(&archive).unwrap());
        let cmd =
            commands::receive_delta(versions, name, Codec::Zstd, base, mode, &p.listing_sha256);
        let (code, err) = sh(&cmd.render(), &input);
        (code, err, p)
    }

    /// `app/lib/f0.txt` … `f19.txt` under `s`: the files a delta keeps.
    fn twenty_files(s: &std::path::Path) {
        std::fs::create_dir_all(s.join("app/lib")).unwrap();
        for i in 0..20 {
            std::fs::write(s.join(format!("app/lib/f{i}.txt")), format!("file {i}\n")).unwrap();
        }
    }

    #[test]
    fn a_delta_on_a_host_reproduces_the_tree_exactly_or_refuses() {
        use crate::commands::{self, Codec};
        use crate::package::{FileFilter, build_archive_with, manifest};
        use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
        let host = tempfile::tempdir().unwrap();
        let versions = host.path().join("versions ü").display().to_string();
        let v = |n: &str| std::path::Path::new(&versions).join(n);
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        twenty_files(s);
        std::fs::write(s.join("index.html"), "v1\n").unwrap();
        std::fs::write(s.join("removed.txt"), "bye\n").unwrap();
        std::fs::write(s.join("to-link.txt"), "a file\n").unwrap();
        std::fs::write(s.join("tool.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(s.join("it's a file"), "quoted\n").unwrap();
        // v1, full.
        let m1 = manifest(s, &FileFilter::all()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.tar.gz");
        build_archive_with(s, &FileFilter::all(), &full, Codec::Gzip, None).unwrap();
        let j = manifest_json(&m1);
        let mut input = commands::receive_input(&j);
        input.extend_from_slice(&j);
        input.extend_from_slice(&std::fs::read(&full).unwrap());
        let (code, err) = sh(
            &commands::receive_version(&versions, "v1", Codec::Gzip).render(),
            &input,
        );
        assert_eq!(code, 0, "{err}");

        // v2: a changed file, a removed one, a file turned into a symlink, an exec bit, an
        // empty directory with its own mode.
        std::fs::write(s.join("index.html"), "v2\n").unwrap();
        std::fs::remove_file(s.join("removed.txt")).unwrap();
        std::fs::remove_file(s.join("to-link.txt")).unwrap();
        symlink("index.html", s.join("to-link.txt")).unwrap();
        std::fs::set_permissions(s.join("tool.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::create_dir(s.join("empty")).unwrap();
        std::fs::set_permissions(s.join("empty"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (code, err, p) = send_delta(&versions, "v2", "v1", &m1, s, "hardlink");
        assert_eq!(code, 0, "{err}");
        assert_eq!((p.changed_files, p.keep.len()), (2, 21), "{p:?}");
        assert_eq!(tree(&v("v2")), tree(s));
        let ino = |p: std::path::PathBuf| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(v("v2/app/lib/f3.txt")), ino(v("v1/app/lib/f3.txt")));
        assert_ne!(ino(v("v2/index.html")), ino(v("v1/index.html")));
        assert_eq!(std::fs::read_to_string(v("v1/index.html")).unwrap(), "v1\n");
        assert!(v("v1/removed.txt").exists());
        let on_host: HostManifest =
            serde_json::from_slice(&std::fs::read(v(".v2.hippo.json")).unwrap()).unwrap();
        assert_eq!(on_host.files, p.manifest);

        // Copies: new inodes, same tree.
        std::fs::write(s.join("index.html"), "v3\n").unwrap();
        let (code, err, _) = send_delta(&versions, "v3", "v2", &p.manifest, s, "copy");
        assert_eq!(code, 0, "{err}");
        assert_eq!(tree(&v("v3")), tree(s));
        assert_ne!(ino(v("v3/app/lib/f3.txt")), ino(v("v2/app/lib/f3.txt")));

        // A base file edited in place since: refused, nothing left behind.
        std::fs::write(v("v3/app/lib/f5.txt"), "edited on the host\n").unwrap();
        let m3: HostManifest =
            serde_json::from_slice(&std::fs::read(v(".v3.hippo.json")).unwrap()).unwrap();
        std::fs::write(s.join("index.html"), "v4\n").unwrap();
        let (code, _, _) = send_delta(&versions, "v4", "v3", &m3.files, s, "hardlink");
        assert_eq!(code, commands::DELTA_MISMATCH);
        assert!(!v("v4").exists() && !v(".partial-v4").exists() && !v(".v4.hippo.json").exists());
        // A base that is gone.
        let (code, _, _) = send_delta(&versions, "v4", "nope", &m3.files, s, "hardlink");
        assert_eq!(code, commands::DELTA_NO_BASE);
    }

    /// Makes the spare of `version` the way cleanup does (the detached part included) and
    /// waits for it.
    fn make_spare(versions: &str, version: &str, files: &[ManifestEntry]) {
        use crate::commands;
        let list: Vec<&str> = files
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| e.path.as_str())
            .collect();
        let input = commands::clean_input(&gzip(&path_list(&list)));
        let (code, err) = sh(
            &commands::clean_versions(versions, 5, version, &[version]).render(),
            &input,
        );
        assert_eq!(code, 0, "{err}");
        let spare = std::path::Path::new(versions).join(format!(".next-{version}"));
        let started = std::time::Instant::now();
        while !spare.exists() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "no spare of {version}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_spare_made_after_a_release_becomes_the_next_delta_and_leaves_the_live_version_alone() {
        use crate::package::{FileFilter, manifest};
        use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
        let host = tempfile::tempdir().unwrap();
        let versions = host.path().join("it's versions").display().to_string();
        let v = |n: &str| std::path::Path::new(&versions).join(n);
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        twenty_files(s);
        std::fs::create_dir_all(s.join("old/deep")).unwrap();
        std::fs::write(s.join("old/deep/x.txt"), "gone soon\n").unwrap();
        std::fs::write(s.join("index.html"), "v1\n").unwrap();
        std::fs::write(s.join("tool.sh"), "#!/bin/sh\n").unwrap();
        std::fs::write(s.join("becomes-dir"), "a file\n").unwrap();
        // v1: a delta from an empty base is a full copy through the same path.
        std::fs::create_dir_all(v("v0")).unwrap();
        let (code, err, p1) = send_delta(&versions, "v1", "v0", &[], s, "hardlink");
        assert_eq!(code, 0, "{err}");
        make_spare(&versions, "v1", &p1.manifest);
        assert_eq!(
            ino(&v(".next-v1/app/lib/f3.txt")),
            ino(&v("v1/app/lib/f3.txt"))
        );

        // v2: a changed file, a removed directory tree, an exec bit, a file turned into a
        // directory and one into a symlink.
        std::fs::write(s.join("index.html"), "v2\n").unwrap();
        std::fs::remove_dir_all(s.join("old")).unwrap();
        std::fs::set_permissions(s.join("tool.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::remove_file(s.join("becomes-dir")).unwrap();
        std::fs::create_dir(s.join("becomes-dir")).unwrap();
        std::fs::remove_file(s.join("app/lib/f0.txt")).unwrap();
        symlink("f1.txt", s.join("app/lib/f0.txt")).unwrap();
        let (code, err, p2) = send_delta(&versions, "v2", "v1", &p1.manifest, s, "hardlink");
        assert_eq!(code, 0, "{err}");
        assert!(!v(".next-v1").exists(), "the spare is used up");
        assert_eq!(tree(&v("v2")), tree(s));
        assert_eq!(ino(&v("v2/app/lib/f3.txt")), ino(&v("v1/app/lib/f3.txt")));
        assert_ne!(ino(&v("v2/index.html")), ino(&v("v1/index.html")));
        // The live version (v1) is untouched.
        assert_eq!(std::fs::read_to_string(v("v1/index.html")).unwrap(), "v1\n");
        assert_eq!(
            std::fs::read_to_string(v("v1/old/deep/x.txt")).unwrap(),
            "gone soon\n"
        );
        assert_eq!(
            std::fs::read_to_string(v("v1/becomes-dir")).unwrap(),
            "a file\n"
        );
        assert!(
            !std::fs::symlink_metadata(v("v1/app/lib/f0.txt"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(
            std::fs::metadata(v("v1/tool.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );

        // A spare whose base was edited in place since (the shared inode shows it): refused,
        // nothing left behind, the spare gone.
        make_spare(&versions, "v2", &p2.manifest);
        std::fs::write(v("v2/app/lib/f5.txt"), "edited on the host\n").unwrap();
        std::fs::write(s.join("index.html"), "v3\n").unwrap();
        let (code, _, _) = send_delta(&versions, "v3", "v2", &p2.manifest, s, "hardlink");
        assert_eq!(code, crate::commands::DELTA_MISMATCH);
        assert!(!v("v3").exists() && !v(".partial-v3").exists() && !v(".next-v2").exists());

        // With `copy` a spare is never used: new inodes.
        std::fs::write(v("v2/app/lib/f5.txt"), "file 5\n").unwrap();
        // Whole seconds, as tar leaves them (the listing prints `<secs>.0000000000`).
        let touched = std::process::Command::new("touch")
            .args(["-m", "-d", "@1700000000"])
            .arg(v("v2/app/lib/f5.txt"))
            .status()
            .unwrap();
        assert!(touched.success());
        let fixed = manifest(&v("v2"), &FileFilter::all()).unwrap();
        make_spare(&versions, "v2", &fixed);
        let (code, err, _) = send_delta(&versions, "v3", "v2", &fixed, s, "copy");
        assert_eq!(code, 0, "{err}");
        assert_eq!(tree(&v("v3")), tree(s));
        assert_ne!(ino(&v("v3/app/lib/f3.txt")), ino(&v("v2/app/lib/f3.txt")));
        assert!(v(".next-v2").exists(), "a copy leaves the spare alone");
        fn ino(p: &std::path::Path) -> u64 {
            std::fs::metadata(p).unwrap().ino()
        }
    }

    #[test]
    fn only_plain_paths_are_kept_or_dropped() {
        let base = vec![
            file("../x", "s", 0o644, 1),
            file("/etc/y", "s", 0o644, 1),
            file("a/./b", "s", 0o644, 1),
            file("ok", "s", 0o644, 1),
            file("gone", "s", 0o644, 1),
        ];
        let new = vec![
            file("../x", "s", 0o644, 2),
            file("/etc/y", "s", 0o644, 2),
            file("a/./b", "s", 0o644, 2),
            file("ok", "s", 0o644, 2),
        ];
        let p = plan(&new, &base);
        assert_eq!(p.keep, vec!["ok"]);
        assert_eq!(p.drop, vec!["gone"]);
    }
}
