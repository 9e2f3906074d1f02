//! The value sets of the API as enums (each one the spec lists) that the domain does not
//! already hold: permissions, release statuses and kinds, ref kinds, filter modes, failure policies,
//! host statuses and event stages and statuses are the domain's own types (`shared::domain`, `shared::events`,
//! poem-openapi enums with the `openapi` feature).
use poem_openapi::Enum;

/// What an audit entry is about.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum AuditEntity {
    Release,
    Config,
    Host,
    Environment,
    App,
    User,
    Role,
    Token,
    /// A login lockout (a user name or client address, cleared by an admin).
    LoginLockout,
    /// An entity this version does not know (recorded by a newer one).
    Other,
}

impl AuditEntity {
    pub fn parse(s: &str) -> Self {
        match s {
            "release" => Self::Release,
            "config" => Self::Config,
            "host" => Self::Host,
            "environment" => Self::Environment,
            "app" => Self::App,
            "user" => Self::User,
            "role" => Self::Role,
            "token" => Self::Token,
            "login_lockout" => Self::LoginLockout,
            _ => Self::Other,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Config => "config",
            Self::Host => "host",
            Self::Environment => "environment",
            Self::App => "app",
            Self::User => "user",
            Self::Role => "role",
            Self::Token => "token",
            Self::LoginLockout => "login_lockout",
            Self::Other => "other",
        }
    }
}

/// What was done: `create`, `update`, `delete`, `request` (a release), `edit` (a release),
/// `status` (a release moved), `revoke` (a token), `forget_host_key`, `clear` (a login lockout),
/// `install_key`, `import` (hosts), `terminal` (a web terminal session), `cancel` (a running
/// release asked to stop), `schedule` (a release given its time).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    Request,
    Edit,
    Status,
    Revoke,
    ForgetHostKey,
    Clear,
    /// The platform key was installed on a host with a one-time password (never recorded).
    InstallKey,
    /// Hosts were imported from a file.
    Import,
    /// A web terminal session on a host (`changes` name the session, its start and end).
    Terminal,
    /// Someone asked to cancel a running release (a waiting one moves to `cancelled`: `status`).
    Cancel,
    /// An approved release was given the time it runs at (`run_at`).
    Schedule,
    /// An action this version does not know (recorded by a newer one).
    Other,
}

impl AuditAction {
    pub fn parse(s: &str) -> Self {
        match s {
            "create" => Self::Create,
            "update" => Self::Update,
            "delete" => Self::Delete,
            "request" => Self::Request,
            "edit" => Self::Edit,
            "status" => Self::Status,
            "revoke" => Self::Revoke,
            "forget_host_key" => Self::ForgetHostKey,
            "clear" => Self::Clear,
            "install_key" => Self::InstallKey,
            "import" => Self::Import,
            "terminal" => Self::Terminal,
            "cancel" => Self::Cancel,
            "schedule" => Self::Schedule,
            _ => Self::Other,
        }
    }
}

/// The notices Hippo sends about a release.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "NoticeKind", rename_all = "snake_case")]
pub enum NoticeKindName {
    Requested,
    Approved,
    Rejected,
    Started,
    Succeeded,
    Failed,
    Rollback,
    /// Cancelled, before it ran or while it ran (the notice names who cancelled it).
    Cancelled,
    /// A kind this version does not know.
    Other,
}

impl NoticeKindName {
    pub fn parse(s: &str) -> Self {
        match s {
            "requested" => Self::Requested,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "started" => Self::Started,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "rollback" => Self::Rollback,
            "cancelled" => Self::Cancelled,
            _ => Self::Other,
        }
    }
}

/// Where notices go.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum ChannelType {
    Dingtalk,
    Wecom,
    Feishu,
    Webhook,
    Email,
    Sms,
    /// A channel this version does not know.
    Other,
}

impl ChannelType {
    pub fn parse(s: &str) -> Self {
        match s {
            "dingtalk" => Self::Dingtalk,
            "wecom" => Self::Wecom,
            "feishu" => Self::Feishu,
            "webhook" => Self::Webhook,
            "email" => Self::Email,
            "sms" => Self::Sms,
            _ => Self::Other,
        }
    }
}

/// Why a host check failed: `unreachable` (TCP), `timeout` (no answer in time), `handshake`
/// (SSH), `host_key_changed` (the host presented another key than the pinned one), `auth` (the
/// platform key is not accepted), `command` (a command could not run), `path_not_writable`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum CheckReason {
    Unreachable,
    Timeout,
    Handshake,
    HostKeyChanged,
    Auth,
    Command,
    PathNotWritable,
    /// A reason this version does not know.
    Other,
}

impl CheckReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "unreachable" => Self::Unreachable,
            "timeout" => Self::Timeout,
            "handshake" => Self::Handshake,
            "host_key_changed" => Self::HostKeyChanged,
            "auth" => Self::Auth,
            "command" => Self::Command,
            "path_not_writable" => Self::PathNotWritable,
            _ => Self::Other,
        }
    }
}

/// A config path checked on a host: `deploy` (the deploy link's parent directory) or `versions`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum PathKind {
    Deploy,
    Versions,
}

/// The format of a hosts file: `csv` (a header line, then one host per line) or `json` (an
/// array of objects).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum ImportFormat {
    Csv,
    Json,
}
