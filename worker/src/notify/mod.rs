//! Stage 6: notices — telling people what happened to a release.
//!
//! A [`Notice`] is a plain value (kind, app, environment, release, ref/commit, version, who
//! requested, who acted and their comment, failed hosts with reasons, a link). A [`Channel`] is
//! one configured destination (serde, tagged by `"type"`); [`send`] delivers one notice once,
//! [`deliver`] retries with backoff and returns every [`Attempt`] for storing on the release.
//!
//! | `type` | where | how it is signed / authenticated | success |
//! |---|---|---|---|
//! | `dingtalk` | DingTalk custom robot, markdown | `timestamp` (ms) + `sign = urlencode(base64(HMAC-SHA256(key = secret, timestamp + "\n" + secret)))` in the query | `errcode == 0` |
//! | `wecom` | WeCom group robot, markdown (≤ 4096 bytes) | none: the `key` in the URL is the credential | `errcode == 0` |
//! | `feishu` | Feishu/Lark custom bot, `post` or `text` | optional: `timestamp` (s) + `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, msg = ""))` in the body | `code == 0` (or `StatusCode == 0`) |
//! | `webhook` | any URL, the notice as JSON | `X-Hippo-Timestamp` + `X-Hippo-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))` | any 2xx |
//! | `email` | SMTP (lettre): `tls`, `starttls` or `plain` | SMTP AUTH when a username is set | 2xx SMTP reply to DATA |
//! | `sms` | Alibaba Cloud `SendSms` (2017-05-25) | RPC signature V2, HMAC-SHA1 (see [`sms`]) | `Code == "OK"` |
//!
//! Notes for the next engineer:
//! - **Secrets**: each channel type declares its secret fields once (`SECRET_FIELDS`, a list of
//!   [`SecretField`]s: a value shown as `***`, or a URL carrying a token shown as
//!   `scheme://host/***`); [`Channel::secret_fields`] dispatches to them. Redaction in API
//!   answers ([`Channel::redacted`]) and the scrubbing of every error message before it leaves
//!   [`send`] (so of events and logs) follow that declaration, never field names. A new channel
//!   must declare its secrets (and join the tests' `channels()` list, which checks that every
//!   secret value is declared). The fields themselves are [`Secret`]s (`shared::secret`): `Debug`
//!   prints `Secret(***)`, errors never contain URLs (reqwest's are stripped). A `Channel`
//!   *serializes with its secrets* (that is how it is stored, sealed).
//! - **Bounded time**: every send is capped at [`SendOptions::timeout`] (connect and whole
//!   exchange; default 10 s), so [`deliver`] takes at most
//!   [`RetryPolicy::worst_case`] = attempts × timeout + the backoff sleeps (defaults: 3 × 10 s +
//!   1 s + 4 s). Run it off the release's path (spawned task or a notice job) so a slow provider
//!   never delays a release. Configuration errors are not retried.
//! - **TLS**: reqwest is built with `rustls-no-provider`; `http::ensure_crypto_provider`
//!   installs ring's rustls provider process-wide on first use (if none is installed yet).
//!   lettre uses ring explicitly. Redirects are not followed (3xx is a failure).
//! - **Where notices may go** (SSRF guard, `shared::net`): every send resolves the channel's
//!   host and refuses loopback, private, link-local (169.254.169.254), unique-local,
//!   unspecified, multicast… addresses, in any spelling, unless `SendOptions::addresses`
//!   (`HIPPO_INTERNAL_ALLOWLIST`) allows them; it then connects to exactly the checked address.
//!   A refusal is recorded like any failure and not retried.
//! - **What readers see**: an attempt's `error` is [`NoticeError::summary`] (kind, HTTP status,
//!   provider code); the answer's words are only in `detail`, for administrators.
//! - **Tests**: unit tests next to each channel check the signatures against vectors computed
//!   independently; `worker/tests/notify_channels.rs` runs every channel against local
//!   listeners that verify the signatures as the providers do.
//! - [`run`] is the runner's notify stage; [`dispatch`] reads a config's sealed channels,
//!   builds the notice, delivers it in the background and stores every attempt.
pub mod dingtalk;
pub mod dispatch; // release → notice → every channel of its config, attempts stored
pub mod email;
pub mod feishu;
pub mod http;
pub mod notice;
pub mod sms;
pub mod webhook;
pub mod wecom;

pub use dingtalk::DingTalk;
pub use email::{Email, SmtpSecurity};
pub use feishu::{Feishu, FeishuMsgType};
pub use hippo_shared::secret::Secret;
pub use notice::{FailedHost, Named, Notice, NoticeKind};
pub use sms::Sms;
pub use webhook::Webhook;
pub use wecom::WeCom;

use crate::context::Run;
use futures::FutureExt;
use hippo_shared::events::Stage;
pub use hippo_shared::net::AddressPolicy;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The runner's notify stage: the release's outcome goes out on every channel of its config,
/// in the background (see [`dispatch`]); the event says how many.
/// `failure`: why the run failed (`None`: it succeeded); `cancelled_by`: who stopped it, when a
/// cancel did (the notice is then `cancelled`, with them as its actor, not `failed`).
pub async fn run(
    deps: &std::sync::Arc<crate::context::Deps>,
    run: &Run,
    failure: Option<String>,
    cancelled_by: Option<String>,
) {
    let end = match (&failure, &cancelled_by) {
        (None, _) => dispatch::RunEnd::Succeeded,
        (Some(_), Some(_)) => dispatch::RunEnd::Cancelled,
        (Some(_), None) => dispatch::RunEnd::Failed,
    };
    let kind = dispatch::end_kind(&run.release, end);
    let actor = cancelled_by.filter(|_| end == dispatch::RunEnd::Cancelled);
    let n = dispatch::dispatch(deps, &run.release, kind, actor, failure).await;
    if n > 0 {
        run.events.info(
            Stage::Notify,
            format!("notice '{}' going out on {n} channel(s)", kind.as_str()),
        );
    }
}

/// One configured destination. JSON: `{"type": "dingtalk", "webhook_url": "…", "secret": "…"}`.
/// "Off" is the absence of a channel (`Option<Channel>` at the caller).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Channel {
    #[serde(rename = "dingtalk")]
    DingTalk(DingTalk),
    #[serde(rename = "wecom")]
    WeCom(WeCom),
    Feishu(Feishu),
    Webhook(Webhook),
    Email(Email),
    Sms(Sms),
}

impl Channel {
    /// The `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::DingTalk(_) => "dingtalk",
            Channel::WeCom(_) => "wecom",
            Channel::Feishu(_) => "feishu",
            Channel::Webhook(_) => "webhook",
            Channel::Email(_) => "email",
            Channel::Sms(_) => "sms",
        }
    }

    /// Checks the configuration without sending (URLs are http/https, addresses parse, required
    /// values are there). Call it when a config is saved.
    pub fn validate(&self) -> Result<(), NoticeError> {
        let result = match self {
            Channel::DingTalk(c) => c.validate(),
            Channel::WeCom(c) => c.validate(),
            Channel::Feishu(c) => c.validate(),
            Channel::Webhook(c) => c.validate(),
            Channel::Email(c) => c.validate(),
            Channel::Sms(c) => c.validate(),
        };
        result.map_err(|e| e.scrub(&self.secret_values()))
    }

    /// Which of this channel's fields are secret: each channel type declares them once
    /// (`SECRET_FIELDS` beside its struct), and redaction in API answers, the scrubbing of
    /// errors, events and logs all follow that declaration, not field names.
    pub fn secret_fields(&self) -> &'static [SecretField] {
        match self {
            Channel::DingTalk(_) => DingTalk::SECRET_FIELDS,
            Channel::WeCom(_) => WeCom::SECRET_FIELDS,
            Channel::Feishu(_) => Feishu::SECRET_FIELDS,
            Channel::Webhook(_) => Webhook::SECRET_FIELDS,
            Channel::Email(_) => Email::SECRET_FIELDS,
            Channel::Sms(_) => Sms::SECRET_FIELDS,
        }
    }

    /// The declared secret fields that are set, with their values.
    fn secrets(&self) -> Vec<(SecretField, String)> {
        let stored = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        self.secret_fields()
            .iter()
            .filter_map(|f| {
                let v = stored.get(f.name())?.as_str()?;
                Some((*f, v.to_string()))
            })
            .collect()
    }

    /// The config as JSON for API answers: the declared secrets replaced by `"***"` (`null`
    /// stays `null`: unset), secret URLs reduced to `scheme://host[:port]/***`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            for field in self.secret_fields() {
                let Some(v) = map.get_mut(field.name()) else {
                    continue;
                };
                if v.is_null() {
                    continue;
                }
                *v = match field {
                    SecretField::Value(_) => "***".into(),
                    SecretField::Url(_) => http::redact_url(v.as_str().unwrap_or_default()).into(),
                };
            }
        }
        value
    }

    /// Every value that must not appear in an error message or a log line: the declared
    /// secrets, the secret URLs and the tokens inside them (query values and path segments of
    /// 8+ characters).
    fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (field, value) in self.secrets() {
            match field {
                SecretField::Value(_) => {
                    // Declared secrets whatever their length (≥ 4 characters, so that a test
                    // secret like `abc` does not mangle every message).
                    if value.chars().count() >= 4 {
                        out.push(value);
                    }
                }
                SecretField::Url(_) => {
                    let mut parts = vec![value.clone()];
                    if let Ok(u) = url::Url::parse(value.trim()) {
                        parts.extend(u.query_pairs().map(|(_, v)| v.into_owned()));
                        if let Some(segments) = u.path_segments() {
                            parts.extend(segments.map(str::to_string));
                        }
                    }
                    // URL parts only from 8 characters on.
                    out.extend(parts.into_iter().filter(|s| s.chars().count() >= 8));
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }
}

/// A secret field of a channel, by its name in the channel's JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretField {
    /// A secret value (key, password): shown as `***`.
    Value(&'static str),
    /// A URL whose path or query carries a token: shown as `scheme://host[:port]/***`.
    Url(&'static str),
}

impl SecretField {
    pub fn name(self) -> &'static str {
        match self {
            Self::Value(n) | Self::Url(n) => n,
        }
    }
}

/// How one send behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOptions {
    /// Cap on connecting and on the whole exchange (HTTP request and answer, SMTP session).
    pub timeout: Duration,
    pub user_agent: String,
    /// Where a notice may go: public addresses, plus what the allow-list names
    /// (`HIPPO_INTERNAL_ALLOWLIST`). Checked at every send, after resolving.
    pub addresses: AddressPolicy,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            user_agent: format!("hippo-notify/{}", env!("CARGO_PKG_VERSION")),
            addresses: AddressPolicy::default(),
        }
    }
}

/// How [`deliver`] retries: `attempts` sends at most, sleeping `first_delay`, then
/// `first_delay × multiplier`, … (capped at `max_delay`) between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub multiplier: u32,
    pub max_delay: Duration,
    pub send: SendOptions,
}

impl Default for RetryPolicy {
    /// 3 attempts, 1 s then 4 s between them, 10 s timeout each.
    fn default() -> Self {
        Self {
            attempts: 3,
            first_delay: Duration::from_secs(1),
            multiplier: 4,
            max_delay: Duration::from_secs(60),
            send: SendOptions::default(),
        }
    }
}

impl RetryPolicy {
    /// The sleep after failed attempt `n` (1-based).
    pub fn delay_after(&self, n: u32) -> Duration {
        let factor = self.multiplier.max(1).saturating_pow(n.saturating_sub(1));
        self.first_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The longest [`deliver`] can take: every attempt timing out, every sleep taken.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.attempts.max(1);
        let sends = self.send.timeout.saturating_mul(attempts);
        (1..attempts).fold(sends, |acc, n| acc.saturating_add(self.delay_after(n)))
    }
}

/// A successful send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub http_status: Option<u16>,
    /// What the provider said (e.g. `ok`, an SMS `BizId`, the SMTP queue id line).
    pub detail: Option<String>,
}

/// One try of a delivery, as stored on the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: u64,
    pub ok: bool,
    /// Why it failed, for every reader: the kind, the HTTP status, a provider's error code.
    /// Never a secret, never what the other side answered.
    pub error: Option<String>,
    /// For administrators only: a short, truncated quote of the other side's answer.
    #[serde(default)]
    pub detail: Option<String>,
    pub http_status: Option<u16>,
}

/// Why a send failed. Messages never carry URLs or secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("invalid channel configuration: {0}")]
    Config(String),
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("{provider} refused it (HTTP {status}, code {code}): {message}")]
    Provider {
        provider: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer (HTTP {status}): {detail}")]
    BadResponse { status: u16, detail: String },
    /// `summary`: what kind of failure and the reply code; `detail`: the server's words.
    #[error("SMTP: {summary}: {detail}")]
    Smtp { summary: String, detail: String },
    /// The destination is not allowed (SSRF guard): loopback, private, link-local….
    #[error("{0}")]
    Refused(String),
}

impl NoticeError {
    pub fn http_status(&self) -> Option<u16> {
        match self {
            NoticeError::Http { status, .. }
            | NoticeError::Provider { status, .. }
            | NoticeError::BadResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A configuration error (or a refused destination) fails the same way every time:
    /// [`deliver`] does not retry it.
    pub fn is_permanent(&self) -> bool {
        matches!(self, NoticeError::Config(_) | NoticeError::Refused(_))
    }

    /// What every reader of a release may see: the kind of failure, the HTTP status and a
    /// provider's short error code, never the body of an answer (a notice URL can point at a
    /// service that is not a chat robot; its answer must not be readable through Hippo).
    pub fn summary(&self) -> String {
        match self {
            NoticeError::Http { status, .. } => format!("HTTP {status}"),
            NoticeError::Provider {
                provider,
                status,
                code,
                ..
            } => format!(
                "{provider} refused it (HTTP {status}, code {})",
                short_code(code)
            ),
            NoticeError::BadResponse { status, .. } => {
                format!("unexpected answer (HTTP {status})")
            }
            NoticeError::Smtp { summary, .. } => format!("SMTP: {summary}"),
            other => other.to_string(),
        }
    }

    /// For administrators: what the other side said, single line, at most 200 characters.
    pub fn detail(&self) -> Option<String> {
        let said = match self {
            NoticeError::Http { body, .. } => body,
            NoticeError::Provider { message, .. } => message,
            NoticeError::BadResponse { detail, .. } => detail,
            NoticeError::Smtp { detail, .. } => detail,
            _ => return None,
        };
        let said = notice::truncate_chars(&notice::one_line(said), 200);
        (!said.is_empty()).then_some(said)
    }

    /// Replaces every occurrence of the given values with `***`.
    fn scrub(self, secrets: &[String]) -> Self {
        let clean = |mut s: String| {
            for secret in secrets.iter().filter(|s| !s.is_empty()) {
                if s.contains(secret.as_str()) {
                    s = s.replace(secret.as_str(), "***");
                }
            }
            s
        };
        match self {
            NoticeError::Config(m) => NoticeError::Config(clean(m)),
            NoticeError::Timeout(d) => NoticeError::Timeout(d),
            NoticeError::Transport(m) => NoticeError::Transport(clean(m)),
            NoticeError::Http { status, body } => NoticeError::Http {
                status,
                body: clean(body),
            },
            NoticeError::Provider {
                provider,
                status,
                code,
                message,
            } => NoticeError::Provider {
                provider,
                status,
                code: clean(code),
                message: clean(message),
            },
            NoticeError::BadResponse { status, detail } => NoticeError::BadResponse {
                status,
                detail: clean(detail),
            },
            NoticeError::Smtp { summary, detail } => NoticeError::Smtp {
                summary: clean(summary),
                detail: clean(detail),
            },
            NoticeError::Refused(m) => NoticeError::Refused(clean(m)),
        }
    }
}

/// A provider's error code as shown to everyone: letters, digits and `._:-`, at most 64.
fn short_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        .take(64)
        .collect()
}

/// Sends `notice` once through `channel`, within `opts.timeout` (a hard cap on the whole send).
pub async fn send(
    channel: &Channel,
    notice: &Notice,
    opts: &SendOptions,
) -> Result<Delivered, NoticeError> {
    let work = async {
        match channel {
            Channel::DingTalk(c) => c.send(notice, opts).await,
            Channel::WeCom(c) => c.send(notice, opts).await,
            Channel::Feishu(c) => c.send(notice, opts).await,
            Channel::Webhook(c) => c.send(notice, opts).await,
            Channel::Email(c) => c.send(notice, opts).await,
            Channel::Sms(c) => c.send(notice, opts).await,
        }
    };
    let result = match tokio::time::timeout(opts.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(NoticeError::Timeout(opts.timeout)),
    };
    result.map_err(|e| e.scrub(&channel.secret_values()))
}

/// Sends with retries: up to `policy.attempts` tries with exponential backoff between failures,
/// stopping at the first success or at a configuration error. Returns every attempt. Never
/// panics (a panic inside a sender is recorded as a failed attempt) and returns within
/// [`RetryPolicy::worst_case`].
pub async fn deliver(channel: &Channel, notice: &Notice, policy: &RetryPolicy) -> Vec<Attempt> {
    let attempts = policy.attempts.max(1);
    let mut out = Vec::with_capacity(attempts as usize);
    for number in 1..=attempts {
        let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let clock = Instant::now();
        let result = std::panic::AssertUnwindSafe(send(channel, notice, &policy.send))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(NoticeError::Transport("sender panicked".into())));
        let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(delivered) => {
                tracing::info!(
                    channel = channel.kind(),
                    kind = notice.kind.as_str(),
                    release_id = %notice.release_id,
                    attempt = number,
                    duration_ms,
                    "notice delivered"
                );
                out.push(Attempt {
                    number,
                    started_at,
                    duration_ms,
                    ok: true,
                    error: None,
                    detail: None,
                    http_status: delivered.http_status,
                });
                break;
            }
            Err(e) => {
                let last = number == attempts || e.is_permanent();
                tracing::warn!(
                    channel = channel.kind(),
                    kind = notice.kind.as_str(),
                    release_id = %notice.release_id,
                    attempt = number,
                    duration_ms,
                    error = %e,
                    retry = !last,
                    "notice not delivered"
                );
                out.push(Attempt {
                    number,
                    started_at,
                    duration_ms,
                    ok: false,
                    error: Some(e.summary()),
                    detail: e.detail(),
                    http_status: e.http_status(),
                });
                if last {
                    break;
                }
                tokio::time::sleep(policy.delay_after(number)).await;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn channels() -> Vec<Channel> {
        vec![
            Channel::DingTalk(DingTalk {
                webhook_url: Secret::new(
                    "https://oapi.dingtalk.com/robot/send?access_token=tok-1234567890",
                ),
                secret: Secret::new("SEC-ding-secret"),
            }),
            Channel::WeCom(WeCom {
                webhook_url: Secret::new(
                    "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key-123",
                ),
            }),
            Channel::Feishu(Feishu {
                webhook_url: Secret::new(
                    "https://open.feishu.cn/open-apis/bot/v2/hook/feishu-hook-token",
                ),
                secret: Some(Secret::new("feishu-secret")),
                msg_type: FeishuMsgType::Post,
            }),
            Channel::Webhook(Webhook {
                url: Secret::new("https://hooks.example.com/in/hook-token-xyz"),
                secret: Secret::new("webhook-secret"),
            }),
            Channel::Email(Email {
                host: "smtp.example.com".into(),
                port: Some(2525),
                security: SmtpSecurity::Plain,
                username: Some("mailer".into()),
                password: Some(Secret::new("smtp-password")),
                from: "hippo@example.com".into(),
                to: vec!["ops@example.com".into()],
            }),
            Channel::Sms(Sms {
                endpoint: sms::DEFAULT_ENDPOINT.into(),
                access_key_id: "LTAI-id".into(),
                access_key_secret: Secret::new("aliyun-secret"),
                sign_name: "Hippo".into(),
                template_code: "SMS_1".into(),
                phone_numbers: vec!["13800000000".into()],
            }),
        ]
    }

    const SECRETS: [&str; 9] = [
        "tok-1234567890",
        "SEC-ding-secret",
        "wecom-key-123",
        "feishu-hook-token",
        "feishu-secret",
        "hook-token-xyz",
        "webhook-secret",
        "smtp-password",
        "aliyun-secret",
    ];

    #[test]
    fn debug_and_redacted_json_hide_secrets() {
        for channel in channels() {
            let debug = format!("{channel:?}");
            let redacted = channel.redacted().to_string();
            for secret in SECRETS {
                assert!(!debug.contains(secret), "{secret} in {debug}");
                assert!(!redacted.contains(secret), "{secret} in {redacted}");
            }
            assert_eq!(channel.redacted()["type"], channel.kind());
            assert!(channel.validate().is_ok(), "{debug}");
        }
        let dt = channels()[0].redacted();
        assert_eq!(dt["webhook_url"], "https://oapi.dingtalk.com/***");
        assert_eq!(dt["secret"], "***");
    }

    /// Every channel type declares its secrets, and the declaration is what redaction follows:
    /// each declared field exists, is hidden in the API's JSON and scrubbed from errors, and
    /// every secret value a channel holds is declared (a new channel whose secret is called
    /// `token` would fail here until it declares it).
    #[test]
    fn every_channel_declares_its_secret_fields_and_redaction_follows_them() {
        let all = channels();
        let mut kinds: Vec<&str> = all.iter().map(Channel::kind).collect();
        kinds.dedup();
        assert_eq!(kinds.len(), 6, "every channel type is in channels()");
        for channel in all {
            let stored = serde_json::to_value(&channel).unwrap();
            let redacted = channel.redacted();
            let declared = channel.secret_fields();
            assert!(
                !declared.is_empty(),
                "{} declares no secret",
                channel.kind()
            );
            for field in declared {
                let value = stored[field.name()].as_str().unwrap_or_else(|| {
                    panic!("{}: declared {} is not set", channel.kind(), field.name())
                });
                assert_ne!(redacted[field.name()], value, "{} shown", field.name());
                let scrubbed = NoticeError::Config(format!("failed with {value}"))
                    .scrub(&channel.secret_values())
                    .to_string();
                assert!(!scrubbed.contains(value), "{scrubbed}");
            }
            for (key, value) in stored.as_object().unwrap() {
                let text = value.to_string();
                if SECRETS.iter().any(|s| text.contains(s)) {
                    assert!(
                        declared.iter().any(|f| f.name() == key),
                        "{}: `{key}` holds a secret but is not declared",
                        channel.kind()
                    );
                }
            }
        }
    }

    #[test]
    fn serde_round_trip_tagged_by_type() {
        for channel in channels() {
            let json = serde_json::to_string(&channel).unwrap();
            let back: Channel = serde_json::from_str(&json).unwrap();
            assert_eq!(back, channel);
        }
        let parsed: Channel = serde_json::from_str(
            r#"{"type":"sms","access_key_id":"id","access_key_secret":"s","sign_name":"n",
                "template_code":"SMS_1","phone_numbers":["1"]}"#,
        )
        .unwrap();
        match parsed {
            Channel::Sms(s) => assert_eq!(s.endpoint, sms::DEFAULT_ENDPOINT),
            other => panic!("{other:?}"),
        }
        let parsed: Channel =
            serde_json::from_str(r#"{"type":"feishu","webhook_url":"https://f/x"}"#).unwrap();
        assert!(matches!(
            parsed,
            Channel::Feishu(Feishu {
                secret: None,
                msg_type: FeishuMsgType::Post,
                ..
            })
        ));
        assert!(
            serde_json::from_str::<Channel>(r#"{"type":"wecom","webhook_url":"x","typo":1}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Channel>(r#"{"type":"pager"}"#).is_err());
    }

    #[test]
    fn bad_urls_are_config_errors_without_the_url() {
        let c = Channel::WeCom(WeCom {
            webhook_url: Secret::new("ftp://qyapi.weixin.qq.com/send?key=wecom-key-123"),
        });
        let err = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("http or https"), "{err}");
        assert!(!err.contains("wecom-key-123"), "{err}");
    }

    #[test]
    fn errors_are_scrubbed() {
        let channel = &channels()[0];
        let e = NoticeError::Provider {
            provider: "DingTalk",
            status: 200,
            code: "1".into(),
            message: "bad token tok-1234567890 and secret SEC-ding-secret".into(),
        }
        .scrub(&channel.secret_values());
        let text = e.to_string();
        assert!(
            !text.contains("tok-1234567890") && !text.contains("SEC-ding-secret"),
            "{text}"
        );
        assert!(text.contains("bad token *** and secret ***"), "{text}");
    }

    #[test]
    fn backoff_and_worst_case() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::from_secs(1));
        assert_eq!(p.delay_after(2), Duration::from_secs(4));
        assert_eq!(p.delay_after(3), Duration::from_secs(16));
        assert_eq!(p.delay_after(40), Duration::from_secs(60));
        assert_eq!(p.worst_case(), Duration::from_secs(35));
        let one = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(one.worst_case(), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn config_errors_are_not_retried() {
        let channel = Channel::Webhook(Webhook {
            url: Secret::new("gopher://example.com/x"),
            secret: Secret::new("webhook-secret"),
        });
        let attempts = deliver(
            &channel,
            &notice::sample(NoticeKind::Started),
            &RetryPolicy::default(),
        )
        .await;
        assert_eq!(attempts.len(), 1);
        assert!(!attempts[0].ok);
        assert!(
            attempts[0]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("http or https")
        );
    }
}
