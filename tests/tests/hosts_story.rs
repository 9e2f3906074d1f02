//! Bringing hosts in (issue 14), on real sshd hosts: the platform key installed with a
//! one-time password that ends up nowhere, connectivity checks (a good host, a frozen one, one
//! whose key changed; one at a time and in bulk), and imports of many hosts at once, all or
//! nothing.
use hippo_e2e::hippo::Hippo;
use hippo_e2e::lab::Lab;
use hippo_e2e::sshd::{PasswordUser, TestHost};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const HOST_PASSWORD: &str = "Tr0ub4dor-&-3-host-pw";
const WRONG_PASSWORD: &str = "not-the-pw-9f2c1e";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        {
            found.push(p.display().to_string());
        }
    }
    found
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

#[test]
fn the_platform_key_is_installed_once_with_a_one_time_password_that_is_found_nowhere() {
    let mut lab = Lab::new(1, &[]);
    let (_, key) = lab.hippo.get("/api/ssh-key");
    let public = key["public_key"].as_str().expect("public key").to_owned();
    // A host where `deploy` logs in with a password and has no authorized_keys yet.
    let host = TestHost::start_with_password_user(7, &public, PasswordUser::deploy(HOST_PASSWORD))
        .expect("password host starts");
    lab.hippo.attach_log(hippo_e2e::proc::LogFile::new(
        "sshd deploy host",
        host.log_path(),
    ));
    let h = lab.hippo.ok(
        "/api/hosts",
        &json!({"environment_id": lab.env_id, "name": "fresh-1", "addr": host.addr,
                "port": host.port, "username": "deploy"}),
        201,
    );
    let hid = id(&h);
    let mut answers = Vec::new();

    // Before: the platform key does not let Hippo in.
    let (s, before) = lab
        .hippo
        .post(&format!("/api/hosts/{hid}/check"), &json!({}));
    assert_eq!(s, 200, "{before}");
    assert_eq!(
        (before["ok"].as_bool(), before["reason"].as_str()),
        (Some(false), Some("auth")),
        "{before}"
    );
    answers.push(before);

    // A wrong password is a clear 422 on `password`.
    let (s, wrong) = lab.hippo.post(
        &format!("/api/hosts/{hid}/install-key"),
        &json!({"password": WRONG_PASSWORD}),
    );
    assert_eq!(
        (s, wrong["field"].as_str(), wrong["error"].as_str()),
        (422, Some("password"), Some("wrong_password")),
        "{wrong}"
    );
    answers.push(wrong);

    // The right one: the key is added, key login works, the host checks ok.
    let (s, done) = lab.hippo.post(
        &format!("/api/hosts/{hid}/install-key"),
        &json!({"password": HOST_PASSWORD}),
    );
    assert_eq!(s, 200, "{done}\n{}", lab.hippo.log());
    assert_eq!(done["added"], true, "{done}");
    assert_eq!(done["check"]["ok"], true, "{done}");
    assert_eq!(done["check"]["remote_user"], "deploy", "{done}");
    assert_eq!(
        done["host_key_fingerprint"].as_str(),
        Some(host.host_key_fingerprint().expect("fingerprint").as_str())
    );
    answers.push(done);
    let keys_file = host.user_home().expect("home").join(".ssh/authorized_keys");
    let keys = std::fs::read_to_string(&keys_file).expect("authorized_keys written");
    assert_eq!(
        keys.lines()
            .filter(|l| l.contains(public.split_whitespace().nth(1).expect("blob")))
            .count(),
        1,
        "{keys}"
    );
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&keys_file).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), 4242, "owned by the user");
        let dir = std::fs::metadata(keys_file.parent().expect("dir")).expect("meta");
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    }

    // Twice: the key is there once.
    let (s, again) = lab.hippo.post(
        &format!("/api/hosts/{hid}/install-key"),
        &json!({"password": HOST_PASSWORD}),
    );
    assert_eq!((s, again["added"].as_bool()), (200, Some(false)), "{again}");
    answers.push(again);
    assert_eq!(std::fs::read_to_string(&keys_file).expect("read"), keys);

    // A host that refuses password login says so.
    let (s, refused) = lab.hippo.post(
        &format!("/api/hosts/{}/install-key", lab.host_ids[0]),
        &json!({"password": HOST_PASSWORD}),
    );
    assert_eq!(
        (s, refused["error"].as_str()),
        (422, Some("password_login_refused")),
        "{refused}"
    );
    answers.push(refused);

    // The audit names the installation, never the password.
    let (_, audit) = lab
        .hippo
        .get(&format!("/api/audit?entity=host&entity_id={hid}"));
    assert!(audit.to_string().contains("install_key"), "{audit}");
    answers.push(audit);
    let (_, list) = lab.hippo.get("/api/hosts");
    answers.push(list);

    for pw in [HOST_PASSWORD, WRONG_PASSWORD] {
        for a in &answers {
            assert!(
                !a.to_string().contains(pw),
                "an answer holds the password: {a}"
            );
        }
        assert!(!lab.hippo.log().contains(pw), "a log holds the password");
        let found = files_containing(lab.hippo.data.path(), pw);
        assert!(found.is_empty(), "files hold the password: {found:?}");
        // On PostgreSQL the data is not in the data folder: a dump of the database.
        let url = lab.hippo.database_url();
        if url.starts_with("postgres") {
            let dump = std::process::Command::new("pg_dump")
                .arg(&url)
                .output()
                .expect("pg_dump runs");
            assert!(
                dump.status.success(),
                "{}",
                String::from_utf8_lossy(&dump.stderr)
            );
            assert!(dump.stdout.len() > 1000, "the dump holds the database");
            let text = String::from_utf8_lossy(&dump.stdout);
            assert!(!text.contains(pw), "the database holds the password");
        }
    }
}

#[test]
fn a_check_reports_the_fingerprint_and_latency_a_frozen_host_times_out_and_a_changed_key_is_named()
{
    let io = 3;
    let mut lab = Lab::new(
        3,
        &[
            ("HIPPO_SSH_IO_TIMEOUT_SECS", "3"),
            ("HIPPO_SSH_CONNECT_TIMEOUT_SECS", "3"),
        ],
    );
    let config = lab.config(json!({}));
    let [a, b, c] = [lab.host_ids[0], lab.host_ids[1], lab.host_ids[2]];

    // A good host: ok, its fingerprint (pinned now), the round trip, who Hippo is, the paths.
    let (s, good) = lab.hippo.post(&format!("/api/hosts/{a}/check"), &json!({}));
    assert_eq!(s, 200, "{good}");
    assert_eq!(good["ok"], true, "{good}");
    assert_eq!(good["pinned"], true, "{good}");
    assert_eq!(
        good["host_key_fingerprint"].as_str(),
        Some(lab.hosts[0].host_key_fingerprint().expect("fp").as_str())
    );
    assert!(good["latency_ms"].as_u64().is_some(), "{good}");
    assert_eq!(good["remote_user"], "root");
    let paths = good["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 2, "{good}");
    assert!(
        paths
            .iter()
            .all(|p| p["writable"] == true && p["config_id"] == config),
        "{good}"
    );
    // The list shows the stored result.
    let (_, host) = lab.hippo.get(&format!("/api/hosts/{a}"));
    assert_eq!(host["last_check"]["ok"], true, "{host}");
    assert!(host["host_key_fingerprint"].is_string(), "{host}");

    // Pin b's key, then the host is "reinstalled": the check names the changed key.
    let (_, first) = lab.hippo.post(&format!("/api/hosts/{b}/check"), &json!({}));
    assert_eq!(first["ok"], true, "{first}");
    lab.hosts[1].change_host_key().expect("new key");
    let (s, changed) = lab.hippo.post(&format!("/api/hosts/{b}/check"), &json!({}));
    assert_eq!(s, 200);
    assert_eq!(
        (changed["ok"].as_bool(), changed["reason"].as_str()),
        (Some(false), Some("host_key_changed")),
        "{changed}"
    );
    assert_eq!(
        changed["host_key_fingerprint"].as_str(),
        Some(lab.hosts[1].host_key_fingerprint().expect("fp").as_str()),
        "the new, refused key is shown"
    );

    // A frozen host times out within the configured limit.
    lab.hosts[2].pause();
    let started = Instant::now();
    let (s, frozen) = lab.hippo.post(&format!("/api/hosts/{c}/check"), &json!({}));
    let took = started.elapsed();
    assert_eq!(s, 200);
    assert_eq!(
        (frozen["ok"].as_bool(), frozen["reason"].as_str()),
        (Some(false), Some("timeout")),
        "{frozen}"
    );
    assert!(took < Duration::from_secs(io + 4), "took {took:?}");

    // In bulk, in parallel: all three within about one time-out.
    let started = Instant::now();
    let (s, bulk) = lab
        .hippo
        .post("/api/hosts/check", &json!({"host_ids": [a, b, c]}));
    let took = started.elapsed();
    assert_eq!(s, 200, "{bulk}");
    let reasons: Vec<Option<&str>> = bulk["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec![None, Some("host_key_changed"), Some("timeout")],
        "{bulk}"
    );
    assert!(took < Duration::from_secs(io + 4), "took {took:?}");
    lab.hosts[2].resume();

    // The list shows each host's last result.
    let (_, list) = lab.hippo.get("/api/hosts");
    let last: Vec<Value> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|h| h["last_check"]["ok"].clone())
        .collect();
    assert_eq!(
        last,
        vec![json!(true), json!(false), json!(false)],
        "{list}"
    );

    // A host one may not see is named as absent; one may see but not manage, refused.
    let (s, body) = lab
        .hippo
        .post("/api/hosts/check", &json!({"host_ids": [a, 999_999]}));
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("host_ids[1]")),
        "{body}"
    );
    let role = lab.hippo.ok(
        "/api/roles",
        &json!({"name": "Requesters", "permissions": ["request"]}),
        201,
    );
    lab.hippo.ok(
        "/api/users",
        &json!({"username": "rita", "password": "correct horse battery",
                "roles": [{"role_id": id(&role), "environment_id": lab.env_id}]}),
        201,
    );
    let rita = lab.hippo.login("rita", "correct horse battery");
    let (s, body) = lab
        .hippo
        .call(&rita, "POST", &format!("/api/hosts/{a}/check"), &json!({}));
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("manage_hosts")),
        "{body}"
    );

    // A host moved to another address forgets its pinned key and its last check.
    let (_, before) = lab.hippo.get(&format!("/api/hosts/{a}"));
    let mut moved = before.clone();
    for k in [
        "id",
        "environment_name",
        "host_key",
        "host_key_fingerprint",
        "last_check",
        "created_at",
        "updated_at",
    ] {
        moved.as_object_mut().expect("object").remove(k);
    }
    moved["port"] = json!(lab.hosts[1].port);
    let (s, after) = lab.hippo.put(&format!("/api/hosts/{a}"), &moved);
    assert_eq!(s, 200, "{after}");
    assert!(
        after.get("last_check").is_none() && after.get("host_key").is_none(),
        "{after}"
    );
}

fn import(h: &Hippo, body: &Value) -> (u16, Value) {
    h.post("/api/hosts/import", body)
}

fn host_count(h: &Hippo) -> usize {
    h.get("/api/hosts").1.as_array().map_or(0, Vec::len)
}

#[test]
fn two_hundred_hosts_import_in_one_request_and_a_file_with_one_bad_row_imports_nothing() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    h.ok(
        "/api/environments",
        &json!({"name": "Staging", "tag": "staging"}),
        201,
    );

    // 200 hosts of two environments, in one request.
    let mut csv = String::from("name,addr,port,user,environment,category\n");
    for i in 0..200 {
        let env = if i % 2 == 0 { "prod" } else { "staging" };
        csv.push_str(&format!(
            "node-{i},10.1.{}.{},22,deploy,{env},web\n",
            i / 250,
            i % 250
        ));
    }
    let started = Instant::now();
    let (s, out) = import(h, &json!({"format": "csv", "content": csv}));
    assert_eq!(s, 201, "{out}");
    assert_eq!(out["hosts"].as_array().map(Vec::len), Some(200));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(host_count(h), 201);
    assert_eq!(out["hosts"][1]["environment_name"], "Staging");
    assert_eq!(out["hosts"][1]["username"], "deploy");

    // One bad row (line 3: a port out of range) imports nothing and is named.
    let bad = "[\n {\"name\": \"j-1\", \"addr\": \"10.2.0.1\", \"environment\": \"prod\"},\n {\"name\": \"j-2\", \"addr\": \"10.2.0.2\", \"port\": 70000, \"environment\": \"prod\"},\n {\"name\": \"j-3\", \"addr\": \"10.2.0.3\", \"environment\": \"prod\"}\n]";
    let (s, body) = import(h, &json!({"format": "json", "content": bad}));
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("content")),
        "{body}"
    );
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(msg.contains("line 3: port"), "{msg}");
    assert!(!msg.contains("line 2") && !msg.contains("line 4"), "{msg}");
    assert_eq!(host_count(h), 201);

    // Every bad row is named: an unknown environment, a name taken, a bad address, a
    // duplicate within the file.
    let csv = "name,addr,environment\nok-1,10.3.0.1,prod\nx,10.3.0.2,nowhere\nnode-0,10.3.0.3,prod\ny,bad addr!,prod\nok-1,10.3.0.4,prod\n";
    let (s, body) = import(h, &json!({"format": "csv", "content": csv}));
    assert_eq!(s, 422, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    for line in [
        "line 3: environment",
        "line 4: name",
        "line 5: addr",
        "line 6: name",
    ] {
        assert!(msg.contains(line), "{line} in {msg}");
    }
    assert!(!msg.contains("line 2"), "{msg}");
    assert_eq!(host_count(h), 201);

    // With `check`, each imported host is checked: the real one is ok.
    let real = &lab.hosts[0];
    let csv = format!(
        "name,addr,port,user,environment\nreal,{},{},root,prod\n",
        real.addr, real.port
    );
    let (s, out) = import(h, &json!({"format": "csv", "content": csv, "check": true}));
    assert_eq!(s, 201, "{out}");
    assert_eq!(out["checks"][0]["ok"], true, "{out}");
    assert!(out["hosts"][0]["host_key"].is_string(), "{out}");
    let (_, audit) = h.get("/api/audit?entity=host");
    assert!(audit.to_string().contains("\"import\""), "{audit}");
}

/// A WebSocket to Hippo's `ws_path`, with a read time-out.
fn terminal_socket(
    h: &Hippo,
    ws_path: &str,
) -> Result<tungstenite::WebSocket<std::net::TcpStream>, String> {
    let addr = h.base.trim_start_matches("http://").to_owned();
    let tcp = std::net::TcpStream::connect(&addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}{ws_path}");
    tungstenite::client(url.as_str(), tcp)
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// Reads frames until the output holds `needle` (or the server ends the session); the output.
fn read_until(
    ws: &mut tungstenite::WebSocket<std::net::TcpStream>,
    needle: &str,
) -> (String, Option<Value>) {
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(tungstenite::Message::Binary(b)) => {
                out.push_str(&String::from_utf8_lossy(&b));
                if out.contains(needle) {
                    return (out, None);
                }
            }
            Ok(tungstenite::Message::Text(t)) => {
                return (out, serde_json::from_str(t.as_str()).ok());
            }
            Ok(tungstenite::Message::Close(_)) | Err(_) => return (out, None),
            Ok(_) => {}
        }
    }
    (out, None)
}

fn send(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, v: Value) {
    ws.send(tungstenite::Message::text(v.to_string()))
        .expect("send");
}

#[test]
fn a_terminal_session_runs_a_shell_is_recorded_for_admins_and_needs_the_permission() {
    let lab = Lab::new(1, &[("HIPPO_TERMINAL_IDLE_SECS", "5")]);
    let h = &lab.hippo;
    let host = lab.host_ids[0];
    let open = h.ok(&format!("/api/hosts/{host}/terminal"), &json!({}), 201);
    let ws_path = open["ws_path"].as_str().expect("ws_path").to_owned();
    let mut ws = terminal_socket(h, &ws_path).unwrap_or_else(|e| panic!("{e}\n{}", h.log()));
    send(&mut ws, json!({"type": "resize", "cols": 100, "rows": 30}));
    send(&mut ws, json!({"type": "input", "data": "echo $((6*7))\r"}));
    let (out, end) = read_until(&mut ws, "42\r\n");
    assert!(
        out.contains("42\r\n"),
        "output: {out:?} end: {end:?}\n{}",
        h.log()
    );
    // The ticket opened its session once.
    assert!(
        terminal_socket(h, &ws_path).is_err(),
        "a used ticket opens nothing"
    );
    send(&mut ws, json!({"type": "input", "data": "exit\r"}));
    let (_, end) = read_until(&mut ws, "\u{0}never");
    assert_eq!(
        end.as_ref().map(|e| e["reason"].clone()),
        Some(json!("host_closed")),
        "{end:?}"
    );

    // Admins read the session and its transcript; the audit names it.
    let (_, sessions) = h.get(&format!("/api/terminal-sessions?host_id={host}"));
    let s = &sessions[0];
    assert_eq!(
        (s["username"].as_str(), s["end_reason"].as_str()),
        (Some("admin"), Some("host_closed")),
        "{sessions}"
    );
    assert!(s["ended_at"].is_string(), "{s}");
    let (_, full) = h.get(&format!("/api/terminal-sessions/{}", s["id"]));
    let entries = full["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["k"] == "i" && e["d"] == "echo $((6*7))\r"),
        "{full}"
    );
    let shown: String = entries
        .iter()
        .filter(|e| e["k"] == "o")
        .filter_map(|e| e["d"].as_str())
        .collect();
    assert!(shown.contains("42"), "{full}");
    let (_, audit) = h.get(&format!("/api/audit?entity=host&entity_id={host}"));
    assert!(audit.to_string().contains("\"terminal\""), "{audit}");

    // Without `terminal` in the environment: 403; with it: a ticket; the transcripts stay
    // the admins'.
    let mk = |name: &str, perms: &[&str]| {
        let role = h.ok(
            "/api/roles",
            &json!({"name": name, "permissions": perms}),
            201,
        );
        h.ok(
            "/api/users",
            &json!({"username": name, "password": "correct horse battery",
                    "roles": [{"role_id": id(&role), "environment_id": lab.env_id}]}),
            201,
        );
        h.login(name, "correct horse battery")
    };
    let hosts_only = mk("hostkeeper", &["manage_hosts"]);
    let (s, body) = h.call(
        &hosts_only,
        "POST",
        &format!("/api/hosts/{host}/terminal"),
        &json!({}),
    );
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("terminal")),
        "{body}"
    );
    let operator = mk("operator", &["terminal"]);
    let (s, body) = h.call(
        &operator,
        "POST",
        &format!("/api/hosts/{host}/terminal"),
        &json!({}),
    );
    assert_eq!(s, 201, "{body}");
    let (s, _) = h.call(&operator, "GET", "/api/terminal-sessions", &Value::Null);
    assert_eq!(s, 403);

    // A session nobody types in ends after the idle time-out.
    let open = h.ok(&format!("/api/hosts/{host}/terminal"), &json!({}), 201);
    let mut ws = terminal_socket(h, open["ws_path"].as_str().expect("ws_path")).expect("ws");
    let started = Instant::now();
    let (_, end) = read_until(&mut ws, "\u{0}never");
    // Seen once in CI (PostgreSQL pass, 2026-12-01): no end frame at all; the log says why.
    assert_eq!(
        end.as_ref().map(|e| e["reason"].clone()),
        Some(json!("idle")),
        "{end:?}\n{}",
        h.log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
