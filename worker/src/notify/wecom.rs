//! WeCom (企业微信) group robot: `POST <webhook_url>` with
//! `{"msgtype":"markdown","markdown":{"content":…}}`. There is no request signature: the `key`
//! in the webhook URL is the credential, so the URL is kept as a secret. Success is
//! `errcode == 0`; markdown content is limited to 4096 bytes.
use super::http;
use super::notice::{Notice, NoticeKind, one_line, truncate_bytes};
use super::{Delivered, NoticeError, Secret, SecretField, SendOptions};
use serde::{Deserialize, Serialize};

/// WeCom's limit for markdown content, in UTF-8 bytes.
pub const MAX_CONTENT_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeCom {
    /// `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`
    pub webhook_url: Secret,
}

/// WeCom markdown (supports `<font color="info|comment|warning">`).
pub fn render(notice: &Notice) -> String {
    let color = match notice.kind {
        NoticeKind::Failed | NoticeKind::Rejected | NoticeKind::Cancelled => "warning",
        NoticeKind::Succeeded | NoticeKind::Approved => "info",
        _ => "comment",
    };
    let mut text = format!(
        "### <font color=\"{color}\">{}</font>\n",
        notice.kind.headline()
    );
    for (label, value) in notice.facts() {
        text.push_str(&format!("> {label}: {value}\n"));
    }
    if let Some(c) = notice.comment() {
        text.push_str(&format!("> Comment: {}\n", one_line(c)));
    }
    if !notice.failed_hosts.is_empty() {
        let (listed, more) = notice.listed_failures();
        text.push_str(&format!(
            "\n**Failed hosts ({})**\n",
            notice.failed_hosts.len()
        ));
        for (host, reason) in listed {
            text.push_str(&format!(
                "- <font color=\"warning\">{host}</font>: {reason}\n"
            ));
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
    truncate_bytes(&text, MAX_CONTENT_BYTES)
}

pub fn body(notice: &Notice) -> serde_json::Value {
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "content": render(notice) },
    })
}

impl WeCom {
    /// Its secret fields (see [`super::SecretField`]): redacted in API answers, scrubbed from
    /// errors and logs.
    pub const SECRET_FIELDS: &'static [SecretField] = &[SecretField::Url("webhook_url")];

    pub fn validate(&self) -> Result<(), NoticeError> {
        http::parse_http_url(self.webhook_url.expose(), "webhook_url").map(|_| ())
    }

    pub(crate) async fn send(
        &self,
        notice: &Notice,
        opts: &SendOptions,
    ) -> Result<Delivered, NoticeError> {
        let url = http::parse_http_url(self.webhook_url.expose(), "webhook_url")?;
        let client = http::client(&url, opts).await?;
        let (status, text) = http::execute(client.post(url).json(&body(notice)), opts).await?;
        let detail = http::check_errcode("WeCom", status, &text)?;
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
    use crate::notify::notice::{FailedHost, sample};

    #[test]
    fn markdown_lists_failed_hosts_and_fits_the_limit() {
        let text = render(&sample(NoticeKind::Failed));
        assert!(text.contains("<font color=\"warning\">Release failed</font>"));
        assert!(
            text.contains("<font color=\"warning\">web-1</font>: exit 1: npm ERR! missing script")
        );
        assert!(text.contains("> Environment: prod (production)"));
        let mut big = sample(NoticeKind::Failed);
        big.failed_hosts = (0..20)
            .map(|i| FailedHost::new(format!("host-{i}"), "错误".repeat(200)))
            .collect();
        let text = render(&big);
        assert!(text.len() <= MAX_CONTENT_BYTES);
        assert_eq!(body(&big)["msgtype"], "markdown");
    }
}
