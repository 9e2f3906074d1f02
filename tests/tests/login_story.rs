//! Logins are limited (issue 9): failed logins per user name and per client address (429 with
//! `Retry-After`), and a name or address that keeps failing is locked out until an admin clears
//! it. (`login_flood_story`: a flood of logins does not slow the API.)
use hippo_e2e::hippo::{Hippo, client_builder};
use serde_json::{Value, json};
use std::time::Duration;

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

fn create_user(h: &Hippo, name: &str) {
    h.ok(
        "/api/users",
        &json!({"username": name, "password": PASSWORD, "roles": []}),
        201,
    );
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
