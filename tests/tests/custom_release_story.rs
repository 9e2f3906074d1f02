//! Custom releases (config kind `custom`): the config lists its steps — a command on the
//! release server, a transfer to every host, a command on every host — and Hippo runs them in
//! order, stops at the first failure saying which step, host and exit code, and keeps versions
//! and rollback as for a regular release: a transfer's destination is a link into the deploy
//! path, which switches all or nothing. Files uploaded with a request reach every host intact.
use hippo_e2e::hippo::client_builder;
use hippo_e2e::lab::{DEPLOY, Lab, host_path};
use hippo_e2e::sshd::TestHost;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const STATIC: &str = "/srv/app/static";

/// Build on the server, transfer `dist/` to /srv/app/static, "restart" on every host (the
/// restart writes down what the destination serves at that moment).
fn three_steps() -> Value {
    json!([
        {"type": "server_command",
         "script": "mkdir -p dist\ncp index.html dist/\necho \"$HIPPO_COMMIT\" > dist/commit.txt\n"},
        {"type": "transfer", "source": "tree", "path": "dist/", "destination": STATIC},
        {"type": "target_command",
         "script": format!("echo \"restarted $HIPPO_VERSION $(cat {STATIC}/commit.txt)\" >> /srv/app/restarts.log\n")},
    ])
}

fn custom_config(lab: &Lab, actions: Value) -> i64 {
    lab.config(json!({"kind": "custom", "filter": "", "actions": actions}))
}

/// A file under the version `host` serves (None when nothing is live).
fn served(lab: &Lab, host: &TestHost, rel: &str) -> Option<String> {
    std::fs::read_to_string(lab.live(host)?.join(rel)).ok()
}

fn live_version(lab: &Lab, host: &TestHost) -> Option<String> {
    Some(lab.live(host)?.file_name()?.to_str()?.to_owned())
}

fn step_positions(events: &[Value], total: usize) -> Vec<usize> {
    (1..=total)
        .map(|s| {
            events
                .iter()
                .position(|e| {
                    e["status"] == "started"
                        && e["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with(&format!("step {s} of {total}:")))
                })
                .unwrap_or_else(|| panic!("no start of step {s}: {events:#?}"))
        })
        .collect()
}

#[test]
fn a_custom_release_runs_its_steps_in_order_and_a_failing_step_switches_no_host() {
    let lab = Lab::new(2, &[]);
    let config = custom_config(&lab, three_steps());
    let c1 = lab.repo.head("main").expect("head");
    let r1 = lab.request(config, "custom one", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r1);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
    let v1 = release["version"].as_str().expect("version").to_owned();

    // In order: build, transfer, (switch), restart — and the restart saw the new files.
    let at = step_positions(&events, 3);
    assert!(at[0] < at[1] && at[1] < at[2], "{at:?}");
    let switched = events
        .iter()
        .position(|e| e["stage"] == "switch" && e["status"] == "succeeded" && e["host"].is_string())
        .expect("a switch event");
    assert!(at[1] < switched && switched < at[2], "{at:?} {switched}");
    for h in &lab.hosts {
        assert_eq!(
            std::fs::read_link(host_path(h, STATIC)).expect("destination is a link"),
            std::path::PathBuf::from(format!("{DEPLOY}/srv/app/static"))
        );
        assert_eq!(live_version(&lab, h).as_deref(), Some(v1.as_str()));
        assert_eq!(
            served(&lab, h, "srv/app/static/commit.txt").as_deref(),
            Some(format!("{c1}\n").as_str())
        );
        assert_eq!(
            served(&lab, h, "srv/app/static/index.html").as_deref(),
            Some("<h1>v1</h1>\n")
        );
        let log = std::fs::read_to_string(host_path(h, "/srv/app/restarts.log")).expect("log");
        assert_eq!(log, format!("restarted {v1} {c1}\n"));
    }
    let (_, shown) = lab.hippo.get(&format!("/api/release-configs/{config}"));
    assert_eq!(shown["kind"], "custom");
    assert_eq!(shown["actions"][1]["path"], "dist", "{shown}");

    // The second step fails on web-2: nothing is switched, the third step never runs.
    let mut body = lab.config_body(json!({"kind": "custom", "filter": ""}));
    let mut failing = three_steps();
    failing.as_array_mut().expect("array").insert(
        1,
        json!({"type": "target_command",
               "script": "echo checking\nif [ \"$HIPPO_HOST_NAME\" = web-2 ]; then exit 7; fi\n"}),
    );
    body["actions"] = failing;
    let (status, out) = lab
        .hippo
        .put(&format!("/api/release-configs/{config}"), &body);
    assert_eq!(status, 200, "{out}");
    lab.repo
        .commit_index("<h1>v2</h1>\n", "v2")
        .expect("commit");
    let r2 = lab.request(config, "custom two", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r2);
    assert_eq!(release["status"], "failed", "{release}");
    let error = release["error"].as_str().expect("error");
    assert!(
        error.starts_with("step 2 of 4 (command on the targets) failed on web-2:")
            && error.contains("exited with code 7"),
        "{error}"
    );
    assert!(
        !events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("step 3 of 4"))),
        "step 3 ran: {events:#?}"
    );
    for h in release["hosts"].as_array().expect("hosts") {
        assert_ne!(h["status"], "switched", "{h}");
    }
    for h in &lab.hosts {
        assert_eq!(live_version(&lab, h).as_deref(), Some(v1.as_str()));
        assert_eq!(
            served(&lab, h, "srv/app/static/index.html").as_deref(),
            Some("<h1>v1</h1>\n")
        );
    }
}

#[test]
fn a_second_custom_release_then_a_rollback_switches_the_destination_back_without_sending_files() {
    let lab = Lab::new(2, &[]);
    let config = custom_config(&lab, three_steps());
    let r1 = lab.request(config, "first", json!({"branch": "main"}));
    let (first, _) = lab.hippo.run_release(r1);
    assert_eq!(first["status"], "succeeded", "{first}");
    let v1 = first["version"].as_str().expect("version").to_owned();
    lab.repo
        .commit_index("<h1>v2</h1>\n", "v2")
        .expect("commit");
    let r2 = lab.request(config, "second", json!({"branch": "main"}));
    let (second, _) = lab.hippo.run_release(r2);
    assert_eq!(second["status"], "succeeded", "{second}");
    for h in &lab.hosts {
        assert_eq!(
            served(&lab, h, "srv/app/static/index.html").as_deref(),
            Some("<h1>v2</h1>\n")
        );
    }
    let (_, versions) = lab
        .hippo
        .get(&format!("/api/release-configs/{config}/versions"));
    assert_eq!(
        versions[0]["versions"].as_array().expect("versions").len(),
        2,
        "{versions}"
    );

    let back = lab.hippo.ok(
        "/api/releases",
        &json!({"config_id": config, "name": "back", "kind": "rollback", "version": v1}),
        201,
    );
    let (rolled, events) = lab.hippo.run_release(back["id"].as_i64().expect("id"));
    assert_eq!(rolled["status"], "succeeded", "{rolled}\n{events:#?}");
    for h in rolled["hosts"].as_array().expect("hosts") {
        assert_eq!(h["bytes_sent"], 0, "{h}");
        assert_eq!(h["status"], "switched", "{h}");
    }
    assert!(
        !events
            .iter()
            .any(|e| e["bytes_sent"].as_u64().is_some_and(|b| b > 0)),
        "bytes were sent: {events:#?}"
    );
    for h in &lab.hosts {
        assert_eq!(live_version(&lab, h).as_deref(), Some(v1.as_str()));
        assert_eq!(
            served(&lab, h, "srv/app/static/index.html").as_deref(),
            Some("<h1>v1</h1>\n")
        );
        // The destination link itself never moved: it points into the deploy path.
        assert_eq!(
            std::fs::read_link(host_path(h, STATIC)).expect("link"),
            std::path::PathBuf::from(format!("{DEPLOY}/srv/app/static"))
        );
    }
}

fn put_file(lab: &Lab, release: i64, step: u32, data: &[u8]) -> (u16, Value) {
    let r = client_builder()
        .build()
        .expect("client")
        .put(format!(
            "{}/api/releases/{release}/uploads/{step}",
            lab.hippo.base
        ))
        .bearer_auth(&lab.hippo.token)
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .expect("upload");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn an_uploaded_file_reaches_every_host_intact_and_the_api_names_every_bad_field() {
    let lab = Lab::new(2, &[("HIPPO_MAX_UPLOAD_BYTES", "2000000")]);
    let h = &lab.hippo;
    // The API refuses bad custom configs with 422 naming the field; nothing is written.
    let bad = |extra: Value, field: &str| {
        let (status, out) = h.post("/api/release-configs", &lab.config_body(extra));
        assert_eq!((status, out["field"].as_str()), (422, Some(field)), "{out}");
    };
    bad(
        json!({"kind": "custom", "filter": "", "actions": []}),
        "actions",
    );
    bad(
        json!({"kind": "custom", "filter": "", "actions": [{"type": "transfer", "source": "tree", "path": "dist"}]}),
        "actions[0].destination",
    );
    bad(
        json!({"kind": "custom", "filter": "", "actions": [{"type": "target_command"}]}),
        "actions[0].script",
    );
    bad(
        json!({"kind": "custom", "filter": "", "actions": [{"type": "transfer", "source": "tree", "path": "../x", "destination": "/srv/x"}]}),
        "actions[0].path",
    );
    bad(
        json!({"kind": "custom", "filter": "", "actions": [{"type": "transfer", "source": "upload", "destination": format!("{DEPLOY}/x")}]}),
        "actions[0].destination",
    );
    bad(
        json!({"kind": "custom", "filter": "", "actions": [
            {"type": "transfer", "source": "upload", "destination": "/srv/a"},
            {"type": "transfer", "source": "upload", "destination": "/srv/a/b"}]}),
        "actions[1].destination",
    );
    bad(
        json!({"actions": [{"type": "target_command", "script": "true"}]}),
        "actions",
    );
    bad(
        json!({"kind": "custom", "filter": "", "hooks": {"after_release": "x"}, "actions": [{"type": "target_command", "script": "true"}]}),
        "hooks.after_release",
    );
    let (_, configs) = h.get("/api/release-configs");
    assert_eq!(configs, json!([]));

    let config = custom_config(
        &lab,
        json!([
            {"type": "transfer", "source": "upload", "destination": "/srv/app/bin/app.bin"},
            {"type": "target_command", "script": "sha256sum /srv/app/bin/app.bin | cut -d' ' -f1 > /srv/app/sum.txt\n"},
        ]),
    );
    let r = lab.request(config, "with a file", json!({"branch": "main"}));
    // Without its file the release does not run.
    let (status, out) = h.post(&format!("/api/releases/{r}/run"), &Value::Null);
    assert_eq!(
        (status, out["error"].as_str()),
        (409, Some("missing_upload")),
        "{out}"
    );
    // Step 2 takes no file; a file over the limit is refused.
    assert_eq!(put_file(&lab, r, 2, b"x").0, 422);
    assert_eq!(put_file(&lab, r, 1, &vec![0u8; 2_000_001]).0, 413);

    // 1.5 MB of bytes that compress badly.
    let mut data = Vec::with_capacity(1_500_000);
    let mut x: u32 = 2_463_534_242;
    while data.len() < 1_500_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let sum = hex::encode(Sha256::digest(&data));
    let (status, stored) = put_file(&lab, r, 1, &data);
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["sha256"], sum.as_str());
    assert_eq!(stored["size"], data.len());
    let (_, listed) = h.get(&format!("/api/releases/{r}/uploads"));
    assert_eq!(listed[0]["sha256"], sum.as_str(), "{listed}");

    let (release, events) = h.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
    for host in &lab.hosts {
        let got = std::fs::read(lab.live(host).expect("live").join("srv/app/bin/app.bin"))
            .expect("the file");
        assert_eq!(hex::encode(Sha256::digest(&got)), sum);
        let seen = std::fs::read_to_string(host_path(host, "/srv/app/sum.txt")).expect("sum");
        assert_eq!(seen.trim(), sum, "the host's own sha256sum");
    }
    // After the run, files can no longer be uploaded to it.
    assert_eq!(put_file(&lab, r, 1, b"late").0, 409);
}
