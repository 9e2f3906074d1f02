//! Custom releases at the API edge: a config's `actions` as the API takes and shows them
//! (parsed into `hippo_shared::custom::Action`), and the files uploaded with a release request
//! for its upload transfers (`/api/releases/{id}/uploads/{step}`). docs/configs.md.
use super::{AUTH, ApiResult, ApiTags, BAD_PARAM, BODY, CONFLICT, FORBIDDEN, NOT_FOUND};
use crate::audit;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::{RemotePathText, Script, Timestamp, TreePathText};
use hippo_shared::custom::{self, Action, ConfigKind, TransferSource, TreePath};
use hippo_shared::db::configs::ConfigSpec;
use hippo_shared::db::releases::{Release, ReleaseEdit};
use hippo_shared::db::uploads::UploadInfo;
use hippo_shared::domain::{Permission, ReleaseId, ReleaseKind, ReleaseStatus, RemotePath};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{Enum, Object, OpenApi};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What a custom release step does: `server_command` (a script on the release server, in the
/// checked-out tree, sandboxed), `target_command` (a script on every target, in the new
/// version folder), `transfer` (files to a destination on every target).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ActionType {
    ServerCommand,
    TargetCommand,
    Transfer,
}

/// Where a transfer's files come from: `tree` (a `path` of the checked-out tree, after the
/// server commands before it ran) or `upload` (the file uploaded with the release request for
/// this step: `PUT /api/releases/{id}/uploads/{step}`).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SourceKind {
    Tree,
    Upload,
}

/// One step of a custom release. Commands take `script`; transfers take `source`, `path`
/// (for `tree`) and `destination`.
#[derive(Object, Clone)]
pub struct CustomAction {
    #[oai(rename = "type")]
    pub action_type: ActionType,
    /// For commands: the shell script (`bash -e`, with the release's variables).
    #[oai(skip_serializing_if_is_none)]
    pub script: Option<Script>,
    /// For transfers.
    #[oai(skip_serializing_if_is_none)]
    pub source: Option<SourceKind>,
    /// For `tree` transfers: the file or folder in the checked-out tree, like `dist/`.
    #[oai(skip_serializing_if_is_none)]
    pub path: Option<TreePathText>,
    /// For transfers: an absolute path on every target. It becomes a symbolic link into the
    /// deploy path (a real file or folder there stops the release: move it away first).
    #[oai(skip_serializing_if_is_none)]
    pub destination: Option<RemotePathText>,
}

/// The config's actions as the API shows them.
pub fn actions_out(actions: &[Action]) -> Vec<CustomAction> {
    actions
        .iter()
        .map(|a| match a {
            Action::ServerCommand { script } | Action::TargetCommand { script } => CustomAction {
                action_type: if matches!(a, Action::ServerCommand { .. }) {
                    ActionType::ServerCommand
                } else {
                    ActionType::TargetCommand
                },
                script: Some(script.as_str().into()),
                source: None,
                path: None,
                destination: None,
            },
            Action::Transfer {
                source,
                destination,
            } => CustomAction {
                action_type: ActionType::Transfer,
                script: None,
                source: Some(match source {
                    TransferSource::Tree { .. } => SourceKind::Tree,
                    TransferSource::Upload => SourceKind::Upload,
                }),
                path: match source {
                    TransferSource::Tree { path } => Some(path.as_str().into()),
                    TransferSource::Upload => None,
                },
                destination: Some(destination.as_str().into()),
            },
        })
        .collect()
}

/// Parses `kind` and `actions` of a config body against its (already parsed) paths and hooks.
/// A regular config takes no actions; a custom one needs 1-50, and no before/after-release
/// hooks or file filter (its actions say what happens on the targets).
pub fn parse_actions(
    kind: ConfigKind,
    given: Option<&[CustomAction]>,
    spec: &ConfigSpec,
) -> Result<Vec<Action>, ApiError> {
    let given = given.unwrap_or_default();
    if kind == ConfigKind::Regular {
        if !given.is_empty() {
            return Err(ApiError::invalid(
                "actions",
                "actions are only for configs of kind custom",
            ));
        }
        return Ok(Vec::new());
    }
    for (field, script) in [
        ("hooks.before_release", &spec.hooks.before_release),
        ("hooks.after_release", &spec.hooks.after_release),
    ] {
        if !script.trim().is_empty() {
            return Err(ApiError::invalid(
                field,
                format!("{field} is not used by custom configs: add a target command instead"),
            ));
        }
    }
    if !spec.filter.trim().is_empty() {
        return Err(ApiError::invalid(
            "filter",
            "filter is not used by custom configs: transfers name what is sent",
        ));
    }
    let mut out = Vec::with_capacity(given.len());
    for (i, a) in given.iter().enumerate() {
        let field = |name: &str| format!("actions[{i}].{name}");
        let missing = |name: &str| {
            let f = field(name);
            ApiError::invalid(&f, format!("{f} is required for this action type"))
        };
        let command = |a: &CustomAction| a.script.as_ref().map(|s| s.0.clone());
        let action = match a.action_type {
            ActionType::ServerCommand => Action::ServerCommand {
                script: command(a).ok_or_else(|| missing("script"))?,
            },
            ActionType::TargetCommand => Action::TargetCommand {
                script: command(a).ok_or_else(|| missing("script"))?,
            },
            ActionType::Transfer => {
                let destination = a
                    .destination
                    .as_deref()
                    .ok_or_else(|| missing("destination"))?;
                let destination = RemotePath::parse(destination)
                    .map_err(ApiError::field(&field("destination")))?;
                let source = match a.source.ok_or_else(|| missing("source"))? {
                    SourceKind::Tree => TransferSource::Tree {
                        path: TreePath::parse(a.path.as_deref().ok_or_else(|| missing("path"))?)
                            .map_err(ApiError::field(&field("path")))?,
                    },
                    SourceKind::Upload => {
                        if a.path.is_some() {
                            let f = field("path");
                            return Err(ApiError::invalid(
                                &f,
                                format!("{f} is only for tree transfers"),
                            ));
                        }
                        TransferSource::Upload
                    }
                };
                Action::Transfer {
                    source,
                    destination,
                }
            }
        };
        out.push(action);
    }
    custom::check(&out, &spec.deploy_path, &spec.versions_path).map_err(|(i, name, why)| {
        if name == "actions" {
            ApiError::invalid("actions", format!("actions: {why}"))
        } else {
            let f = format!("actions[{i}].{name}");
            ApiError::invalid(&f, format!("{f}: {why}"))
        }
    })?;
    Ok(out)
}

/// 409 unless every upload transfer of a custom release has its file (checked before a
/// release is queued).
pub async fn check_uploads(st: &State, r: &Release) -> Result<(), ApiError> {
    if r.kind != ReleaseKind::Release || r.snapshot.kind != ConfigKind::Custom {
        return Ok(());
    }
    let have = st.db.list_uploads(r.id).await?;
    for (i, a) in r.snapshot.actions.iter().enumerate() {
        let step = i as i64 + 1;
        if a.needs_upload() && !have.iter().any(|u| u.step == step) {
            return Err(ApiError::conflict(
                "missing_upload",
                format!(
                    "step {step} transfers an uploaded file and none was uploaded: PUT /api/releases/{}/uploads/{step}",
                    r.id
                ),
            ));
        }
    }
    Ok(())
}

/// A file uploaded for one step of a custom release.
#[derive(Object)]
pub struct UploadOut {
    /// The step (1-based) whose transfer sends it.
    pub step: u32,
    pub size: u64,
    /// Hex SHA-256 of the bytes, as received.
    pub sha256: String,
    pub uploaded_at: Timestamp,
}

fn upload_out(u: UploadInfo) -> UploadOut {
    UploadOut {
        step: u32::try_from(u.step).unwrap_or(0),
        size: u64::try_from(u.size).unwrap_or(0),
        sha256: u.sha256,
        uploaded_at: u.uploaded_at.into(),
    }
}

#[derive(Default)]
pub struct UploadsApi;

#[OpenApi(prefix_path = "/api/releases", tag = "ApiTags::Releases")]
impl UploadsApi {
    /// Upload the file for `step` (1-based) of a custom release: that step must be a transfer
    /// of source `upload`. The body is the file's bytes (`application/octet-stream`), at most
    /// `HIPPO_MAX_UPLOAD_BYTES` (default 64 MiB; 413 above it). Only before the release is
    /// queued (pending review, approved or rejected; 409 otherwise); a new file replaces the
    /// old one and, with review on, sends the release back to review. Needs `request`. The file
    /// is kept while a host keeps the version it went into.
    #[oai(
        path = "/:id/uploads/:step",
        method = "put",
        operation_id = "uploadReleaseFile"
    )]
    async fn upload(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
        /// The step (1-based) in the config's actions.
        #[oai(validator(minimum(value = "1"), maximum(value = "50")))]
        step: Path<u32>,
        body: Binary<poem::Body>,
    ) -> ApiResult<Json<UploadOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        let r = st.db.get_release(id.0).await?;
        auth.0
            .require_sees(r.environment_id, Some(r.app_id), "release")?;
        auth.0
            .require(Permission::Request, Some(r.environment_id), Some(r.app_id))?;
        let index = step.0 as usize - 1;
        let takes_upload = r.kind == ReleaseKind::Release
            && r.snapshot.kind == ConfigKind::Custom
            && r.snapshot
                .actions
                .get(index)
                .is_some_and(Action::needs_upload);
        if !takes_upload {
            return Err(ApiError::invalid(
                "step",
                format!(
                    "step {} of release {} is not a transfer of an uploaded file",
                    step.0, r.id
                ),
            )
            .into());
        }
        if !matches!(
            r.status,
            ReleaseStatus::PendingReview | ReleaseStatus::Approved | ReleaseStatus::Rejected
        ) {
            return Err(ApiError::conflict(
                "invalid_status",
                format!(
                    "release {} is {}: files can be uploaded only before it is queued",
                    r.id, r.status
                ),
            )
            .into());
        }
        let limit = st.settings.max_upload_bytes;
        let data = body.0.into_bytes_limit(limit).await.map_err(|e| {
            if matches!(e, poem::error::ReadBodyError::PayloadTooLarge) {
                ApiError::TooLarge(crate::problem::p(
                    "payload_too_large",
                    format!("the file is larger than {limit} bytes (HIPPO_MAX_UPLOAD_BYTES)"),
                    None,
                ))
            } else {
                ApiError::bad_request(format!("the file could not be read: {e}"))
            }
        })?;
        let sha256 = hex::encode(Sha256::digest(&data));
        let stored = st
            .db
            .put_upload(r.id, i64::from(step.0), &sha256, &data)
            .await?;
        // A new file is a new content: an earlier approval does not carry over.
        if r.status != ReleaseStatus::PendingReview {
            let same = ReleaseEdit {
                name: r.name.clone(),
                ref_kind: r.ref_kind,
                ref_name: r.ref_name.clone(),
                commit_id: r.commit_id.clone(),
                commit_message: r.commit_message.clone(),
            };
            st.db
                .edit_release(r.id, &same, r.snapshot.review_enabled, &auth.0.actor())
                .await?;
        }
        let changes =
            serde_json::json!({"step": step.0, "size": stored.size, "sha256": stored.sha256});
        audit::record(&st, &auth.0, "release", Some(r.id), "upload", changes).await;
        Ok(Json(upload_out(stored)))
    }

    /// The files uploaded for a custom release (without their bytes), by step.
    #[oai(
        path = "/:id/uploads",
        method = "get",
        operation_id = "listReleaseUploads"
    )]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ReleaseId>,
    ) -> ApiResult<Json<Vec<UploadOut>>, { AUTH | NOT_FOUND | BAD_PARAM }> {
        let r = st.db.get_release(id.0).await?;
        auth.0
            .require_sees(r.environment_id, Some(r.app_id), "release")?;
        Ok(Json(
            st.db
                .list_uploads(r.id)
                .await?
                .into_iter()
                .map(upload_out)
                .collect(),
        ))
    }
}
