//! Release control (issue 12) told by a browser: Debian's Chromium driven by playwright-core
//! (`console/e2e/control.mjs`) against the real `hippo-api` and two real sshd hosts. The admin
//! picks one host of two on the new-release page; a reviewer approves it to run at a set time
//! (the page and the list show it scheduled) and it runs by itself; a release whose hook
//! sleeps is cancelled from its page (which says who); a release that failed on web-2 is
//! retried from its page for web-2 alone after the host is fixed, run, and its whole log
//! downloaded; another failed release is retried from its row in the releases list; then
//! English. Afterwards the hosts are checked here. Screenshots land in
//! `console/e2e/artifacts/` (or `HIPPO_E2E_ARTIFACTS`).
use hippo_e2e::browser;
use hippo_e2e::lab::{DEPLOY, Lab, PASSWORD, VERSIONS, host_path};
use serde_json::json;
use std::path::PathBuf;

#[test]
fn a_reviewer_schedules_cancels_and_retries_releases_in_the_browser() {
    let lab = Lab::new(2, &[]);
    let h = &lab.hippo;
    for host in &lab.hosts {
        std::fs::create_dir_all(host_path(host, "/srv/hippo")).expect("mkdir");
    }
    // before-release sleeps on a host with the `slow` mark; web-2 fails without `ready`.
    let config = lab.config(json!({
        "review_enabled": true,
        "failure_policy": "continue",
        "hooks": {"before_release":
            "if [ -e /srv/hippo/slow ]; then sleep 60; fi\n\
             [ \"$HIPPO_HOST_NAME\" != web-2 ] || [ -e /srv/hippo/ready ] || { echo not ready; exit 3; }\n"},
    }));
    let reviewer = lab.role("reviewer", &["request", "review", "release"]);
    lab.user("rev", json!([{"role_id": reviewer}]));

    let summary = browser::run(
        "e2e/control.mjs",
        h,
        &[(
            "HIPPO_CONTROL",
            json!({
                "env": lab.env_id, "app": lab.app_id, "config": config,
                "rev": {"username": "rev", "password": PASSWORD},
                "slow": host_path(&lab.hosts[0], "/srv/hippo/slow"),
                "ready": host_path(&lab.hosts[1], "/srv/hippo/ready"),
            })
            .to_string(),
        )],
    );
    let get = |key: &str| {
        let id = summary[key].as_i64().expect("release id");
        h.get(&format!("/api/releases/{id}")).1
    };

    // The scheduled canary ran by itself, on web-1 only, about when it was told to.
    let canary = get("canary");
    assert_eq!(canary["status"], "succeeded", "{canary}");
    assert_eq!(canary["host_ids"], json!([lab.host_ids[0]]), "{canary}");
    let late = summary["canaryLate"].as_f64().expect("lateness");
    assert!(
        (-1.0..=3.0).contains(&late),
        "started {late} s after its time"
    );
    // The cancelled one: cancelled by the reviewer, no host on its version.
    let cancelled = get("cancelled");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cancelled_by_name"], "rev", "{cancelled}");
    // The failed release and its retry: web-1 switched in the first, web-2 in the retry, both
    // on the one version.
    let (failed, retry) = (get("failed"), get("retry"));
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(retry["status"], "succeeded", "{retry}");
    assert_eq!(retry["retry_of"], failed["id"], "{retry}");
    let v = failed["version"].as_str().expect("version");
    assert_eq!(retry["version"], v, "{retry}");
    assert!(summary["logLines"].as_u64().unwrap_or(0) > 5, "{summary}");
    // The one retried from its row in the list: the retry was for web-2 alone, and both hosts
    // ended on the failed release's version.
    let (failed, retry) = (get("listFailed"), get("listRetry"));
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(retry["status"], "succeeded", "{retry}");
    assert_eq!(retry["retry_of"], failed["id"], "{retry}");
    assert_eq!(retry["host_ids"], json!([lab.host_ids[1]]), "{retry}");
    let v = failed["version"].as_str().expect("version");
    assert_eq!(retry["version"], v, "{retry}");
    for host in &lab.hosts {
        let link = std::fs::read_link(host_path(host, DEPLOY)).expect("deploy link");
        assert_eq!(link, PathBuf::from(VERSIONS).join(v), "{}", host.name);
    }
}
