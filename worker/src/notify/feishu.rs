//! Feishu / Lark custom bot: `POST <webhook_url>` with a `text` or `post` (rich text) message.
//!
//! Signing (optional "signature verification" setting of the bot): `timestamp` in seconds (a
//! string) and `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, msg = ""))` go into
//! the JSON body next to `msg_type`. Feishu rejects timestamps more than an hour off. Success is
//! `code == 0` (older deployments answer `StatusCode == 0`).
use super::http;
use super::notice::{Notice, one_line};
use super::{Delivered, NoticeError, Secret, SecretField, SendOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeishuMsgType {
    Text,
    /// Rich text with a title and a link (the default).
    #[default]
    Post,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feishu {
    /// `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`
    pub webhook_url: Secret,
    /// The bot's signing secret, when signature verification is on.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub msg_type: FeishuMsgType,
}

/// `base64(HMAC-SHA256(key = "<timestamp_secs>\n<secret>", msg = ""))`.
pub fn sign(secret: &str, timestamp_secs: i64) -> String {
    let key = format!("{timestamp_secs}\n{secret}");
    let mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The text message: the notice's plain text.
pub fn render_text(notice: &Notice) -> String {
    let mut text = format!("{}\n", notice.title());
    for (label, value) in notice.facts() {
        text.push_str(&format!("{label}: {value}\n"));
    }
    if let Some(c) = notice.comment() {
        text.push_str(&format!("Comment: {}\n", one_line(c)));
    }
    if !notice.failed_hosts.is_empty() {
        let (listed, more) = notice.listed_failures();
        text.push_str(&format!("Failed hosts ({}):\n", notice.failed_hosts.len()));
        for (host, reason) in listed {
            text.push_str(&format!("- {host}: {reason}\n"));
        }
        if more > 0 {
            text.push_str(&format!("- … and {more} more\n"));
        }
    }
    if let Some(m) = notice.message() {
        text.push_str(&format!("{}\n", m.trim()));
    }
    if let Some(link) = notice.safe_link() {
        text.push_str(&format!("Open: {link}\n"));
    }
    text
}

/// The `post` content: `{"post":{"zh_cn":{"title":…,"content":[[…],…]}}}`, one paragraph per
/// fact, failed host and link.
pub fn render_post(notice: &Notice) -> serde_json::Value {
    let text = |t: String| serde_json::json!([{ "tag": "text", "text": t }]);
    let mut lines: Vec<serde_json::Value> = notice
        .facts()
        .into_iter()
        .map(|(label, value)| text(format!("{label}: {value}")))
        .collect();
    if let Some(c) = notice.comment() {
        lines.push(text(format!("Comment: {}", one_line(c))));
    }
    if !notice.failed_hosts.is_empty() {
        let (listed, more) = notice.listed_failures();
        lines.push(text(format!(
            "Failed hosts ({}):",
            notice.failed_hosts.len()
        )));
        for (host, reason) in listed {
            lines.push(text(format!("- {host}: {reason}")));
        }
        if more > 0 {
            lines.push(text(format!("- … and {more} more")));
        }
    }
    if let Some(m) = notice.message() {
        lines.push(text(m.trim().to_string()));
    }
    if let Some(link) = notice.safe_link() {
        lines.push(serde_json::json!([{ "tag": "a", "text": "Open release", "href": link }]));
    }
    serde_json::json!({
        "post": { "zh_cn": { "title": notice.title(), "content": lines } }
    })
}

/// The request body; `signed` is `(timestamp_secs, sign)` when the bot has a secret.
pub fn body(
    notice: &Notice,
    msg_type: FeishuMsgType,
    signed: Option<(i64, String)>,
) -> serde_json::Value {
    let mut body = match msg_type {
        FeishuMsgType::Text => serde_json::json!({
            "msg_type": "text",
            "content": { "text": render_text(notice) },
        }),
        FeishuMsgType::Post => serde_json::json!({
            "msg_type": "post",
            "content": render_post(notice),
        }),
    };
    if let (Some((ts, sign)), Some(map)) = (signed, body.as_object_mut()) {
        map.insert("timestamp".into(), ts.to_string().into());
        map.insert("sign".into(), sign.into());
    }
    body
}

/// Feishu's answer: `code` (current API) or `StatusCode` (older), 0 = delivered.
fn check_answer(status: u16, text: &str) -> Result<Option<String>, NoticeError> {
    if !(200..300).contains(&status) {
        return Err(NoticeError::Http {
            status,
            body: http::quote(text),
        });
    }
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|_| NoticeError::BadResponse {
            status,
            detail: format!("not JSON: {}", http::quote(text)),
        })?;
    let code = json
        .get("code")
        .or_else(|| json.get("StatusCode"))
        .and_then(serde_json::Value::as_i64);
    let msg = json
        .get("msg")
        .or_else(|| json.get("StatusMessage"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    match code {
        Some(0) => Ok((!msg.is_empty()).then(|| msg.to_string())),
        Some(code) => Err(NoticeError::Provider {
            provider: "Feishu",
            status,
            code: code.to_string(),
            message: http::quote(msg),
        }),
        None => Err(NoticeError::BadResponse {
            status,
            detail: format!("no code in {}", http::quote(text)),
        }),
    }
}

impl Feishu {
    /// Its secret fields (see [`super::SecretField`]): redacted in API answers, scrubbed from
    /// errors and logs.
    pub const SECRET_FIELDS: &'static [SecretField] = &[
        SecretField::Url("webhook_url"),
        SecretField::Value("secret"),
    ];

    pub fn validate(&self) -> Result<(), NoticeError> {
        http::parse_http_url(self.webhook_url.expose(), "webhook_url").map(|_| ())
    }

    pub(crate) async fn send(
        &self,
        notice: &Notice,
        opts: &SendOptions,
    ) -> Result<Delivered, NoticeError> {
        let url = http::parse_http_url(self.webhook_url.expose(), "webhook_url")?;
        let signed = self
            .secret
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|secret| {
                let ts = chrono::Utc::now().timestamp();
                (ts, sign(secret.expose(), ts))
            });
        let client = http::client(&url, opts).await?;
        let payload = body(notice, self.msg_type, signed);
        let (status, text) = http::execute(client.post(url).json(&payload), opts).await?;
        let detail = check_answer(status, &text)?;
        Ok(Delivered {
            http_status: Some(status),
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::notice::{NoticeKind, sample};

    /// Vector computed independently with Python's `hmac.new(b"1700000000\nfeishu-secret", b"",
    /// hashlib.sha256)` and base64.
    #[test]
    fn sign_matches_the_documented_algorithm() {
        assert_eq!(
            sign("feishu-secret", 1_700_000_000),
            "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="
        );
    }

    #[test]
    fn bodies() {
        let n = sample(NoticeKind::Failed);
        let b = body(&n, FeishuMsgType::Post, Some((1_700_000_000, "s".into())));
        assert_eq!(b["msg_type"], "post");
        assert_eq!(b["timestamp"], "1700000000");
        assert_eq!(b["sign"], "s");
        let post = b["content"]["post"]["zh_cn"].to_string();
        assert!(
            post.contains("web-1: exit 1: npm ERR! missing script"),
            "{post}"
        );
        assert!(post.contains("\"href\":\"https://hippo.example/releases/42\""));
        let t = body(&n, FeishuMsgType::Text, None);
        assert_eq!(t["msg_type"], "text");
        assert!(t.get("sign").is_none());
        let text = t["content"]["text"].as_str().unwrap_or_default();
        assert!(text.contains("Failed hosts (2):\n- web-1: exit 1"));
    }

    #[test]
    fn answers() {
        assert!(check_answer(200, r#"{"code":0,"msg":"success","data":{}}"#).is_ok());
        assert!(check_answer(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
        assert!(matches!(
            check_answer(200, r#"{"code":19021,"msg":"sign match fail"}"#),
            Err(NoticeError::Provider { .. })
        ));
    }
}
