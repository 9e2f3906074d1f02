//! Logins cannot stall the API (issue 9): password hashes are computed off the request threads,
//! failed logins are limited per user name and per client address (429 with `Retry-After`),
//! and a name or address that keeps failing is locked out until an admin clears it.
use hippo_e2e::hippo::{Hippo, client_builder};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "li-secret-password";

/// One login; (status, Retry-After seconds if any, body).
fn login_as(
    client: &reqwest::blocking::Client,
    base: &str,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> (u16, Option<u64>, Value) {
    let mut req = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": password}));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    match req.send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            (status, retry, r.json().unwrap_or(Value::Null))
        }
        Err(e) => (0, None, Value::String(e.to_string())),
    }
}

fn client() -> reqwest::blocking::Client {
    client_builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// A flooding client: wrong logins on one kept-alive connection, as fast as they are answered
/// (raw HTTP/1.1: a test client must cost far less than the server it floods).
struct Flooder {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Flooder {
    fn new(base: &str) -> Self {
        Self {
            addr: base.trim_start_matches("http://").to_owned(),
            conn: None,
        }
    }

    /// One wrong login; (status, Retry-After, body), or None if the connection failed.
    fn attempt(&mut self, username: &str) -> Option<(u16, Option<u64>, Value)> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
            self.conn = Some(BufReader::new(s));
        }
        let out = self.exchange(username);
        if out.is_none() {
            self.conn = None;
        }
        out
    }

    fn exchange(&mut self, username: &str) -> Option<(u16, Option<u64>, Value)> {
        let conn = self.conn.as_mut()?;
        let body = json!({"username": username, "password": "wrong-password"}).to_string();
        let req = format!(
            "POST /api/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        conn.get_mut().write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        conn.read_line(&mut line).ok()?;
        let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        let (mut len, mut retry) = (0usize, None);
        loop {
            line.clear();
            conn.read_line(&mut line).ok()?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':')?;
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().ok()?,
                "retry-after" => retry = v.trim().parse().ok(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).ok()?;
        Some((
            status,
            retry,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ))
    }
}

fn create_user(h: &Hippo, name: &str) {
    h.ok(
        "/api/users",
        &json!({"username": name, "password": PASSWORD, "roles": []}),
        201,
    );
}

fn p99(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64) * 0.99).ceil() as usize - 1]
}

#[test]
fn a_flood_of_wrong_logins_leaves_the_api_fast_and_the_right_password_works_once_the_window_passes()
{
    const WINDOW: u64 = 3;
    let h = Hippo::start(&[
        ("HIPPO_LOGIN_WINDOW_SECS", &WINDOW.to_string()),
        ("HIPPO_LOGIN_MAX_FAILURES", "5"),
        ("HIPPO_LOGIN_MAX_FAILURES_PER_ADDR", "10"),
        ("HIPPO_LOGIN_LOCKOUT_AFTER", "100"),
        ("HIPPO_LOGIN_HASH_THREADS", "1"),
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    create_user(&h, "li");
    h.ok(
        "/api/environments",
        &json!({"name": "Production", "tag": "prod"}),
        201,
    );

    // The same requests before the flood, for comparison in the failure message.
    let c = client();
    let list = |took: &mut Vec<f64>| {
        let t = Instant::now();
        let r = c
            .get(format!("{}/api/environments", h.base))
            .bearer_auth(&h.token)
            .send()
            .expect("GET /api/environments");
        assert_eq!(r.status().as_u16(), 200);
        let _ = r.bytes();
        took.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut before = Vec::new();
    for _ in 0..100 {
        list(&mut before);
    }

    // 64 clients log in with wrong passwords, as fast as they are answered, for 4 s: half as
    // `li`, half as names that do not exist.
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..64)
        .map(|i| {
            let (base, stop) = (h.base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut flooder = Flooder::new(&base);
                let name = if i % 2 == 0 {
                    "li".to_owned()
                } else {
                    format!("ghost-{i}")
                };
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    answers.push(flooder.attempt(&name).unwrap_or((0, None, Value::Null)));
                }
                answers
            })
        })
        .collect();

    // Meanwhile a user with a token lists environments, every 10 ms.
    let started = Instant::now();
    let mut took = Vec::new();
    while started.elapsed() < Duration::from_secs(4) {
        list(&mut took);
    }
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<(u16, Option<u64>, Value)> = flood
        .into_iter()
        .flat_map(|t| t.join().expect("flood thread"))
        .collect();

    let (p99_before, p99) = (p99(before), p99(took.clone()));
    eprintln!(
        "GET /api/environments p99 {p99_before:.1} ms before, {p99:.1} ms during a flood of {} \
         wrong logins",
        answers.len()
    );
    assert!(
        p99 < 50.0,
        "GET /api/environments p99 {p99:.1} ms during the flood ({} requests, max {:.1} ms; \
         {p99_before:.1} ms before it)\n{}",
        took.len(),
        took.iter().copied().fold(0.0, f64::max),
        h.log()
    );
    let count = |s: u16| answers.iter().filter(|a| a.0 == s).count();
    let (unauthorized, limited) = (count(401), count(429));
    assert_eq!(
        unauthorized + limited,
        answers.len(),
        "only 401 and 429: {:?}",
        answers.iter().find(|a| a.0 != 401 && a.0 != 429)
    );
    // The address's limit (10) bounds the passwords checked per window; 4 s is two windows.
    assert!(
        (1..=20).contains(&unauthorized),
        "{unauthorized} checked passwords"
    );
    assert!(limited > 64, "{limited} limited");
    for (_, retry, body) in answers.iter().filter(|a| a.0 == 429) {
        assert_eq!(body["error"], "too_many_logins", "{body}");
        assert!(
            retry.is_some_and(|r| (1..=WINDOW).contains(&r)),
            "Retry-After {retry:?}"
        );
    }

    // The right password: refused while the limit holds, accepted once the window has passed
    // (following Retry-After).
    let deadline = Instant::now() + Duration::from_secs(4 * WINDOW);
    let mut refused = 0;
    loop {
        let (status, retry, body) = login_as(&c, &h.base, "li", PASSWORD, None);
        if status == 200 {
            assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
            break;
        }
        assert_eq!(status, 429, "{body}");
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "li still refused after {}s: {body}",
            4 * WINDOW
        );
        std::thread::sleep(Duration::from_secs(retry.unwrap_or(1)));
    }
    assert!(refused >= 1, "the limit held right after the flood");
}

#[test]
fn a_name_that_keeps_failing_is_locked_out_until_an_admin_clears_it_and_the_clearing_is_audited() {
    let h = Hippo::start(&[
        ("HIPPO_LOGIN_WINDOW_SECS", "2"),
        ("HIPPO_LOGIN_MAX_FAILURES", "2"),
        ("HIPPO_LOGIN_MAX_FAILURES_PER_ADDR", "0"),
        ("HIPPO_LOGIN_LOCKOUT_AFTER", "2"),
        ("HIPPO_LOGIN_LOCKOUT_SECS", "600"),
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    create_user(&h, "li");
    create_user(&h, "ops");
    let ops = h.login("ops", PASSWORD);
    let c = client();
    let attempt = |password: &str| login_as(&c, &h.base, "li", password, None);

    // First round: two failures reach the limit; the next attempt waits.
    assert_eq!(attempt("wrong").0, 401);
    assert_eq!(attempt("wrong").0, 401);
    let (s, retry, body) = attempt(PASSWORD);
    assert_eq!((s, body["error"].as_str()), (429, Some("too_many_logins")));
    assert!(retry.is_some_and(|r| r <= 2), "{retry:?}");
    // Second round, after the window: reaching the limit again locks the name out.
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(attempt("wrong").0, 401);
    assert_eq!(attempt("wrong").0, 401);
    std::thread::sleep(Duration::from_millis(2200));
    let (s, retry, body) = attempt(PASSWORD);
    assert_eq!(
        (s, body["error"].as_str()),
        (429, Some("login_locked_out")),
        "{body}"
    );
    assert!(retry.is_some_and(|r| r > 500 && r <= 600), "{retry:?}");

    // Only admins see and clear lockouts.
    let (s, _) = h.call(&ops, "GET", "/api/login-lockouts", &Value::Null);
    assert_eq!(s, 403);
    let (s, list) = h.get("/api/login-lockouts");
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (&list[0]["kind"], &list[0]["subject"]),
        (&json!("user"), &json!("li"))
    );
    assert_eq!(list[0]["failures"], 4);
    let id = list[0]["id"].as_i64().expect("id");
    let (s, _) = h.call(
        &ops,
        "DELETE",
        &format!("/api/login-lockouts/{id}"),
        &Value::Null,
    );
    assert_eq!(s, 403);
    let (s, body) = h.delete(&format!("/api/login-lockouts/{id}"));
    assert_eq!(s, 204, "{body}");
    let (_, list) = h.get("/api/login-lockouts");
    assert_eq!(list, json!([]));
    let (s, _) = h.delete(&format!("/api/login-lockouts/{id}"));
    assert_eq!(s, 404);

    // Cleared: the right password works at once.
    let (s, _, body) = attempt(PASSWORD);
    assert_eq!(s, 200, "{body}");
    let (_, audit) = h.get("/api/audit?entity=login_lockout");
    let entries = audit.as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["action"], "clear");
    assert_eq!(entries[0]["actor"], "admin");
    assert_eq!(entries[0]["entity_id"], id);
    assert_eq!(entries[0]["changes"]["subject"], "li");
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_is_limited_on_its_own_and_cannot_forge_its_way_out()
{
    // The test client plays the proxy: it connects from 127.0.0.1 and forwards client addresses.
    let h = Hippo::start(&[
        ("HIPPO_TRUSTED_PROXIES", "127.0.0.1, ::1"),
        ("HIPPO_LOGIN_MAX_FAILURES", "0"),
        ("HIPPO_LOGIN_MAX_FAILURES_PER_ADDR", "2"),
        ("HIPPO_LOGIN_LOCKOUT_AFTER", "1"),
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    let c = client();
    let from = |fwd: &str| login_as(&c, &h.base, "admin", "wrong", Some(fwd));

    assert_eq!(from("198.51.100.1").0, 401);
    assert_eq!(from("198.51.100.1").0, 401);
    // Limit reached once: locked out at once (lockout after 1). A forged left-hand entry does
    // not help: the proxy appended the real address on the right.
    let (s, _, body) = from("203.0.113.77, 198.51.100.1");
    assert_eq!(
        (s, body["error"].as_str()),
        (429, Some("login_locked_out")),
        "{body}"
    );
    // Another client behind the same proxy is not affected.
    assert_eq!(from("198.51.100.2").0, 401);
    // Nor is the admin logging in directly (no forwarded address: the proxy itself).
    let (s, _, body) = login_as(&c, &h.base, "admin", hippo_e2e::hippo::ADMIN_PASSWORD, None);
    assert_eq!(s, 200, "{body}");

    let (_, list) = h.get("/api/login-lockouts");
    let subjects: Vec<(&str, &str)> = list
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| Some((x["kind"].as_str()?, x["subject"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(subjects, vec![("address", "198.51.100.1")], "{list}");
}
