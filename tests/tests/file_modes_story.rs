//! Issue 9, item 7: Hippo's data folder and the files that hold secrets are its user's alone:
//! the folder 0700, `master.key`, `hippo.db` and its WAL and shared-memory files, the queue's
//! database 0600, even under the usual umask 022 (this test's, inherited by the binary).
use hippo_e2e::hippo::Hippo;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_data_folder_is_0700_and_the_key_and_databases_0600() {
    let hippo = Hippo::start(&[]).expect("hippo starts");
    // Some writes, so the WAL and shared-memory files exist.
    let (s, _) = hippo.post(
        "/api/environments",
        &serde_json::json!({"name": "Production", "tag": "prod"}),
    );
    assert_eq!(s, 201);
    let data = hippo.data.path().join("data");
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    let mut checked = Vec::new();
    if !hippo.is_cluster() {
        checked.push("master.key");
    }
    if std::env::var("HIPPO_E2E_POSTGRES").map_or(true, |v| v.is_empty()) {
        checked.extend(["hippo.db", "hippo.db-wal", "hippo.db-shm"]);
    }
    if !hippo.is_cluster() {
        checked.extend(["queue.db", "queue.db-wal", "queue.db-shm"]);
    }
    for name in checked {
        let p = data.join(name);
        assert_eq!(mode(&p), 0o600, "{name} is {:o}", mode(&p));
    }
    // No file directly in the data folder is readable by others, whatever made it (folders
    // inside are covered by the data folder's 0700).
    for entry in std::fs::read_dir(&data).expect("data").flatten() {
        let p = entry.path();
        if p.is_file() {
            assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
        }
    }
}
