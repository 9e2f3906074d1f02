//! Git webhooks: a config's hook (`/api/release-configs/{id}/webhook`: provider, branch or tag
//! rule, auto-run; its URL token and secret shown once, rotatable) and the receiver
//! (`POST /api/hooks/git/{token}`, no bearer token: the URL names the config, the provider's
//! signature proves the sender). A matching push or tag becomes a release request by the actor
//! `webhook` through the same path as people's requests (`releases::request_ref`), so review
//! applies; with review off and `auto_run` on it is queued. Every delivery is recorded.
use super::{
    AUTH, ApiResult, ApiTags, BODY, CONFLICT, Deleted, FORBIDDEN, NOT_FOUND, UNAVAILABLE, UPSTREAM,
    config_editable as editable, config_visible as visible,
};
use crate::audit;
use crate::auth::Auth;
use crate::body::{JsonBody, RawJson};
use crate::problem::{ApiError, p};
use crate::routes::releases;
use crate::state::State;
use crate::text::{RefPattern, Timestamp};
use base64::Engine;
use hippo_shared::db::DbError;
use hippo_shared::db::audit::Actor;
use hippo_shared::db::webhooks::{
    NewDelivery, Outcome, Provider, RuleKind, Webhook, WebhookSettings,
};
use hippo_shared::domain::{ConfigId, ReleaseId, ReleaseStatus};
use hmac::{Hmac, Mac};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A config's webhook settings.
#[derive(Object)]
pub struct WebhookIn {
    pub provider: Provider,
    pub rule_kind: RuleKind,
    /// The branch (`main`) or tag (`v*`) name, or a glob: `*` any characters but `/`, `**`
    /// any, `?` one.
    pub pattern: RefPattern,
    /// With review off, queue the requested release at once.
    #[oai(default)]
    pub auto_run: bool,
}

#[derive(Object)]
pub struct WebhookOut {
    pub config_id: ConfigId,
    pub provider: Provider,
    pub rule_kind: RuleKind,
    pub pattern: String,
    pub auto_run: bool,
    /// Only when the hook is created or rotated (shown once): the path to give the provider,
    /// after this server's address (`https://hippo.example.com/api/hooks/git/…`).
    #[oai(skip_serializing_if_is_none)]
    pub path: Option<String>,
    /// Only when created or rotated (shown once): the secret to give the provider (GitHub's
    /// "Secret", GitLab's "Secret token", Gitee's password or signing key).
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One delivery received, and what became of it.
#[derive(Object)]
pub struct DeliveryOut {
    pub id: i64,
    /// The provider's delivery id (or the SHA-256 of the body when it sends none).
    pub delivery_id: String,
    pub provider: String,
    pub event: String,
    pub outcome: Outcome,
    pub reason: String,
    pub ref_name: String,
    pub commit_id: String,
    #[oai(skip_serializing_if_is_none)]
    pub release_id: Option<ReleaseId>,
    pub received_at: Timestamp,
}

/// What the receiver did with a delivery.
#[derive(Object)]
pub struct DeliveryAnswer {
    pub outcome: Outcome,
    pub reason: String,
    #[oai(skip_serializing_if_is_none)]
    pub release_id: Option<ReleaseId>,
}

fn out(w: Webhook, shown: Option<(String, String)>) -> WebhookOut {
    let (path, secret) = match shown {
        Some((token, secret)) => (Some(format!("/api/hooks/git/{token}")), Some(secret)),
        None => (None, None),
    };
    WebhookOut {
        config_id: w.config_id,
        provider: w.provider,
        rule_kind: w.rule_kind,
        pattern: w.pattern,
        auto_run: w.auto_run,
        path,
        secret,
        created_at: w.created_at.into(),
        updated_at: w.updated_at.into(),
    }
}

/// A new URL token (its hash is stored) and signing secret (sealed).
fn new_credentials(st: &State) -> (String, String, String, Vec<u8>) {
    let (token, hash) = hippo_shared::crypto::new_token();
    let secret = hippo_shared::crypto::random_password() + &hippo_shared::crypto::random_password();
    let sealed = st.master.seal(secret.as_bytes());
    (token, hash, secret, sealed)
}

/// Whether `name` matches `pattern`: `*` any characters but `/`, `**` any, `?` one but `/`;
/// anything else is itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') if p.get(1) == Some(&'*') => {
                let rest = &p[2..];
                (0..=n.len()).any(|i| go(rest, &n[i..]))
            }
            Some('*') => {
                let rest = &p[1..];
                for i in 0..=n.len() {
                    if go(rest, &n[i..]) {
                        return true;
                    }
                    if n.get(i) == Some(&'/') {
                        break;
                    }
                }
                false
            }
            Some('?') => n.first().is_some_and(|c| *c != '/') && go(&p[1..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// HMAC-SHA256 of `msg` with `key`, compared in constant time with `expected`.
fn hmac_ok(key: &[u8], msg: &[u8], expected: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(msg);
    mac.verify_slice(expected).is_ok()
}

/// Constant-time equality of two secrets (compares their HMACs under a fixed key, so the time
/// depends neither on where they differ nor on their lengths' difference).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(b"hippo-webhook-compare") else {
        return false;
    };
    mac.update(b);
    let expected = mac.finalize().into_bytes();
    hmac_ok(b"hippo-webhook-compare", a, &expected)
}

fn header<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
}

/// `sha256=<hex>` checked against the body.
fn check_hub_signature(secret: &[u8], body: &[u8], value: &str) -> Result<(), &'static str> {
    let hex_sig = value
        .strip_prefix("sha256=")
        .ok_or("the signature header is missing or not sha256=<hex>")?;
    let sig = hex::decode(hex_sig).map_err(|_| "the signature is not hexadecimal")?;
    if hmac_ok(secret, body, &sig) {
        Ok(())
    } else {
        Err("the signature does not match the body")
    }
}

/// Checks the sender by the provider's rule; why not, if not.
fn check_signature(
    provider: Provider,
    secret: &[u8],
    req: &Request,
    body: &[u8],
) -> Result<(), &'static str> {
    match provider {
        Provider::Github => check_hub_signature(secret, body, header(req, "x-hub-signature-256")),
        Provider::Generic => {
            check_hub_signature(secret, body, header(req, "x-hippo-signature-256"))
        }
        Provider::Gitlab => {
            let given = header(req, "x-gitlab-token");
            if given.is_empty() {
                return Err("X-Gitlab-Token is missing");
            }
            if same_secret(given.as_bytes(), secret) {
                Ok(())
            } else {
                Err("X-Gitlab-Token does not match the secret")
            }
        }
        Provider::Gitee => {
            let given = header(req, "x-gitee-token");
            if given.is_empty() {
                return Err("X-Gitee-Token is missing");
            }
            let timestamp = header(req, "x-gitee-timestamp");
            // Signature mode: base64(HMAC-SHA256(secret, timestamp + "\n" + secret)), the
            // timestamp (ms) within an hour; otherwise the password mode: the secret itself.
            if !timestamp.is_empty() {
                let ts: i64 = timestamp
                    .parse()
                    .map_err(|_| "X-Gitee-Timestamp is not a number")?;
                let now = chrono::Utc::now().timestamp_millis();
                let sig = base64::engine::general_purpose::STANDARD
                    .decode(given)
                    .unwrap_or_default();
                let mut msg = timestamp.as_bytes().to_vec();
                msg.push(b'\n');
                msg.extend_from_slice(secret);
                if hmac_ok(secret, &msg, &sig) {
                    if (now - ts).abs() > 3_600_000 {
                        return Err("X-Gitee-Timestamp is more than an hour away");
                    }
                    return Ok(());
                }
            }
            if same_secret(given.as_bytes(), secret) {
                Ok(())
            } else {
                Err("X-Gitee-Token matches neither the password nor the signature")
            }
        }
    }
}

/// A push or tag event, as read from a provider's payload.
struct Push {
    event: String,
    /// `Some((kind, name))` for refs/heads/… and refs/tags/…
    target: Option<(RuleKind, String)>,
    /// The pushed commit; `None` when the ref was deleted.
    commit: Option<String>,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn target_of(full_ref: &str) -> Option<(RuleKind, String)> {
    if let Some(b) = full_ref.strip_prefix("refs/heads/") {
        Some((RuleKind::Branch, b.to_owned()))
    } else {
        full_ref
            .strip_prefix("refs/tags/")
            .map(|t| (RuleKind::Tag, t.to_owned()))
    }
}

fn zero_or_empty(sha: &str) -> bool {
    sha.is_empty() || sha.chars().all(|c| c == '0')
}

/// Reads the event; `Err(reason)` for an event that is not a push (ignored).
fn read_push(provider: Provider, req: &Request, v: &Value) -> Result<Push, String> {
    match provider {
        Provider::Github => {
            let event = header(req, "x-github-event").to_owned();
            if event != "push" {
                return Err(format!("event `{event}` is not a push"));
            }
            let after = s(v, "after");
            let deleted = v.get("deleted").and_then(Value::as_bool).unwrap_or(false);
            Ok(Push {
                event,
                target: target_of(&s(v, "ref")),
                commit: (!deleted && !zero_or_empty(&after)).then_some(after),
            })
        }
        Provider::Gitlab | Provider::Gitee => {
            let name = if provider == Provider::Gitlab {
                "x-gitlab-event"
            } else {
                "x-gitee-event"
            };
            let event = header(req, name).to_owned();
            if event != "Push Hook" && event != "Tag Push Hook" {
                return Err(format!("event `{event}` is not a push"));
            }
            let sha = v
                .get("checkout_sha")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| s(v, "after"));
            let deleted = v.get("deleted").and_then(Value::as_bool).unwrap_or(false);
            Ok(Push {
                event,
                target: target_of(&s(v, "ref")),
                commit: (!deleted && !zero_or_empty(&s(v, "after")) && !zero_or_empty(&sha))
                    .then_some(sha),
            })
        }
        Provider::Generic => {
            let commit = s(v, "commit");
            let target = match (s(v, "branch"), s(v, "tag")) {
                (b, t) if !b.is_empty() && t.is_empty() => Some((RuleKind::Branch, b)),
                (b, t) if b.is_empty() && !t.is_empty() => Some((RuleKind::Tag, t)),
                _ => None,
            };
            Ok(Push {
                event: "push".into(),
                target,
                commit: (!zero_or_empty(&commit)).then_some(commit),
            })
        }
    }
}

fn delivery_id(provider: Provider, req: &Request, body: &[u8]) -> String {
    let given = match provider {
        Provider::Github => header(req, "x-github-delivery"),
        Provider::Gitlab => match header(req, "x-gitlab-event-uuid") {
            "" => header(req, "idempotency-key"),
            u => u,
        },
        Provider::Gitee => header(req, "x-gitee-delivery"),
        Provider::Generic => header(req, "x-hippo-delivery"),
    };
    if given.is_empty() || given.len() > 200 || given.chars().any(char::is_control) {
        hex::encode(Sha256::digest(body))
    } else {
        given.to_owned()
    }
}

fn event_name(provider: Provider, req: &Request) -> String {
    let name = match provider {
        Provider::Github => "x-github-event",
        Provider::Gitlab => "x-gitlab-event",
        Provider::Gitee => "x-gitee-event",
        Provider::Generic => "x-hippo-event",
    };
    header(req, name).chars().take(100).collect()
}

#[derive(Default)]
pub struct WebhooksApi;

#[OpenApi(prefix_path = "/api/release-configs", tag = "ApiTags::ReleaseConfigs")]
impl WebhooksApi {
    /// The config's Git webhook (its URL and secret are only shown when created or rotated).
    #[oai(path = "/:id/webhook", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<WebhookOut>, { AUTH | NOT_FOUND }> {
        visible(&st, &auth, id.0).await?;
        Ok(Json(out(st.db.get_webhook(id.0).await?, None)))
    }

    /// Set the config's Git webhook: provider, branch or tag rule, auto-run. Creating it
    /// answers its URL path and secret, once; changing it keeps them.
    #[oai(path = "/:id/webhook", method = "put", operation_id = "setWebhook")]
    async fn set(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
        body: JsonBody<WebhookIn>,
    ) -> ApiResult<Json<WebhookOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        editable(&st, &auth, id.0).await?;
        let pattern = body.pattern.trim();
        if pattern.is_empty() {
            return Err(ApiError::invalid("pattern", "pattern must not be blank").into());
        }
        let settings = WebhookSettings {
            provider: body.provider,
            rule_kind: body.rule_kind,
            pattern,
            auto_run: body.auto_run,
        };
        let changes = serde_json::json!({"webhook": {
            "provider": body.provider.as_str(), "rule_kind": body.rule_kind.as_str(),
            "pattern": pattern, "auto_run": body.auto_run,
        }});
        let answer = match st.db.get_webhook(id.0).await {
            Ok(_) => out(st.db.update_webhook(id.0, &settings).await?, None),
            Err(DbError::NotFound(_)) => {
                let (token, hash, secret, sealed) = new_credentials(&st);
                let w = st.db.create_webhook(id.0, &settings, &hash, sealed).await?;
                out(w, Some((token, secret)))
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        audit::record(&st, &auth.0, "config", Some(id.0), "update", changes).await;
        Ok(Json(answer))
    }

    /// A new URL and secret for the config's webhook (shown once); the old ones stop working.
    #[oai(
        path = "/:id/webhook/rotate",
        method = "post",
        operation_id = "rotateWebhook"
    )]
    async fn rotate(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<WebhookOut>, { AUTH | FORBIDDEN | NOT_FOUND }> {
        editable(&st, &auth, id.0).await?;
        let (token, hash, secret, sealed) = new_credentials(&st);
        let w = st.db.rotate_webhook(id.0, &hash, sealed).await?;
        let changes = serde_json::json!({"webhook": "rotated"});
        audit::record(&st, &auth.0, "config", Some(id.0), "update", changes).await;
        Ok(Json(out(w, Some((token, secret)))))
    }

    /// Remove the config's webhook (its URL stops working; its deliveries are forgotten).
    #[oai(
        path = "/:id/webhook",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND }> {
        editable(&st, &auth, id.0).await?;
        st.db.delete_webhook(id.0).await?;
        let changes = serde_json::json!({"webhook": "removed"});
        audit::record(&st, &auth.0, "config", Some(id.0), "update", changes).await;
        Ok(Deleted::Ok)
    }

    /// The webhook's deliveries, newest first (the last 200 are kept): accepted (with the
    /// release requested), ignored and why, refused (bad signature or payload).
    #[oai(
        path = "/:id/webhook/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<ConfigId>,
    ) -> ApiResult<Json<Vec<DeliveryOut>>, { AUTH | NOT_FOUND }> {
        visible(&st, &auth, id.0).await?;
        let list = st
            .db
            .deliveries(id.0, hippo_shared::db::webhooks::DELIVERIES_KEPT)
            .await?;
        Ok(Json(
            list.into_iter()
                .map(|d| DeliveryOut {
                    id: d.id,
                    delivery_id: d.delivery_id,
                    provider: d.provider,
                    event: d.event,
                    outcome: d.outcome,
                    reason: d.reason,
                    ref_name: d.ref_name,
                    commit_id: d.commit_id,
                    release_id: d.release_id,
                    received_at: d.received_at.into(),
                })
                .collect(),
        ))
    }
}

#[derive(Default)]
pub struct GitHooksApi;

#[OpenApi(prefix_path = "/api/hooks/git", tag = "ApiTags::Git")]
impl GitHooksApi {
    /// Receive a Git provider's webhook (no bearer token: the URL's token names the config,
    /// the provider's signature proves the sender; 401 and recorded if it does not). A push to
    /// a matching branch, or a matching tag, becomes a release request of that commit by
    /// `webhook` (review applies; with review off and auto-run on it is queued). The same
    /// delivery again, other refs, deleted refs and other events are ignored (200, recorded
    /// with the reason).
    #[oai(path = "/:token", method = "post", operation_id = "receiveGitWebhook")]
    async fn receive(
        &self,
        req: &Request,
        st: Data<&Arc<State>>,
        /// The token of the hook's URL.
        #[oai(validator(max_length = 100))]
        token: Path<String>,
        body: RawJson,
    ) -> ApiResult<Json<DeliveryAnswer>, { AUTH | BODY | NOT_FOUND | UPSTREAM | UNAVAILABLE }> {
        let hash = hippo_shared::crypto::token_hash(&token.0);
        let hook = match st.db.webhook_by_token(&hash).await {
            Ok(h) => h,
            Err(DbError::NotFound(_)) => {
                return Err(ApiError::not_found("webhook").into());
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        let provider = hook.provider;
        let id = delivery_id(provider, req, &body.bytes);
        let event = event_name(provider, req);
        let mut delivery = NewDelivery {
            delivery_id: &id,
            provider,
            event: &event,
            ref_name: "",
            commit_id: "",
        };
        let secret = st.master.open(&hook.secret).map_err(ApiError::internal)?;
        if let Err(why) = check_signature(provider, &secret, req, &body.bytes) {
            let reason = format!("bad signature: {why}");
            st.db
                .record_delivery(hook.config_id, &delivery, Outcome::Refused, &reason)
                .await?;
            return Err(ApiError::Unauthorized(p("bad_signature", reason, None)).into());
        }
        let answer = |outcome, reason: String, release_id| {
            Ok(Json(DeliveryAnswer {
                outcome,
                reason,
                release_id,
            }))
        };
        let push = match read_push(provider, req, &body.value) {
            Ok(p) => p,
            Err(reason) => {
                st.db
                    .record_delivery(hook.config_id, &delivery, Outcome::Ignored, &reason)
                    .await?;
                return answer(Outcome::Ignored, reason, None);
            }
        };
        let (kind, name) = push
            .target
            .clone()
            .unwrap_or((RuleKind::Branch, String::new()));
        let commit = push.commit.clone().unwrap_or_default();
        delivery.event = &push.event;
        delivery.ref_name = &name;
        delivery.commit_id = &commit;
        let ignored = if push.target.is_none() {
            Some("the payload names no branch or tag".to_owned())
        } else if push.commit.is_none() {
            Some(format!("{} {name} was deleted", kind.as_str()))
        } else if kind != hook.rule_kind {
            Some(format!(
                "a {} push; this hook releases {}s",
                kind.as_str(),
                hook.rule_kind.as_str()
            ))
        } else if !glob_match(&hook.pattern, &name) {
            Some(format!(
                "{} {name} does not match `{}`",
                kind.as_str(),
                hook.pattern
            ))
        } else {
            None
        };
        if let Some(reason) = ignored {
            st.db
                .record_delivery(hook.config_id, &delivery, Outcome::Ignored, &reason)
                .await?;
            return answer(Outcome::Ignored, reason, None);
        }
        // Claimed before the release is requested: the same delivery arriving twice at once
        // requests one release (the unique index on accepted delivery ids).
        let row = match st
            .db
            .record_delivery(hook.config_id, &delivery, Outcome::Accepted, "requesting")
            .await
        {
            Ok(row) => row,
            Err(DbError::Conflict(_)) => {
                let reason = format!("delivery {id} was already accepted");
                st.db
                    .record_delivery(hook.config_id, &delivery, Outcome::Ignored, &reason)
                    .await?;
                return answer(Outcome::Ignored, reason, None);
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        let config = st.db.get_config(hook.config_id).await?;
        let user = st.db.webhook_user().await?;
        let actor = Actor::user(user, "webhook");
        let short: String = commit.chars().take(7).collect();
        let title: String = format!("{} {name} at {short}", provider.as_str())
            .chars()
            .take(100)
            .collect();
        let (branch, tag, at) = match kind {
            RuleKind::Branch => (Some(name.clone()), None, Some(commit.clone())),
            RuleKind::Tag => (None, Some(name.clone()), None),
        };
        let release =
            match releases::request_ref(&st, config, title, branch, tag, at, &actor, user).await {
                Ok(r) => r,
                Err(e) => {
                    // Released from the claim: the provider's retry may succeed.
                    let reason = format!("could not request a release: {}", e.message());
                    st.db
                        .finish_delivery(row, Outcome::Refused, &reason, None)
                        .await?;
                    return Err(e.into());
                }
            };
        let mut reason = format!("release {} requested ({})", release.id, release.status);
        if hook.auto_run && release.status == ReleaseStatus::Approved {
            match releases::queue_run(&st, &release, &actor).await {
                Ok(()) => reason = format!("release {} requested and queued", release.id),
                Err(e) => reason = format!("{reason}; could not queue it: {}", e.message()),
            }
        }
        st.db
            .finish_delivery(row, Outcome::Accepted, &reason, Some(release.id))
            .await?;
        answer(Outcome::Accepted, reason, Some(release.id))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn globs_match_names_and_stars_stop_at_slashes() {
        assert!(glob_match("main", "main"));
        assert!(!glob_match("main", "main2"));
        assert!(glob_match("release/*", "release/1.2"));
        assert!(!glob_match("release/*", "release/1/2"));
        assert!(glob_match("release/**", "release/1/2"));
        assert!(glob_match("v*", "v1.0"));
        assert!(glob_match("v?.?", "v1.0"));
        assert!(!glob_match("v?.?", "v10.0"));
        assert!(glob_match("*", "feature"));
        assert!(!glob_match("*", "feature/x"));
    }

    #[test]
    fn hub_signatures_are_checked_against_the_body() {
        let made_up = format!("sha256={}", "ab".repeat(32));
        assert!(check_hub_signature(b"secret", br#"{"a":1}"#, &made_up).is_err());
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(br#"{"a":1}"#);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(check_hub_signature(b"secret", br#"{"a":1}"#, &good).is_ok());
        assert!(check_hub_signature(b"secret", br#"{"a":2}"#, &good).is_err());
        assert!(check_hub_signature(b"secret", b"", "md5=00").is_err());
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"abc"));
    }
}
