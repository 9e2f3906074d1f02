//! Platform facts: the platform's SSH key.
use super::{AUTH, ApiResult, ApiTags};
use crate::auth::Auth;
use crate::state::State;
use hippo_worker::ssh::HostKey;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

#[derive(Object)]
pub struct SshKeyOut {
    /// Add this line to `~/.ssh/authorized_keys` of the deploy user on every host (and as a
    /// deploy key of SSH Git repositories).
    pub public_key: String,
    pub fingerprint: String,
}

#[derive(Default)]
pub struct SystemApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::System")]
impl SystemApi {
    /// The platform's public SSH key.
    #[oai(path = "/ssh-key", method = "get", operation_id = "getSshKey")]
    async fn ssh_key(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<SshKeyOut>, AUTH> {
        let public_key = st.key.public_line.clone();
        let fingerprint = HostKey::from_openssh(&public_key)
            .map(|k| k.fingerprint())
            .unwrap_or_default();
        Ok(Json(SshKeyOut {
            public_key,
            fingerprint,
        }))
    }
}
