//! Generic JSON webhook: `POST <url>` with the [`Notice`] as JSON (it has a `kind` field).
//!
//! Headers: `X-Hippo-Event: <kind>`, `X-Hippo-Timestamp: <unix seconds>`, and
//! `X-Hippo-Signature: sha256=<hex(HMAC-SHA256(key = secret, msg = timestamp + "." + body))>`
//! over the exact body bytes. A receiver recomputes it, compares in constant time and rejects
//! stale timestamps (we suggest 5 minutes). Any 2xx answer is success.
use super::http;
use super::notice::Notice;
use super::{Delivered, NoticeError, Secret, SecretField, SendOptions};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "X-Hippo-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Hippo-Signature";
pub const EVENT_HEADER: &str = "X-Hippo-Event";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: Secret,
    /// Shared HMAC key.
    pub secret: Secret,
}

/// `sha256=<hex(HMAC-SHA256(key = secret, msg = "<timestamp>.<body>"))>`
pub fn signature(secret: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The JSON body: the notice itself.
pub fn body(notice: &Notice) -> Result<Vec<u8>, NoticeError> {
    serde_json::to_vec(notice)
        .map_err(|e| NoticeError::Config(format!("notice is not serializable: {e}")))
}

impl Webhook {
    /// Its secret fields (see [`super::SecretField`]): redacted in API answers, scrubbed from
    /// errors and logs.
    pub const SECRET_FIELDS: &'static [SecretField] =
        &[SecretField::Url("url"), SecretField::Value("secret")];

    pub fn validate(&self) -> Result<(), NoticeError> {
        http::parse_http_url(self.url.expose(), "url")?;
        if self.secret.expose().is_empty() {
            return Err(NoticeError::Config("secret is empty".into()));
        }
        Ok(())
    }

    pub(crate) async fn send(
        &self,
        notice: &Notice,
        opts: &SendOptions,
    ) -> Result<Delivered, NoticeError> {
        let url = http::parse_http_url(self.url.expose(), "url")?;
        let payload = body(notice)?;
        let ts = chrono::Utc::now().timestamp();
        let sig = signature(self.secret.expose(), ts, &payload);
        let client = http::client(&url, opts).await?;
        let req = client
            .post(url)
            .header("Content-Type", "application/json")
            .header(EVENT_HEADER, notice.kind.as_str())
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, sig)
            .body(payload);
        let (status, text) = http::execute(req, opts).await?;
        if !(200..300).contains(&status) {
            return Err(NoticeError::Http {
                status,
                body: http::quote(&text),
            });
        }
        Ok(Delivered {
            http_status: Some(status),
            detail: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::notice::{NoticeKind, sample};

    /// Vector computed independently with Python's `hmac.new(b"whsec",
    /// b'1700000000.{"kind":"failed"}', hashlib.sha256).hexdigest()`.
    #[test]
    fn signature_vector() {
        assert_eq!(
            signature("whsec", 1_700_000_000, br#"{"kind":"failed"}"#),
            "sha256=5d79e2c0c57f38876a5fb328374ec3e2c92115b072d49b6cb5938cfd5e595a00"
        );
    }

    #[test]
    fn body_is_the_notice_with_kind() {
        let n = sample(NoticeKind::Rejected);
        let b = body(&n).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["kind"], "rejected");
        assert_eq!(v["release_id"], 42);
        assert_eq!(v["failed_hosts"][0]["host"], "web-1");
        let back: Notice = serde_json::from_slice(&b).unwrap();
        assert_eq!(back, n);
    }
}
