//! The include/exclude filter and the tar.gz that goes to hosts.
//!
//! Archive layout: entry paths are relative to `src`, without a leading `./` (directories
//! without a trailing `/`; their type flag says what they are) and without an entry for `src`
//! itself (so `tar -xzpf pkg.tar.gz -C dir` leaves `dir`'s own mode alone).
//! Entries are sorted by their path's bytes (`LC_ALL=C sort` order, which puts every directory
//! before its contents). Regular files, directories (empty ones too) and symlinks (stored as
//! symlinks, never followed) keep their permission bits; owner and group are 0 (so `tar -x` run
//! as root creates root-owned files, use `--no-same-owner` otherwise); mtimes are the files'.
//! Anything named `.git`, at any depth, is always left out; sockets, fifos and devices are
//! skipped. Compression is gzip level 1: speed matters more than size.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

/// The one filter mode type: the config's (`shared::domain`).
pub use hippo_shared::domain::FilterMode;

/// A gitignore-style filter over paths relative to the package root.
///
/// Patterns follow gitignore syntax (`*.log`, `docs/`, `/build`, `**/tmp`, negation
/// `!keep.log`), one per line; blank lines and `#` comments are ignored, and so is leading
/// whitespace. The last matching pattern wins, and a path's own match wins over its parents'
/// (so `build/` followed by `!build/keep` ships `build/keep`, unlike git). An empty pattern list
/// selects everything, in both modes.
#[derive(Clone, Debug)]
pub struct FileFilter {
    mode: FilterMode,
    /// `None` when there are no patterns.
    matcher: Option<Gitignore>,
    has_negation: bool,
}

#[derive(thiserror::Error, Debug)]
pub enum PackageError {
    #[error("filter line {line}: invalid pattern {pattern:?}: {message}")]
    Pattern {
        line: usize,
        pattern: String,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: file changed while it was being archived", path.display())]
    Changed { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PackageError + '_ {
    move |source| PackageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl FileFilter {
    /// A filter that selects everything.
    pub fn all() -> FileFilter {
        FileFilter {
            mode: FilterMode::Exclude,
            matcher: None,
            has_negation: false,
        }
    }

    /// One gitignore-style pattern per line. The error names the (1-based) bad line.
    pub fn parse(mode: FilterMode, text: &str) -> Result<FileFilter, PackageError> {
        let mut builder = GitignoreBuilder::new(".");
        let mut count = 0usize;
        let mut has_negation = false;
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim_start();
            if line.trim_end().is_empty() || line.starts_with('#') {
                continue;
            }
            builder
                .add_line(None, line)
                .map_err(|e| PackageError::Pattern {
                    line: idx + 1,
                    pattern: line.to_string(),
                    message: e.to_string(),
                })?;
            count += 1;
            has_negation |= line.starts_with('!');
        }
        let matcher = if count == 0 {
            None
        } else {
            Some(builder.build().map_err(|e| PackageError::Pattern {
                line: 0,
                pattern: String::new(),
                message: e.to_string(),
            })?)
        };
        Ok(FileFilter {
            mode,
            matcher,
            has_negation,
        })
    }

    pub fn mode(&self) -> FilterMode {
        self.mode
    }

    /// Does the filter select this path (relative to the package root; a leading `/` or `./`
    /// is ignored)? For a directory, this says whether the directory itself is selected: in
    /// an archive, a directory is also kept when something under it is selected.
    pub fn selects(&self, rel_path: &Path, is_dir: bool) -> bool {
        let Some(matcher) = &self.matcher else {
            return true;
        };
        let rel: PathBuf = rel_path
            .components()
            .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
            .collect();
        if rel.as_os_str().is_empty() {
            return true;
        }
        let hit = matcher
            .matched_path_or_any_parents(&rel, is_dir)
            .is_ignore();
        match self.mode {
            FilterMode::Include => hit,
            FilterMode::Exclude => !hit,
        }
    }

    /// In exclude mode without negations nothing under an excluded directory can be selected.
    fn prunes_unselected_dirs(&self) -> bool {
        self.mode == FilterMode::Exclude && !self.has_negation
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One shipped path. `mode` is the permission bits (`0o7777` part); `size` is 0 for
/// directories and the target's length for symlinks; `sha256` is set for files, `target` for
/// symlinks. Non-UTF-8 names are shown lossily.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Files: modification time (seconds since the epoch) as the archive sets it on the host.
    /// A delta redeploy checks kept files against it (manifests from before deltas lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
}

/// What [`build_archive`] wrote. `files` counts regular files and symlinks,
/// `bytes_uncompressed` the regular files' sizes, `sha256` is the archive's (hex).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageInfo {
    pub files: u64,
    pub bytes_uncompressed: u64,
    pub archive_bytes: u64,
    pub sha256: String,
}

struct Entry {
    rel: PathBuf,
    abs: PathBuf,
    kind: EntryKind,
    meta: fs::Metadata,
}

/// Every selected entry under `src`, sorted by path bytes.
fn collect(src: &Path, filter: &FileFilter) -> Result<Vec<Entry>, PackageError> {
    let meta = fs::metadata(src).map_err(io_err(src))?;
    if !meta.is_dir() {
        return Err(PackageError::Io {
            path: src.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut out = Vec::new();
    walk(src, Path::new(""), filter, &mut out)?;
    out.sort_by(|a, b| {
        a.rel
            .as_os_str()
            .as_bytes()
            .cmp(b.rel.as_os_str().as_bytes())
    });
    Ok(out)
}

/// Appends the selected entries under `src/rel`; returns whether it appended any.
fn walk(
    src: &Path,
    rel: &Path,
    filter: &FileFilter,
    out: &mut Vec<Entry>,
) -> Result<bool, PackageError> {
    let dir = src.join(rel);
    let mut children = Vec::new();
    for child in fs::read_dir(&dir).map_err(io_err(&dir))? {
        children.push(child.map_err(io_err(&dir))?.file_name());
    }
    children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let before = out.len();
    for name in children {
        if name.as_bytes() == b".git" {
            continue;
        }
        let rel_child = rel.join(&name);
        let abs = src.join(&rel_child);
        let meta = fs::symlink_metadata(&abs).map_err(io_err(&abs))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let selected = filter.selects(&rel_child, true);
            if !selected && filter.prunes_unselected_dirs() {
                continue;
            }
            let idx = out.len();
            out.push(Entry {
                rel: rel_child.clone(),
                abs,
                kind: EntryKind::Dir,
                meta,
            });
            let any = walk(src, &rel_child, filter, out)?;
            if !selected && !any {
                out.truncate(idx);
            }
        } else if ft.is_file() || ft.is_symlink() {
            if filter.selects(&rel_child, false) {
                let kind = if ft.is_symlink() {
                    EntryKind::Symlink
                } else {
                    EntryKind::File
                };
                out.push(Entry {
                    rel: rel_child,
                    abs,
                    kind,
                    meta,
                });
            }
        } else {
            tracing::warn!(path = %abs.display(), "skipping special file (not a file, dir or symlink)");
        }
    }
    Ok(out.len() > before)
}

/// A writer that hashes and counts what goes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compression of an archive; `commands::Codec` says which one a host can unpack.
pub use crate::commands::Codec;

/// gzip level 1, or zstd level 1 on all cores (a fast level: speed matters more than size).
enum Compressor<W: Write> {
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(w: W, codec: Codec) -> io::Result<Self> {
        Ok(match codec {
            Codec::Gzip => Compressor::Gzip(GzEncoder::new(w, Compression::fast())),
            Codec::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(w, 1)?;
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                if cores > 1 {
                    z.multithread(u32::try_from(cores).unwrap_or(1))?;
                }
                Compressor::Zstd(z)
            }
        })
    }
    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// A reader that counts what was read.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// The mtime an archive records (and so the host's file gets): whole seconds, 0 before 1970.
fn header_mtime(meta: &fs::Metadata) -> u64 {
    u64::try_from(meta.mtime())
        .unwrap_or(0)
        .min(i64::MAX as u64)
}

fn base_header(meta: &fs::Metadata, entry_type: tar::EntryType) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(header_mtime(meta));
    header.set_size(0);
    header
}

/// Writes a tar.gz of `src` to `out` (see the module docs for the layout).
pub fn build_archive(
    src: &Path,
    filter: &FileFilter,
    out: &Path,
) -> Result<PackageInfo, PackageError> {
    build_archive_with(src, filter, out, Codec::Gzip, None)
}

/// Writes an archive of `src` to `out` compressed with `codec`: every selected entry, or only
/// those whose path (as in the manifest) is in `only` (a delta).
pub fn build_archive_with(
    src: &Path,
    filter: &FileFilter,
    out: &Path,
    codec: Codec,
    only: Option<&HashSet<&str>>,
) -> Result<PackageInfo, PackageError> {
    let mut entries = collect(src, filter)?;
    if let Some(only) = only {
        entries.retain(|e| only.contains(e.rel.to_string_lossy().as_ref()));
    }
    let file = File::create(out).map_err(io_err(out))?;
    let writer = HashingWriter {
        inner: BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        count: 0,
    };
    let compressor = Compressor::new(writer, codec).map_err(io_err(out))?;
    let mut builder = tar::Builder::new(compressor);
    builder.follow_symlinks(false);
    let mut files = 0u64;
    let mut bytes = 0u64;
    for entry in &entries {
        let out_err = io_err(out);
        match entry.kind {
            EntryKind::Dir => {
                let mut header = base_header(&entry.meta, tar::EntryType::Directory);
                builder
                    .append_data(&mut header, &entry.rel, io::empty())
                    .map_err(out_err)?;
            }
            EntryKind::Symlink => {
                let target = fs::read_link(&entry.abs).map_err(io_err(&entry.abs))?;
                let mut header = base_header(&entry.meta, tar::EntryType::Symlink);
                builder
                    .append_link(&mut header, &entry.rel, &target)
                    .map_err(out_err)?;
                files += 1;
            }
            EntryKind::File => {
                let len = entry.meta.len();
                let mut header = base_header(&entry.meta, tar::EntryType::Regular);
                header.set_size(len);
                let f = File::open(&entry.abs).map_err(io_err(&entry.abs))?;
                let mut reader = CountingReader {
                    inner: f.take(len),
                    count: 0,
                };
                builder
                    .append_data(&mut header, &entry.rel, &mut reader)
                    .map_err(out_err)?;
                if reader.count != len {
                    return Err(PackageError::Changed {
                        path: entry.abs.clone(),
                    });
                }
                files += 1;
                bytes += len;
            }
        }
    }
    let compressor = builder.into_inner().map_err(io_err(out))?;
    let mut writer = compressor.finish().map_err(io_err(out))?;
    writer.flush().map_err(io_err(out))?;
    let HashingWriter {
        inner,
        hasher,
        count,
    } = writer;
    let file = inner.into_inner().map_err(|e| PackageError::Io {
        path: out.to_path_buf(),
        source: e.into_error(),
    })?;
    // Not flushed to disk: archives are scratch files of a run, except the kept copy, which
    // `keep_in_store` flushes.
    drop(file);
    Ok(PackageInfo {
        files,
        bytes_uncompressed: bytes,
        archive_bytes: count,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// What [`build_archive`] ships from `src` with `filter`, in the same (sorted) order.
pub fn manifest(src: &Path, filter: &FileFilter) -> Result<Vec<ManifestEntry>, PackageError> {
    let entries = collect(src, filter)?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let path = entry.rel.to_string_lossy().into_owned();
        let mode = entry.meta.mode() & 0o7777;
        let item = match entry.kind {
            EntryKind::Dir => ManifestEntry {
                path,
                kind: EntryKind::Dir,
                mode,
                size: 0,
                sha256: None,
                target: None,
                mtime: None,
            },
            EntryKind::Symlink => {
                let target = fs::read_link(&entry.abs).map_err(io_err(&entry.abs))?;
                ManifestEntry {
                    path,
                    kind: EntryKind::Symlink,
                    mode,
                    size: target.as_os_str().len() as u64,
                    sha256: None,
                    target: Some(target.to_string_lossy().into_owned()),
                    mtime: None,
                }
            }
            EntryKind::File => {
                let mut hasher = Sha256::new();
                let mut f = File::open(&entry.abs).map_err(io_err(&entry.abs))?;
                let size = io::copy(&mut f, &mut hasher).map_err(io_err(&entry.abs))?;
                ManifestEntry {
                    path,
                    kind: EntryKind::File,
                    mode,
                    size,
                    sha256: Some(hex::encode(hasher.finalize())),
                    target: None,
                    mtime: Some(header_mtime(&entry.meta) as i64),
                }
            }
        };
        out.push(item);
    }
    Ok(out)
}

/// Stage 2 of a release: filter and list the exported tree (the manifest recorded beside the
/// version on every host, from which deltas are planned). Nothing is packed here: the archives
/// are made when a host needs one, and the kept copy for rollbacks after the switch
/// (`shipping::Shipment`), so a redeploy whose hosts all take a delta does not wait for the
/// whole tree to be compressed.
pub async fn run(
    run: &crate::context::Run,
    src: &Path,
) -> Result<crate::shipping::Packaged, String> {
    use hippo_shared::events::{EventStatus, Stage};
    let ev = &run.events;
    ev.send(ev.event(Stage::Package, EventStatus::Started));
    let _timer = hippo_shared::metrics::global().time_stage(Stage::Package);
    let filter =
        FileFilter::parse(run.spec.filter_mode, &run.spec.filter).map_err(|e| e.to_string())?;
    let (tree, f) = (src.to_owned(), filter.clone());
    let entries = tokio::task::spawn_blocking(move || manifest(&tree, &f))
        .await
        .map_err(|e| format!("package task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    let (files, bytes) =
        entries
            .iter()
            .filter(|e| e.kind != EntryKind::Dir)
            .fold((0u64, 0u64), |(n, b), e| {
                (
                    n + 1,
                    b + if e.kind == EntryKind::File { e.size } else { 0 },
                )
            });
    ev.send(
        ev.event(Stage::Package, EventStatus::Succeeded)
            .message(format!("{files} files, {bytes} bytes")),
    );
    Ok(crate::shipping::Packaged {
        src: src.to_owned(),
        filter,
        entries,
    })
}

/// The file name ending of an archive in `codec`.
pub fn extension(codec: Codec) -> &'static str {
    match codec {
        Codec::Gzip => "tar.gz",
        Codec::Zstd => "tar.zst",
    }
}

/// Puts a finished archive of the run's work folder at `dest` in the artifact store (creating
/// its folder, replacing what is there): flushed to disk, then a second name for the same file
/// (a copy when they are on different file systems) made beside `dest` and renamed over it, so
/// `dest` is never half-written. `tmp` stays usable.
pub fn keep_in_store(tmp: &Path, dest: &Path) -> io::Result<()> {
    File::open(tmp)?.sync_all()?;
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir)?;
    }
    let aside = dest.with_extension("partial");
    let _ = fs::remove_file(&aside);
    if fs::hard_link(tmp, &aside).is_err() {
        fs::copy(tmp, &aside)?;
        File::open(&aside)?.sync_all()?;
    }
    fs::rename(&aside, dest)
}

/// Re-compresses a zstd archive as gzip (level 1) into `out`: a kept copy (zstd) for a host
/// that has no `zstd`. Returns the gzip's size.
pub fn to_gzip(zst: &Path, out: &Path) -> Result<u64, PackageError> {
    let input = File::open(zst).map_err(io_err(zst))?;
    let mut reader = zstd::stream::read::Decoder::new(input).map_err(io_err(zst))?;
    let file = File::create(out).map_err(io_err(out))?;
    let mut gz = GzEncoder::new(
        BufWriter::with_capacity(256 * 1024, file),
        Compression::fast(),
    );
    io::copy(&mut reader, &mut gz).map_err(io_err(zst))?;
    let mut w = gz.finish().map_err(io_err(out))?;
    w.flush().map_err(io_err(out))?;
    let file = w.into_inner().map_err(|e| PackageError::Io {
        path: out.to_path_buf(),
        source: e.into_error(),
    })?;
    Ok(file.metadata().map_err(io_err(out))?.len())
}

/// Keeps the newest `keep` archives of a config besides `artifact` (the one just made or
/// used), which is never removed.
pub fn prune_artifacts(artifact: &Path, keep: usize) {
    let Some(dir) = artifact.parent() else { return };
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    // A copy cut off half-way (a crash while it was written) is not a version: it goes, and
    // it does not take a kept version's place. Copies of one config are made under its lease,
    // one at a time, so none is being written now.
    names.retain(|n| {
        let partial = n.ends_with(".partial");
        if partial {
            let _ = fs::remove_file(dir.join(n));
        }
        !partial
    });
    let own = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    for name in crate::cleanup::to_remove(names, keep + 1, &[own]) {
        let _ = fs::remove_file(dir.join(name));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::process::Command;

    #[test]
    fn pruning_kept_copies_keeps_the_newest_and_drops_copies_cut_off_half_way() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "20261201-080000-r1.tar.zst",
            "20261201-090000-r2.tar.gz",
            "20261201-100000-r3.tar.zst",
            "20261201-110000-r4.tar.partial",
            "20261201-120000-r5.tar.zst",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        prune_artifacts(&dir.path().join("20261201-120000-r5.tar.zst"), 1);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["20261201-100000-r3.tar.zst", "20261201-120000-r5.tar.zst"]
        );
    }

    fn sel(f: &FileFilter, p: &str) -> bool {
        f.selects(Path::new(p), false)
    }

    fn sel_dir(f: &FileFilter, p: &str) -> bool {
        f.selects(Path::new(p), true)
    }

    #[test]
    fn empty_filter_selects_everything() {
        for mode in [FilterMode::Include, FilterMode::Exclude] {
            let f = FileFilter::parse(mode, "\n  # only a comment\n\n").unwrap();
            assert!(sel(&f, "a/b.txt"));
            assert!(sel_dir(&f, "docs"));
        }
        assert!(sel(&FileFilter::all(), "x"));
    }

    #[test]
    fn exclude_mode() {
        let f = FileFilter::parse(
            FilterMode::Exclude,
            "# logs\n*.log\n!keep.log\ndocs/\n/build\r\n  tmp/**\n",
        )
        .unwrap();
        assert!(!sel(&f, "app.log"));
        assert!(!sel(&f, "sub/dir/app.log"));
        assert!(sel(&f, "keep.log"));
        assert!(sel(&f, "sub/keep.log"));
        assert!(!sel_dir(&f, "docs"));
        assert!(!sel(&f, "docs/index.md"));
        assert!(!sel(&f, "a/docs/index.md"));
        // `docs/` only matches directories.
        assert!(sel(&f, "docs"));
        assert!(!sel_dir(&f, "build"));
        assert!(!sel(&f, "build/out.bin"));
        assert!(sel(&f, "src/build/x")); // anchored pattern
        assert!(!sel(&f, "tmp/a"));
        assert!(sel(&f, "src/main.rs"));
        assert!(sel(&f, "README.md"));
        // Leading "/" and "./" are ignored.
        assert!(!sel(&f, "/docs/x"));
        assert!(!sel(&f, "./app.log"));
    }

    #[test]
    fn include_mode() {
        let f = FileFilter::parse(
            FilterMode::Include,
            "docs/\n!docs/secret.md\n*.conf\n/bin/run.sh\n",
        )
        .unwrap();
        assert!(sel_dir(&f, "docs"));
        assert!(sel(&f, "docs/a.md"));
        assert!(sel(&f, "docs/deep/b.md"));
        assert!(!sel(&f, "docs/secret.md"));
        assert!(sel(&f, "etc/app.conf"));
        assert!(sel(&f, "bin/run.sh"));
        assert!(!sel(&f, "bin/other.sh"));
        assert!(!sel(&f, "src/main.rs"));
        assert!(!sel_dir(&f, "etc"));
    }

    #[test]
    fn bad_pattern_names_the_line() {
        let err = FileFilter::parse(FilterMode::Exclude, "ok\n# c\nbad[z-a]\n").unwrap_err();
        match &err {
            PackageError::Pattern { line, pattern, .. } => {
                assert_eq!(*line, 3);
                assert_eq!(pattern, "bad[z-a]");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    fn write(path: &Path, content: &str, mode: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A source tree with the awkward cases.
    fn fixture() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let s = tmp.path();
        write(&s.join("README.md"), "hello\n", 0o644);
        write(&s.join("bin/run.sh"), "#!/bin/sh\necho hi\n", 0o755);
        write(&s.join("données é.txt"), "accents\n", 0o640);
        write(&s.join("with space/a b.txt"), "space\n", 0o644);
        write(&s.join("logs/app.log"), "log\n", 0o644);
        write(&s.join("logs/keep.log"), "keep\n", 0o644);
        write(&s.join(".git/config"), "[core]\n", 0o644);
        write(&s.join("sub/.git"), "gitdir: ../.git/modules/sub\n", 0o644);
        write(&s.join("sub/lib.rs"), "fn x() {}\n", 0o600);
        fs::create_dir_all(s.join("empty/dir")).unwrap();
        fs::set_permissions(s.join("empty/dir"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("bin/run.sh", s.join("run")).unwrap();
        symlink("../README.md", s.join("sub/readme-link")).unwrap();
        symlink("/nonexistent/target", s.join("dangling")).unwrap();
        // A long path (GNU long-name extension).
        let long = "d".repeat(60);
        write(
            &s.join(format!("{long}/{long}/{long}/file-with-a-long-name.txt")),
            "long\n",
            0o644,
        );
        tmp
    }

    fn unpack(archive: &Path) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("tar")
            .arg("-xzpf")
            .arg(archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        dir
    }

    fn list(archive: &Path) -> Vec<String> {
        let out = Command::new("tar")
            .arg("-tzf")
            .arg(archive)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn mode_of(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn archive_round_trip_with_tar_cli() {
        let src = fixture();
        let out_dir = tempfile::tempdir().unwrap();
        let archive = out_dir.path().join("pkg.tar.gz");
        let info = build_archive(src.path(), &FileFilter::all(), &archive).unwrap();
        let data = fs::read(&archive).unwrap();
        assert_eq!(info.archive_bytes, data.len() as u64);
        assert_eq!(info.sha256, hex::encode(Sha256::digest(&data)));
        // 8 regular files + 3 symlinks; .git entries excluded.
        assert_eq!(info.files, 11);

        let names = list(&archive);
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with("./") && !n.starts_with('/'))
        );
        assert!(
            names.iter().all(|n| !n.split('/').any(|c| c == ".git")),
            "{names:?}"
        );
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| a.trim_end_matches('/').cmp(b.trim_end_matches('/')));
        assert_eq!(names, sorted);

        let dst = unpack(&archive);
        let d = dst.path();
        assert_eq!(fs::read_to_string(d.join("README.md")).unwrap(), "hello\n");
        assert_eq!(mode_of(&d.join("bin/run.sh")), 0o755);
        assert_eq!(mode_of(&d.join("README.md")), 0o644);
        assert_eq!(mode_of(&d.join("sub/lib.rs")), 0o600);
        assert_eq!(
            fs::read_to_string(d.join("données é.txt")).unwrap(),
            "accents\n"
        );
        assert_eq!(mode_of(&d.join("données é.txt")), 0o640);
        assert_eq!(
            fs::read_to_string(d.join("with space/a b.txt")).unwrap(),
            "space\n"
        );
        assert!(d.join("empty/dir").is_dir());
        assert_eq!(mode_of(&d.join("empty/dir")), 0o750);
        assert!(
            fs::symlink_metadata(d.join("run"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_link(d.join("run")).unwrap(),
            Path::new("bin/run.sh")
        );
        assert_eq!(
            fs::read_link(d.join("sub/readme-link")).unwrap(),
            Path::new("../README.md")
        );
        assert_eq!(
            fs::read_link(d.join("dangling")).unwrap(),
            Path::new("/nonexistent/target")
        );
        assert!(!d.join(".git").exists());
        assert!(!d.join("sub/.git").exists());
        let long = "d".repeat(60);
        assert!(
            d.join(format!("{long}/{long}/{long}/file-with-a-long-name.txt"))
                .is_file()
        );

        // Same input, same archive bytes.
        let again = out_dir.path().join("again.tar.gz");
        let info2 = build_archive(src.path(), &FileFilter::all(), &again).unwrap();
        assert_eq!(info.sha256, info2.sha256);
    }

    #[test]
    fn archive_applies_filter() {
        let src = fixture();
        let out_dir = tempfile::tempdir().unwrap();
        let archive = out_dir.path().join("pkg.tar.gz");
        let exclude = FileFilter::parse(FilterMode::Exclude, "*.log\n!keep.log\nempty/\n").unwrap();
        build_archive(src.path(), &exclude, &archive).unwrap();
        let d = unpack(&archive);
        assert!(!d.path().join("logs/app.log").exists());
        assert!(d.path().join("logs/keep.log").is_file());
        assert!(!d.path().join("empty").exists());
        assert!(d.path().join("README.md").is_file());

        let include = FileFilter::parse(FilterMode::Include, "bin/\n*.log\n!app.log\n").unwrap();
        let archive2 = out_dir.path().join("pkg2.tar.gz");
        let info = build_archive(src.path(), &include, &archive2).unwrap();
        assert_eq!(info.files, 2);
        let mut names = list(&archive2);
        names.sort();
        assert_eq!(names, ["bin", "bin/run.sh", "logs", "logs/keep.log"]);
        let d = unpack(&archive2);
        assert_eq!(mode_of(&d.path().join("bin/run.sh")), 0o755);
    }

    #[test]
    fn a_kept_zstd_copy_becomes_the_same_archive_in_gzip_and_lands_whole() {
        let src = fixture();
        let out = tempfile::tempdir().unwrap();
        let zst = out.path().join("full.tar.zst");
        build_archive_with(src.path(), &FileFilter::all(), &zst, Codec::Zstd, None).unwrap();
        let gz = out.path().join("kept.tar.gz");
        to_gzip(&zst, &gz).unwrap();
        let direct = out.path().join("direct.tar.gz");
        build_archive(src.path(), &FileFilter::all(), &direct).unwrap();
        assert_eq!(list(&gz), list(&direct));
        let d = unpack(&gz);
        assert_eq!(mode_of(&d.path().join("bin/run.sh")), 0o755);

        // Into the store: a second name for the finished file, the scratch one still there.
        let dest = out.path().join("store/config-1/v1.tar.zst");
        keep_in_store(&zst, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), fs::read(&zst).unwrap());
        // Again (a re-run with the same version name): replaced.
        keep_in_store(&gz, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), fs::read(&gz).unwrap());
        assert!(!dest.with_extension("partial").exists());
    }

    #[test]
    fn manifest_lists_what_is_shipped() {
        let src = fixture();
        let f = FileFilter::parse(FilterMode::Exclude, "logs/\n").unwrap();
        let m = manifest(src.path(), &f).unwrap();
        let paths: Vec<&str> = m.iter().map(|e| e.path.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert!(!paths.iter().any(|p| p.starts_with("logs")));
        assert!(!paths.iter().any(|p| p.contains(".git")));
        let run = m.iter().find(|e| e.path == "bin/run.sh").unwrap();
        assert_eq!(run.kind, EntryKind::File);
        assert_eq!(run.mode, 0o755);
        assert_eq!(run.size, 18);
        assert_eq!(
            run.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(b"#!/bin/sh\necho hi\n")).as_str())
        );
        let link = m.iter().find(|e| e.path == "run").unwrap();
        assert_eq!(link.kind, EntryKind::Symlink);
        assert_eq!(link.target.as_deref(), Some("bin/run.sh"));
        let empty = m.iter().find(|e| e.path == "empty/dir").unwrap();
        assert_eq!(empty.kind, EntryKind::Dir);
        assert!(m.iter().any(|e| e.path == "données é.txt"));
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"kind\":\"symlink\""));
    }
}
