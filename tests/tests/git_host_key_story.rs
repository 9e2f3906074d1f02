//! A Git server reached over SSH: its host key is pinned on the first fetch, shown on the
//! config; a changed key stops the fetch (API and release) until an admin forgets it.
use hippo_e2e::lab::Lab;
use serde_json::json;

#[test]
fn a_changed_host_key_of_the_git_server_stops_the_fetch_until_an_admin_forgets_it() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let (mut git_host, url) = lab.git_server(9);
    let config = lab.config(json!({"repo_url": url, "repo_auth": "platform_key"}));
    let (s, pinned) = h.get(&format!("/api/release-configs/{config}/git/host-key"));
    assert_eq!(s, 404, "nothing pinned before the first fetch: {pinned}");

    // First fetch: the key is pinned and shown.
    let (s, branches) = h.get(&format!("/api/release-configs/{config}/git/branches"));
    assert_eq!(s, 200, "{branches}\n{}", h.log());
    let (s, pinned) = h.get(&format!("/api/release-configs/{config}/git/host-key"));
    assert_eq!(s, 200, "{pinned}");
    let fingerprint = git_host.host_key_fingerprint().expect("fingerprint");
    assert_eq!(pinned["fingerprint"], fingerprint.as_str(), "{pinned}");
    assert_eq!(
        pinned["host"],
        format!("{}:{}", git_host.addr, git_host.port).as_str()
    );

    // The server is "reinstalled": the fetch stops, saying why (to the admin).
    git_host.change_host_key().expect("new host key");
    // Listings reuse a fetch of the last 5 seconds.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let (s, body) = h.get(&format!("/api/release-configs/{config}/git/branches"));
    assert_eq!(s, 502, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("host key"),
        "{body}"
    );
    // A release fails at checkout, nothing switched.
    let (s, r) = h.post(
        "/api/releases",
        &json!({"config_id": config, "name": "after reinstall", "commit": lab.repo.head("main").expect("main")}),
    );
    if s == 201 {
        let (release, events) = h.run_release(r["id"].as_i64().expect("id"));
        assert_eq!(release["status"], "failed", "{release}\n{events:#?}");
        assert!(lab.live(&lab.hosts[0]).is_none());
    } else {
        assert_eq!(s, 502, "{r}");
    }

    // Only an admin forgets it; then the next fetch pins the new key.
    let (s, _) = h.delete(&format!("/api/release-configs/{config}/git/host-key"));
    assert_eq!(s, 204);
    let (s, branches) = h.get(&format!("/api/release-configs/{config}/git/branches"));
    assert_eq!(s, 200, "{branches}");
    let (_, pinned) = h.get(&format!("/api/release-configs/{config}/git/host-key"));
    assert_eq!(
        pinned["fingerprint"],
        git_host.host_key_fingerprint().expect("fp").as_str()
    );
    assert_ne!(pinned["fingerprint"], fingerprint.as_str());
    let r = lab.request(config, "pinned again", json!({"branch": "main"}));
    let (release, events) = h.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
}
