//! The lab every end-to-end story starts from: Hippo, `n` real OpenSSH hosts in environment
//! `prod`, app `cart`, and a real Git repository.
use crate::git_fixture::GitFixture;
use crate::hippo::{Hippo, Options};
use crate::proc::{LogFile, wait_until};
use crate::sshd::TestHost;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

pub const DEPLOY: &str = "/srv/www/app";
pub const VERSIONS: &str = "/srv/hippo/versions";

/// Hippo, `n` hosts in environment `prod`, app `cart`, and a repository.
pub struct Lab {
    pub hippo: Hippo,
    pub hosts: Vec<TestHost>,
    pub repo: GitFixture,
    pub env_id: i64,
    pub app_id: i64,
    pub host_ids: Vec<i64>,
    pub marks: tempfile::TempDir,
}

/// The password of the users [`Lab::user`] creates.
pub const PASSWORD: &str = "correct horse battery";

impl Lab {
    /// With the backends the environment names (see [`Options::from_env`]).
    pub fn new(n: u8, settings: &[(&str, &str)]) -> Lab {
        Self::with(n, Options::from_env(settings))
    }

    pub fn with(n: u8, opts: Options) -> Lab {
        Self::with_hosts(n, opts, TestHost::start)
    }

    /// Like [`Lab::with`], each host started by `start(index, platform public key)` (e.g. a
    /// host without some program: [`TestHost::start_without`]).
    pub fn with_hosts(
        n: u8,
        opts: Options,
        start: impl Fn(u8, &str) -> anyhow::Result<TestHost>,
    ) -> Lab {
        let mut hippo = Hippo::start_with(opts).unwrap_or_else(|e| panic!("hippo starts: {e:#}"));
        let (_, key) = hippo.get("/api/ssh-key");
        let public = key["public_key"].as_str().expect("public key").to_owned();
        let hosts: Vec<TestHost> = (1..=n)
            .map(|i| start(i, &public).unwrap_or_else(|e| panic!("sshd starts: {e:#}")))
            .collect();
        for h in &hosts {
            hippo.attach_log(LogFile::new(format!("sshd {}", h.name), h.log_path()));
        }
        let env = hippo.ok(
            "/api/environments",
            &json!({"name": "Production", "tag": "prod"}),
            201,
        );
        let app = hippo.ok(
            "/api/apps",
            &json!({"name": "Cart", "tag": "cart", "description": "the shop"}),
            201,
        );
        let env_id = env["id"].as_i64().expect("id");
        let host_ids = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let body = json!({"environment_id": env_id, "name": format!("web-{}", i + 1), "addr": h.addr,
                                  "port": h.port, "username": "root", "category": "web"});
                hippo.ok("/api/hosts", &body, 201)["id"].as_i64().expect("id")
            })
            .collect();
        Lab {
            hippo,
            hosts,
            repo: GitFixture::new().expect("git fixture"),
            env_id,
            app_id: app["id"].as_i64().expect("id"),
            host_ids,
            marks: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Creates a role (as admin) with these permissions; its id.
    pub fn role(&self, name: &str, permissions: &[&str]) -> i64 {
        self.hippo.ok(
            "/api/roles",
            &json!({"name": name, "permissions": permissions}),
            201,
        )["id"]
            .as_i64()
            .expect("id")
    }

    /// Creates a user with [`PASSWORD`] holding `roles` (role id, environment, app) and logs
    /// them in; their token.
    pub fn user(&self, name: &str, roles: Value) -> String {
        self.hippo.ok(
            "/api/users",
            &json!({"username": name, "password": PASSWORD, "roles": roles}),
            201,
        );
        self.hippo.login(name, PASSWORD)
    }

    /// A Git server reached over SSH: test host `index` (an sshd that accepts Hippo's platform
    /// key) serving copies of the fixture's bare repositories in its `/srv` (`lib.git` beside
    /// `app.git`, for the submodule's relative URL). Returns the host and `app.git`'s URL.
    pub fn git_server(&self, index: u8) -> (TestHost, String) {
        let (_, key) = self.hippo.get("/api/ssh-key");
        let public = key["public_key"].as_str().expect("platform public key");
        let host = TestHost::start(index, public).expect("git server host");
        for name in ["app.git", "lib.git"] {
            let src = self.repo.bare.parent().expect("parent").join(name);
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(host.root.join(name))
                .status()
                .expect("cp");
            assert!(st.success(), "cp -a {}", src.display());
        }
        let url = format!("ssh://root@{}:{}/srv/app.git", host.addr, host.port);
        (host, url)
    }

    pub fn config_body(&self, extra: Value) -> Value {
        let mut body = json!({
            "app_id": self.app_id,
            "environment_id": self.env_id,
            "repo_url": self.repo.bare.to_str().expect("utf-8"),
            "host_ids": self.host_ids,
            "deploy_path": DEPLOY,
            "versions_path": VERSIONS,
            "keep_versions": 2,
            "filter_mode": "exclude",
            "filter": "# keep docs and logs off the servers\ndocs/\n*.log\n",
            "hook_timeout_secs": 60,
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        body
    }

    pub fn config(&self, extra: Value) -> i64 {
        self.hippo
            .ok("/api/release-configs", &self.config_body(extra), 201)["id"]
            .as_i64()
            .expect("id")
    }

    pub fn request(&self, config_id: i64, name: &str, git_ref: Value) -> i64 {
        let mut body = json!({"config_id": config_id, "name": name});
        for (k, v) in git_ref.as_object().expect("object") {
            body[k] = v.clone();
        }
        let r = self.hippo.ok("/api/releases", &body, 201);
        assert_eq!(r["status"], "approved", "{r}");
        r["id"].as_i64().expect("id")
    }

    /// Where `host`'s deploy link points, as a host-side path (None if absent).
    pub fn live(&self, host: &TestHost) -> Option<PathBuf> {
        let link = host_path(host, DEPLOY);
        let target = std::fs::read_link(link).ok()?;
        Some(host_path(host, target.to_str()?))
    }

    pub fn versions(&self, host: &TestHost) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(host_path(host, VERSIONS))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// The host-side path of `path` as the host sees it under /srv.
/// Settings for a story whose notices go to a receiver on loopback (the allow-list lets them;
/// a short time-out keeps a slow answer from holding the story up).
pub const NOTICES_TO_LOOPBACK: &[(&str, &str)] = &[
    ("HIPPO_NOTICE_TIMEOUT_SECS", "5"),
    ("HIPPO_INTERNAL_ALLOWLIST", "127.0.0.1"),
];

pub fn host_path(host: &TestHost, path: &str) -> PathBuf {
    host.root
        .join(path.strip_prefix("/srv/").expect("under /srv"))
}

/// Follows a running release's events until one message contains `needle` (at most 60 s);
/// returns the events seen so far.
pub fn wait_for_message(hippo: &Hippo, release: i64, needle: &str) -> Vec<Value> {
    wait_until(
        &format!("release {release} saying {needle:?}"),
        Duration::from_secs(60),
        || {
            let (_, r) = hippo.get(&format!("/api/releases/{release}"));
            let seen = hippo.events_so_far(release).unwrap_or_default();
            format!("release: {r}\nevents so far: {seen:#?}\n{}", hippo.log())
        },
        || {
            let evs = hippo
                .events_so_far(release)
                .unwrap_or_else(|e| panic!("{e:#}\n{}", hippo.log()));
            let found = evs
                .iter()
                .any(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)));
            found.then_some(evs)
        },
    )
}
