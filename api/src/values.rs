//! The value sets of the API as enums (each one the spec lists), and their mapping to the domain.
use hippo_shared::domain::{Permission, ReleaseKind, ReleaseStatus};
use poem_openapi::Enum;

/// What a role lets its holder do, within the environments and apps it is bound to:
/// `edit_configs` (create and change release configs), `request` (request releases and
/// rollbacks), `review` (approve or reject), `release` (run approved releases), `manage_hosts`
/// (hosts and their keys), `admin` (everything, everywhere).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "Permission", rename_all = "snake_case")]
pub enum PermissionName {
    EditConfigs,
    Request,
    Review,
    Release,
    ManageHosts,
    Admin,
}

impl From<Permission> for PermissionName {
    fn from(p: Permission) -> Self {
        match p {
            Permission::EditConfigs => Self::EditConfigs,
            Permission::Request => Self::Request,
            Permission::Review => Self::Review,
            Permission::Release => Self::Release,
            Permission::ManageHosts => Self::ManageHosts,
            Permission::Admin => Self::Admin,
        }
    }
}

impl From<PermissionName> for Permission {
    fn from(p: PermissionName) -> Self {
        match p {
            PermissionName::EditConfigs => Self::EditConfigs,
            PermissionName::Request => Self::Request,
            PermissionName::Review => Self::Review,
            PermissionName::Release => Self::Release,
            PermissionName::ManageHosts => Self::ManageHosts,
            PermissionName::Admin => Self::Admin,
        }
    }
}

/// `release` ships a new version; `rollback` switches back to a kept one.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "ReleaseKind", rename_all = "snake_case")]
pub enum Kind {
    Release,
    Rollback,
}

impl From<ReleaseKind> for Kind {
    fn from(k: ReleaseKind) -> Self {
        match k {
            ReleaseKind::Release => Self::Release,
            ReleaseKind::Rollback => Self::Rollback,
        }
    }
}

/// Where a release is: `pending_review` → `approved` (or `rejected`) → `queued` → `running` →
/// `succeeded` | `failed`; `cancelled` ends a release that will not run.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename = "ReleaseStatus", rename_all = "snake_case")]
pub enum Status {
    PendingReview,
    Approved,
    Queued,
    Running,
    Succeeded,
    Failed,
    Rejected,
    Cancelled,
}

impl From<ReleaseStatus> for Status {
    fn from(s: ReleaseStatus) -> Self {
        match s {
            ReleaseStatus::PendingReview => Self::PendingReview,
            ReleaseStatus::Approved => Self::Approved,
            ReleaseStatus::Queued => Self::Queued,
            ReleaseStatus::Running => Self::Running,
            ReleaseStatus::Succeeded => Self::Succeeded,
            ReleaseStatus::Failed => Self::Failed,
            ReleaseStatus::Rejected => Self::Rejected,
            ReleaseStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl From<Status> for ReleaseStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::PendingReview => Self::PendingReview,
            Status::Approved => Self::Approved,
            Status::Queued => Self::Queued,
            Status::Running => Self::Running,
            Status::Succeeded => Self::Succeeded,
            Status::Failed => Self::Failed,
            Status::Rejected => Self::Rejected,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

/// What a release ships: a `branch`, a `tag` or a `commit`; a rollback names a kept `version`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum RefKind {
    Branch,
    Tag,
    Commit,
    Version,
}

impl RefKind {
    pub fn parse(s: &str) -> Self {
        match s {
            "tag" => Self::Tag,
            "commit" => Self::Commit,
            "version" => Self::Version,
            _ => Self::Branch,
        }
    }
}

/// A host in a release: `pending` → `prepared` (its new version is in place) → `switched`
/// (it serves it); `skipped` (not switched because another host failed) or `failed`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum HostStatus {
    Pending,
    Preparing,
    Prepared,
    Switched,
    Skipped,
    Failed,
}

impl From<hippo_shared::domain::HostStatus> for HostStatus {
    fn from(s: hippo_shared::domain::HostStatus) -> Self {
        use hippo_shared::domain::HostStatus as S;
        match s {
            S::Pending => Self::Pending,
            S::Preparing => Self::Preparing,
            S::Prepared => Self::Prepared,
            S::Switched => Self::Switched,
            S::Skipped => Self::Skipped,
            S::Failed => Self::Failed,
        }
    }
}

/// The stages of a release, in order: `release` (the whole), `checkout`, `package` (on the
/// release server), `prepare`, `switch`, `cleanup` (per host), `notify`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum EventStage {
    Release,
    Checkout,
    Package,
    Prepare,
    Switch,
    Cleanup,
    Notify,
}

impl From<hippo_shared::events::Stage> for EventStage {
    fn from(s: hippo_shared::events::Stage) -> Self {
        use hippo_shared::events::Stage as S;
        match s {
            S::Release => Self::Release,
            S::Checkout => Self::Checkout,
            S::Package => Self::Package,
            S::Prepare => Self::Prepare,
            S::Switch => Self::Switch,
            S::Cleanup => Self::Cleanup,
            S::Notify => Self::Notify,
        }
    }
}

/// `started`, `output` (a line of a command or hook), `progress` (bytes sent), `succeeded`,
/// `failed`, `info`.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
#[oai(rename_all = "snake_case")]
pub enum EventStatus {
    Started,
    Output,
    Progress,
    Succeeded,
    Failed,
    Info,
}

impl From<hippo_shared::events::EventStatus> for EventStatus {
    fn from(s: hippo_shared::events::EventStatus) -> Self {
        use hippo_shared::events::EventStatus as S;
        match s {
            S::Started => Self::Started,
            S::Output => Self::Output,
            S::Progress => Self::Progress,
            S::Succeeded => Self::Succeeded,
            S::Failed => Self::Failed,
            S::Info => Self::Info,
        }
    }
}

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
/// `status` (a release moved), `revoke` (a token), `forget_host_key`, `clear` (a login lockout).
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
