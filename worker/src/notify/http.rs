//! The HTTP side every robot channel shares: the client (rustls with ring, timeouts, no
//! redirects), URL checks, bounded response reading and error mapping without URLs.
use super::{NoticeError, SendOptions};
use std::sync::Once;
use url::Url;

/// Most bytes read from a provider's answer; the rest is ignored.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most characters of an answer quoted in an error message.
const MAX_QUOTED_CHARS: usize = 300;

/// reqwest is built with `rustls-no-provider` (STACK.md): without a process-wide rustls
/// provider, building a client panics. Install ring's provider once, unless the process already
/// installed one (losing that race is fine: some provider is installed either way).
pub(crate) fn ensure_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// A client for one send to `url`: the URL's host is resolved and checked now (SSRF guard,
/// `shared::net`: loopback, private, link-local… refused unless allow-listed) and the client
/// connects only to the addresses checked (no second DNS lookup; any other name fails to
/// resolve). No redirects (a 3xx is reported, not followed), no proxy from the environment,
/// connect timeout and whole-request timeout both `opts.timeout`.
pub(crate) async fn client(url: &Url, opts: &SendOptions) -> Result<reqwest::Client, NoticeError> {
    ensure_crypto_provider();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| NoticeError::Config("the URL has no port".into()))?;
    let mut builder = reqwest::Client::builder()
        .connect_timeout(opts.timeout)
        .timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(NoLookups)
        .user_agent(opts.user_agent.clone());
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let addrs = opts
                .addresses
                .resolve(name, port, opts.timeout)
                .await
                .map_err(refused)?;
            builder = builder.resolve_to_addrs(name, &addrs);
        }
        Some(url::Host::Ipv4(ip)) => opts
            .addresses
            .check_ip(&ip.to_string(), ip.into())
            .map_err(refused)?,
        Some(url::Host::Ipv6(ip)) => opts
            .addresses
            .check_ip(&format!("[{ip}]"), ip.into())
            .map_err(refused)?,
        None => return Err(NoticeError::Config("the URL has no host".into())),
    }
    builder
        .build()
        .map_err(|e| NoticeError::Transport(error_chain(&e.without_url())))
}

/// The guard's verdict as a notice error: refusals are permanent (not retried).
pub(crate) fn refused(e: hippo_shared::net::NetError) -> NoticeError {
    match e {
        hippo_shared::net::NetError::Internal { .. } => NoticeError::Refused(e.to_string()),
        other => NoticeError::Transport(other.to_string()),
    }
}

/// The resolver of notice clients: every name was resolved and checked before the client was
/// built (`resolve_to_addrs`), so any other lookup is refused.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move { Err(format!("{host} was not checked by the address guard").into()) })
    }
}

/// Parses a user-supplied channel URL: http or https with a host, nothing else. The URL itself
/// never appears in the error (robot URLs carry tokens).
pub(crate) fn parse_http_url(raw: &str, what: &str) -> Result<Url, NoticeError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| NoticeError::Config(format!("{what} is not a valid URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(NoticeError::Config(format!(
                "{what} must be an http or https URL, not '{other}:'"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(NoticeError::Config(format!("{what} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(NoticeError::Config(format!(
            "{what} must not carry a user name or password"
        )));
    }
    Ok(url)
}

/// `scheme://host[:port]/***`, for showing which server a secret URL points at.
pub(crate) fn redact_url(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(u) if u.host_str().is_some() => {
            let host = u.host_str().unwrap_or_default();
            match u.port() {
                Some(p) => format!("{}://{host}:{p}/***", u.scheme()),
                None => format!("{}://{host}/***", u.scheme()),
            }
        }
        _ => "***".to_string(),
    }
}

/// Sends a request and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
pub(crate) async fn execute(
    req: reqwest::RequestBuilder,
    opts: &SendOptions,
) -> Result<(u16, String), NoticeError> {
    let mut resp = req.send().await.map_err(|e| map_reqwest(e, opts))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while body.len() < MAX_RESPONSE_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => return Err(map_reqwest(e, opts)),
        }
    }
    body.truncate(MAX_RESPONSE_BYTES);
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub(crate) fn map_reqwest(e: reqwest::Error, opts: &SendOptions) -> NoticeError {
    if e.is_timeout() {
        NoticeError::Timeout(opts.timeout)
    } else {
        NoticeError::Transport(error_chain(&e.without_url()))
    }
}

/// The error and its sources, joined with `: ` (hyper's messages carry no URL).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A provider answer quoted in an error: single line, cut short.
pub(crate) fn quote(body: &str) -> String {
    super::notice::truncate_chars(&super::notice::one_line(body), MAX_QUOTED_CHARS)
}

/// Checks a robot answer of the `{"errcode":0,"errmsg":"ok"}` kind (DingTalk, WeCom): HTTP 2xx
/// and `errcode == 0`.
pub(crate) fn check_errcode(
    provider: &'static str,
    status: u16,
    body: &str,
) -> Result<Option<String>, NoticeError> {
    if !(200..300).contains(&status) {
        return Err(NoticeError::Http {
            status,
            body: quote(body),
        });
    }
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|_| NoticeError::BadResponse {
            status,
            detail: format!("not JSON: {}", quote(body)),
        })?;
    match json.get("errcode").and_then(serde_json::Value::as_i64) {
        Some(0) => Ok(json
            .get("errmsg")
            .and_then(|m| m.as_str())
            .map(str::to_string)),
        Some(code) => Err(NoticeError::Provider {
            provider,
            status,
            code: code.to_string(),
            message: quote(json.get("errmsg").and_then(|m| m.as_str()).unwrap_or("")),
        }),
        None => Err(NoticeError::BadResponse {
            status,
            detail: format!("no errcode in {}", quote(body)),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_http_urls() {
        assert!(parse_http_url("https://oapi.dingtalk.com/robot/send?access_token=x", "u").is_ok());
        assert!(parse_http_url("http://127.0.0.1:8080/hook", "u").is_ok());
        for bad in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "not a url",
            "https://user:pw@example.com/",
        ] {
            let err = parse_http_url(bad, "webhook_url").err();
            assert!(
                matches!(err, Some(NoticeError::Config(_))),
                "{bad}: {err:?}"
            );
        }
        let msg = parse_http_url("ftp://h/secret-token", "webhook_url")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!msg.contains("secret-token"), "{msg}");
    }

    #[tokio::test]
    async fn a_client_connects_only_to_the_addresses_it_checked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let opts = SendOptions {
            addresses: hippo_shared::net::AddressPolicy::allow_all(),
            ..SendOptions::default()
        };
        let checked = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let client = client(&checked, &opts).await.unwrap();
        // Any name the guard did not resolve is not looked up at all.
        let e = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(
            error_chain(&e).contains("not checked by the address guard"),
            "{}",
            error_chain(&e)
        );
        // And by default, loopback is refused before any connection.
        let e = client_for_default(&checked).await;
        assert!(matches!(e, Err(NoticeError::Refused(_))), "{e:?}");
    }

    async fn client_for_default(url: &Url) -> Result<reqwest::Client, NoticeError> {
        client(url, &SendOptions::default()).await
    }

    #[test]
    fn redacted_urls_keep_only_the_origin() {
        assert_eq!(
            redact_url("https://oapi.dingtalk.com/robot/send?access_token=abc"),
            "https://oapi.dingtalk.com/***"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9000/x"),
            "http://127.0.0.1:9000/***"
        );
        assert_eq!(redact_url("garbage"), "***");
    }

    #[test]
    fn errcode_answers() {
        assert!(check_errcode("DingTalk", 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(matches!(
            check_errcode(
                "DingTalk",
                200,
                r#"{"errcode":310000,"errmsg":"sign not match"}"#
            ),
            Err(NoticeError::Provider { .. })
        ));
        assert!(matches!(
            check_errcode("DingTalk", 500, "oops"),
            Err(NoticeError::Http { status: 500, .. })
        ));
        assert!(matches!(
            check_errcode("DingTalk", 200, "<html>"),
            Err(NoticeError::BadResponse { .. })
        ));
    }
}
