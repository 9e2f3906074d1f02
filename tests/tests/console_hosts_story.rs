//! The Hosts page and the web terminal, told by a browser: Debian's Chromium driven by
//! playwright-core (`console/e2e/hosts.mjs`) against the real `hippo-api` and two real sshd
//! hosts, one of them with a user who logs in with a password. The admin imports the hosts
//! (a bad row first), checks them, installs the platform key with the password, opens a
//! terminal, types `echo $((6*7))` and sees 42, and replays the session. Afterwards the key is
//! on the host once, the session is in the audit with its transcript, and the password is in
//! none of Hippo's files. Screenshots land in `console/e2e/artifacts/`.
use hippo_e2e::browser;
use hippo_e2e::hippo::Hippo;
use hippo_e2e::sshd::{PasswordUser, TestHost};
use serde_json::json;
use std::process::Command;

const HOST_PASSWORD: &str = "Console-host-pw-7d1";

#[test]
fn an_admin_imports_checks_installs_the_key_and_sees_42_in_the_browser_terminal() {
    let mut hippo = Hippo::start(&[]).expect("hippo starts");
    hippo.ok(
        "/api/environments",
        &json!({"name": "Production", "tag": "prod"}),
        201,
    );
    let (_, key) = hippo.get("/api/ssh-key");
    let public = key["public_key"].as_str().expect("public key").to_owned();
    let key_host = TestHost::start(21, &public).expect("sshd starts");
    let pw_host =
        TestHost::start_with_password_user(22, &public, PasswordUser::deploy(HOST_PASSWORD))
            .expect("password host starts");
    for h in [&key_host, &pw_host] {
        hippo.attach_log(hippo_e2e::proc::LogFile::new(
            format!("sshd {}", h.name),
            h.log_path(),
        ));
    }

    browser::run(
        "e2e/hosts.mjs",
        &hippo,
        &[
            (
                "HIPPO_KEY_HOST",
                json!({"addr": key_host.addr, "port": key_host.port}).to_string(),
            ),
            (
                "HIPPO_PASSWORD_HOST",
                json!({"addr": pw_host.addr, "port": pw_host.port, "user": "deploy",
                       "password": HOST_PASSWORD})
                .to_string(),
            ),
        ],
    );

    // The key is on the password host once.
    let keys = std::fs::read_to_string(
        pw_host
            .user_home()
            .expect("home")
            .join(".ssh/authorized_keys"),
    )
    .expect("authorized_keys");
    let blob = public.split_whitespace().nth(1).expect("blob");
    assert_eq!(keys.matches(blob).count(), 1, "{keys}");

    // The sessions are recorded: the first one's transcript holds what was typed and the 42.
    let (_, sessions) = hippo.get("/api/terminal-sessions");
    let first = sessions
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .expect("a session");
    let (_, full) = hippo.get(&format!("/api/terminal-sessions/{}", first["id"]));
    // Keystrokes arrive one by one: what was typed is the inputs joined.
    let joined = |kind: &str| -> String {
        full["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["k"] == kind)
            .filter_map(|e| e["d"].as_str())
            .collect()
    };
    assert!(joined("i").contains("echo $((6*7))\r"), "{full}");
    assert!(joined("o").contains("42\r\n"), "{full}");
    let (_, audit) = hippo.get("/api/audit?entity=host");
    assert!(audit.to_string().contains("\"terminal\""), "{audit}");
    assert!(audit.to_string().contains("\"install_key\""), "{audit}");

    // The password is in none of Hippo's files or logs.
    assert!(
        !hippo.log().contains(HOST_PASSWORD),
        "a log holds the password"
    );
    let dump = Command::new("grep")
        .args(["-rl", HOST_PASSWORD])
        .arg(hippo.data.path())
        .output()
        .expect("grep");
    assert!(
        dump.stdout.is_empty(),
        "files hold the password: {}",
        String::from_utf8_lossy(&dump.stdout)
    );
}
