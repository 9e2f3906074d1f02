//! `/api/apps`: what gets released.
use super::{AUTH, ApiResult, ApiTags, BODY, CONFLICT, Created, Deleted, FORBIDDEN, NOT_FOUND};
use crate::audit;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::{Description, Name, TagText, Timestamp};
use hippo_shared::db::inventory::{App, AppInput};
use hippo_shared::domain;
use hippo_shared::domain::AppId;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// An app.
#[derive(Object)]
pub struct AppOut {
    pub id: AppId,
    pub name: String,
    /// Unique short name, e.g. `prod`.
    pub tag: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<App> for AppOut {
    fn from(e: App) -> Self {
        Self {
            id: e.id,
            name: e.name,
            tag: e.tag,
            description: e.description,
            created_at: e.created_at.into(),
            updated_at: e.updated_at.into(),
        }
    }
}

/// Create or replace an app.
#[derive(Object)]
#[oai(example)]
pub struct AppIn {
    pub name: Name,
    /// Unique: 1-32 of a-z, 0-9, `-`, `_`.
    pub tag: TagText,
    #[oai(default)]
    pub description: Description,
}

impl AppIn {
    fn parse(&self) -> Result<AppInput, ApiError> {
        Ok(AppInput {
            name: domain::Name::parse(&self.name).map_err(ApiError::field("name"))?,
            tag: domain::Tag::parse(&self.tag).map_err(ApiError::field("tag"))?,
            description: self.description.trim().to_owned(),
        })
    }
}

#[derive(Default)]
pub struct AppsApi;

#[OpenApi(prefix_path = "/api/apps", tag = "ApiTags::Apps")]
impl AppsApi {
    /// List apps (every signed-in user sees them all: they only name what is released).
    #[oai(path = "/", method = "get", operation_id = "listApps")]
    async fn list(&self, _auth: Auth, st: Data<&Arc<State>>) -> ApiResult<Json<Vec<AppOut>>, AUTH> {
        Ok(Json(
            st.db
                .list_apps()
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }

    /// Create an app (admins).
    #[oai(path = "/", method = "post", operation_id = "createApp")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<AppIn>,
    ) -> ApiResult<Created<AppOut>, { AUTH | BODY | FORBIDDEN | CONFLICT }> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let out: AppOut = st.db.create_app(&input).await?.into();
        let changes = audit::diff(None, audit::view(&out));
        audit::record(&st, &auth.0, "app", Some(out.id), "create", changes).await;
        Ok(Created::Ok(Json(out)))
    }

    /// Get an app.
    #[oai(path = "/:id", method = "get", operation_id = "getApp")]
    async fn get(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<AppId>,
    ) -> ApiResult<Json<AppOut>, { AUTH | NOT_FOUND }> {
        Ok(Json(st.db.get_app(id.0).await?.into()))
    }

    /// Replace an app (admins).
    #[oai(path = "/:id", method = "put", operation_id = "updateApp")]
    async fn update(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<AppId>,
        body: JsonBody<AppIn>,
    ) -> ApiResult<Json<AppOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let before: AppOut = st.db.get_app(id.0).await?.into();
        let out: AppOut = st.db.update_app(id.0, &input).await?.into();
        let changes = audit::diff(audit::view(&before), audit::view(&out));
        audit::record(&st, &auth.0, "app", Some(id.0), "update", changes).await;
        Ok(Json(out))
    }

    /// Delete an app (admins; refused with 409 while configs use it).
    #[oai(path = "/:id", method = "delete", operation_id = "deleteApp")]
    async fn delete(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<AppId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        auth.0.require_admin()?;
        let before: AppOut = st.db.get_app(id.0).await?.into();
        st.db.delete_app(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "app", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }
}

impl poem_openapi::types::Example for AppIn {
    fn example() -> Self {
        Self {
            name: "Cart".into(),
            tag: "cart".into(),
            description: "The shop's cart service".into(),
        }
    }
}
