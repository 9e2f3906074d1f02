//! Email through SMTP with lettre (tokio, rustls + ring, webpki roots): one
//! `multipart/alternative` message with a plain-text and an HTML part (both base64 transfer
//! encoded, so any UTF-8 survives every relay). Every user value in the HTML is escaped.
//!
//! Security: `tls` = implicit TLS (default port 465), `starttls` = STARTTLS required (587),
//! `plain` = no TLS at all (25; `builder_dangerous`, for local relays and tests: credentials,
//! if set, then travel in clear).
use super::http::error_chain;
use super::notice::{Notice, html_escape, one_line};
use super::{Delivered, NoticeError, Secret, SecretField, SendOptions};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Implicit TLS (SMTPS).
    Tls,
    /// Plain connection upgraded with STARTTLS; fails if the server does not offer it.
    Starttls,
    /// No TLS. Local relays and tests only.
    Plain,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Plain => 25,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub host: String,
    /// Defaults by `security`: 465 / 587 / 25.
    #[serde(default)]
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `Hippo <hippo@example.com>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
}

/// `[Hippo] Release failed: cart → prod (release name)`
pub fn subject(notice: &Notice) -> String {
    format!("[Hippo] {}", notice.title())
}

/// The plain-text part.
pub fn text(notice: &Notice) -> String {
    notice.to_text()
}

/// The HTML part; every user value is escaped, the link is only a link when it is http(s).
pub fn html(notice: &Notice) -> String {
    let e = |s: &str| html_escape(s);
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:sans-serif\">\n",
    );
    out.push_str(&format!("<h2>{}</h2>\n", e(&notice.title())));
    out.push_str("<table cellpadding=\"4\">\n");
    for (label, value) in notice.facts() {
        out.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            e(label),
            e(&value)
        ));
    }
    out.push_str("</table>\n");
    if let Some(c) = notice.comment() {
        out.push_str(&format!(
            "<p><strong>Comment:</strong> {}</p>\n",
            e(c.trim()).replace('\n', "<br>")
        ));
    }
    if !notice.failed_hosts.is_empty() {
        out.push_str(&format!(
            "<h3>Failed hosts ({})</h3>\n<ul>\n",
            notice.failed_hosts.len()
        ));
        for f in &notice.failed_hosts {
            out.push_str(&format!(
                "<li><strong>{}</strong>: {}</li>\n",
                e(&one_line(&f.host)),
                e(&one_line(&f.reason))
            ));
        }
        out.push_str("</ul>\n");
    }
    if let Some(m) = notice.message() {
        out.push_str(&format!("<p>{}</p>\n", e(m.trim()).replace('\n', "<br>")));
    }
    if let Some(link) = notice.safe_link() {
        out.push_str(&format!(
            "<p><a href=\"{}\">Open release</a></p>\n",
            e(link)
        ));
    }
    out.push_str("</body></html>\n");
    out
}

fn mailbox(raw: &str, what: &str) -> Result<Mailbox, NoticeError> {
    raw.trim()
        .parse::<Mailbox>()
        .map_err(|e| NoticeError::Config(format!("{what} '{}' is not an address: {e}", raw.trim())))
}

fn part(content_type: ContentType, content: String) -> Result<SinglePart, NoticeError> {
    let body = Body::new_with_encoding(content, ContentTransferEncoding::Base64)
        .map_err(|_| NoticeError::Config("message body cannot be encoded".into()))?;
    Ok(SinglePart::builder().header(content_type).body(body))
}

/// The kind of failure and the reply code for everyone; the server's words as the detail.
fn smtp_error(e: &lettre::transport::smtp::Error) -> NoticeError {
    let code = e.status().map(|c| format!(" ({c})")).unwrap_or_default();
    let summary = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_permanent() {
        format!("permanent error{code}")
    } else if e.is_transient() {
        format!("transient error{code}")
    } else if e.is_tls() {
        "TLS failed".to_owned()
    } else if e.is_response() {
        "unexpected reply".to_owned()
    } else if e.is_client() {
        "client error".to_owned()
    } else {
        "connection failed".to_owned()
    };
    NoticeError::Smtp {
        summary,
        detail: error_chain(e),
    }
}

impl Email {
    /// Its secret fields (see [`super::SecretField`]): redacted in API answers, scrubbed from
    /// errors and logs.
    pub const SECRET_FIELDS: &'static [SecretField] = &[SecretField::Value("password")];

    pub fn port(&self) -> u16 {
        self.port.unwrap_or(self.security.default_port())
    }

    pub fn validate(&self) -> Result<(), NoticeError> {
        let host = self.host.trim();
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err(NoticeError::Config(
                "host must be a host name or address".into(),
            ));
        }
        mailbox(&self.from, "from")?;
        if self.to.is_empty() {
            return Err(NoticeError::Config("no recipients (to)".into()));
        }
        for to in &self.to {
            mailbox(to, "to")?;
        }
        if self.password.is_some() && self.username.as_deref().is_none_or(str::is_empty) {
            return Err(NoticeError::Config(
                "password set without a username".into(),
            ));
        }
        Ok(())
    }

    /// The message as it is sent.
    pub fn message(&self, notice: &Notice) -> Result<Message, NoticeError> {
        let mut builder = Message::builder()
            .from(mailbox(&self.from, "from")?)
            .subject(subject(notice));
        if self.to.is_empty() {
            return Err(NoticeError::Config("no recipients (to)".into()));
        }
        for to in &self.to {
            builder = builder.to(mailbox(to, "to")?);
        }
        let alternative = MultiPart::alternative()
            .singlepart(part(ContentType::TEXT_PLAIN, text(notice))?)
            .singlepart(part(ContentType::TEXT_HTML, html(notice))?);
        builder
            .multipart(alternative)
            .map_err(|e| NoticeError::Config(format!("message: {e}")))
    }

    pub(crate) async fn send(
        &self,
        notice: &Notice,
        opts: &SendOptions,
    ) -> Result<Delivered, NoticeError> {
        self.validate()?;
        let message = self.message(notice)?;
        let host = self.host.trim();
        // SSRF guard: resolve and check the relay's address now, then connect to that address
        // (the certificate is still checked against the host name).
        let addrs = opts
            .addresses
            .resolve(host, self.port(), opts.timeout)
            .await
            .map_err(super::http::refused)?;
        let addr = addrs
            .first()
            .ok_or_else(|| NoticeError::Transport(format!("{host} has no address")))?;
        let tls_name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = |name: String| TlsParameters::new(name).map_err(|e| smtp_error(&e));
        let builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string());
        let builder = match self.security {
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls(tls_name)?)),
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls(tls_name)?)),
            SmtpSecurity::Plain => builder,
        };
        let mut builder = builder.port(self.port()).timeout(Some(opts.timeout));
        if let Some(user) = self.username.as_deref().filter(|u| !u.is_empty()) {
            let password = self
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.to_string(), password));
        }
        let transport = builder.build();
        let result = transport.send(message).await;
        // The pool keeps the connection open; close it (QUIT) now, the notice is sent.
        transport.shutdown().await;
        let response = result.map_err(|e| smtp_error(&e))?;
        let detail = response.message().next().map(one_line);
        Ok(Delivered {
            http_status: None,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::notice::{FailedHost, NoticeKind, sample};

    fn email() -> Email {
        Email {
            host: "smtp.example.com".into(),
            port: None,
            security: SmtpSecurity::Starttls,
            username: Some("hippo".into()),
            password: Some(Secret::new("smtp-pass")),
            from: "Hippo <hippo@example.com>".into(),
            to: vec![
                "ops@example.com".into(),
                "Dev Team <dev@example.com>".into(),
            ],
        }
    }

    #[test]
    fn html_escapes_every_user_value() {
        let mut n = sample(NoticeKind::Failed);
        n.release_name = "<script>alert('x')</script>".into();
        n.app.name = "a&b".into();
        n.comment = Some("\"quoted\" <b>".into());
        n.failed_hosts = vec![FailedHost::new("<h1>", "exit 1 & <oops>")];
        n.link = Some("https://h/x?a=1&b=\"2\"".into());
        let h = html(&n);
        assert!(!h.contains("<script>"), "{h}");
        assert!(h.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(h.contains("a&amp;b"));
        assert!(h.contains("&quot;quoted&quot; &lt;b&gt;"));
        assert!(h.contains("<strong>&lt;h1&gt;</strong>: exit 1 &amp; &lt;oops&gt;"));
        assert!(h.contains("href=\"https://h/x?a=1&amp;b=&quot;2&quot;\""));
        n.link = Some("javascript:alert(1)".into());
        assert!(!html(&n).contains("javascript:"));
    }

    #[test]
    fn message_has_both_parts_and_headers() {
        let n = sample(NoticeKind::Failed);
        let raw = String::from_utf8_lossy(&email().message(&n).unwrap().formatted()).into_owned();
        assert!(raw.contains("From: Hippo <hippo@example.com>"), "{raw}");
        assert!(raw.contains("To: ops@example.com"), "{raw}");
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(raw.contains("Content-Transfer-Encoding: base64"));
    }

    #[test]
    fn validation_and_ports() {
        assert!(email().validate().is_ok());
        assert_eq!(email().port(), 587);
        let mut bad = email();
        bad.to.clear();
        assert!(bad.validate().is_err());
        let mut bad = email();
        bad.from = "not an address".into();
        assert!(bad.validate().is_err());
        let mut bad = email();
        bad.username = None;
        assert!(bad.validate().is_err());
    }
}
