//! Values parsed once at the edge. Past the constructors, the rest of the code trusts them:
//! a `DeployPath` is absolute and normalised, a `GitRef` names a valid ref, and so on.
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a value was refused, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(msg.into()))
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(v: String) -> Result<Self, Invalid> {
                Self::parse(&v)
            }
        }
    };
}

/// Typed record ids: an `EnvironmentId` is not an `AppId`, so passing one where the other is
/// meant does not compile. Each is an `i64` in the database (sqlx `transparent`, SQLite and
/// PostgreSQL alike), in JSON and in the spec (a plain `integer`, format `int64`: with the
/// `openapi` feature they are poem-openapi new types without a title or description of their
/// own, so the spec is the same as with bare integers). See [`Grant::covers`] for the
/// compile-time check.
macro_rules! id_newtype {
    ($($name:ident),* $(,)?) => {$(
        // No doc comment on the struct: poem-openapi would copy it into every id's schema.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[cfg_attr(feature = "openapi", derive(poem_openapi::NewType))]
        #[cfg_attr(feature = "openapi", oai(to_header = false, from_multipart = false))]
        pub struct $name(i64);
        impl $name {
            pub const fn new(id: i64) -> Self {
                Self(id)
            }
            pub const fn get(self) -> i64 {
                self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
        impl From<$name> for i64 {
            fn from(v: $name) -> i64 {
                v.0
            }
        }
    )*};
}

id_newtype!(
    EnvironmentId,
    AppId,
    HostId,
    ConfigId,
    ReleaseId,
    UserId,
    RoleId,
    BindingId,
    TokenId,
    LockoutId,
    AuditId,
    NoticeAttemptId,
    TerminalSessionId,
);

string_newtype!(
    /// `dev`, `prod`, `cart`: lowercase letters, digits, `-` and `_`, 1–32 chars, starting
    /// with a letter or digit. Used for environments and apps.
    Tag
);
impl Tag {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok_first = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if s.is_empty() || s.len() > 32 || !ok_first || !ok_rest {
            return invalid(
                "must be 1-32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
            );
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A display name: 1–100 characters, no control characters, trimmed.
    Name
);
impl Name {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 100 || has_control(t) {
            return invalid("must be 1-100 characters without control characters");
        }
        Ok(Self(t.to_owned()))
    }
}

string_newtype!(
    /// An absolute, normalised path on a target host (`/var/www/html`): no `.` or `..`
    /// components, no empty components, no control characters, not `/` itself.
    RemotePath
);
impl RemotePath {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if !s.starts_with('/') {
            return invalid("must be an absolute path");
        }
        let trimmed = s.trim_end_matches('/');
        if trimmed.is_empty() {
            return invalid("must not be the root directory");
        }
        if s.len() > 1024 || has_control(s) {
            return invalid("must be at most 1024 characters without control characters");
        }
        for part in trimmed[1..].split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return invalid("must not contain empty, '.' or '..' components");
            }
        }
        Ok(Self(trimmed.to_owned()))
    }
    /// `self` joined with one plain folder name.
    pub fn join(&self, name: &VersionName) -> String {
        format!("{}/{}", self.0, name.as_str())
    }
    /// True when `other` is this path or lies below it.
    pub fn contains(&self, other: &RemotePath) -> bool {
        other.0 == self.0 || other.0.starts_with(&format!("{}/", self.0))
    }
}

string_newtype!(
    /// The folder name of one version on a host, e.g. `20261123T231800Z-r42-1a2b3c4`.
    VersionName
);
impl VersionName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && !s.starts_with('.')
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return invalid("must be a plain folder name of letters, digits, '.', '_' or '-'");
        }
        Ok(Self(s.to_owned()))
    }
    /// A new version's name: sortable by time, then release id, then commit.
    pub fn for_release(
        at: chrono::DateTime<chrono::Utc>,
        release_id: ReleaseId,
        commit: &CommitId,
    ) -> Self {
        Self(format!(
            "{}-r{}-{}",
            at.format("%Y%m%dT%H%M%SZ"),
            release_id,
            commit.short()
        ))
    }
}

/// Hex digits of a full commit id. SHA-1 only: libgit2 (git2 0.21, as built here) reads
/// SHA-1 repositories, so a longer id could never name a commit (the API refuses it with 422).
pub const COMMIT_ID_LEN: usize = 40;
/// The fewest hex digits an abbreviated commit id may have.
pub const COMMIT_ID_MIN: usize = 7;

string_newtype!(
    /// A full Git commit id: 40 lowercase hex digits (SHA-1, [`COMMIT_ID_LEN`]).
    CommitId
);
impl CommitId {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = s.len() == COMMIT_ID_LEN
            && s.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !ok {
            return invalid("must be a full commit id (40 lowercase hex characters)");
        }
        Ok(Self(s.to_owned()))
    }
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

/// A branch, tag or commit as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum GitRef {
    Branch(String),
    Tag(String),
    /// A full or abbreviated commit id: 7–40 hex digits, lowercase.
    Commit(String),
}

impl GitRef {
    pub fn branch(s: &str) -> Result<Self, Invalid> {
        check_ref_name(s).map(|()| Self::Branch(s.to_owned()))
    }
    pub fn tag(s: &str) -> Result<Self, Invalid> {
        check_ref_name(s).map(|()| Self::Tag(s.to_owned()))
    }
    pub fn commit(s: &str) -> Result<Self, Invalid> {
        let ok = (COMMIT_ID_MIN..=COMMIT_ID_LEN).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return invalid("must be 7-40 hexadecimal characters (a SHA-1 commit id)");
        }
        Ok(Self::Commit(s.to_ascii_lowercase()))
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Branch(_) => "branch",
            Self::Tag(_) => "tag",
            Self::Commit(_) => "commit",
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Self::Branch(s) | Self::Tag(s) | Self::Commit(s) => s,
        }
    }
    pub fn from_parts(kind: &str, name: &str) -> Result<Self, Invalid> {
        match kind {
            "branch" => Self::branch(name),
            "tag" => Self::tag(name),
            "commit" => Self::commit(name),
            _ => invalid("must be branch, tag or commit"),
        }
    }
}

/// Git's ref-name rules (git check-ref-format), restricted to what a person types.
fn check_ref_name(s: &str) -> Result<(), Invalid> {
    let bad = s.is_empty()
        || s.len() > 255
        || s.starts_with('-')
        || s.starts_with('/')
        || s.ends_with('/')
        || s.ends_with('.')
        || s.ends_with(".lock")
        || s.contains("..")
        || s.contains("//")
        || s.contains("@{")
        || s == "@"
        || s.split('/').any(|p| p.starts_with('.'))
        || s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return invalid("is not a valid Git branch or tag name");
    }
    Ok(())
}

string_newtype!(
    /// A host name or IP address to connect to.
    HostAddr
);
impl HostAddr {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= 253
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !ok {
            return invalid("must be a host name or IP address");
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A login name on a target host.
    SshUser
);
impl SshUser {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return invalid("must be a valid user name (letters, digits, '_', '-', '.')");
        }
        Ok(Self(s.to_owned()))
    }
}

string_newtype!(
    /// A Git repository location: a local absolute path, `file://`, `ssh://`, `https://`,
    /// `http://` or scp-like `user@host:path`.
    RepoUrl
);
impl RepoUrl {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if s.is_empty() || s.len() > 2048 || has_control(s) || s.starts_with('-') || s.contains(' ')
        {
            return invalid("must be a Git URL without spaces or control characters");
        }
        let known = s.starts_with('/')
            || s.starts_with("file://")
            || s.starts_with("ssh://")
            || s.starts_with("https://")
            || s.starts_with("http://")
            || is_scp_like(s);
        if !known {
            return invalid(
                "must be an absolute path, file://, ssh://, https:// or user@host:path URL",
            );
        }
        if (s.starts_with("https://") || s.starts_with("http://")) && s.contains('@') {
            return invalid("must not carry credentials; set them in the credential fields");
        }
        Ok(Self(s.to_owned()))
    }
    pub fn is_ssh(&self) -> bool {
        self.0.starts_with("ssh://") || is_scp_like(&self.0)
    }
}

fn is_scp_like(s: &str) -> bool {
    match (s.find('@'), s.find(':')) {
        (Some(at), Some(colon)) => at > 0 && colon > at + 1 && !s.contains("://"),
        _ => false,
    }
}

/// A custom variable name: shell identifier, not in the reserved `HIPPO_` namespace.
pub fn parse_var_name(s: &str) -> Result<String, Invalid> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return invalid(format!("'{s}' is not a valid variable name"));
    }
    if s.starts_with("HIPPO_") {
        return invalid(format!("'{s}' uses the reserved HIPPO_ prefix"));
    }
    Ok(s.to_owned())
}

/// The largest value of one custom variable, in bytes. A hook's variables are its process
/// environment, where Linux allows 128 KiB per `NAME=value` entry (`MAX_ARG_STRLEN`).
pub const MAX_VARIABLE_BYTES: usize = 100_000;

/// `KEY=value` lines (blank lines and `#` comments ignored) into ordered pairs; each value at
/// most [`MAX_VARIABLE_BYTES`].
pub fn parse_variables(text: &str) -> Result<Vec<(String, String)>, Invalid> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return invalid(format!("line {}: expected KEY=value", i + 1));
        };
        let k =
            parse_var_name(k.trim()).map_err(|e| Invalid(format!("line {}: {}", i + 1, e.0)))?;
        if v.contains('\0') {
            return invalid(format!("line {}: value contains a NUL byte", i + 1));
        }
        if v.len() > MAX_VARIABLE_BYTES {
            return invalid(format!(
                "line {}: the value of '{k}' is {} bytes; at most {MAX_VARIABLE_BYTES} bytes each",
                i + 1,
                v.len()
            ));
        }
        if out.iter().any(|(existing, _)| *existing == k) {
            return invalid(format!("line {}: '{k}' is set twice", i + 1));
        }
        out.push((k, v.to_owned()));
    }
    Ok(out)
}

// The doc comments of the enums below are their descriptions in the API's spec.

/// Where a release is: `pending_review` → `approved` (or `rejected`) → `queued` → `running` →
/// `succeeded` | `failed`; `cancelled` ends a release that will not run, or one stopped while
/// running before any host switched.
// Transitions are checked by [`ReleaseStatus::can_become`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum ReleaseStatus {
    PendingReview,
    Approved,
    Queued,
    Running,
    Succeeded,
    Failed,
    Rejected,
    Cancelled,
}

impl ReleaseStatus {
    pub const ALL: [ReleaseStatus; 8] = [
        Self::PendingReview,
        Self::Approved,
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Rejected,
        Self::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "pending_review",
            Self::Approved => "approved",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Invalid(format!("unknown status '{s}'")))
    }
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Rejected | Self::Cancelled
        )
    }
    /// The allowed moves. A failed release may be run again (it is re-queued as is). An
    /// approved or rejected release that is edited goes back to review.
    pub fn can_become(self, next: ReleaseStatus) -> bool {
        use ReleaseStatus::*;
        matches!(
            (self, next),
            (PendingReview, Approved | Rejected | Cancelled)
                | (Approved | Rejected, PendingReview)
                | (Approved, Queued | Cancelled)
                | (Queued, Running | Failed | Cancelled)
                | (Running, Succeeded | Failed | Cancelled)
                | (Failed, Queued)
        )
    }
}

impl fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a role lets its holder do, within the environments and apps it is bound to:
/// `edit_configs` (create and change release configs), `request` (request releases and
/// rollbacks), `review` (approve or reject), `release` (run approved releases), `manage_hosts`
/// (hosts and their keys), `terminal` (a web terminal on the environment's hosts, recorded),
/// `admin` (everything, everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum Permission {
    /// Create and change release configs (and their credentials).
    EditConfigs,
    /// Request releases and rollbacks.
    Request,
    /// Approve or reject requested releases.
    Review,
    /// Run approved releases.
    Release,
    /// Create, change and delete hosts (and forget their keys).
    ManageHosts,
    /// Open a web terminal on the hosts of an environment (every session is recorded).
    Terminal,
    /// Everything, everywhere: users, roles, environments, apps, the audit trail.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Self::EditConfigs,
        Self::Request,
        Self::Review,
        Self::Release,
        Self::ManageHosts,
        Self::Terminal,
        Self::Admin,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EditConfigs => "edit_configs",
            Self::Request => "request",
            Self::Review => "review",
            Self::Release => "release",
            Self::ManageHosts => "manage_hosts",
            Self::Terminal => "terminal",
            Self::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Invalid(format!(
                    "unknown permission '{s}' (one of: {})",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }
}

/// One permission a user holds, for one environment and/or app (`None`: all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub permission: Permission,
    pub environment_id: Option<EnvironmentId>,
    pub app_id: Option<AppId>,
}

impl Grant {
    /// Whether this grant covers `permission` for (`environment_id`, `app_id`). `None` in the
    /// question means "every": only a grant unscoped on that axis covers it (a `manage_hosts`
    /// grant for app `cart` does not cover the hosts of an environment; an `admin` grant for
    /// `test` is not the platform's admin).
    ///
    /// The environment and the app are typed ids, so swapping them does not compile:
    ///
    /// ```compile_fail,E0308
    /// use hippo_shared::domain::{AppId, EnvironmentId, Grant, Permission};
    /// let g = Grant { permission: Permission::Release, environment_id: None, app_id: None };
    /// let (env, app) = (EnvironmentId::new(1), AppId::new(2));
    /// g.covers(Permission::Release, Some(app), Some(env)); // swapped
    /// ```
    ///
    /// ```
    /// use hippo_shared::domain::{AppId, EnvironmentId, Grant, Permission};
    /// let g = Grant { permission: Permission::Release, environment_id: None, app_id: None };
    /// let (env, app) = (EnvironmentId::new(1), AppId::new(2));
    /// assert!(g.covers(Permission::Release, Some(env), Some(app)));
    /// ```
    pub fn covers(
        &self,
        permission: Permission,
        environment_id: Option<EnvironmentId>,
        app_id: Option<AppId>,
    ) -> bool {
        fn fits<T: PartialEq>(scope: Option<T>, asked: Option<T>) -> bool {
            match (scope, asked) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a == b,
            }
        }
        (self.permission == permission || self.permission == Permission::Admin)
            && fits(self.environment_id, environment_id)
            && fits(self.app_id, app_id)
    }
}

/// `release` ships a new version; `rollback` switches back to a kept one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum ReleaseKind {
    Release,
    Rollback,
}

impl ReleaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Rollback => "rollback",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "release" => Ok(Self::Release),
            "rollback" => Ok(Self::Rollback),
            _ => invalid("must be release or rollback"),
        }
    }
}

// One host's row in a release's per-host results (`preparing` is only in rows written by
// older versions). The doc comment below is the spec's description.
/// A host in a release: `pending` → `prepared` (its new version is in place) → `switched`
/// (it serves it); `skipped` (not switched because another host failed) or `failed`;
/// `rolled_back` (it was switched, then a wave's health check failed or the release was
/// cancelled, and it serves its previous version again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum HostStatus {
    Pending,
    Preparing,
    Prepared,
    Switched,
    Skipped,
    Failed,
    RolledBack,
}

impl HostStatus {
    pub const ALL: [HostStatus; 7] = [
        Self::Pending,
        Self::Preparing,
        Self::Prepared,
        Self::Switched,
        Self::Skipped,
        Self::Failed,
        Self::RolledBack,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Preparing => "preparing",
            Self::Prepared => "prepared",
            Self::Switched => "switched",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Invalid(format!("unknown host status '{s}'")))
    }
}

impl TryFrom<String> for HostStatus {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl fmt::Display for HostStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a release ships: a `branch`, a `tag` or a `commit`; a rollback names a kept `version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum RefKind {
    Branch,
    Tag,
    Commit,
    Version,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Branch => "branch",
            Self::Tag => "tag",
            Self::Commit => "commit",
            Self::Version => "version",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "branch" => Ok(Self::Branch),
            "tag" => Ok(Self::Tag),
            "commit" => Ok(Self::Commit),
            "version" => Ok(Self::Version),
            _ => invalid("must be branch, tag, commit or version"),
        }
    }
}

impl fmt::Display for RefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&GitRef> for RefKind {
    fn from(r: &GitRef) -> Self {
        match r {
            GitRef::Branch(_) => Self::Branch,
            GitRef::Tag(_) => Self::Tag,
            GitRef::Commit(_) => Self::Commit,
        }
    }
}

/// What a host that fails to prepare means for the others: `all_or_nothing` (the default: no
/// host switches unless every host prepared) or `continue` (prepared hosts switch anyway; the
/// release still ends failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum FailurePolicy {
    /// No host switches unless every host prepared (the default).
    #[default]
    AllOrNothing,
    /// Prepared hosts switch anyway; the release still ends failed.
    Continue,
}

/// How a redeploy makes the files that did not change (issue 11): the host builds the new
/// version from the live one and receives only new and changed files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum DeltaMode {
    /// Unchanged files are hard links to the live version's (the default: no copy, no disk).
    /// A hook that edits an unchanged file in place edits the live version's file too.
    #[default]
    Hardlink,
    /// Unchanged files are copied from the live version: hooks may edit any file in place.
    Copy,
    /// Every release sends the whole archive.
    Off,
}

/// How `filter` is read: `exclude` (the default: matching files are left out) or `include`
/// (only matching files are shipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum FilterMode {
    /// Only matching paths (or paths under a matching directory) are shipped.
    Include,
    /// Matching paths (and everything under a matching directory) are left out.
    #[default]
    Exclude,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tags_are_lowercase_words() {
        assert!(Tag::parse("prod").is_ok());
        assert!(Tag::parse("cart-2_x").is_ok());
        for bad in ["", "Prod", "-x", "a b", "$(x)", &"a".repeat(33)] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn remote_paths_are_absolute_and_normalised() {
        assert_eq!(RemotePath::parse("/var/www/").unwrap().as_str(), "/var/www");
        assert!(RemotePath::parse("/srv/my app").is_ok());
        for bad in ["", "/", "relative", "/a/../b", "/a//b", "/a/./b", "/a\nb"] {
            assert!(RemotePath::parse(bad).is_err(), "{bad:?}");
        }
        let a = RemotePath::parse("/srv/www").unwrap();
        assert!(a.contains(&RemotePath::parse("/srv/www/x").unwrap()));
        assert!(!a.contains(&RemotePath::parse("/srv/www2").unwrap()));
    }

    #[test]
    fn git_refs_follow_git_rules() {
        assert!(GitRef::branch("feature/x-1").is_ok());
        for bad in [
            "",
            "-x",
            "a..b",
            "a b",
            "x.lock",
            "$(touch /tmp/pwned)",
            "a~1",
            ".hidden",
        ] {
            assert!(GitRef::branch(bad).is_err(), "{bad}");
        }
        assert_eq!(
            GitRef::commit("ABCDEF1").unwrap(),
            GitRef::Commit("abcdef1".into())
        );
        assert!(GitRef::commit("abc").is_err());
        assert!(GitRef::commit(&"a".repeat(40)).is_ok());
        for len in 41..=64 {
            assert!(GitRef::commit(&"a".repeat(len)).is_err(), "{len} digits");
        }
        assert!(CommitId::parse(&"a".repeat(40)).is_ok());
        assert!(CommitId::parse(&"a".repeat(64)).is_err());
        assert!(CommitId::parse(&"A".repeat(40)).is_err());
        assert!(GitRef::commit("xyz1234").is_err());
    }

    #[test]
    fn variables_parse_as_pairs_and_refuse_reserved_names() {
        let v = parse_variables("# c\nA=1\n\nB= two words \n").unwrap();
        assert_eq!(
            v,
            vec![("A".into(), "1".into()), ("B".into(), " two words ".into())]
        );
        assert!(parse_variables("HIPPO_X=1").is_err());
        assert!(parse_variables("1A=1").is_err());
        assert!(parse_variables("novalue").is_err());
        assert!(parse_variables("A=1\nA=2").is_err());
    }

    #[test]
    fn repo_urls_of_every_supported_kind() {
        for ok in [
            "/tmp/repo.git",
            "file:///tmp/repo.git",
            "git@github.com:owner/repo.git",
            "ssh://git@host:22/x.git",
            "https://gitee.com/o/r.git",
        ] {
            assert!(RepoUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "repo",
            "-uhttps://x",
            "https://user:pw@host/x.git",
            "ftp://x",
        ] {
            assert!(RepoUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn release_status_moves_only_forward() {
        use ReleaseStatus::*;
        assert!(PendingReview.can_become(Approved));
        assert!(Approved.can_become(PendingReview) && Rejected.can_become(PendingReview));
        assert!(!Rejected.can_become(Queued));
        assert!(Approved.can_become(Queued));
        assert!(!PendingReview.can_become(Queued));
        assert!(!Rejected.can_become(Queued));
        assert!(!Succeeded.can_become(Queued));
        assert!(Failed.can_become(Queued));
        for s in ReleaseStatus::ALL {
            assert_eq!(ReleaseStatus::parse(s.as_str()).unwrap(), s);
        }
    }

    #[test]
    fn version_names_sort_by_time() {
        let c = CommitId::parse(&"a".repeat(40)).unwrap();
        let t1 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t2 = chrono::DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        let a = VersionName::for_release(t1, ReleaseId::new(9), &c);
        let b = VersionName::for_release(t2, ReleaseId::new(10), &c);
        assert!(a < b);
        assert!(VersionName::parse(a.as_str()).is_ok());
        assert!(VersionName::parse("../x").is_err());
        assert!(VersionName::parse(".partial-x").is_err());
    }

    #[test]
    fn a_scoped_grant_covers_its_scope_only_and_never_everything() {
        let g = |p, e: Option<i64>, a: Option<i64>| Grant {
            permission: p,
            environment_id: e.map(EnvironmentId::new),
            app_id: a.map(AppId::new),
        };
        let (e, a) = (|i| Some(EnvironmentId::new(i)), |i| Some(AppId::new(i)));
        let test_release = g(Permission::Release, Some(2), None);
        assert!(test_release.covers(Permission::Release, e(2), a(7)));
        assert!(!test_release.covers(Permission::Release, e(1), a(7)));
        assert!(!test_release.covers(Permission::Request, e(2), a(7)));
        // "every environment" is not "some environment".
        assert!(!test_release.covers(Permission::Release, None, None));
        let scoped_admin = g(Permission::Admin, Some(2), None);
        assert!(scoped_admin.covers(Permission::Review, e(2), a(1)));
        assert!(!scoped_admin.covers(Permission::Admin, None, None));
        let app_hosts = g(Permission::ManageHosts, Some(2), Some(7));
        assert!(!app_hosts.covers(Permission::ManageHosts, e(2), None));
        assert!(g(Permission::Admin, None, None).covers(Permission::Admin, None, None));
    }
}
