//! Repository cache, refs and the export of one commit (with submodules).
//!
//! Every repository is kept as a bare mirror under the cache root, in
//! `root/<first 16 hex digits of sha256(url)>`. [`RepoCache::sync`] clones it when absent and
//! then fetches all branches and tags with prune. The read operations (`branches`, `tags`,
//! `commits`, `resolve`) only look at the mirror; call `sync` first.
//!
//! [`RepoCache::export`] writes exactly one commit's tree into a directory, following
//! submodules (themselves mirrored in the same cache) at their recorded commits. libgit2 has no
//! `git archive`, so the tree is walked and written by hand: this keeps exec bits and symlinks,
//! never writes a `.git` entry, and refuses tree entries that would escape the destination.
//!
//! Secrets: the URL used for fetching is never stored in a mirror's config (anonymous remotes),
//! and every URL that reaches an error message or a log goes through [`redact_url`].
//!
//! Timeouts: libgit2's socket timeouts (`git2::opts::set_server_connect_timeout_in_milliseconds`
//! and `set_server_timeout_in_milliseconds`) are `unsafe fn` in git2 0.21 and this workspace
//! forbids `unsafe_code`, so they are not set here (libgit2's default is no timeout). What we do
//! have is an overall fetch deadline checked from the progress callbacks
//! ([`RepoCache::with_fetch_deadline`]); a connection that hangs without any progress is not
//! interrupted by it. Callers should still run `sync` on a blocking thread with their own
//! timeout around it.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorCode, FetchOptions,
    FetchPrune, ObjectType, Oid, ProxyOptions, RemoteCallbacks, Repository, Sort, Tree,
};
use hippo_shared::domain::GitRef;
use sha2::{Digest, Sha256};

/// How many times a credential callback may answer before we give up (libgit2 keeps asking
/// forever when the server rejects what it is given).
const MAX_CREDENTIAL_ATTEMPTS: u32 = 2;
/// Nested submodules deeper than this are refused (protects against cycles).
const MAX_SUBMODULE_DEPTH: usize = 8;
/// Default overall deadline of one fetch.
const DEFAULT_FETCH_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// How to authenticate to a repository. `Debug` never prints the secret.
#[derive(Clone)]
pub enum RepoAuth {
    None,
    /// SSH key auth. `username` is usually `git`; a user name in the URL (`git@host:..`) wins.
    SshKey {
        username: String,
        private_key_openssh: String,
    },
    /// HTTPS basic auth with a token as the password.
    Token {
        username: String,
        token: String,
    },
}

impl fmt::Debug for RepoAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoAuth::None => f.write_str("None"),
            RepoAuth::SshKey { username, .. } => f
                .debug_struct("SshKey")
                .field("username", username)
                .field("private_key_openssh", &"<redacted>")
                .finish(),
            RepoAuth::Token { username, .. } => f
                .debug_struct("Token")
                .field("username", username)
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

impl RepoAuth {
    fn secret(&self) -> Option<&str> {
        match self {
            RepoAuth::None => None,
            RepoAuth::SshKey {
                private_key_openssh,
                ..
            } => Some(private_key_openssh),
            RepoAuth::Token { token, .. } => Some(token),
        }
    }
}

/// A branch or a tag. `commit` is the commit it points to (annotated tags peeled), `time` the
/// committer time of that commit in unix seconds.
#[derive(serde::Serialize, Clone, Debug, PartialEq, Eq)]
pub struct RefInfo {
    pub name: String,
    pub commit: String,
    pub time: i64,
}

/// One commit. `author` is the author's name, `time` the committer time (unix seconds),
/// `message` the summary (first paragraph, joined on one line).
#[derive(serde::Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub short_id: String,
    pub author: String,
    pub time: i64,
    pub message: String,
}

/// What an export wrote. `files` counts regular files and symlinks, `bytes` the size of the
/// regular files, `submodules` the submodules exported (nested ones included).
#[derive(serde::Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportInfo {
    pub files: u64,
    pub bytes: u64,
    pub submodules: u64,
}

/// What [`RepoCache::update_export`] did: files (and symlinks) written and removed, and the
/// bytes of the regular files written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateInfo {
    pub written: u64,
    pub removed: u64,
    pub bytes: u64,
}

/// A path of a commit's tree as an export writes it: `Ok(None)` for one that an export leaves
/// out (a `.git` component), `Err` for one that would leave the destination (empty, `.`,
/// `..` or NUL in a component).
fn export_path(bytes: &[u8]) -> Result<Option<PathBuf>, ()> {
    let mut out = PathBuf::new();
    for part in bytes.split(|b| *b == b'/') {
        if part.is_empty() || part == b"." || part == b".." || part.contains(&0) {
            return Err(());
        }
        if part.eq_ignore_ascii_case(b".git") {
            return Ok(None);
        }
        out.push(OsStr::from_bytes(part));
    }
    Ok(Some(out))
}

#[derive(thiserror::Error, Debug)]
pub enum GitError {
    #[error("{kind} not found: {name}")]
    RefNotFound { kind: &'static str, name: String },
    #[error("fetching {url} failed: {message}")]
    Fetch { url: String, message: String },
    #[error("repository {url} is not in the cache yet (sync it first)")]
    NotSynced { url: String },
    #[error("invalid commit id {0:?}: expected 7 to 40 hex digits")]
    InvalidCommitId(String),
    #[error("commit {commit} is not on branch {branch}")]
    NotOnBranch { commit: String, branch: String },
    #[error("commit id prefix {0} is ambiguous")]
    AmbiguousCommit(String),
    #[error("submodule {path}: {message}")]
    Submodule { path: String, message: String },
    #[error("export destination {}: {message}", path.display())]
    Destination { path: PathBuf, message: String },
    #[error("refusing unsafe path in repository tree: {0:?}")]
    UnsafePath(String),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GitError + '_ {
    move |source| GitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A cache of bare mirrors. `Send + Sync`; share it with `Arc<RepoCache>`. Syncs of one URL are
/// serialised (a mutex per URL in this process, plus an advisory file lock `root/<key>.lock`
/// against other processes using the same root).
pub struct RepoCache {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    fetch_deadline: Duration,
    /// Local repository paths inside these folders (Hippo's data folder, the kept copies) are
    /// refused, whether a config or a submodule names them (`shared::net::check_repo_location`).
    private_dirs: Vec<PathBuf>,
    /// Git servers' SSH host keys, pinned on first use (`host[:port]` → base64 key): set from
    /// the database before a fetch ([`RepoCache::set_pinned_host_keys`]); keys seen for the
    /// first time are collected for the caller to store ([`RepoCache::take_new_host_keys`]).
    host_keys: Arc<Mutex<HostKeys>>,
}

#[derive(Default)]
struct HostKeys {
    pinned: HashMap<String, String>,
    new: Vec<PinnedHostKey>,
    /// Why a host's key was refused (libgit2 does not pass the callback's message on).
    refused: HashMap<String, String>,
}

/// A Git server's SSH host key seen for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedHostKey {
    /// `host` or `host:port` (a port other than 22).
    pub host: String,
    /// base64 of the key's wire form (as in `known_hosts`).
    pub key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// `SHA256:<unpadded base64 of SHA-256 of the key>`, as OpenSSH prints it.
pub fn fingerprint(raw: &[u8]) -> String {
    use base64::Engine;
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(raw))
    )
}

/// The `host[:port]` an SSH repository URL connects to (`ssh://u@h:p/x`, scp-like `u@h:x`);
/// `None` for other URLs.
pub fn ssh_host_of(url: &str) -> Option<String> {
    let url = url.trim();
    if let Some(rest) = url
        .strip_prefix("ssh://")
        .or_else(|| url.strip_prefix("git+ssh://"))
    {
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        return Some(match host_port.rsplit_once(':') {
            Some((h, "22")) => h.to_owned(),
            _ => host_port.to_owned(),
        });
    }
    if url.contains("://") || url.starts_with('/') {
        return None;
    }
    // scp-like: [user@]host:path
    let (before, _) = url.split_once(':')?;
    let host = before.rsplit('@').next().unwrap_or(before);
    (!host.is_empty() && !host.contains('/')).then(|| host.to_owned())
}

impl fmt::Debug for RepoCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoCache")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl RepoCache {
    pub fn new(root: PathBuf) -> Self {
        RepoCache {
            root,
            locks: Mutex::new(HashMap::new()),
            fetch_deadline: DEFAULT_FETCH_DEADLINE,
            private_dirs: Vec::new(),
            host_keys: Arc::default(),
        }
    }

    /// The pinned Git server host keys (`host[:port]` → base64 key), from the database.
    pub fn set_pinned_host_keys(&self, pinned: HashMap<String, String>) {
        let mut k = self
            .host_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        k.pinned = pinned;
    }

    /// Host keys seen for the first time since the last call (to be stored, then pinned).
    pub fn take_new_host_keys(&self) -> Vec<PinnedHostKey> {
        let mut k = self
            .host_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut k.new)
    }

    /// Refuses local repositories (and submodules) inside `dirs` (`Settings::private_dirs`):
    /// Hippo's data folder holds the other configs' mirrors, the database and the master key.
    pub fn refusing_local_paths_in(mut self, dirs: Vec<PathBuf>) -> Self {
        self.private_dirs = dirs;
        self
    }

    /// Overall deadline of one fetch (default 30 min), checked whenever libgit2 reports
    /// progress.
    pub fn with_fetch_deadline(mut self, deadline: Duration) -> Self {
        self.fetch_deadline = deadline;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the mirror of `url` lives (whether or not it exists yet).
    pub fn mirror_dir(&self, url: &str) -> PathBuf {
        self.root.join(cache_key(url))
    }

    fn url_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(key.to_string()).or_default().clone()
    }

    /// Bare mirror of `url`: cloned if absent, then all branches and tags fetched with prune.
    /// Returns the mirror directory.
    pub fn sync(&self, url: &str, auth: &RepoAuth) -> Result<PathBuf, GitError> {
        if !self.private_dirs.is_empty() {
            hippo_shared::net::check_repo_location(url, &self.private_dirs).map_err(|why| {
                GitError::Fetch {
                    url: redact_url(url),
                    message: format!("the repository location {why}"),
                }
            })?;
        }
        let key = cache_key(url);
        let lock = self.url_lock(&key);
        let _guard = lock.lock().unwrap_or_else(PoisonError::into_inner);

        fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        let lock_path = self.root.join(format!("{key}.lock"));
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock_file.lock().map_err(io_err(&lock_path))?;

        let dir = self.root.join(&key);
        if dir.exists() {
            match Repository::open_bare(&dir) {
                Ok(repo) => {
                    tracing::debug!(url = %redact_url(url), dir = %dir.display(), "fetching into mirror");
                    self.fetch_into(&repo, url, auth)?;
                    return Ok(dir);
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "broken mirror, cloning again");
                    fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
                }
            }
        }

        // First clone: build it aside and rename, so a failed clone never looks like an
        // (empty) mirror.
        let partial = self.root.join(format!("{key}.partial"));
        if partial.exists() {
            fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
        }
        tracing::info!(url = %redact_url(url), dir = %dir.display(), "creating mirror");
        let repo = Repository::init_bare(&partial)?;
        if let Err(e) = self.fetch_into(&repo, url, auth) {
            drop(repo);
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
        drop(repo);
        fs::rename(&partial, &dir).map_err(io_err(&dir))?;
        Ok(dir)
        // `lock_file` is dropped here, which releases the file lock.
    }

    fn fetch_into(&self, repo: &Repository, url: &str, auth: &RepoAuth) -> Result<(), GitError> {
        let fetch_err = |e: git2::Error| {
            // libgit2 replaces a refused host key's reason by its own words: ours say which.
            let refused = ssh_host_of(url).and_then(|h| {
                self.host_keys
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .refused
                    .remove(&h)
            });
            GitError::Fetch {
                url: redact_url(url),
                message: refused.unwrap_or_else(|| sanitize_message(&fetch_message(&e), url, auth)),
            }
        };
        // Anonymous remote: the URL (which may carry credentials) is never written to the
        // mirror's config.
        let mut remote = repo.remote_anonymous(url).map_err(fetch_err)?;
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(callbacks(
            auth,
            Instant::now() + self.fetch_deadline,
            ssh_host_of(url),
            self.host_keys.clone(),
        ));
        fo.prune(FetchPrune::On);
        fo.download_tags(AutotagOption::None);
        fo.update_fetchhead(false);
        let mut proxy = ProxyOptions::new();
        proxy.auto();
        fo.proxy_options(proxy);
        remote
            .fetch(
                &["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                Some(&mut fo),
                Some("hippo: sync"),
            )
            .map_err(fetch_err)?;
        Ok(())
    }

    fn open_mirror(&self, url: &str) -> Result<Repository, GitError> {
        let dir = self.mirror_dir(url);
        if !dir.exists() {
            return Err(GitError::NotSynced {
                url: redact_url(url),
            });
        }
        Ok(Repository::open_bare(&dir)?)
    }

    /// Branches of the mirror, sorted by name.
    pub fn branches(&self, url: &str) -> Result<Vec<RefInfo>, GitError> {
        let repo = self.open_mirror(url)?;
        let mut out = list_refs(&repo, "refs/heads/")?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Tags of the mirror, newest first (by the time of the tagged commit; annotated tags are
    /// peeled, tags of non-commits are left out), then by name.
    pub fn tags(&self, url: &str) -> Result<Vec<RefInfo>, GitError> {
        let repo = self.open_mirror(url)?;
        let mut out = list_refs(&repo, "refs/tags/")?;
        out.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The latest `limit` commits of `branch`, newest first.
    pub fn commits(
        &self,
        url: &str,
        branch: &str,
        limit: usize,
    ) -> Result<Vec<CommitInfo>, GitError> {
        let repo = self.open_mirror(url)?;
        let head = find_ref_commit(&repo, "branch", "refs/heads/", branch)?;
        let mut walk = repo.revwalk()?;
        walk.set_sorting(Sort::TIME)?;
        walk.push(head)?;
        let mut out = Vec::new();
        for oid in walk.take(limit) {
            out.push(commit_info(&repo.find_commit(oid?)?));
        }
        Ok(out)
    }

    /// The commit a branch, tag or (abbreviated) SHA names.
    pub fn resolve(&self, url: &str, r: &GitRef) -> Result<CommitInfo, GitError> {
        let repo = self.open_mirror(url)?;
        let oid = match r {
            GitRef::Branch(name) => find_ref_commit(&repo, "branch", "refs/heads/", name)?,
            GitRef::Tag(name) => find_ref_commit(&repo, "tag", "refs/tags/", name)?,
            GitRef::Commit(sha) => find_commit_id(&repo, sha)?,
        };
        Ok(commit_info(&repo.find_commit(oid)?))
    }

    /// The commit `sha` (full or abbreviated) names, if it is on `branch`: the branch's tip or
    /// one of its ancestors. [`GitError::NotOnBranch`] otherwise (a commit picked from one
    /// branch must not ship as another's).
    pub fn resolve_on_branch(
        &self,
        url: &str,
        sha: &str,
        branch: &str,
    ) -> Result<CommitInfo, GitError> {
        let repo = self.open_mirror(url)?;
        let tip = find_ref_commit(&repo, "branch", "refs/heads/", branch)?;
        let oid = find_commit_id(&repo, sha)?;
        if oid != tip && !repo.graph_descendant_of(tip, oid)? {
            return Err(GitError::NotOnBranch {
                commit: oid.to_string(),
                branch: branch.to_string(),
            });
        }
        Ok(commit_info(&repo.find_commit(oid)?))
    }

    fn lookup_commit(&self, url: &str, commit: &str) -> Result<Oid, GitError> {
        let repo = self.open_mirror(url)?;
        find_commit_id(&repo, commit)
    }

    /// Writes exactly the tree of `commit` (full or abbreviated SHA) into `dest`, which must
    /// not exist or be an empty directory. Regular files keep their exec bit (0755/0644),
    /// symlinks stay symlinks, directories are 0755, submodules are exported recursively at
    /// their recorded commits (URLs from that commit's `.gitmodules`, relative URLs resolved
    /// against the parent's URL, each one mirrored in this cache). Nothing named `.git` is
    /// written. If the mirror is missing or lacks the commit, `url` is synced first.
    ///
    /// Submodule credentials: an SSH key is offered to every submodule; a token only to
    /// submodules on the same host as `url`. A submodule with a local URL (path or `file://`)
    /// is only allowed when `url` itself is local.
    pub fn export(
        &self,
        url: &str,
        auth: &RepoAuth,
        commit: &str,
        dest: &Path,
    ) -> Result<ExportInfo, GitError> {
        prepare_dest(dest)?;
        let oid = match self.lookup_commit(url, commit) {
            Ok(oid) => oid,
            Err(GitError::NotSynced { .. } | GitError::RefNotFound { .. }) => {
                self.sync(url, auth)?;
                self.lookup_commit(url, commit)?
            }
            Err(e) => return Err(e),
        };
        let mut ctx = ExportCtx {
            top_url: url,
            auth,
            synced: HashSet::new(),
            info: ExportInfo::default(),
        };
        ctx.synced.insert(url.to_string());
        self.export_commit(&mut ctx, url, oid, dest, "", 0)?;
        Ok(ctx.info)
    }

    /// Brings `dest`, an export of commit `from` by [`RepoCache::export`] (or by this function)
    /// left untouched since, to commit `to`: removes the files that are gone (and the folders
    /// that leaves empty), writes the ones that are new or differ (content, mode or type).
    /// Only the commits' trees are compared: nothing under `dest` is read. `Ok(None)` when it
    /// cannot be done this way (a submodule in the change, a commit unknown, `dest` not as
    /// `from` left it): export afresh instead. After an error `dest` is in between: export
    /// afresh. Call `sync` first.
    pub fn update_export(
        &self,
        url: &str,
        from: &str,
        to: &str,
        dest: &Path,
    ) -> Result<Option<UpdateInfo>, GitError> {
        let repo = self.open_mirror(url)?;
        let (Ok(old), Ok(new)) = (find_commit_id(&repo, from), find_commit_id(&repo, to)) else {
            return Ok(None);
        };
        let old_tree = repo.find_commit(old)?.tree()?;
        let new_tree = repo.find_commit(new)?.tree()?;
        let diff = repo.diff_tree_to_tree(Some(&old_tree), Some(&new_tree), None)?;
        let mut removes: Vec<PathBuf> = Vec::new();
        let mut writes: Vec<(PathBuf, Oid, i32)> = Vec::new();
        for delta in diff.deltas() {
            let (o, n) = (delta.old_file(), delta.new_file());
            if o.mode() == git2::FileMode::Commit || n.mode() == git2::FileMode::Commit {
                return Ok(None);
            }
            // Submodules' URLs live in .gitmodules: a change there may make a fresh export
            // fetch elsewhere (or fail), which updating the files in place would not notice.
            let gitmodules =
                |f: &git2::DiffFile<'_>| f.path_bytes() == Some(b".gitmodules".as_slice());
            if gitmodules(&o) || gitmodules(&n) {
                return Ok(None);
            }
            let rel = |f: &git2::DiffFile<'_>| f.path_bytes().map(export_path);
            match delta.status() {
                git2::Delta::Added => match rel(&n) {
                    Some(Ok(Some(p))) => writes.push((p, n.id(), i32::from(n.mode()))),
                    Some(Ok(None)) => {}
                    _ => return Ok(None),
                },
                git2::Delta::Deleted => match rel(&o) {
                    Some(Ok(Some(p))) => removes.push(p),
                    Some(Ok(None)) => {}
                    _ => return Ok(None),
                },
                git2::Delta::Modified | git2::Delta::Typechange => match (rel(&o), rel(&n)) {
                    (Some(Ok(Some(a))), Some(Ok(Some(b)))) => {
                        removes.push(a);
                        writes.push((b, n.id(), i32::from(n.mode())));
                    }
                    (Some(Ok(None)), Some(Ok(None))) => {}
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
        let mut info = UpdateInfo::default();
        for rel in &removes {
            let target = dest.join(rel);
            match fs::symlink_metadata(&target) {
                Ok(m) if !m.is_dir() => fs::remove_file(&target).map_err(io_err(&target))?,
                // Not what `from` left there.
                _ => return Ok(None),
            }
            info.removed += 1;
            // Git keeps no empty folders, nor does an export: remove the ones left empty.
            let mut dir = target.parent();
            while let Some(d) = dir.filter(|d| *d != dest && d.starts_with(dest)) {
                if fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        for (rel, oid, mode) in &writes {
            let target = dest.join(rel);
            let mut dir = dest.to_path_buf();
            if let Some(parent) = rel.parent() {
                for part in parent.components() {
                    dir.push(part);
                    match fs::symlink_metadata(&dir) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => return Ok(None),
                        Err(_) => make_dir(&dir)?,
                    }
                }
            }
            let blob = repo.find_blob(*oid)?;
            if *mode == i32::from(git2::FileMode::Link) {
                symlink(OsStr::from_bytes(blob.content()), &target).map_err(io_err(&target))?;
            } else {
                write_file(&target, *mode, blob.content())?;
                info.bytes += blob.size() as u64;
            }
            info.written += 1;
        }
        Ok(Some(info))
    }

    /// Exports commit `oid` of the mirror of `url` into the existing directory `dest`.
    /// `display_prefix` is the path of this repository inside the top-level export (for
    /// messages).
    fn export_commit(
        &self,
        ctx: &mut ExportCtx<'_>,
        url: &str,
        oid: Oid,
        dest: &Path,
        display_prefix: &str,
        depth: usize,
    ) -> Result<(), GitError> {
        let repo = self.open_mirror(url)?;
        let commit = repo.find_commit(oid)?;
        let tree = commit.tree()?;
        let modules = match tree.get_name(".gitmodules") {
            Some(entry) if entry.kind() == Some(ObjectType::Blob) => {
                let blob = repo.find_blob(entry.id())?;
                parse_gitmodules(&String::from_utf8_lossy(blob.content()))
            }
            _ => HashMap::new(),
        };
        let mut walker = TreeWriter {
            cache: self,
            ctx,
            repo: &repo,
            url,
            modules: &modules,
            display_prefix,
            depth,
        };
        walker.write_tree(&tree, dest, "")
    }

    fn export_submodule(
        &self,
        ctx: &mut ExportCtx<'_>,
        sub_url: &str,
        oid: Oid,
        dest: &Path,
        display_path: &str,
        depth: usize,
    ) -> Result<(), GitError> {
        let sub_err = |message: String| GitError::Submodule {
            path: display_path.to_string(),
            message,
        };
        if depth > MAX_SUBMODULE_DEPTH {
            return Err(sub_err(format!(
                "submodules nested deeper than {MAX_SUBMODULE_DEPTH} levels"
            )));
        }
        if is_local_url(sub_url) && !is_local_url(ctx.top_url) {
            return Err(sub_err(format!(
                "local submodule URL {} is not allowed for a remote repository",
                redact_url(sub_url)
            )));
        }
        let has_commit = |cache: &RepoCache| -> bool {
            cache
                .open_mirror(sub_url)
                .ok()
                .is_some_and(|r| r.find_commit(oid).is_ok())
        };
        if !has_commit(self) {
            if ctx.synced.contains(sub_url) {
                return Err(sub_err(format!(
                    "commit {oid} not found in {}",
                    redact_url(sub_url)
                )));
            }
            let auth = submodule_auth(ctx.auth, ctx.top_url, sub_url);
            tracing::info!(submodule = display_path, url = %redact_url(sub_url), "syncing submodule");
            self.sync(sub_url, &auth)
                .map_err(|e| sub_err(e.to_string()))?;
            ctx.synced.insert(sub_url.to_string());
            if !has_commit(self) {
                return Err(sub_err(format!(
                    "commit {oid} not found in {}",
                    redact_url(sub_url)
                )));
            }
        }
        ctx.info.submodules += 1;
        let prefix = format!("{display_path}/");
        self.export_commit(ctx, sub_url, oid, dest, &prefix, depth)
    }
}

struct ExportCtx<'a> {
    top_url: &'a str,
    auth: &'a RepoAuth,
    /// URLs synced during this export (each at most once).
    synced: HashSet<String>,
    info: ExportInfo,
}

struct TreeWriter<'a, 'b> {
    cache: &'a RepoCache,
    ctx: &'a mut ExportCtx<'b>,
    repo: &'a Repository,
    url: &'a str,
    /// `.gitmodules` of this repository's commit: path -> url.
    modules: &'a HashMap<String, String>,
    display_prefix: &'a str,
    depth: usize,
}

impl TreeWriter<'_, '_> {
    /// Writes `tree` into the existing directory `dir`; `rel` is the path of `dir` inside this
    /// repository ("" for its root, else ending with '/').
    fn write_tree(&mut self, tree: &Tree<'_>, dir: &Path, rel: &str) -> Result<(), GitError> {
        for entry in tree.iter() {
            let name = entry.name_bytes();
            let rel_path = format!("{rel}{}", String::from_utf8_lossy(name));
            if name.is_empty()
                || name == b"."
                || name == b".."
                || name.contains(&b'/')
                || name.contains(&0)
            {
                return Err(GitError::UnsafePath(format!(
                    "{}{rel_path}",
                    self.display_prefix
                )));
            }
            if name.eq_ignore_ascii_case(b".git") {
                tracing::warn!(path = %format!("{}{rel_path}", self.display_prefix), "skipping .git entry found in a tree");
                continue;
            }
            let target = dir.join(OsStr::from_bytes(name));
            let mode = entry.filemode();
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    make_dir(&target)?;
                    let sub = self.repo.find_tree(entry.id())?;
                    self.write_tree(&sub, &target, &format!("{rel_path}/"))?;
                }
                Some(ObjectType::Blob) if mode == 0o120000 => {
                    let blob = self.repo.find_blob(entry.id())?;
                    symlink(OsStr::from_bytes(blob.content()), &target).map_err(io_err(&target))?;
                    self.ctx.info.files += 1;
                }
                Some(ObjectType::Blob) => {
                    let blob = self.repo.find_blob(entry.id())?;
                    write_file(&target, mode, blob.content())?;
                    self.ctx.info.files += 1;
                    self.ctx.info.bytes += blob.size() as u64;
                }
                Some(ObjectType::Commit) => {
                    let display = format!("{}{rel_path}", self.display_prefix);
                    let Some(raw_url) = self.modules.get(&rel_path) else {
                        return Err(GitError::Submodule {
                            path: display,
                            message: "no url for this path in .gitmodules".to_string(),
                        });
                    };
                    let sub_url = resolve_submodule_url(self.url, raw_url).ok_or_else(|| {
                        GitError::Submodule {
                            path: display.clone(),
                            message: format!(
                                "cannot resolve relative url {raw_url:?} against {}",
                                redact_url(self.url)
                            ),
                        }
                    })?;
                    make_dir(&target)?;
                    self.cache.export_submodule(
                        self.ctx,
                        &sub_url,
                        entry.id(),
                        &target,
                        &display,
                        self.depth + 1,
                    )?;
                }
                other => {
                    tracing::warn!(path = %format!("{}{rel_path}", self.display_prefix), kind = ?other, "skipping unexpected tree entry");
                }
            }
        }
        Ok(())
    }
}

/// Writes a blob as a new regular file: 0755 if Git's mode has an exec bit, else 0644 (set
/// exactly, after the umask applied at creation).
fn write_file(target: &Path, mode: i32, content: &[u8]) -> Result<(), GitError> {
    let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(perm)
        .open(target)
        .map_err(io_err(target))?;
    file.write_all(content).map_err(io_err(target))?;
    file.set_permissions(fs::Permissions::from_mode(perm))
        .map_err(io_err(target))
}

fn make_dir(path: &Path) -> Result<(), GitError> {
    fs::create_dir(path).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(io_err(path))
}

fn prepare_dest(dest: &Path) -> Result<(), GitError> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).map_err(io_err(dest))
        }
        Err(e) => Err(io_err(dest)(e)),
        Ok(meta) if !meta.is_dir() => Err(GitError::Destination {
            path: dest.to_path_buf(),
            message: "exists and is not a directory".to_string(),
        }),
        Ok(_) => {
            let mut entries = fs::read_dir(dest).map_err(io_err(dest))?;
            if entries.next().is_some() {
                return Err(GitError::Destination {
                    path: dest.to_path_buf(),
                    message: "is not empty".to_string(),
                });
            }
            Ok(())
        }
    }
}

fn cache_key(url: &str) -> String {
    let mut key = hex::encode(Sha256::digest(url.as_bytes()));
    key.truncate(16);
    key
}

fn callbacks<'a>(
    auth: &'a RepoAuth,
    deadline: Instant,
    ssh_host: Option<String>,
    host_keys: Arc<Mutex<HostKeys>>,
) -> RemoteCallbacks<'a> {
    let mut cbs = RemoteCallbacks::new();
    let mut attempts = 0u32;
    let mut username_requests = 0u32;
    cbs.credentials(move |_url, username_from_url, allowed| {
        if allowed.contains(CredentialType::USERNAME) {
            // libgit2 asks for the user name first when the SSH URL has none.
            username_requests += 1;
            if username_requests > MAX_CREDENTIAL_ATTEMPTS {
                return Err(git2::Error::from_str("authentication failed"));
            }
            let name = match auth {
                RepoAuth::SshKey { username, .. } | RepoAuth::Token { username, .. } => {
                    username.as_str()
                }
                RepoAuth::None => "git",
            };
            return Cred::username(username_from_url.unwrap_or(name));
        }
        attempts += 1;
        if attempts > MAX_CREDENTIAL_ATTEMPTS {
            return Err(git2::Error::from_str(
                "authentication failed: credentials rejected",
            ));
        }
        match auth {
            RepoAuth::None => Err(git2::Error::from_str(
                "the repository requires authentication and no credentials are configured",
            )),
            RepoAuth::SshKey {
                username,
                private_key_openssh,
            } => {
                if allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY) {
                    // libgit2 insists on the URL's user name when the URL has one.
                    let user = username_from_url.unwrap_or(username);
                    Cred::ssh_key_from_memory(user, None, private_key_openssh, None)
                } else {
                    Err(git2::Error::from_str(
                        "an SSH key is configured but the server does not accept one",
                    ))
                }
            }
            RepoAuth::Token { username, token } => {
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                    Cred::userpass_plaintext(username, token)
                } else {
                    Err(git2::Error::from_str(
                        "a token is configured but the server does not accept a password",
                    ))
                }
            }
        }
    });
    cbs.certificate_check(move |cert, host| {
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS: let libgit2 apply its normal certificate validation.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let Some(raw) = hostkey.hostkey() else {
            return Err(git2::Error::from_str(
                "the Git server offered no SSH host key",
            ));
        };
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode(raw);
        let name = ssh_host.clone().unwrap_or_else(|| host.to_owned());
        let mut keys = host_keys.lock().unwrap_or_else(PoisonError::into_inner);
        match keys.pinned.get(&name) {
            Some(pinned) if *pinned == key => Ok(CertificateCheckStatus::CertificateOk),
            Some(pinned) => {
                let was = base64::engine::general_purpose::STANDARD
                    .decode(pinned)
                    .map(|b| fingerprint(&b))
                    .unwrap_or_default();
                let why = format!(
                    "the SSH host key of the Git server {name} changed: pinned {was}, offered {}; \
                     if the server was really reinstalled, an admin forgets the pinned key \
                     (DELETE /api/release-configs/{{id}}/git/host-key) and the next fetch pins \
                     the new one",
                    fingerprint(raw)
                );
                keys.refused.insert(name, why.clone());
                Err(git2::Error::from_str(&why))
            }
            None => {
                // Pinned on first use.
                keys.pinned.insert(name.clone(), key.clone());
                keys.new.push(PinnedHostKey {
                    host: name,
                    key,
                    fingerprint: fingerprint(raw),
                });
                Ok(CertificateCheckStatus::CertificateOk)
            }
        }
    });
    cbs.transfer_progress(move |_| Instant::now() < deadline);
    cbs.sideband_progress(move |_| Instant::now() < deadline);
    cbs
}

fn fetch_message(e: &git2::Error) -> String {
    if e.code() == ErrorCode::User {
        "fetch cancelled: deadline exceeded".to_string()
    } else {
        e.message().to_string()
    }
}

/// Removes the URL's credentials and any secret from a message coming from libgit2.
fn sanitize_message(message: &str, url: &str, auth: &RepoAuth) -> String {
    let mut out = message.replace(url, &redact_url(url));
    if let Some(secret) = auth.secret()
        && secret.len() >= 4
    {
        out = out.replace(secret, "<redacted>");
    }
    if let Some(userinfo) = url_userinfo(url)
        && userinfo.contains(':')
    {
        out = out.replace(userinfo, "<redacted>");
    }
    out
}

fn url_userinfo(url: &str) -> Option<&str> {
    let idx = url.find("://")?;
    let rest = &url[idx + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

/// The URL without its userinfo (`https://user:token@host/x` -> `https://host/x`). scp-like
/// SSH URLs (`git@host:owner/repo.git`) are returned unchanged: their user is no secret.
pub fn redact_url(url: &str) -> String {
    if let Some(idx) = url.find("://")
        && let Some(userinfo) = url_userinfo(url)
    {
        let start = idx + 3 + userinfo.len() + 1;
        return format!("{}{}", &url[..idx + 3], &url[start..]);
    }
    url.to_string()
}

/// Local path, relative path or `file://` URL (as opposed to ssh/scp-like/http(s)/git).
fn is_local_url(url: &str) -> bool {
    if let Some(idx) = url.find("://") {
        return url[..idx].eq_ignore_ascii_case("file");
    }
    // scp-like `[user@]host:path`: a ':' before any '/'.
    match url.find(':') {
        Some(colon) => url[..colon].contains('/'),
        None => true,
    }
}

/// Host of a remote URL (`None` for local ones).
fn url_host(url: &str) -> Option<String> {
    if let Some(idx) = url.find("://") {
        let rest = &url[idx + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let host = if let Some(stripped) = host_port.strip_prefix('[') {
            stripped.split(']').next().unwrap_or(stripped)
        } else {
            host_port.split(':').next().unwrap_or(host_port)
        };
        return Some(host.to_ascii_lowercase());
    }
    if is_local_url(url) {
        return None;
    }
    let before_colon = url.split(':').next().unwrap_or(url);
    Some(
        before_colon
            .rsplit('@')
            .next()
            .unwrap_or(before_colon)
            .to_ascii_lowercase(),
    )
}

fn submodule_auth(auth: &RepoAuth, top_url: &str, sub_url: &str) -> RepoAuth {
    match auth {
        RepoAuth::Token { .. } if url_host(top_url) != url_host(sub_url) => {
            tracing::debug!(url = %redact_url(sub_url), "submodule on another host: not sending the token");
            RepoAuth::None
        }
        other => other.clone(),
    }
}

/// Resolves a submodule URL from `.gitmodules` against the URL of its parent repository, the
/// way git does for `./` and `../` URLs. Absolute URLs are returned as they are.
pub fn resolve_submodule_url(parent: &str, url: &str) -> Option<String> {
    if !(url.starts_with("./") || url.starts_with("../")) {
        return Some(url.to_string());
    }
    let mut base = parent.trim_end_matches('/').to_string();
    // `path/to/repo/.git` (a non-bare repository given by its .git dir) means `path/to/repo`.
    if let Some(stripped) = base.strip_suffix("/.git") {
        base = stripped.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let mut rel = url;
    let mut sep = "/";
    loop {
        if let Some(rest) = rel.strip_prefix("./") {
            rel = rest;
        } else if let Some(rest) = rel.strip_prefix("../") {
            rel = rest;
            let tail = &base[scheme_end..];
            if let Some(slash) = tail.rfind('/') {
                base.truncate(scheme_end + slash);
                sep = "/";
            } else if scheme_end == 0
                && let Some(colon) = tail.rfind(':')
            {
                // scp-like `host:repo.git` -> `host:`
                base.truncate(colon + 1);
                sep = "";
            } else {
                return None;
            }
        } else {
            break;
        }
    }
    if base.ends_with(':') {
        sep = "";
    }
    Some(format!("{base}{sep}{rel}"))
}

/// Minimal `.gitmodules` reader: returns path -> url for every `[submodule "name"]` section
/// that has both. (Deliberately not libgit2's config reader: it would honour `[include]`.)
pub fn parse_gitmodules(text: &str) -> HashMap<String, String> {
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut urls: HashMap<String, String> = HashMap::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            section = parse_section(rest);
            continue;
        }
        let Some(name) = &section else { continue };
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), parse_value(v)),
            None => continue,
        };
        if key.eq_ignore_ascii_case("path") {
            paths.insert(name.clone(), value.trim_end_matches('/').to_string());
        } else if key.eq_ignore_ascii_case("url") {
            urls.insert(name.clone(), value);
        }
    }
    paths
        .into_iter()
        .filter_map(|(name, path)| urls.remove(&name).map(|url| (path, url)))
        .collect()
}

/// `submodule "name"]` -> Some(name) (other sections -> None).
fn parse_section(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let kind_end = rest.find(|c: char| c.is_whitespace() || c == ']')?;
    if !rest[..kind_end].eq_ignore_ascii_case("submodule") {
        return None;
    }
    let rest = rest[kind_end..].trim_start().strip_prefix('"')?;
    let mut name = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(chars.next()?),
            '"' => return Some(name),
            c => name.push(c),
        }
    }
    None
}

/// A config value: quotes removed, escapes applied, comments outside quotes cut.
fn parse_value(v: &str) -> String {
    let mut out = String::new();
    let mut in_quotes = false;
    let mut chars = v.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_quotes = !in_quotes,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !in_quotes => break,
            c => out.push(c),
        }
    }
    if in_quotes {
        out
    } else {
        out.trim_end().to_string()
    }
}

fn list_refs(repo: &Repository, prefix: &str) -> Result<Vec<RefInfo>, GitError> {
    let mut out = Vec::new();
    for reference in repo.references()? {
        let reference = reference?;
        // git2 0.21: `name()` is a `Result` (Err for non-UTF-8 names, which we skip).
        let Some(name) = reference.name().ok().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let name = name.to_string();
        // Tags of trees or blobs (and broken refs) are not releasable: skip them.
        let Ok(commit) = reference.peel_to_commit() else {
            continue;
        };
        out.push(RefInfo {
            name,
            commit: commit.id().to_string(),
            time: commit.time().seconds(),
        });
    }
    Ok(out)
}

fn find_ref_commit(
    repo: &Repository,
    kind: &'static str,
    prefix: &str,
    name: &str,
) -> Result<Oid, GitError> {
    let not_found = || GitError::RefNotFound {
        kind,
        name: name.to_string(),
    };
    let reference = match repo.find_reference(&format!("{prefix}{name}")) {
        Ok(r) => r,
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => {
            return Err(not_found());
        }
        Err(e) => return Err(e.into()),
    };
    match reference.peel_to_commit() {
        Ok(c) => Ok(c.id()),
        Err(e) if e.code() == ErrorCode::NotFound => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

fn find_commit_id(repo: &Repository, sha: &str) -> Result<Oid, GitError> {
    let sha = sha.trim();
    // The API's rule (`GitRef::commit`), so that what the API accepts is never refused here.
    if GitRef::commit(sha).is_err() {
        return Err(GitError::InvalidCommitId(sha.to_string()));
    }
    let not_found = || GitError::RefNotFound {
        kind: "commit",
        name: sha.to_string(),
    };
    let object = match repo.find_object_by_prefix(sha, Some(ObjectType::Commit)) {
        Ok(o) => o,
        Err(e) => {
            return Err(match e.code() {
                ErrorCode::NotFound => not_found(),
                ErrorCode::Ambiguous => GitError::AmbiguousCommit(sha.to_string()),
                // An object with that id exists but is no commit.
                ErrorCode::InvalidSpec => not_found(),
                _ if e.class() == git2::ErrorClass::Invalid => not_found(),
                _ => e.into(),
            });
        }
    };
    match object.peel_to_commit() {
        Ok(c) => Ok(c.id()),
        Err(_) => Err(not_found()),
    }
}

fn commit_info(commit: &git2::Commit<'_>) -> CommitInfo {
    let id = commit.id().to_string();
    let short_id = id.chars().take(7).collect();
    CommitInfo {
        short_id,
        id,
        author: String::from_utf8_lossy(commit.author().name_bytes()).into_owned(),
        time: commit.time().seconds(),
        message: commit
            .summary_bytes()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default(),
    }
}

/// Sets libgit2's connect and read/write timeouts for every remote operation (its default is
/// none: a Git server that stops answering would hang a fetch forever).
///
/// Call it once at process start, before any thread exists: libgit2 keeps these in
/// unsynchronised C globals.
#[allow(unsafe_code)]
pub fn set_network_timeouts(connect: Duration, io: Duration) -> Result<(), GitError> {
    let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: called from `main` before the runtime (or any other thread) starts, which is the
    // documented requirement of both functions; the values are plain integers.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(ms(connect))?;
        git2::opts::set_server_timeout_in_milliseconds(ms(io))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact_url("https://x-access-token:s3cr3t@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            redact_url("ssh://git@host:22/o/r.git"),
            "ssh://host:22/o/r.git"
        );
        assert_eq!(redact_url("git@host:o/r.git"), "git@host:o/r.git");
        assert_eq!(redact_url("/tmp/x/repo.git"), "/tmp/x/repo.git");
        let auth = RepoAuth::Token {
            username: "u".into(),
            token: "s3cr3t-token".into(),
        };
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        let msg = sanitize_message(
            "failed for https://u:s3cr3t-token@h/r (s3cr3t-token)",
            "https://u:s3cr3t-token@h/r",
            &auth,
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn resolves_relative_submodule_urls() {
        let r = |p, u| resolve_submodule_url(p, u);
        assert_eq!(
            r("/tmp/x/main.git", "../sub.git").as_deref(),
            Some("/tmp/x/sub.git")
        );
        assert_eq!(
            r("file:///tmp/x/main.git", "../sub.git").as_deref(),
            Some("file:///tmp/x/sub.git")
        );
        assert_eq!(
            r("git@host:owner/main.git", "../lib.git").as_deref(),
            Some("git@host:owner/lib.git")
        );
        assert_eq!(
            r("git@host:owner/main.git", "../../other/lib.git").as_deref(),
            Some("git@host:other/lib.git")
        );
        assert_eq!(
            r("https://h/o/main.git/", "./sub").as_deref(),
            Some("https://h/o/main.git/sub")
        );
        assert_eq!(
            r("https://h/o/main", "../../x/y.git").as_deref(),
            Some("https://h/x/y.git")
        );
        assert_eq!(
            r("https://h/o/main", "https://other/z.git").as_deref(),
            Some("https://other/z.git")
        );
    }

    #[test]
    fn url_kinds_and_hosts() {
        assert!(is_local_url("/tmp/a.git"));
        assert!(is_local_url("file:///tmp/a.git"));
        assert!(is_local_url("./a/b:c"));
        assert!(!is_local_url("git@host:o/r.git"));
        assert!(!is_local_url("https://h/o/r"));
        assert_eq!(
            url_host("git@GitHub.com:o/r.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            url_host("https://u:p@h.example:8443/o").as_deref(),
            Some("h.example")
        );
        assert_eq!(url_host("/tmp/x"), None);
        let token = RepoAuth::Token {
            username: "u".into(),
            token: "t".into(),
        };
        assert!(matches!(
            submodule_auth(&token, "https://a/x", "https://b/y"),
            RepoAuth::None
        ));
        assert!(matches!(
            submodule_auth(&token, "https://a/x", "https://a/y"),
            RepoAuth::Token { .. }
        ));
    }

    #[test]
    fn parses_gitmodules() {
        let text = "[submodule \"lib/sub\"]\n\tpath = lib/sub\n\turl = ../sub.git\n\
                    [submodule \"x.y\"] # c\n path = \"vendor/x y\"\nURL = git@h:o/x.git ; c\n\
                    [core]\n path = nope\n";
        let m = parse_gitmodules(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m["lib/sub"], "../sub.git");
        assert_eq!(m["vendor/x y"], "git@h:o/x.git");
    }
}
