//! `hippo_worker::ssh` against real OpenSSH hosts (`hippo_e2e::sshd`; needs root).

use std::path::Path;
use std::time::{Duration, Instant};

use hippo_e2e::sshd::{TestHost, generate_client_key};
use hippo_worker::commands::{self, RemoteCommand};
use hippo_worker::ssh::{
    self, Credentials, HostKey, HostKeyCheck, OutputStream, SshError, SshSession, Timeouts,
};

struct Fixture {
    host: TestHost,
    creds: Credentials,
    _keys: tempfile::TempDir,
}

fn fixture(index: u8) -> Fixture {
    let keys = tempfile::tempdir().expect("tempdir");
    let (private, public) = generate_client_key(keys.path()).expect("client key");
    let host = TestHost::start(index, &public).expect("start sshd");
    Fixture {
        host,
        creds: Credentials {
            user: "root".into(),
            private_key_openssh: private,
        },
        _keys: keys,
    }
}

fn pinned(host: &TestHost) -> HostKey {
    HostKey {
        key_type: host.host_key.0.clone(),
        key_base64: host.host_key.1.clone(),
    }
}

fn timeouts(io_secs: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        io: Duration::from_secs(io_secs),
    }
}

fn connect(f: &Fixture, io_secs: u64) -> SshSession {
    let (sess, key) = ssh::connect(
        &f.host.addr,
        f.host.port,
        &f.creds,
        &HostKeyCheck::Expect(pinned(&f.host)),
        &timeouts(io_secs),
    )
    .expect("connect");
    assert_eq!(key, pinned(&f.host));
    sess
}

struct Ran {
    result: Result<i32, SshError>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    progress: Vec<u64>,
}

fn run(sess: &SshSession, cmd: &RemoteCommand, stdin: Option<&[u8]>, deadline: Duration) -> Ran {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut progress = Vec::new();
    let mut input = stdin;
    let result = sess.run(
        cmd,
        input.as_mut().map(|r| r as &mut dyn std::io::Read),
        deadline,
        &mut |s, l| match s {
            OutputStream::Stdout => stdout.push(l.to_owned()),
            OutputStream::Stderr => stderr.push(l.to_owned()),
        },
        &mut |n| progress.push(n),
    );
    Ran {
        result,
        stdout,
        stderr,
        progress,
    }
}

fn ok(r: &Ran) -> i32 {
    match &r.result {
        Ok(code) => *code,
        Err(e) => panic!(
            "run failed: {e}; stdout {:?}; stderr {:?}",
            r.stdout, r.stderr
        ),
    }
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn runs_commands_and_streams_output() {
    let f = fixture(1);
    let sess = connect(&f, 10);

    let r = run(
        &sess,
        &RemoteCommand::script("echo out; echo err >&2; echo \"$1\"; printf partial; exit 7")
            .arg("it's $(x) ü"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 7);
    assert_eq!(r.stdout, vec!["out", "it's $(x) ü", "partial"]);
    assert_eq!(r.stderr, vec!["err"]);

    // Lots of output on both streams at once.
    let r = run(
        &sess,
        &RemoteCommand::script("seq 1 100000 >&2 & seq 1 100000; wait"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 0);
    assert_eq!(r.stdout.len(), 100_000);
    assert_eq!(r.stderr.len(), 100_000);
    assert_eq!(r.stdout.last().map(String::as_str), Some("100000"));

    // A big stdin echoed back while it is still being sent: no deadlock.
    let input: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    let r = run(&sess, &RemoteCommand::program("cat"), Some(&input), MINUTE);
    assert_eq!(ok(&r), 0);
    assert_eq!(r.stdout.len(), 300_000);
    assert_eq!(r.stdout.get(299_999).map(String::as_str), Some("299999"));
    assert_eq!(r.progress.last().copied(), Some(input.len() as u64));

    // A command that does not read its input still finishes.
    let r = run(&sess, &RemoteCommand::program("true"), Some(&input), MINUTE);
    assert_eq!(ok(&r), 0);

    // Killed by a signal: 128 + n.
    let r = run(
        &sess,
        &RemoteCommand::script("kill -TERM $$; sleep 5"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 128 + 15);
}

fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, data, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, path, *data)
            .expect("append");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

#[test]
fn uploads_and_unpacks_a_release() {
    let f = fixture(2);
    let sess = connect(&f, 10);

    // Incompressible content so that the upload takes many 64 KiB chunks.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let big: Vec<u8> = (0..3_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let archive = tar_gz(&[
        ("index.html", b"hello \xc3\xbc\n", 0o644),
        ("bin/run.sh", b"#!/bin/sh\necho run\n", 0o755),
        ("assets/big.bin", &big, 0o600),
    ]);
    let partial = "/srv/app/versions/.partial-r1";
    let r = run(
        &sess,
        &commands::unpack_into_partial(partial),
        Some(&archive),
        MINUTE,
    );
    assert_eq!(ok(&r), 0, "{:?}", r.stderr);
    assert_eq!(r.progress.last().copied(), Some(archive.len() as u64));
    assert!(
        r.progress.len() >= 10,
        "progress reported {} times",
        r.progress.len()
    );
    assert!(r.progress.windows(2).all(|w| w[0] < w[1]));

    let r = run(
        &sess,
        &commands::finish_version(partial, "/srv/app/versions/r1"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 0, "{:?}", r.stderr);
    let r = run(
        &sess,
        &commands::switch_link(
            "/srv/app/current",
            "/srv/app/versions/r1",
            "/srv/app/.current.tmp",
        ),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 0, "{:?}", r.stderr);
    let r = run(
        &sess,
        &commands::inspect_deploy_path("/srv/app/current"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 0);
    assert_eq!(r.stdout, vec!["/srv/app/versions/r1"]);
    let r = run(
        &sess,
        &commands::list_versions("/srv/app/versions"),
        None,
        MINUTE,
    );
    assert_eq!((ok(&r), r.stdout.clone()), (0, vec!["r1".to_owned()]));

    // The host's /srv is the harness's `root`.
    let v = f.host.root.join("app/versions/r1");
    assert_eq!(
        std::fs::read(v.join("index.html")).expect("index"),
        b"hello \xc3\xbc\n"
    );
    assert_eq!(std::fs::read(v.join("assets/big.bin")).expect("big"), big);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(v.join("bin/run.sh"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    assert_eq!(
        std::fs::read_link(f.host.root.join("app/current")).expect("link"),
        Path::new("/srv/app/versions/r1")
    );
    // Not visible outside the host's mount namespace.
    assert!(!Path::new("/srv/app/versions/r1").exists());

    // A truncated archive fails with tar's status.
    let r = run(
        &sess,
        &commands::unpack_into_partial("/srv/app/versions/.partial-r2"),
        Some(&archive[..archive.len() / 2]),
        MINUTE,
    );
    assert_ne!(ok(&r), 0);
    assert!(!r.stderr.is_empty());

    // write_file from stdin.
    let r = run(
        &sess,
        &commands::write_file("/srv/app/shared/.env"),
        Some(b"A=1\n"),
        MINUTE,
    );
    assert_eq!(ok(&r), 0);
    assert_eq!(
        std::fs::read(f.host.root.join("app/shared/.env")).expect("env"),
        b"A=1\n"
    );
}

#[test]
fn host_key_trust_on_first_use_then_pinned() {
    let f = fixture(3);
    let t = timeouts(10);
    let (_sess, seen) = ssh::connect(
        &f.host.addr,
        f.host.port,
        &f.creds,
        &HostKeyCheck::TrustOnFirstUse,
        &t,
    )
    .expect("tofu connect");
    assert_eq!(seen, pinned(&f.host));
    // Same fingerprint as ssh-keygen -l prints.
    let out = std::process::Command::new("ssh-keygen")
        .arg("-l")
        .arg("-f")
        .arg(f.host.dir().join("ssh_host_ed25519_key.pub"))
        .output()
        .expect("ssh-keygen -l");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains(&format!(" {} ", seen.fingerprint())),
        "{listed} vs {}",
        seen.fingerprint()
    );

    let (sess, again) = ssh::connect(
        &f.host.addr,
        f.host.port,
        &f.creds,
        &HostKeyCheck::Expect(seen.clone()),
        &t,
    )
    .expect("pinned connect");
    assert_eq!(again, seen);
    let r = run(&sess, &RemoteCommand::program("true"), None, MINUTE);
    assert_eq!(ok(&r), 0);

    // Another key: refused before authenticating, so even a wrong client key gives the mismatch
    // (not an authentication error) and nothing can run.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let (other_private, other_public) = generate_client_key(other_dir.path()).expect("key");
    let other = HostKey::from_openssh(&other_public).expect("parse");
    let marker = format!("/tmp/hippo-mismatch-{}", unique());
    let wrong_creds = Credentials {
        user: "root".into(),
        private_key_openssh: other_private,
    };
    for creds in [&f.creds, &wrong_creds] {
        match ssh::connect(
            &f.host.addr,
            f.host.port,
            creds,
            &HostKeyCheck::Expect(other.clone()),
            &t,
        ) {
            Err(SshError::HostKeyMismatch { expected, got }) => {
                assert_eq!(expected, other.fingerprint());
                assert_eq!(got, seen.fingerprint());
            }
            Err(e) => panic!("expected a host key mismatch, got {e}"),
            Ok(_) => panic!("connected despite a host key mismatch"),
        }
    }
    assert!(!Path::new(&marker).exists());

    // The right host key but a key the host does not accept.
    match ssh::connect(
        &f.host.addr,
        f.host.port,
        &wrong_creds,
        &HostKeyCheck::Expect(seen),
        &t,
    ) {
        Err(SshError::Auth { user, .. }) => assert_eq!(user, "root"),
        Err(e) => panic!("expected an authentication error, got {e}"),
        Ok(_) => panic!("authenticated with a key that is not authorized"),
    }

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    assert!(matches!(
        ssh::connect(
            "127.0.0.1",
            port,
            &f.creds,
            &HostKeyCheck::TrustOnFirstUse,
            &t
        ),
        Err(SshError::Connect { .. })
    ));
}

#[test]
fn paused_host_times_out_but_silent_command_does_not() {
    let f = fixture(4);
    let io = 2;
    let sess = connect(&f, io);

    // Silent for longer than the io timeout: keepalives keep it alive.
    let started = Instant::now();
    let r = run(
        &sess,
        &RemoteCommand::program("sleep").arg("7"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 0);
    assert!(started.elapsed() >= Duration::from_secs(7));

    // A stopped host (TCP still accepts, nothing answers) fails well before the deadline.
    f.host.pause();
    let started = Instant::now();
    let r = run(
        &sess,
        &RemoteCommand::program("true"),
        None,
        Duration::from_secs(300),
    );
    let took = started.elapsed();
    assert!(
        matches!(r.result, Err(SshError::TimedOut { .. })),
        "{:?}",
        r.result
    );
    assert!(took < Duration::from_secs(io + 6), "took {took:?}");
    // The session is closed after a timeout.
    let again = run(&sess, &RemoteCommand::program("true"), None, MINUTE);
    assert!(again.result.is_err());
    let started = Instant::now();
    drop(sess);
    assert!(
        started.elapsed() < Duration::from_secs(io + 2),
        "drop took {:?}",
        started.elapsed()
    );

    // Connecting to a stopped host times out in the handshake.
    let started = Instant::now();
    let c = ssh::connect(
        &f.host.addr,
        f.host.port,
        &f.creds,
        &HostKeyCheck::Expect(pinned(&f.host)),
        &timeouts(io),
    );
    assert!(matches!(c, Err(SshError::TimedOut { .. })), "{:?}", c.err());
    assert!(
        started.elapsed() < Duration::from_secs(io + 4),
        "took {:?}",
        started.elapsed()
    );
    f.host.resume();

    // And works again once resumed.
    let sess = connect(&f, io);
    assert_eq!(
        ok(&run(&sess, &RemoteCommand::program("true"), None, MINUTE)),
        0
    );
}

#[test]
fn paused_host_during_upload_times_out() {
    let f = fixture(5);
    let io = 2;
    let sess = connect(&f, io);
    let host = &f.host;
    // An endless upload; the host is paused once the first bytes went out.
    struct Endless<'a> {
        sent: usize,
        host: &'a TestHost,
        paused: bool,
    }
    impl std::io::Read for Endless<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.sent > 1_000_000 && !self.paused {
                self.host.pause();
                self.paused = true;
            }
            buf.fill(b'x');
            self.sent += buf.len();
            Ok(buf.len())
        }
    }
    let mut src = Endless {
        sent: 0,
        host,
        paused: false,
    };
    let started = Instant::now();
    let result = sess.run(
        &RemoteCommand::script("cat > /dev/null"),
        Some(&mut src),
        Duration::from_secs(300),
        &mut |_, _| {},
        &mut |_| {},
    );
    assert!(src.paused);
    assert!(
        matches!(result, Err(SshError::TimedOut { .. })),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(io + 6),
        "took {:?}",
        started.elapsed()
    );
    host.resume();
}

#[test]
fn deadline_bounds_a_long_command() {
    let f = fixture(6);
    let sess = connect(&f, 10);
    let started = Instant::now();
    let r = run(
        &sess,
        &RemoteCommand::program("sleep").arg("30"),
        None,
        Duration::from_secs(2),
    );
    assert!(
        matches!(r.result, Err(SshError::TimedOut { .. })),
        "{:?}",
        r.result
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn hooks_get_literal_env_and_report_exit_codes() {
    let f = fixture(7);
    let sess = connect(&f, 10);
    let pwned = format!("/tmp/pwned-{}", unique());
    let value = format!("$(touch {pwned}) `touch {pwned}` it's \"ü\"");
    let env = vec![
        ("HIPPO_VALUE".to_owned(), value.clone()),
        ("RELEASE".to_owned(), "r1".into()),
    ];

    let r = run(
        &sess,
        &RemoteCommand::script("mkdir -p /srv/app/r1"),
        None,
        MINUTE,
    );
    assert_eq!(ok(&r), 0);
    let script =
        b"echo \"$HIPPO_VALUE\"\necho \"release=$RELEASE pwd=$(pwd)\"\necho to-stderr >&2\n";
    let r = run(
        &sess,
        &commands::run_hook("/srv/app/r1", 30),
        Some(&hook_input(&env, script)),
        MINUTE,
    );
    assert_eq!(ok(&r), 0, "{:?}", r.stderr);
    assert_eq!(
        r.stdout,
        vec![value.clone(), "release=r1 pwd=/srv/app/r1".to_owned()]
    );
    assert_eq!(r.stderr, vec!["to-stderr"]);
    assert!(!Path::new(&pwned).exists(), "{pwned} was created");

    // Stops at the first failing command.
    let r = run(
        &sess,
        &commands::run_hook("/srv/app/r1", 30),
        Some(&hook_input(&[], b"echo a\nfalse\necho b\n")),
        MINUTE,
    );
    assert_eq!((ok(&r), r.stdout.clone()), (1, vec!["a".to_owned()]));

    let r = run(
        &sess,
        &commands::run_hook("/srv/app/r1", 30),
        Some(&hook_input(&env, b"echo before\nexit 3\n")),
        MINUTE,
    );
    assert_eq!(ok(&r), 3);
    assert_eq!(r.stdout, vec!["before"]);

    let r = run(
        &sess,
        &commands::run_hook("/srv/app/missing", 30),
        Some(&hook_input(&env, b"touch /srv/nope\n")),
        MINUTE,
    );
    assert_eq!(ok(&r), commands::HOOK_CANNOT_CD);
    assert!(!f.host.root.join("nope").exists());

    let started = Instant::now();
    let r = run(
        &sess,
        &commands::run_hook("/srv/app/r1", 1),
        Some(&hook_input(&[], b"sleep 30\n")),
        MINUTE,
    );
    assert_eq!(ok(&r), commands::HOOK_TIMED_OUT);
    assert!(started.elapsed() < Duration::from_secs(10));

    // A hook command that reads stdin does not swallow the rest of the script.
    let r = run(
        &sess,
        &commands::run_hook("/srv/app/r1", 30),
        Some(&hook_input(&[], b"cat\necho still-here\n")),
        MINUTE,
    );
    assert_eq!(
        (ok(&r), r.stdout.clone()),
        (0, vec!["still-here".to_owned()])
    );
}

#[test]
fn parallel_hosts_have_their_own_srv() {
    let a = fixture(8);
    let b = fixture(9);
    let sa = connect(&a, 10);
    let sb = connect(&b, 10);
    let w = |s: &SshSession, text: &[u8]| {
        let r = run(s, &commands::write_file("/srv/who"), Some(text), MINUTE);
        assert_eq!(ok(&r), 0);
    };
    w(&sa, b"a");
    w(&sb, b"b");
    assert_eq!(std::fs::read(a.host.root.join("who")).expect("a"), b"a");
    assert_eq!(std::fs::read(b.host.root.join("who")).expect("b"), b"b");
}

/// What `commands::run_hook` reads on stdin: the variables and the script.
fn hook_input(env: &[(String, String)], script: &[u8]) -> Vec<u8> {
    commands::hook_input(env, std::str::from_utf8(script).expect("utf-8")).expect("hook input")
}

/// A connection kept between runs (`ssh_pool`) serves the next run to the same host, login and
/// host key while the host answers on it; one that timed out, or that the host closed, is never
/// handed out.
#[test]
fn kept_connections_serve_the_next_run_only_while_the_host_answers_on_them() {
    use hippo_worker::ssh_pool::{PoolKey, SshPool};
    let mut f = fixture(10);
    let pool = SshPool::new(MINUTE);
    let (addr, port, host_key) = (f.host.addr.clone(), f.host.port, pinned(&f.host));
    let private = f.creds.private_key_openssh.clone();
    let key = |user: &str| PoolKey::new(&addr, port, user, host_key.clone(), &private);
    let pid_of = |sess: &SshSession| {
        let r = run(sess, &RemoteCommand::script("echo $PPID"), None, MINUTE);
        assert_eq!(ok(&r), 0);
        r.stdout.concat()
    };
    let check = Duration::from_secs(2);

    let sess = connect(&f, 5);
    let first = pid_of(&sess);
    pool.put(key("root"), sess);
    assert_eq!(pool.len(), 1);
    // Another login (user, or platform key) never gets it.
    assert!(pool.take(&key("deploy"), check).is_none());
    let other_key = PoolKey::new(
        &f.host.addr,
        f.host.port,
        "root",
        pinned(&f.host),
        "another key",
    );
    assert!(pool.take(&other_key, check).is_none());
    // The same one does: the same sshd session serves it.
    let again = pool.take(&key("root"), check).expect("the kept connection");
    assert_eq!(pid_of(&again), first);
    assert!(pool.is_empty());

    // A command that timed out leaves the connection unusable: it is not kept.
    f.host.pause();
    let r = run(&again, &RemoteCommand::program("true"), None, MINUTE);
    assert!(
        matches!(r.result, Err(SshError::TimedOut { .. })),
        "{:?}",
        r.result
    );
    f.host.resume();
    pool.put(key("root"), again);
    assert!(pool.is_empty());

    // A kept connection the host has closed meanwhile (sshd restarted, the host rebooted) is
    // dropped when taken.
    let sess = connect(&f, 5);
    pool.put(key("root"), sess);
    f.host.restart().expect("restart sshd");
    let started = Instant::now();
    assert!(pool.take(&key("root"), check).is_none());
    assert!(started.elapsed() < check + Duration::from_secs(1));
    assert!(pool.is_empty());

    // A frozen host: the check gives up after `check`.
    let sess = connect(&f, 5);
    pool.put(key("root"), sess);
    f.host.pause();
    let started = Instant::now();
    assert!(pool.take(&key("root"), check).is_none());
    let took = started.elapsed();
    f.host.resume();
    assert!(took < check + Duration::from_secs(2), "took {took:?}");

    // Idle for longer than the pool keeps them: closed.
    let short = SshPool::new(Duration::from_millis(200));
    short.put(key("root"), connect(&f, 5));
    std::thread::sleep(Duration::from_millis(300));
    short.close_idle();
    assert!(short.is_empty());
    // None kept at all with 0.
    let none = SshPool::new(Duration::ZERO);
    none.put(key("root"), connect(&f, 5));
    assert!(none.is_empty());
}
