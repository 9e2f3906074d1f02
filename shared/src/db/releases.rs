//! Releases, their per-host results, and the versions each host keeps.
use super::audit::Actor;
use super::configs::ConfigSpec;
use super::{Db, DbError, DbResult, now};
use crate::domain::{
    AppId, CommitId, ConfigId, EnvironmentId, HostId, HostStatus, RefKind, ReleaseId, ReleaseKind,
    ReleaseStatus, UserId, VersionName,
};
use crate::events::Stage;

#[derive(Debug, Clone)]
pub struct Release {
    pub id: ReleaseId,
    pub config_id: ConfigId,
    pub app_id: AppId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub kind: ReleaseKind,
    pub ref_kind: RefKind,
    /// The branch, tag, (abbreviated) commit or version as asked for.
    pub ref_name: String,
    pub commit_id: CommitId,
    pub commit_message: String,
    pub version: Option<VersionName>,
    pub status: ReleaseStatus,
    pub error: Option<String>,
    pub snapshot: ConfigSpec,
    pub requested_by: UserId,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub reviewed_by: Option<UserId>,
    pub review_comment: Option<String>,
    pub reviewed_at: Option<String>,
    /// Who cancelled it; on a `running` release, who asked (it stops at the next safe point).
    pub cancelled_by: Option<UserId>,
    /// The hosts it is for, when not all of its config's (a host subset, or a retry's hosts).
    pub host_ids: Option<Vec<HostId>>,
    /// The failed release this one sends again to the hosts that did not switch.
    pub retry_of: Option<ReleaseId>,
    /// When an approved release is queued by itself (a scheduled release).
    pub run_at: Option<String>,
}

impl Release {
    /// The hosts this release is for: its subset, else every host of its config snapshot.
    pub fn target_host_ids(&self) -> &[HostId] {
        self.host_ids.as_deref().unwrap_or(&self.snapshot.host_ids)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: ReleaseId,
    config_id: ConfigId,
    app_id: AppId,
    environment_id: EnvironmentId,
    name: String,
    kind: String,
    ref_kind: String,
    ref_name: String,
    commit_id: String,
    commit_message: String,
    version: Option<String>,
    status: String,
    error: Option<String>,
    snapshot: String,
    requested_by: UserId,
    created_at: String,
    updated_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    reviewed_by: Option<UserId>,
    review_comment: Option<String>,
    reviewed_at: Option<String>,
    cancelled_by: Option<UserId>,
    host_ids: Option<String>,
    retry_of: Option<ReleaseId>,
    run_at: Option<String>,
}

impl TryFrom<Row> for Release {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        let corrupt =
            |what: &str, e: String| DbError::Corrupt(format!("release {} {what}: {e}", r.id));
        Ok(Self {
            kind: ReleaseKind::parse(&r.kind).map_err(|e| corrupt("kind", e.0))?,
            status: ReleaseStatus::parse(&r.status).map_err(|e| corrupt("status", e.0))?,
            ref_kind: RefKind::parse(&r.ref_kind).map_err(|e| corrupt("ref_kind", e.0))?,
            commit_id: CommitId::parse(&r.commit_id).map_err(|e| corrupt("commit_id", e.0))?,
            version: match r.version.as_deref() {
                Some(v) => Some(VersionName::parse(v).map_err(|e| corrupt("version", e.0))?),
                None => None,
            },
            snapshot: serde_json::from_str(&r.snapshot)
                .map_err(|e| corrupt("snapshot", e.to_string()))?,
            host_ids: match r.host_ids.as_deref() {
                Some(h) => {
                    Some(serde_json::from_str(h).map_err(|e| corrupt("host_ids", e.to_string()))?)
                }
                None => None,
            },
            retry_of: r.retry_of,
            run_at: r.run_at,
            id: r.id,
            config_id: r.config_id,
            app_id: r.app_id,
            environment_id: r.environment_id,
            name: r.name,
            ref_name: r.ref_name,
            commit_message: r.commit_message,
            error: r.error,
            requested_by: r.requested_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            reviewed_by: r.reviewed_by,
            review_comment: r.review_comment,
            reviewed_at: r.reviewed_at,
            cancelled_by: r.cancelled_by,
        })
    }
}

macro_rules! cols {
    () => {
        "id, config_id, app_id, environment_id, name, kind, ref_kind, ref_name, commit_id, commit_message, version, status, error, snapshot, requested_by, created_at, updated_at, started_at, finished_at, reviewed_by, review_comment, reviewed_at, cancelled_by, host_ids, retry_of, run_at"
    };
}

#[derive(Debug, Clone)]
pub struct NewRelease {
    pub config_id: ConfigId,
    pub app_id: AppId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub kind: ReleaseKind,
    pub ref_kind: RefKind,
    pub ref_name: String,
    pub commit_id: CommitId,
    pub commit_message: String,
    pub version: Option<VersionName>,
    pub status: ReleaseStatus,
    pub snapshot: ConfigSpec,
    pub requested_by: UserId,
    /// A subset of the config's hosts (None: all of them).
    pub host_ids: Option<Vec<HostId>>,
    /// The failed release this one retries.
    pub retry_of: Option<ReleaseId>,
}

/// What an edit of a release may change.
#[derive(Debug, Clone)]
pub struct ReleaseEdit {
    pub name: String,
    pub ref_kind: RefKind,
    pub ref_name: String,
    pub commit_id: CommitId,
    pub commit_message: String,
}

/// What [`Db::cancel_release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// It was waiting and is `cancelled` now.
    Cancelled,
    /// It is running: the request is recorded; its worker stops at the next safe point.
    Requested,
    /// It is running and someone already asked.
    AlreadyRequested,
    /// It has ended (or was never going to run): nothing to cancel.
    NotCancellable(ReleaseStatus),
}

#[derive(Debug, Clone, Default)]
pub struct ReleaseFilter {
    pub status: Option<ReleaseStatus>,
    pub app_id: Option<AppId>,
    pub environment_id: Option<EnvironmentId>,
}

/// Which releases a caller may see: all of them, or those of the (environment, app) scopes
/// of their grants (`None`: every environment / app).
#[derive(Debug, Clone)]
pub enum Visibility {
    All,
    Scopes(Vec<(Option<EnvironmentId>, Option<AppId>)>),
}

/// One page of the releases list, filtered (all filters are optional).
#[derive(Debug, Clone)]
pub struct ReleaseQuery {
    /// Any of these (empty: every status).
    pub statuses: Vec<ReleaseStatus>,
    pub app_id: Option<AppId>,
    pub environment_id: Option<EnvironmentId>,
    pub requested_by: Option<UserId>,
    pub kind: Option<ReleaseKind>,
    /// Matched (case-insensitively) in the name, the ref and the commit id.
    pub text: Option<String>,
    /// Requested at or after / before (RFC 3339, UTC, as stored).
    pub from: Option<String>,
    pub to: Option<String>,
    pub visible: Visibility,
    pub limit: i64,
    pub offset: i64,
}

/// A release with the names of what its ids point at.
#[derive(Debug, Clone)]
pub struct NamedRelease {
    pub release: Release,
    pub app_name: String,
    pub environment_name: String,
    pub requested_by_name: String,
    pub reviewed_by_name: Option<String>,
    pub cancelled_by_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReleasePage {
    pub items: Vec<NamedRelease>,
    /// Releases matching every filter but `status`, per status (the list's tabs).
    pub counts: Vec<(ReleaseStatus, i64)>,
    /// Releases matching every filter.
    pub total: i64,
}

#[derive(sqlx::FromRow)]
struct NamedRow {
    #[sqlx(flatten)]
    row: Row,
    app_name: Option<String>,
    environment_name: Option<String>,
    requested_by_name: Option<String>,
    reviewed_by_name: Option<String>,
    cancelled_by_name: Option<String>,
}

/// A value bound to a `$N` of a built query (values are always bound, never spliced).
enum Bound {
    Text(String),
    Int(i64),
}

impl ReleaseQuery {
    /// The conditions (`status` only when `with_status`) and their values, in order.
    fn conditions(&self, with_status: bool) -> (String, Vec<Bound>) {
        let mut sql = vec!["1 = 1".to_owned()];
        let mut vals: Vec<Bound> = Vec::new();
        let push = |vals: &mut Vec<Bound>, v: Bound| {
            vals.push(v);
            format!("${}", vals.len())
        };
        if with_status && !self.statuses.is_empty() {
            let any: Vec<String> = self
                .statuses
                .iter()
                .map(|s| push(&mut vals, Bound::Text(s.as_str().to_owned())))
                .collect();
            sql.push(format!("r.status IN ({})", any.join(", ")));
        }
        if let Some(a) = self.app_id {
            let p = push(&mut vals, Bound::Int(a.get()));
            sql.push(format!("r.app_id = {p}"));
        }
        if let Some(e) = self.environment_id {
            let p = push(&mut vals, Bound::Int(e.get()));
            sql.push(format!("r.environment_id = {p}"));
        }
        if let Some(u) = self.requested_by {
            let p = push(&mut vals, Bound::Int(u.get()));
            sql.push(format!("r.requested_by = {p}"));
        }
        if let Some(k) = self.kind {
            let p = push(&mut vals, Bound::Text(k.as_str().to_owned()));
            sql.push(format!("r.kind = {p}"));
        }
        if let Some(t) = self
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let escaped = t
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let p = push(&mut vals, Bound::Text(format!("%{escaped}%")));
            sql.push(format!(
                "(LOWER(r.name) LIKE {p} ESCAPE '\\' OR LOWER(r.ref_name) LIKE {p} ESCAPE '\\' OR LOWER(r.commit_id) LIKE {p} ESCAPE '\\')"
            ));
        }
        if let Some(f) = &self.from {
            let p = push(&mut vals, Bound::Text(f.clone()));
            sql.push(format!("r.created_at >= {p}"));
        }
        if let Some(t) = &self.to {
            let p = push(&mut vals, Bound::Text(t.clone()));
            sql.push(format!("r.created_at < {p}"));
        }
        if let Visibility::Scopes(scopes) = &self.visible {
            let mut any = Vec::new();
            for (env, app) in scopes {
                let mut both = Vec::new();
                if let Some(e) = env {
                    let p = push(&mut vals, Bound::Int(e.get()));
                    both.push(format!("r.environment_id = {p}"));
                }
                if let Some(a) = app {
                    let p = push(&mut vals, Bound::Int(a.get()));
                    both.push(format!("r.app_id = {p}"));
                }
                if both.is_empty() {
                    both.push("1 = 1".into());
                }
                any.push(format!("({})", both.join(" AND ")));
            }
            if any.is_empty() {
                any.push("1 = 0".into());
            }
            sql.push(format!("({})", any.join(" OR ")));
        }
        (sql.join(" AND "), vals)
    }
}

fn bind_all<'q>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, NamedRow, sqlx::any::AnyArguments>,
    vals: &'q [Bound],
) -> sqlx::query::QueryAs<'q, sqlx::Any, NamedRow, sqlx::any::AnyArguments> {
    for v in vals {
        q = match v {
            Bound::Text(t) => q.bind(t.as_str()),
            Bound::Int(i) => q.bind(*i),
        };
    }
    q
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ReleaseHost {
    pub host_id: HostId,
    pub host_name: String,
    pub addr: String,
    #[sqlx(try_from = "String")]
    pub status: HostStatus,
    pub stage: String,
    pub message: String,
    pub bytes_sent: i64,
    pub previous_version: Option<String>,
    pub updated_at: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HostVersion {
    pub host_id: HostId,
    #[sqlx(try_from = "String")]
    pub version: VersionName,
    pub release_id: ReleaseId,
    #[sqlx(try_from = "String")]
    pub commit_id: CommitId,
    #[sqlx(try_from = "i64")]
    pub live: super::Flag,
    pub created_at: String,
}

impl Db {
    pub async fn create_release(&self, n: &NewRelease) -> DbResult<Release> {
        let t = now();
        let r: ReleaseId = sqlx::query_scalar(
            "INSERT INTO releases (config_id, app_id, environment_id, name, kind, ref_kind, ref_name, commit_id, commit_message,
                version, status, snapshot, requested_by, created_at, updated_at, host_ids, retry_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
        )
        .bind(n.config_id)
        .bind(n.app_id)
        .bind(n.environment_id)
        .bind(&n.name)
        .bind(n.kind.as_str())
        .bind(n.ref_kind.as_str())
        .bind(&n.ref_name)
        .bind(n.commit_id.as_str())
        .bind(&n.commit_message)
        .bind(n.version.as_ref().map(VersionName::as_str))
        .bind(n.status.as_str())
        .bind(serde_json::to_string(&n.snapshot).unwrap_or_default())
        .bind(n.requested_by)
        .bind(&t)
        .bind(&t)
        .bind(
            n.host_ids
                .as_ref()
                .map(|h| serde_json::to_string(h).unwrap_or_default()),
        )
        .bind(n.retry_of)
        .fetch_one(&self.pool)
        .await?;
        self.get_release(r).await
    }

    pub async fn get_release(&self, id: ReleaseId) -> DbResult<Release> {
        let row: Row = sqlx::query_as(concat!("SELECT ", cols!(), " FROM releases WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(DbError::NotFound("release"))?;
        row.try_into()
    }

    pub async fn list_releases(&self, f: &ReleaseFilter) -> DbResult<Vec<Release>> {
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            cols!(),
            " FROM releases WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) AND (CAST($2 AS BIGINT) IS NULL OR app_id = $2)
               AND (CAST($3 AS BIGINT) IS NULL OR environment_id = $3) ORDER BY id DESC LIMIT 500"
        ))
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.app_id)
        .bind(f.environment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// One page of releases, newest first, with names, per-status counts and the total. The
    /// caller's visibility is a condition of the query, so pages and totals count only what
    /// they may see.
    pub async fn release_page(&self, q: &ReleaseQuery) -> DbResult<ReleasePage> {
        let (cond, vals) = q.conditions(true);
        // The page is chosen on `releases` alone (an index walk, no row read for what is
        // skipped); only its rows are read and joined with the names.
        let sql = format!(
            "SELECT r.id, r.config_id, r.app_id, r.environment_id, r.name, r.kind, r.ref_kind, r.ref_name, r.commit_id,
                    r.commit_message, r.version, r.status, r.error, r.snapshot, r.requested_by, r.created_at, r.updated_at,
                    r.started_at, r.finished_at, r.reviewed_by, r.review_comment, r.reviewed_at, r.cancelled_by, r.host_ids, r.retry_of, r.run_at,
                    a.name AS app_name, e.name AS environment_name, u.username AS requested_by_name,
                    v.username AS reviewed_by_name, c.username AS cancelled_by_name
             FROM releases r
             LEFT JOIN apps a ON a.id = r.app_id
             LEFT JOIN environments e ON e.id = r.environment_id
             LEFT JOIN users u ON u.id = r.requested_by
             LEFT JOIN users v ON v.id = r.reviewed_by
             LEFT JOIN users c ON c.id = r.cancelled_by
             WHERE r.id IN (SELECT r.id FROM releases r WHERE {cond} ORDER BY r.id DESC LIMIT {} OFFSET {})
             ORDER BY r.id DESC",
            q.limit.clamp(0, 1000),
            q.offset.max(0)
        );
        let rows: Vec<NamedRow> = // The SQL is built from fixed fragments and `$N` placeholders only; every value is bound.
        bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), &vals)
            .fetch_all(&self.pool)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(NamedRelease {
                release: r.row.try_into()?,
                app_name: r.app_name.unwrap_or_default(),
                environment_name: r.environment_name.unwrap_or_default(),
                requested_by_name: r.requested_by_name.unwrap_or_default(),
                reviewed_by_name: r.reviewed_by_name,
                cancelled_by_name: r.cancelled_by_name,
            });
        }
        let (cond, vals) = q.conditions(false);
        let sql =
            format!("SELECT r.status, COUNT(*) FROM releases r WHERE {cond} GROUP BY r.status");
        let mut count = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
        for v in &vals {
            count = match v {
                Bound::Text(t) => count.bind(t.as_str()),
                Bound::Int(i) => count.bind(*i),
            };
        }
        let mut counts = Vec::new();
        for (status, n) in count.fetch_all(&self.pool).await? {
            let status = ReleaseStatus::parse(&status).map_err(|e| DbError::Corrupt(e.0))?;
            counts.push((status, n));
        }
        let total = counts
            .iter()
            .filter(|(s, _)| q.statuses.is_empty() || q.statuses.contains(s))
            .map(|(_, n)| n)
            .sum();
        Ok(ReleasePage {
            items,
            counts,
            total,
        })
    }

    /// The names a release's ids point at (app, environment, requester, reviewer).
    pub async fn release_names(&self, r: &Release) -> DbResult<NamedRelease> {
        let name = |sql: &'static str, id: i64| async move {
            sqlx::query_scalar::<_, String>(sql)
                .bind(id)
                .fetch_optional(&self.pool)
                .await
        };
        let reviewed_by_name = match r.reviewed_by {
            Some(id) => name("SELECT username FROM users WHERE id = $1", id.get()).await?,
            None => None,
        };
        let cancelled_by_name = match r.cancelled_by {
            Some(id) => name("SELECT username FROM users WHERE id = $1", id.get()).await?,
            None => None,
        };
        Ok(NamedRelease {
            app_name: name("SELECT name FROM apps WHERE id = $1", r.app_id.get())
                .await?
                .unwrap_or_default(),
            environment_name: name(
                "SELECT name FROM environments WHERE id = $1",
                r.environment_id.get(),
            )
            .await?
            .unwrap_or_default(),
            requested_by_name: name(
                "SELECT username FROM users WHERE id = $1",
                r.requested_by.get(),
            )
            .await?
            .unwrap_or_default(),
            reviewed_by_name,
            cancelled_by_name,
            release: r.clone(),
        })
    }

    /// How many releases are in each status (for metrics).
    pub async fn releases_by_status(&self) -> DbResult<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT status, COUNT(*) FROM releases GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Moves a release to `to` if its current status allows it; false when it did not.
    /// The check and the write are one statement, so two callers cannot both win.
    pub async fn transition_release(
        &self,
        id: ReleaseId,
        to: ReleaseStatus,
        error: Option<&str>,
    ) -> DbResult<bool> {
        self.transition_release_as(id, to, error, &Actor::system(), "")
            .await
    }

    /// [`Db::transition_release`] by `actor`; the move and its audit entry are one
    /// transaction. `approved`/`rejected` also record the review (reviewer, comment, time).
    pub async fn transition_release_as(
        &self,
        id: ReleaseId,
        to: ReleaseStatus,
        error: Option<&str>,
        actor: &Actor,
        comment: &str,
    ) -> DbResult<bool> {
        self.move_release(id, None, to, error, actor, comment).await
    }

    /// Fails a release that is still `queued` (its job could not be queued); false if it has
    /// moved on (a worker may have taken a job whose push only looked failed).
    pub async fn fail_if_queued(
        &self,
        id: ReleaseId,
        reason: &str,
        actor: &Actor,
    ) -> DbResult<bool> {
        self.move_release(
            id,
            Some(ReleaseStatus::Queued),
            ReleaseStatus::Failed,
            Some(reason),
            actor,
            "",
        )
        .await
    }

    async fn move_release(
        &self,
        id: ReleaseId,
        only_from: Option<ReleaseStatus>,
        to: ReleaseStatus,
        error: Option<&str>,
        actor: &Actor,
        comment: &str,
    ) -> DbResult<bool> {
        // Compare-and-set on the status read: two callers cannot both make the same move.
        loop {
            let current: Option<String> =
                sqlx::query_scalar("SELECT status FROM releases WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(current) = current else {
                return Ok(false);
            };
            let current = ReleaseStatus::parse(&current).map_err(|e| DbError::Corrupt(e.0))?;
            if !current.can_become(to) || only_from.is_some_and(|f| f != current) {
                return Ok(false);
            }
            let t = now();
            let reviewed = matches!(to, ReleaseStatus::Approved | ReleaseStatus::Rejected);
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "UPDATE releases SET status = $1, error = $2, updated_at = $3,
                    started_at = CASE WHEN $1 = 'running' THEN $3 ELSE started_at END,
                    finished_at = CASE WHEN $1 IN ('succeeded','failed','rejected','cancelled') THEN $3
                                       WHEN $1 = 'queued' THEN NULL ELSE finished_at END,
                    reviewed_by = CASE WHEN $4 = 1 THEN $5 ELSE reviewed_by END,
                    review_comment = CASE WHEN $4 = 1 THEN $6 ELSE review_comment END,
                    reviewed_at = CASE WHEN $4 = 1 THEN $3 ELSE reviewed_at END,
                    cancelled_by = CASE WHEN $1 = 'cancelled' THEN COALESCE(cancelled_by, $5)
                                        WHEN $1 = 'queued' THEN NULL ELSE cancelled_by END
                 WHERE id = $7 AND status = $8",
            )
            .bind(to.as_str())
            .bind(error)
            .bind(&t)
            .bind(i64::from(reviewed))
            .bind(actor.id)
            .bind(comment)
            .bind(id)
            .bind(current.as_str())
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 1 {
                let changes = serde_json::json!({
                    "status": {"from": current.as_str(), "to": to.as_str()},
                    "error": error,
                });
                super::audit::insert(
                    &mut tx,
                    actor,
                    "release",
                    Some(id.get()),
                    "status",
                    &changes,
                    comment,
                )
                .await?;
                tx.commit().await?;
                return Ok(true);
            }
        }
    }

    /// Cancels a release for `actor`: one that waits (pending review, approved, queued) is
    /// `cancelled` at once (a queued job then finds it not queued and skips it); a running one
    /// gets the request recorded (`cancelled_by`), and its worker stops at the next safe point.
    pub async fn cancel_release(&self, id: ReleaseId, actor: &Actor) -> DbResult<Cancel> {
        loop {
            let r = self.get_release(id).await?;
            match r.status {
                ReleaseStatus::PendingReview | ReleaseStatus::Approved | ReleaseStatus::Queued => {
                    if self
                        .move_release(
                            id,
                            Some(r.status),
                            ReleaseStatus::Cancelled,
                            None,
                            actor,
                            "",
                        )
                        .await?
                    {
                        return Ok(Cancel::Cancelled);
                    }
                }
                ReleaseStatus::Running => {
                    if r.cancelled_by.is_some() {
                        return Ok(Cancel::AlreadyRequested);
                    }
                    let mut tx = self.pool.begin().await?;
                    let done = sqlx::query(
                        "UPDATE releases SET cancelled_by = $1, updated_at = $2
                         WHERE id = $3 AND status = 'running' AND cancelled_by IS NULL",
                    )
                    .bind(actor.id)
                    .bind(now())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        super::audit::insert(
                            &mut tx,
                            actor,
                            "release",
                            Some(id.get()),
                            "cancel",
                            &serde_json::json!({"status": "running"}),
                            "",
                        )
                        .await?;
                        tx.commit().await?;
                        return Ok(Cancel::Requested);
                    }
                }
                other => return Ok(Cancel::NotCancellable(other)),
            }
        }
    }

    /// Claims the config's `on_failure` hook for the current run of a running release: true
    /// for exactly one caller per run (the worker ending the run, or a recovery ending it
    /// after a cut-off), false for every other — a release no longer running included. A run
    /// is told apart by its `started_at`, so a re-run can run the hook again.
    pub async fn claim_on_failure(&self, id: ReleaseId) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE releases SET on_failure_run = started_at
             WHERE id = $1 AND status = 'running' AND started_at IS NOT NULL
               AND (on_failure_run IS NULL OR on_failure_run <> started_at)",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Who asked to cancel a running release (None: nobody). Read by its worker.
    pub async fn cancel_requested(&self, id: ReleaseId) -> DbResult<Option<UserId>> {
        Ok(sqlx::query_scalar::<_, Option<UserId>>(
            "SELECT cancelled_by FROM releases WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    /// Changes a release that has not been queued yet (pending review, approved or rejected):
    /// its name and what it ships. It goes (back) to `pending_review` when `review` is on,
    /// else it is `approved`; an earlier review no longer counts. False if the release had
    /// moved on meanwhile (queued, running…). The editor becomes the requester.
    pub async fn edit_release(
        &self,
        id: ReleaseId,
        edit: &ReleaseEdit,
        review: bool,
        actor: &Actor,
    ) -> DbResult<bool> {
        let before = self.get_release(id).await?;
        let to = if review {
            ReleaseStatus::PendingReview
        } else {
            ReleaseStatus::Approved
        };
        if !matches!(
            before.status,
            ReleaseStatus::PendingReview | ReleaseStatus::Approved | ReleaseStatus::Rejected
        ) {
            return Ok(false);
        }
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE releases SET name = $1, ref_kind = $2, ref_name = $3, commit_id = $4, commit_message = $5,
                status = $6, reviewed_by = NULL, review_comment = NULL, reviewed_at = NULL, updated_at = $7, run_at = NULL,
                requested_by = COALESCE($8, requested_by)
             WHERE id = $9 AND status = $10",
        )
        .bind(&edit.name)
        .bind(edit.ref_kind.as_str())
        .bind(&edit.ref_name)
        .bind(edit.commit_id.as_str())
        .bind(&edit.commit_message)
        .bind(to.as_str())
        .bind(now())
        // Whoever changes what a release ships becomes its requester: they cannot review it.
        .bind(actor.id)
        .bind(id)
        .bind(before.status.as_str())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let changes = serde_json::json!({
            "name": {"from": before.name, "to": edit.name},
            "ref": {"from": format!("{} {}", before.ref_kind, before.ref_name),
                    "to": format!("{} {}", edit.ref_kind, edit.ref_name)},
            "commit_id": {"from": before.commit_id, "to": edit.commit_id},
            "status": {"from": before.status.as_str(), "to": to.as_str()},
        });
        super::audit::insert(
            &mut tx,
            actor,
            "release",
            Some(id.get()),
            "edit",
            &changes,
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn set_release_version(&self, id: ReleaseId, version: &VersionName) -> DbResult<()> {
        sqlx::query("UPDATE releases SET version = $1, updated_at = $2 WHERE id = $3")
            .bind(version.as_str())
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// (Re)starts the per-host results of a run.
    pub async fn reset_release_hosts(
        &self,
        release_id: ReleaseId,
        hosts: &[(HostId, String, String)],
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM release_hosts WHERE release_id = $1")
            .bind(release_id)
            .execute(&mut *tx)
            .await?;
        for (id, name, addr) in hosts {
            sqlx::query("INSERT INTO release_hosts (release_id, host_id, host_name, addr, status, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5)")
                .bind(release_id)
                .bind(id)
                .bind(name)
                .bind(addr)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Where one host of a release is: its status, the stage it got to, and why (failures).
    pub async fn update_release_host(
        &self,
        release_id: ReleaseId,
        host_id: HostId,
        status: HostStatus,
        stage: Stage,
        message: &str,
    ) -> DbResult<()> {
        sqlx::query("UPDATE release_hosts SET status = $1, stage = $2, message = $3, updated_at = $4 WHERE release_id = $5 AND host_id = $6")
            .bind(status.as_str())
            .bind(stage.as_str())
            .bind(message)
            .bind(now())
            .bind(release_id)
            .bind(host_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_release_host_extra(
        &self,
        release_id: ReleaseId,
        host_id: HostId,
        bytes_sent: u64,
        previous: Option<&str>,
    ) -> DbResult<()> {
        sqlx::query("UPDATE release_hosts SET bytes_sent = $1, previous_version = COALESCE($2, previous_version) WHERE release_id = $3 AND host_id = $4")
            .bind(i64::try_from(bytes_sent).unwrap_or(i64::MAX))
            .bind(previous)
            .bind(release_id)
            .bind(host_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn release_hosts(&self, release_id: ReleaseId) -> DbResult<Vec<ReleaseHost>> {
        Ok(sqlx::query_as(
            "SELECT host_id, host_name, addr, status, stage, message, bytes_sent, previous_version, updated_at
             FROM release_hosts WHERE release_id = $1 ORDER BY host_id",
        )
        .bind(release_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that `host` now holds `version` (prepared, not live yet).
    pub async fn record_host_version(
        &self,
        config_id: ConfigId,
        host_id: HostId,
        version: &str,
        release_id: ReleaseId,
        commit_id: &str,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO host_versions (config_id, host_id, version, release_id, commit_id, live, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6)
             ON CONFLICT(config_id, host_id, version) DO UPDATE SET release_id = excluded.release_id",
        )
        .bind(config_id)
        .bind(host_id)
        .bind(version)
        .bind(release_id)
        .bind(commit_id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn mark_live_version(
        &self,
        config_id: ConfigId,
        host_id: HostId,
        version: &str,
    ) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE host_versions SET live = CASE WHEN version = $1 THEN 1 ELSE 0 END WHERE config_id = $2 AND host_id = $3",
        )
        .bind(version)
        .bind(config_id)
        .bind(host_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn forget_host_versions(
        &self,
        config_id: ConfigId,
        host_id: HostId,
        versions: &[String],
    ) -> DbResult<()> {
        for v in versions {
            sqlx::query(
                "DELETE FROM host_versions WHERE config_id = $1 AND host_id = $2 AND version = $3",
            )
            .bind(config_id)
            .bind(host_id)
            .bind(v)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    pub async fn host_versions(&self, config_id: ConfigId) -> DbResult<Vec<HostVersion>> {
        Ok(sqlx::query_as(
            "SELECT host_id, version, release_id, commit_id, live, created_at FROM host_versions WHERE config_id = $1 ORDER BY host_id, version DESC",
        )
        .bind(config_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
