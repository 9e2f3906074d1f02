//! Issue 9, item 2: notices must not become a way to reach (or read) what only the worker can
//! reach. Real loopback listeners stand in for internal services: they count every
//! connection, so "refused" means nothing was sent.
#![allow(clippy::unwrap_used)]
use hippo_worker::notify::{
    self, AddressPolicy, Channel, DingTalk, Email, Named, Notice, NoticeKind, RetryPolicy, Secret,
    SendOptions, SmtpSecurity, Webhook,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn notice() -> Notice {
    Notice {
        kind: NoticeKind::Failed,
        app: Named::new("Cart", "cart"),
        environment: Named::new("Production", "prod"),
        release_id: hippo_shared::domain::ReleaseId::new(7),
        release_name: "r7".into(),
        git_ref: "branch main".into(),
        commit: "abc1234".into(),
        version: None,
        requested_by: "alice".into(),
        actor: None,
        comment: None,
        failed_hosts: Vec::new(),
        link: None,
        message: None,
    }
}

/// An "internal service" on `addr`: answers every connection with `response`, counting them.
async fn service(addr: &str, response: &'static str) -> Option<(u16, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind(addr).await.ok()?;
    let port = listener.local_addr().ok()?.port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Some((port, hits))
}

const SECRET_ANSWER: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 38\r\nconnection: close\r\n\r\nINTERNAL-ONLY aws_secret=wJalrXUtnFEMI";

fn webhook(url: String) -> Channel {
    Channel::Webhook(Webhook {
        url: Secret::new(url),
        secret: Secret::new("webhook-secret"),
    })
}

fn policy(addresses: AddressPolicy) -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(10),
        send: SendOptions {
            timeout: Duration::from_secs(3),
            addresses,
            ..SendOptions::default()
        },
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn every_spelling_of_an_internal_address_is_refused_at_send_time_and_recorded() {
    let (port, hits) = service("127.0.0.1:0", SECRET_ANSWER).await.unwrap();
    // The same port on ::1, if this machine has IPv6 loopback.
    let v6 = service(&format!("[::1]:{port}"), SECRET_ANSWER).await;
    let urls = [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://0x7f000001:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://127.1:{port}/hook"),
        format!("http://0177.0.0.1:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://[::ffff:7f00:1]:{port}/hook"),
        format!("http://0.0.0.0:{port}/hook"),
        // A name that resolves to loopback.
        format!("http://localhost:{port}/hook"),
        // Cloud metadata, private and unique-local ranges (nothing listens: never tried).
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/hook".to_string(),
        "http://192.168.1.1/hook".to_string(),
        "http://[fd00::1]/hook".to_string(),
    ];
    for url in urls {
        let attempts = notify::deliver(
            &webhook(url.clone()),
            &notice(),
            &policy(AddressPolicy::default()),
        )
        .await;
        assert_eq!(
            attempts.len(),
            1,
            "{url}: a refusal is not retried: {attempts:?}"
        );
        let a = &attempts[0];
        assert!(!a.ok, "{url}");
        let error = a.error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with("refused:") && error.contains("HIPPO_INTERNAL_ALLOWLIST"),
            "{url}: {error}"
        );
        assert!(
            !error.contains("/hook"),
            "the URL stays out of the record: {error}"
        );
        assert_eq!(a.http_status, None);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "an internal service was reached"
    );
    if let Some((_, v6hits)) = v6 {
        assert_eq!(v6hits.load(Ordering::SeqCst), 0, "::1 was reached");
    }
}

#[tokio::test]
async fn the_allow_list_lets_an_internal_receiver_through_by_cidr_or_by_name() {
    let ok = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
    let (port, hits) = service("127.0.0.1:0", ok).await.unwrap();
    for (allow, host) in [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.0/8", "0x7f000001"),
        ("localhost", "localhost"),
    ] {
        let url = format!("http://{host}:{port}/hook");
        let attempts = notify::deliver(
            &webhook(url.clone()),
            &notice(),
            &policy(AddressPolicy::parse(&[allow]).unwrap()),
        )
        .await;
        assert!(attempts.last().unwrap().ok, "{allow} / {url}: {attempts:?}");
    }
    assert!(hits.load(Ordering::SeqCst) >= 3);
    // Allowing one address does not allow its neighbours.
    let attempts = notify::deliver(
        &webhook(format!("http://127.0.0.1:{port}/hook")),
        &notice(),
        &policy(AddressPolicy::parse(&["127.0.0.2", "10.0.0.0/8"]).unwrap()),
    )
    .await;
    assert!(!attempts[0].ok && attempts.len() == 1, "{attempts:?}");
}

#[tokio::test]
async fn an_answer_is_never_in_the_error_only_in_the_admin_detail() {
    let (port, _) = service("127.0.0.1:0", SECRET_ANSWER).await.unwrap();
    let attempts = notify::deliver(
        &webhook(format!("http://127.0.0.1:{port}/hook")),
        &notice(),
        &policy(AddressPolicy::parse(&["127.0.0.1"]).unwrap()),
    )
    .await;
    assert_eq!(attempts.len(), 3, "a 500 is retried");
    for a in &attempts {
        assert_eq!(a.error.as_deref(), Some("HTTP 500"), "{a:?}");
        assert_eq!(a.http_status, Some(500));
        let detail = a.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("INTERNAL-ONLY"), "{a:?}");
        assert!(detail.chars().count() <= 200);
    }
    // A robot-style answer: the provider's code is shown, its message only in the detail.
    let robot = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 51\r\nconnection: close\r\n\r\n{\"errcode\":310000,\"errmsg\":\"INTERNAL-ONLY token=x\"}";
    let (port, _) = service("127.0.0.1:0", robot).await.unwrap();
    let channel = Channel::DingTalk(DingTalk {
        webhook_url: Secret::new(format!("http://127.0.0.1:{port}/robot/send?access_token=t")),
        secret: Secret::new("SECdingtalk"),
    });
    let attempts = notify::deliver(
        &channel,
        &notice(),
        &policy(AddressPolicy::parse(&["127.0.0.1"]).unwrap()),
    )
    .await;
    let a = attempts.last().unwrap();
    assert_eq!(
        a.error.as_deref(),
        Some("DingTalk refused it (HTTP 200, code 310000)"),
        "{a:?}"
    );
    assert!(
        a.detail
            .as_deref()
            .unwrap_or_default()
            .contains("INTERNAL-ONLY")
    );
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_not_followed() {
    let (inner_port, inner_hits) = service("127.0.0.1:0", SECRET_ANSWER).await.unwrap();
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{inner_port}/secret\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (port, _) = service("127.0.0.2:0", redirect).await.unwrap();
    let attempts = notify::deliver(
        &webhook(format!("http://127.0.0.2:{port}/hook")),
        &notice(),
        &policy(AddressPolicy::parse(&["127.0.0.2"]).unwrap()),
    )
    .await;
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("HTTP 302"),
        "{attempts:?}"
    );
    assert_eq!(
        inner_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn an_smtp_relay_on_an_internal_address_is_refused_unless_allowed() {
    let (port, hits) = service("127.0.0.1:0", "220 fake ESMTP\r\n").await.unwrap();
    for host in ["127.0.0.1", "localhost", "2130706433", "::1"] {
        let channel = Channel::Email(Email {
            host: host.into(),
            port: Some(port),
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            from: "hippo@example.com".into(),
            to: vec!["ops@example.com".into()],
        });
        let attempts =
            notify::deliver(&channel, &notice(), &policy(AddressPolicy::default())).await;
        assert_eq!(attempts.len(), 1, "{host}: {attempts:?}");
        assert!(
            attempts[0]
                .error
                .as_deref()
                .unwrap_or_default()
                .starts_with("refused:"),
            "{host}: {attempts:?}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
