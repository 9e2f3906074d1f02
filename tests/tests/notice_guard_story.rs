//! Issue 9, item 2: notice channels and repository URLs must not reach, read or map what only
//! Hippo's machine can reach. The real binary; "internal services" are loopback listeners
//! that count every connection.
use hippo_e2e::lab::Lab;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Answers every connection on `addr` with `answer`; counts them.
fn service(addr: &str, answer: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            });
        }
    });
    (port, hits)
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
const SECRET_500: &str = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 38\r\nconnection: close\r\n\r\nINTERNAL-ONLY aws_secret=wJalrXUtnFEMI";

/// A user holding `permissions` in the lab's environment; their token.
fn user(lab: &Lab, name: &str, permissions: &[&str]) -> String {
    let role = lab.hippo.ok(
        "/api/roles",
        &json!({"name": format!("{name}-role"), "permissions": permissions}),
        201,
    )["id"]
        .clone();
    lab.hippo.ok(
        "/api/users",
        &json!({"username": name, "password": "long enough password",
                "roles": [{"role_id": role, "environment_id": lab.env_id}]}),
        201,
    );
    lab.hippo.login(name, "long enough password")
}

#[test]
fn notices_to_internal_addresses_are_refused_at_send_time_and_no_reader_sees_an_answer() {
    // The administrator allows one internal gateway: 127.0.0.2.
    let lab = Lab::new(
        1,
        &[
            ("HIPPO_INTERNAL_ALLOWLIST", "127.0.0.2"),
            ("HIPPO_NOTICE_TIMEOUT_SECS", "2"),
        ],
    );
    let h = &lab.hippo;
    let (internal, internal_hits) = service("127.0.0.1:0", OK);
    let (gateway, _) = service("127.0.0.2:0", SECRET_500);
    let refused_urls = [
        format!("http://127.0.0.1:{internal}/hook"),
        format!("http://0x7f000001:{internal}/hook"),
        format!("http://2130706433:{internal}/hook"),
        format!("http://127.1:{internal}/hook"),
        format!("http://[::1]:{internal}/hook"),
        format!("http://[::ffff:127.0.0.1]:{internal}/hook"),
        format!("http://localhost:{internal}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ];
    let mut channels: Vec<Value> = refused_urls
        .iter()
        .map(|u| json!({"type": "webhook", "url": u, "secret": "s3cret-hook"}))
        .collect();
    channels.push(json!({"type": "webhook", "url": format!("http://127.0.0.2:{gateway}/hook"), "secret": "s3cret-hook"}));
    let gateway_index = (channels.len() - 1) as i64;
    let config = lab.config(json!({"notice_channels": channels}));
    let reader = user(&lab, "reader", &["request"]);

    let r = lab.request(config, "with guarded notices", json!({"branch": "main"}));
    let (release, _) = h.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}");

    // Every channel's "started" and "succeeded" notices are recorded.
    let deadline = Instant::now() + Duration::from_secs(60);
    let attempts = loop {
        let (_, list) = h.get(&format!("/api/releases/{r}/notices"));
        let list = list.as_array().cloned().unwrap_or_default();
        let done = |i: i64, n: &str, want: usize| {
            list.iter()
                .filter(|a| a["channel_index"] == i && a["notice"] == n)
                .count()
                == want
        };
        if ["started", "succeeded"]
            .iter()
            .all(|n| (0..gateway_index).all(|i| done(i, n, 1)) && done(gateway_index, n, 3))
        {
            break list;
        }
        assert!(Instant::now() < deadline, "attempts so far: {list:#?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    for a in &attempts {
        let error = a["error"].as_str().unwrap_or_default();
        if a["channel_index"] == gateway_index {
            assert_eq!(error, "HTTP 500", "{a}");
            assert_eq!(a["http_status"], 500, "{a}");
        } else {
            assert_eq!(a["ok"], false, "{a}");
            assert!(
                error.starts_with("refused:") && error.contains("HIPPO_INTERNAL_ALLOWLIST"),
                "{a}"
            );
        }
    }
    assert_eq!(
        internal_hits.load(Ordering::SeqCst),
        0,
        "a notice reached the internal service"
    );

    // A reader (not an administrator) sees the status, never the answer.
    let (s, seen) = h.call(
        &reader,
        "GET",
        &format!("/api/releases/{r}/notices"),
        &Value::Null,
    );
    assert_eq!(s, 200, "{seen}");
    assert_eq!(seen.as_array().map(Vec::len), Some(attempts.len()));
    assert!(!seen.to_string().contains("INTERNAL-ONLY"), "{seen:#}");
    assert!(!seen.to_string().contains("wJalrXUtnFEMI"), "{seen:#}");
    assert!(
        seen.as_array()
            .expect("list")
            .iter()
            .all(|a| a["detail"].is_null()),
        "{seen:#}"
    );
    // An administrator sees a short quote of it.
    let gateway_detail = attempts
        .iter()
        .find(|a| a["channel_index"] == gateway_index)
        .and_then(|a| a["detail"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(gateway_detail.contains("INTERNAL-ONLY"), "{attempts:#?}");
    assert!(gateway_detail.chars().count() <= 200);
}

#[test]
fn a_repository_url_used_as_a_port_probe_tells_non_administrators_nothing() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    // An open port that is not a Git server, and a closed one.
    let (open, _) = service("127.0.0.1:0", "+OK redis-like\r\n");
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = lab.config(json!({}));
    let editor = user(&lab, "editor", &["edit_configs", "request"]);

    let mut as_editor = Vec::new();
    let mut as_admin = Vec::new();
    for port in [open, closed] {
        let body =
            lab.config_body(json!({"repo_url": format!("ssh://git@127.0.0.1:{port}/x.git")}));
        let (s, out) = h.call(
            &editor,
            "PUT",
            &format!("/api/release-configs/{config}"),
            &body,
        );
        assert_eq!(s, 200, "{out}");
        let branches = format!("/api/release-configs/{config}/git/branches");
        let (s, e) = h.call(&editor, "GET", &branches, &Value::Null);
        assert_eq!(s, 502, "{e}");
        as_editor.push(e["message"].as_str().unwrap_or_default().to_owned());
        let (s, e) = h.call(
            &editor,
            "POST",
            "/api/releases",
            &json!({"config_id": config, "name": "probe", "branch": "main"}),
        );
        assert_eq!(s, 502, "{e}");
        as_editor.push(e["message"].as_str().unwrap_or_default().to_owned());
        let (s, e) = h.get(&branches);
        assert_eq!(s, 502, "{e}");
        as_admin.push(e["message"].as_str().unwrap_or_default().to_owned());
    }
    // The editor learns nothing: one message, whatever the port.
    assert!(
        as_editor.iter().all(|m| m == &as_editor[0]),
        "{as_editor:#?}"
    );
    assert!(
        as_editor[0].contains("internal network"),
        "{}",
        as_editor[0]
    );
    for m in &as_editor {
        for hint in [
            "refused",
            "Connection",
            "handshake",
            "timed out",
            &open.to_string(),
            &closed.to_string(),
        ] {
            assert!(!m.contains(hint), "{hint:?} in {m}");
        }
    }
    // The administrator sees why (and the two ports differ).
    assert_ne!(as_admin[0], as_admin[1], "{as_admin:#?}");
}
