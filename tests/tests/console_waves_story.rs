//! Waves (issue 12) told by a browser: Debian's Chromium driven by playwright-core
//! (`console/e2e/waves.mjs`) against the real `hippo-api` and two real sshd hosts. The admin
//! sets waves `1, rest` and a pause after each wave in the config wizard, requests and runs a
//! release; the release page shows the waves and the paused alert; Continue lets wave 2 go and
//! the release succeeds. A release waiting to run is cancelled from the releases list. Then
//! English. Afterwards the hosts are checked here: both on the new version. Screenshots land in
//! `console/e2e/artifacts/` (or `HIPPO_E2E_ARTIFACTS`).
use hippo_e2e::browser;
use hippo_e2e::lab::{DEPLOY, Lab, VERSIONS, host_path};
use serde_json::json;
use std::path::PathBuf;

#[test]
fn an_admin_sets_waves_in_the_wizard_and_continues_a_paused_release_in_the_browser() {
    let lab = Lab::new(2, &[]);
    let h = &lab.hippo;
    let config = lab.config(json!({}));

    let summary = browser::run(
        "e2e/waves.mjs",
        h,
        &[(
            "HIPPO_WAVES",
            json!({"env": lab.env_id, "app": lab.app_id, "config": config}).to_string(),
        )],
    );
    let get = |key: &str| {
        let id = summary[key].as_i64().expect("release id");
        h.get(&format!("/api/releases/{id}")).1
    };

    // The config holds what the wizard set.
    let cfg = h.get(&format!("/api/release-configs/{config}")).1;
    assert_eq!(cfg["waves"], json!(["1", "rest"]), "{cfg}");
    assert_eq!(cfg["pause_after_wave"], true, "{cfg}");
    // The release went in two waves, one host each, and both hosts switched to its version.
    let waves = get("waves");
    assert_eq!(waves["status"], "succeeded", "{waves}");
    let mut wave_of: Vec<i64> = waves["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|x| x["wave"].as_i64().expect("wave"))
        .collect();
    wave_of.sort_unstable();
    assert_eq!(wave_of, vec![1, 2], "{waves}");
    let v = waves["version"].as_str().expect("version");
    for host in &lab.hosts {
        let link = std::fs::read_link(host_path(host, DEPLOY)).expect("deploy link");
        assert_eq!(link, PathBuf::from(VERSIONS).join(v), "{}", host.name);
    }
    // The one cancelled from the list never ran.
    let cancelled = get("cancelled");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cancelled_by_name"], "admin", "{cancelled}");
    assert!(cancelled["started_at"].is_null(), "{cancelled}");
}
