//! Bringing hosts in (issue 14): connectivity checks (one host, or many in parallel), the
//! platform key installed with a one-time password, and hosts imported from CSV or JSON.
//!
//! The password of `install-key` is moved out of the request into a
//! [`hippo_worker::ssh::Password`] (wiped on drop) and used for one SSH login; it is never
//! written to the database, a log, the audit trail, an event or an answer, and error messages
//! never contain it (`SshError` does not carry it).
use super::hosts::{HostCheckOut, HostOut, check_out, out};
use super::{AUTH, ApiResult, ApiTags, BODY, CONFLICT, Created, FORBIDDEN, NOT_FOUND, UPSTREAM};
use crate::audit;
use crate::auth::{Auth, CurrentUser};
use crate::body::JsonBody;
use crate::problem::{ApiError, p};
use crate::state::State;
use crate::text::{HostPassword, ImportText};
use crate::values::ImportFormat;
use hippo_shared::db::inventory::{Host, HostCheck, HostInput};
use hippo_shared::domain::{self, EnvironmentId, HostAddr, HostId, Permission, SshUser};
use hippo_worker::hostops::{self, CheckOutcome, InstallError, PathToCheck};
use hippo_worker::ssh::{Password, SshError, Timeouts};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Hosts checked at once.
const CHECK_PARALLELISM: usize = 16;
/// At most this many hosts in one bulk check or import.
const MAX_HOSTS: usize = 1000;

fn timeouts(st: &State) -> Timeouts {
    Timeouts {
        connect: st.settings.ssh_connect_timeout(),
        io: st.settings.ssh_io_timeout(),
    }
}

/// Checks `hosts` in parallel (at most [`CHECK_PARALLELISM`] at once), pins the keys seen on
/// first contact and stores each result on its host; results in the order given.
pub async fn run_checks(st: &State, hosts: Vec<Host>) -> Result<Vec<HostCheckOut>, ApiError> {
    let configs = st.db.list_configs(None, None).await?;
    let items: Vec<(Host, Vec<PathToCheck>)> = hosts
        .into_iter()
        .map(|h| {
            let paths = configs
                .iter()
                .filter(|c| c.environment_id == h.environment_id && c.spec.host_ids.contains(&h.id))
                .flat_map(|c| {
                    PathToCheck::of_config(
                        c.id,
                        c.spec.deploy_path.as_str(),
                        c.spec.versions_path.as_str(),
                    )
                })
                .collect();
            (h, paths)
        })
        .collect();
    let key = st.key.private_openssh.expose().to_owned();
    let t = timeouts(st);
    let results = hippo_worker::targets::fan_out(
        items,
        CHECK_PARALLELISM,
        move |h, paths| hostops::check(h, &key, &t, &paths),
        |e| CheckOutcome {
            check: HostCheck {
                ok: false,
                reason: Some("command".to_owned()),
                message: Some(e),
                latency_ms: None,
                host_key_fingerprint: None,
                pinned: false,
                remote_user: None,
                paths: Vec::new(),
                duration_ms: 0,
            },
            pin: None,
        },
    )
    .await;
    let mut out = Vec::with_capacity(results.len());
    for (h, outcome) in results {
        if let Some(k) = &outcome.pin {
            st.db.pin_host_key(h.id, &k.key_type, &k.key_base64).await?;
        }
        let at = hippo_shared::db::now();
        st.db.record_host_check(h.id, &at, &outcome.check).await?;
        out.push(check_out(h.id, &at, outcome.check));
    }
    Ok(out)
}

/// The host, if the caller sees it (else 404) and may manage the hosts of its environment
/// (else 403).
async fn managed(st: &State, user: &CurrentUser, id: HostId) -> Result<Host, ApiError> {
    let host = st.db.get_host(id).await?;
    user.require_sees(host.environment_id, None, "host")?;
    user.require(Permission::ManageHosts, Some(host.environment_id), None)?;
    Ok(host)
}

#[derive(Object)]
pub struct CheckHostsIn {
    /// The hosts to check (1-1000), each one the caller may manage.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub host_ids: Vec<HostId>,
}

#[derive(Object)]
pub struct CheckHostsOut {
    /// One result per host, in the order asked.
    pub results: Vec<HostCheckOut>,
}

#[derive(Object)]
pub struct InstallKeyIn {
    pub password: HostPassword,
}

#[derive(Object)]
pub struct InstallKeyOut {
    pub host_id: HostId,
    /// False when the key was already in `authorized_keys` (nothing was written).
    pub added: bool,
    /// The host key the host presented (pinned if it was the first contact).
    pub host_key_fingerprint: String,
    /// The check run right after, with the platform key.
    pub check: HostCheckOut,
}

#[derive(Object)]
pub struct ImportIn {
    pub format: ImportFormat,
    /// CSV: a header line naming the columns (`name`, `addr`, `port`, `user`, `environment`
    /// (its tag), `category`, `description`; `name` and `addr` are required, `port` defaults
    /// to 22 and `user` to root), then one host per line; blank lines and lines starting with
    /// `#` are skipped. JSON: an array of objects with the same keys.
    pub content: ImportText,
    /// The environment of rows that name none.
    #[oai(skip_serializing_if_is_none)]
    pub environment_id: Option<EnvironmentId>,
    /// Check every imported host afterwards.
    #[oai(default)]
    pub check: bool,
}

#[derive(Object)]
pub struct ImportOut {
    /// The hosts created, in file order.
    pub hosts: Vec<HostOut>,
    /// The checks, when asked for (file order).
    pub checks: Vec<HostCheckOut>,
}

#[derive(Default)]
pub struct OnboardingApi;

#[OpenApi(prefix_path = "/api/hosts", tag = "ApiTags::Hosts")]
impl OnboardingApi {
    /// Check a host: TCP, SSH handshake, the host key (pinned on first contact; a changed key
    /// is reported, never accepted), key login, one command's round trip, the remote user, and
    /// whether the deploy and versions paths of the configs using it are writable. The result
    /// is stored on the host (`last_check`). Needs `manage_hosts`.
    #[oai(path = "/:id/check", method = "post", operation_id = "checkHost")]
    async fn check(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
    ) -> ApiResult<Json<HostCheckOut>, { AUTH | FORBIDDEN | NOT_FOUND }> {
        let host = managed(&st, &auth.0, id.0).await?;
        let mut results = run_checks(&st, vec![host]).await?;
        results
            .pop()
            .map(Json)
            .ok_or_else(|| ApiError::internal("a check returned no result").into())
    }

    /// Check many hosts in parallel (see `checkHost`).
    #[oai(path = "/check", method = "post", operation_id = "checkHosts")]
    async fn check_many(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<CheckHostsIn>,
    ) -> ApiResult<Json<CheckHostsOut>, { AUTH | BODY | FORBIDDEN }> {
        let mut hosts = Vec::with_capacity(body.host_ids.len());
        let mut seen = HashSet::new();
        for (i, id) in body.host_ids.iter().enumerate() {
            let field = format!("host_ids[{i}]");
            if !seen.insert(*id) {
                return Err(ApiError::invalid(&field, format!("{field} is listed twice")).into());
            }
            // A host one may not see is as absent as one that does not exist.
            let host = match st.db.get_host(*id).await {
                Ok(h) if auth.0.sees(h.environment_id, None) => h,
                Ok(_) | Err(hippo_shared::db::DbError::NotFound(_)) => {
                    return Err(ApiError::invalid(&field, format!("{field} names no host")).into());
                }
                Err(e) => return Err(e.into()),
            };
            auth.0
                .require(Permission::ManageHosts, Some(host.environment_id), None)?;
            hosts.push(host);
        }
        Ok(Json(CheckHostsOut {
            results: run_checks(&st, hosts).await?,
        }))
    }

    /// Install the platform public key (`GET /api/ssh-key`) for the host's login user with
    /// that user's password, used for this one connection: the key is appended to
    /// `~/.ssh/authorized_keys` unless it is there (creating `~/.ssh` 0700 and the file 0600),
    /// then key login is verified and the host checked. The password is never stored, logged,
    /// audited or returned. A wrong password or a host that refuses password login is a 422
    /// on `password`; a host that cannot be reached, a 502; a changed host key, a 409.
    #[oai(
        path = "/:id/install-key",
        method = "post",
        operation_id = "installHostKey"
    )]
    async fn install_key(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
        body: JsonBody<InstallKeyIn>,
    ) -> ApiResult<Json<InstallKeyOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT | UPSTREAM }>
    {
        let JsonBody(InstallKeyIn { password }) = body;
        let password = Password::new(password.0);
        let host = managed(&st, &auth.0, id.0).await?;
        let public = st.key.public_line.clone();
        let private = st.key.private_openssh.expose().to_owned();
        let t = timeouts(&st);
        let h = host.clone();
        let done = tokio::task::spawn_blocking(move || {
            hostops::install_key(&h, password, &public, &private, &t)
        })
        .await
        .map_err(ApiError::internal)?;
        let installed = done.map_err(install_error)?;
        if let Some(k) = &installed.pin {
            st.db
                .pin_host_key(host.id, &k.key_type, &k.key_base64)
                .await?;
        }
        let changes = json!({
            "authorized_key": {"from": null, "to": if installed.added { "added" } else { "already present" }},
            "host_key_fingerprint": {"from": null, "to": installed.host_key_fingerprint},
        });
        audit::record(&st, &auth.0, "host", Some(host.id), "install_key", changes).await;
        let host = st.db.get_host(host.id).await?;
        let mut checks = run_checks(&st, vec![host]).await?;
        let check = checks
            .pop()
            .ok_or_else(|| ApiError::internal("a check returned no result"))?;
        Ok(Json(InstallKeyOut {
            host_id: id.0,
            added: installed.added,
            host_key_fingerprint: installed.host_key_fingerprint,
            check,
        }))
    }

    /// Import hosts from CSV or JSON, all or nothing: the whole file is validated first and
    /// every bad row is named by its line (422 on `content`); a name already used in its
    /// environment is a bad row. Needs `manage_hosts` in each row's environment. With `check`,
    /// every imported host is checked afterwards.
    #[oai(path = "/import", method = "post", operation_id = "importHosts")]
    async fn import(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<ImportIn>,
    ) -> ApiResult<Created<ImportOut>, { AUTH | BODY | CONFLICT }> {
        let envs = st.db.list_environments().await?;
        let default_env = match body.environment_id {
            Some(id) => match envs.iter().find(|e| e.id == id) {
                Some(e) if auth.0.sees(e.id, None) => Some(e.id),
                _ => {
                    return Err(ApiError::invalid(
                        "environment_id",
                        "environment_id names no environment",
                    )
                    .into());
                }
            },
            None => None,
        };
        let rows = match body.format {
            ImportFormat::Csv => csv_rows(&body.content),
            ImportFormat::Json => json_rows(&body.content),
        }
        .map_err(|e| ApiError::invalid("content", e))?;
        if rows.is_empty() {
            return Err(ApiError::invalid("content", "the file holds no hosts").into());
        }
        if rows.len() > MAX_HOSTS {
            return Err(ApiError::invalid(
                "content",
                format!(
                    "the file holds {} hosts; at most {MAX_HOSTS} at once",
                    rows.len()
                ),
            )
            .into());
        }
        let by_tag: HashMap<&str, EnvironmentId> = envs
            .iter()
            .filter(|e| auth.0.sees(e.id, None))
            .map(|e| (e.tag.as_str(), e.id))
            .collect();
        let tag_of: HashMap<EnvironmentId, &str> =
            envs.iter().map(|e| (e.id, e.tag.as_str())).collect();
        let mut taken: HashSet<(EnvironmentId, String)> = st
            .db
            .list_hosts(None, None)
            .await?
            .into_iter()
            .map(|h| (h.environment_id, h.name))
            .collect();
        let mut inputs = Vec::with_capacity(rows.len());
        let mut lines = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        for row in &rows {
            match row.parse(&by_tag, default_env, &auth.0, &tag_of) {
                Ok(input) => {
                    if !taken.insert((input.environment_id, input.name.as_str().to_owned())) {
                        errors.push(format!(
                            "line {}: name: a host named `{}` exists in environment `{}`",
                            row.line,
                            input.name.as_str(),
                            tag_of
                                .get(&input.environment_id)
                                .copied()
                                .unwrap_or_default()
                        ));
                    } else {
                        inputs.push(input);
                        lines.push(row.line);
                    }
                }
                Err(e) => errors.push(format!("line {}: {e}", row.line)),
            }
        }
        if !errors.is_empty() {
            let shown: Vec<&str> = errors.iter().take(100).map(String::as_str).collect();
            let more = errors.len().saturating_sub(shown.len());
            let mut message = format!(
                "{} of {} rows are invalid; nothing was imported\n{}",
                errors.len(),
                rows.len(),
                shown.join("\n")
            );
            if more > 0 {
                message.push_str(&format!("\n… and {more} more"));
            }
            return Err(ApiError::Invalid(p("invalid_rows", message, Some("content"))).into());
        }
        let ids = st
            .db
            .create_hosts(&inputs)
            .await
            .map_err(|(n, e)| match e {
                hippo_shared::db::DbError::Conflict(m) => ApiError::conflict(
                    "conflict",
                    format!(
                        "line {}: {m}; nothing was imported",
                        lines.get(n).copied().unwrap_or_default()
                    ),
                ),
                other => other.into(),
            })?;
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        audit::record(
            &st,
            &auth.0,
            "host",
            None::<HostId>,
            "import",
            json!({"hosts": {"from": null, "to": names}, "host_ids": {"from": null, "to": ids}}),
        )
        .await;
        let wanted: HashSet<HostId> = ids.iter().copied().collect();
        let mut created: HashMap<HostId, Host> = st
            .db
            .list_hosts(None, None)
            .await?
            .into_iter()
            .filter(|h| wanted.contains(&h.id))
            .map(|h| (h.id, h))
            .collect();
        let hosts: Vec<Host> = ids.iter().filter_map(|id| created.remove(id)).collect();
        let checks = if body.check {
            run_checks(&st, hosts.clone()).await?
        } else {
            Vec::new()
        };
        let names: HashMap<EnvironmentId, String> =
            envs.into_iter().map(|e| (e.id, e.name)).collect();
        // Read again: the checks may have pinned keys.
        let hosts = if body.check {
            let mut fresh: HashMap<HostId, Host> = st
                .db
                .list_hosts(None, None)
                .await?
                .into_iter()
                .filter(|h| wanted.contains(&h.id))
                .map(|h| (h.id, h))
                .collect();
            ids.iter().filter_map(|id| fresh.remove(id)).collect()
        } else {
            hosts
        };
        Ok(Created::Ok(Json(ImportOut {
            hosts: hosts
                .into_iter()
                .map(|h| {
                    let n = names.get(&h.environment_id).cloned().unwrap_or_default();
                    out(h, n)
                })
                .collect(),
            checks,
        })))
    }
}

/// An install-key failure as the API answers it (never with the password: no error holds it).
fn install_error(e: InstallError) -> ApiError {
    match e {
        InstallError::Login(e @ SshError::WrongPassword { .. }) => {
            ApiError::Invalid(p("wrong_password", e.to_string(), Some("password")))
        }
        InstallError::Login(e @ SshError::PasswordRefused { .. }) => {
            ApiError::Invalid(p("password_login_refused", e.to_string(), Some("password")))
        }
        InstallError::Login(e @ SshError::HostKeyMismatch { .. }) => {
            ApiError::conflict("host_key_changed", e.to_string())
        }
        InstallError::Login(e @ SshError::Auth { .. }) => {
            ApiError::Invalid(p("wrong_password", e.to_string(), Some("password")))
        }
        InstallError::Login(e) => ApiError::upstream(hostops::reason(&e), e.to_string()),
        e @ InstallError::Write(_) => ApiError::upstream("install_failed", e.to_string()),
        e @ InstallError::Verify(_) => ApiError::upstream("key_login_failed", e.to_string()),
    }
}

/// One host of an import file, as written, with its line.
#[derive(Debug, Default)]
struct Row {
    line: usize,
    fields: HashMap<&'static str, String>,
}

/// The columns (keys) of an import file; aliases map to them.
const COLUMNS: [&str; 7] = [
    "name",
    "addr",
    "port",
    "user",
    "environment",
    "category",
    "description",
];

fn column(name: &str) -> Option<&'static str> {
    let n = name.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    let canonical = match n.as_str() {
        "address" | "host" | "hostname" | "ip" => "addr",
        "username" | "login" | "ssh_user" => "user",
        "env" | "environment_tag" | "tag" => "environment",
        "group" => "category",
        "comment" => "description",
        other => other,
    };
    COLUMNS.into_iter().find(|c| *c == canonical)
}

impl Row {
    fn get(&self, k: &str) -> Option<&str> {
        self.fields
            .get(k)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn parse(
        &self,
        envs: &HashMap<&str, EnvironmentId>,
        default_env: Option<EnvironmentId>,
        user: &CurrentUser,
        tag_of: &HashMap<EnvironmentId, &str>,
    ) -> Result<HostInput, String> {
        let f = |field: &'static str| move |e: domain::Invalid| format!("{field}: {field} {}", e.0);
        let environment_id = match self.get("environment") {
            Some(tag) => *envs
                .get(tag)
                .ok_or_else(|| format!("environment: no environment with tag `{tag}`"))?,
            None => default_env.ok_or("environment: the environment's tag is required")?,
        };
        if !user.can(Permission::ManageHosts, Some(environment_id), None) {
            return Err(format!(
                "environment: {} lacks the permission `manage_hosts` in `{}`",
                user.username,
                tag_of.get(&environment_id).copied().unwrap_or_default()
            ));
        }
        let name = domain::Name::parse(self.get("name").unwrap_or_default()).map_err(f("name"))?;
        let addr = HostAddr::parse(self.get("addr").unwrap_or_default()).map_err(f("addr"))?;
        let port = match self.get("port") {
            None => 22,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port: `{p}` is not a port between 1 and 65535"))?,
        };
        let username = SshUser::parse(self.get("user").unwrap_or("root")).map_err(f("user"))?;
        let category = self.get("category").unwrap_or_default().to_owned();
        if category.chars().count() > 64 || category.chars().any(char::is_control) {
            return Err("category: at most 64 characters on one line".to_owned());
        }
        let description = self.get("description").unwrap_or_default().to_owned();
        if description.chars().count() > 1000 {
            return Err("description: at most 1000 characters".to_owned());
        }
        Ok(HostInput {
            environment_id,
            name,
            addr,
            port,
            username,
            category,
            description,
        })
    }
}

/// Splits one CSV line into fields: `,` separates, a field in double quotes may hold `,` and
/// `""` (a quote); unquoted fields are trimmed.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".to_owned()),
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err("text after a quoted field".to_owned()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field.trim().to_owned());
                        return Ok(out);
                    }
                    Some(',') => {
                        out.push(field.trim().to_owned());
                        break;
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

fn csv_rows(text: &str) -> Result<Vec<Row>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut header: Option<Vec<&'static str>> = None;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let fields = match csv_fields(raw) {
            Ok(f) => f,
            Err(e) => {
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let Some(cols) = &header else {
            let mut cols = Vec::new();
            for f in &fields {
                let c = column(f).ok_or_else(|| {
                    format!(
                        "line {line}: unknown column `{f}` (the columns are {})",
                        COLUMNS.join(", ")
                    )
                })?;
                if cols.contains(&c) {
                    return Err(format!("line {line}: the column `{c}` is named twice"));
                }
                cols.push(c);
            }
            for required in ["name", "addr"] {
                if !cols.contains(&required) {
                    return Err(format!(
                        "line {line}: the header names no `{required}` column (the first line names the columns: {})",
                        COLUMNS.join(", ")
                    ));
                }
            }
            header = Some(cols);
            continue;
        };
        if fields.len() > cols.len() {
            errors.push(format!(
                "line {line}: {} fields, but the header names {} columns",
                fields.len(),
                cols.len()
            ));
            continue;
        }
        rows.push(Row {
            line,
            fields: cols.iter().copied().zip(fields).collect(),
        });
    }
    if !errors.is_empty() {
        return Err(format!(
            "{} rows are invalid; nothing was imported\n{}",
            errors.len(),
            errors.join("\n")
        ));
    }
    Ok(rows)
}

/// The 1-based line on which each element of a top-level JSON array starts (`text` is valid
/// JSON).
fn json_element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth) = (1usize, 0usize);
    let (mut in_str, mut escaped, mut expect) = (false, false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if depth == 1 && expect && c != ']' && c != ',' {
            lines.push(line);
            expect = false;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expect = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expect = true,
            _ => {}
        }
    }
    lines
}

fn json_rows(text: &str) -> Result<Vec<Row>, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("the file is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("the file must be a JSON array of hosts".to_owned());
    };
    let lines = json_element_lines(text);
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let Value::Object(map) = item else {
            errors.push(format!("line {line}: host [{i}] is not an object"));
            continue;
        };
        let mut fields = HashMap::new();
        for (k, v) in map {
            let Some(c) = column(&k) else {
                errors.push(format!(
                    "line {line}: unknown key `{k}` (the keys are {})",
                    COLUMNS.join(", ")
                ));
                continue;
            };
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Null => String::new(),
                other => {
                    errors.push(format!(
                        "line {line}: {c}: a string or number is expected, not {other}"
                    ));
                    continue;
                }
            };
            fields.insert(c, text);
        }
        rows.push(Row { line, fields });
    }
    if !errors.is_empty() {
        return Err(format!(
            "{} rows are invalid; nothing was imported\n{}",
            errors.len(),
            errors.join("\n")
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_quote_and_trim() {
        assert_eq!(
            csv_fields(r#" a , "b, c" ,"d ""e""",,"#).expect("ok"),
            vec!["a", "b, c", r#"d "e""#, "", ""]
        );
        assert!(csv_fields(r#""open"#).is_err());
        assert!(csv_fields(r#""a"b"#).is_err());
    }

    #[test]
    fn csv_rows_name_their_lines() {
        let rows = csv_rows(
            "\u{feff}Name,Address,Port\r\n\n# a comment\nweb-1,10.0.0.1,22\nweb-2,10.0.0.2\n",
        )
        .expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[1].get("addr"), Some("10.0.0.2"));
        assert_eq!(rows[1].get("port"), None);
        assert!(
            csv_rows("name,colour\n")
                .expect_err("unknown")
                .contains("`colour`")
        );
        assert!(
            csv_rows("name,addr\na,b,c\n")
                .expect_err("too many")
                .contains("line 2")
        );
    }

    #[test]
    fn json_lines_of_elements() {
        let text =
            "[\n  {\"name\": \"a,]\\\"\"},\n  {\"name\": \"b\",\n   \"port\": 2},\n\n  {}\n]";
        assert_eq!(json_element_lines(text), vec![2, 3, 6]);
        let rows = json_rows(text).expect("rows");
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![2, 3, 6]
        );
        assert_eq!(rows[1].get("port"), Some("2"));
        assert!(json_rows("{}").is_err());
        assert!(
            json_rows("[1]")
                .expect_err("not an object")
                .contains("line 1")
        );
    }
}
