//! DingTalk custom robot, signed-request security setting ("加签"), markdown message.
//!
//! Signing (STACK.md, DingTalk robot docs): `sign = urlencode(base64(HMAC-SHA256(key = secret,
//! msg = timestamp_ms + "\n" + secret)))`, sent as `&timestamp=<ms>&sign=<sign>` after the
//! webhook's own `access_token`; DingTalk rejects timestamps more than an hour off. Success is
//! `errcode == 0` in the body: HTTP 200 alone is not success.
use super::http;
use super::notice::{Notice, NoticeKind};
use super::{Delivered, NoticeError, Secret, SecretField, SendOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalk {
    /// `https://oapi.dingtalk.com/robot/send?access_token=…` (the token makes it a secret).
    pub webhook_url: Secret,
    /// The robot's signing secret (`SEC…`).
    pub secret: Secret,
}

/// `base64(HMAC-SHA256(key = secret, msg = "<timestamp_ms>\n<secret>"))`, before URL-encoding.
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The webhook URL with `timestamp` and the (form-urlencoded) `sign` appended.
pub fn signed_url(webhook: &Url, secret: &str, timestamp_ms: i64) -> Url {
    let mut url = webhook.clone();
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(secret, timestamp_ms));
    url
}

/// `(title, markdown text)`. The title shows in the chat list and the notification banner.
pub fn render(notice: &Notice) -> (String, String) {
    let title = notice.title();
    let mut text = format!("### {}\n\n", notice.kind.headline());
    for (label, value) in notice.facts() {
        text.push_str(&format!("- **{label}**: {value}\n"));
    }
    if let Some(c) = notice.comment() {
        text.push_str(&format!(
            "\n> **Comment**: {}\n",
            super::notice::one_line(c)
        ));
    }
    if !notice.failed_hosts.is_empty() {
        let (listed, more) = notice.listed_failures();
        text.push_str(&format!(
            "\n**Failed hosts ({})**\n\n",
            notice.failed_hosts.len()
        ));
        for (host, reason) in listed {
            text.push_str(&format!("- **{host}**: {reason}\n"));
        }
        if more > 0 {
            text.push_str(&format!("- … and {more} more\n"));
        }
    }
    if let Some(m) = notice.message() {
        text.push_str(&format!("\n{}\n", m.trim()));
    }
    if let Some(link) = notice.safe_link() {
        text.push_str(&format!("\n[Open release]({link})\n"));
    }
    if notice.kind == NoticeKind::Requested {
        text.push_str("\nWaiting for a reviewer.\n");
    }
    (title, text)
}

/// `{"msgtype":"markdown","markdown":{"title":…,"text":…}}`
pub fn body(notice: &Notice) -> serde_json::Value {
    let (title, text) = render(notice);
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "title": title, "text": text },
    })
}

impl DingTalk {
    /// Its secret fields (see [`super::SecretField`]): redacted in API answers, scrubbed from
    /// errors and logs.
    pub const SECRET_FIELDS: &'static [SecretField] = &[
        SecretField::Url("webhook_url"),
        SecretField::Value("secret"),
    ];

    pub fn validate(&self) -> Result<(), NoticeError> {
        http::parse_http_url(self.webhook_url.expose(), "webhook_url")?;
        if self.secret.expose().trim().is_empty() {
            return Err(NoticeError::Config("secret is empty".into()));
        }
        Ok(())
    }

    pub(crate) async fn send(
        &self,
        notice: &Notice,
        opts: &SendOptions,
    ) -> Result<Delivered, NoticeError> {
        let webhook = http::parse_http_url(self.webhook_url.expose(), "webhook_url")?;
        let ts = chrono::Utc::now().timestamp_millis();
        let url = signed_url(&webhook, self.secret.expose(), ts);
        let client = http::client(&url, opts).await?;
        let (status, text) = http::execute(client.post(url).json(&body(notice)), opts).await?;
        let detail = http::check_errcode("DingTalk", status, &text)?;
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
    use crate::notify::notice::sample;

    /// Recomputes the documented string with the primitives directly (no code shared with
    /// `sign` beyond the crates), and checks a fixed vector computed independently with Python's
    /// `hmac`/`hashlib`/`base64` over the same string.
    #[test]
    fn sign_matches_the_documented_algorithm() {
        let secret = "SECexample0123456789";
        let ts = 1_700_000_000_000_i64;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(b"1700000000000\nSECexample0123456789");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sign(secret, ts), expected);
        assert_eq!(
            sign(secret, ts),
            "figG6qqCA/lRh0hsGCW2zNtNV5znkAFut5BI0zKhqnQ="
        );
    }

    #[test]
    fn signed_url_keeps_the_token_and_encodes_the_sign() {
        let webhook = Url::parse("https://oapi.dingtalk.com/robot/send?access_token=tok").unwrap();
        let url = signed_url(&webhook, "SECexample0123456789", 1_700_000_000_000);
        assert_eq!(
            url.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1700000000000\
             &sign=figG6qqCA%2FlRh0hsGCW2zNtNV5znkAFut5BI0zKhqnQ%3D"
        );
    }

    #[test]
    fn markdown_lists_failed_hosts_with_reasons() {
        let (title, text) = render(&sample(NoticeKind::Failed));
        assert_eq!(title, "Release failed: cart → prod (cart 1.4 hotfix)");
        assert!(text.starts_with("### Release failed\n"));
        assert!(text.contains("**Failed hosts (2)**"));
        assert!(text.contains("- **web-1**: exit 1: npm ERR! missing script\n"));
        assert!(text.contains("- **web-2**: connect timed out\n"));
        assert!(text.contains("- **Released by**: bob\n"));
        assert!(text.contains("[Open release](https://hippo.example/releases/42)"));
        let b = body(&sample(NoticeKind::Failed));
        assert_eq!(b["msgtype"], "markdown");
        assert_eq!(b["markdown"]["title"], title);
    }
}
