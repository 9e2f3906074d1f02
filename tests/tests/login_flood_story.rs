//! Logins cannot stall the API (issue 9): password hashes are computed off the request threads
//! and refused logins cost the server next to nothing, so a flood of wrong logins leaves every
//! other request fast. Alone in its test binary: other tests running beside it would be
//! measured too.
use hippo_e2e::hippo::Hippo;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "li-secret-password";

/// A client on one kept-alive connection speaking raw HTTP/1.1: a test client must cost far less
/// than the server it floods or measures.
struct Flooder {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Flooder {
    fn new(base: &str) -> Self {
        Self {
            addr: base.trim_start_matches("http://").to_owned(),
            conn: None,
        }
    }

    /// One wrong login; (status, Retry-After, body), or None if the connection failed.
    fn attempt(&mut self, username: &str) -> Option<(u16, Option<u64>, Value)> {
        self.login(username, "wrong-password")
    }

    /// One login; (status, Retry-After, body), or None if the connection failed.
    fn login(&mut self, username: &str, password: &str) -> Option<(u16, Option<u64>, Value)> {
        let body = json!({"username": username, "password": password}).to_string();
        self.request("POST", "/api/auth/login", "", &body)
    }

    /// One request (with a bearer `token` unless empty, a JSON `body` unless empty); (status,
    /// Retry-After, body), or None if the connection failed.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Option<(u16, Option<u64>, Value)> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
            self.conn = Some(BufReader::new(s));
        }
        let out = self.exchange(method, path, token, body);
        if out.is_none() {
            self.conn = None;
        }
        out
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Option<(u16, Option<u64>, Value)> {
        let conn = self.conn.as_mut()?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if !token.is_empty() {
            req.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        conn.get_mut().write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        conn.read_line(&mut line).ok()?;
        let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        let (mut len, mut retry) = (0usize, None);
        loop {
            line.clear();
            conn.read_line(&mut line).ok()?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':')?;
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().ok()?,
                "retry-after" => retry = v.trim().parse().ok(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body).ok()?;
        Some((
            status,
            retry,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ))
    }
}

fn p99(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[((ms.len() as f64) * 0.99).ceil() as usize - 1]
}

/// One measurement: `GET /api/environments` every 5 ms on a kept-alive connection, 200 times
/// before a flood and for the 5 s of a flood of wrong logins from 64 clients.
struct Round {
    p99_before: f64,
    p99: f64,
    max: f64,
    requests: usize,
    answers: Vec<(u16, Option<u64>, Value)>,
}

impl Round {
    fn bound(&self) -> f64 {
        50.0 + if self.p99_before > 10.0 {
            self.p99_before
        } else {
            0.0
        }
    }

    fn fast(&self) -> bool {
        self.p99 < self.bound()
    }

    fn describe(&self) -> String {
        format!(
            "p99 {:.1} ms (bound {:.1}, max {:.1}, {} requests; {:.1} ms before it; {} wrong logins)",
            self.p99,
            self.bound(),
            self.max,
            self.requests,
            self.p99_before,
            self.answers.len()
        )
    }
}

fn flood_round(h: &Hippo) -> Round {
    // (Raw HTTP on one kept-alive connection: the time is the server's, not a debug-built
    // client's.)
    let mut reader = Flooder::new(&h.base);
    let mut list = |took: &mut Vec<f64>| {
        let t = Instant::now();
        let (status, _, body) = reader
            .request("GET", "/api/environments", &h.token, "")
            .expect("GET /api/environments");
        assert_eq!(status, 200, "{body}");
        took.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut before = Vec::new();
    for _ in 0..200 {
        list(&mut before);
    }

    // 64 clients log in with wrong passwords, as fast as they are answered, for 5 s: half as
    // `li`, half as names that do not exist.
    let stop = Arc::new(AtomicBool::new(false));
    let flood: Vec<_> = (0..64)
        .map(|i| {
            let (base, stop) = (h.base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut flooder = Flooder::new(&base);
                let name = if i % 2 == 0 {
                    "li".to_owned()
                } else {
                    format!("ghost-{i}")
                };
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    answers.push(flooder.attempt(&name).unwrap_or((0, None, Value::Null)));
                }
                answers
            })
        })
        .collect();

    // Meanwhile a user with a token lists environments, every 5 ms.
    let started = Instant::now();
    let mut took = Vec::new();
    while started.elapsed() < Duration::from_secs(5) {
        list(&mut took);
    }
    stop.store(true, Ordering::Relaxed);
    let answers: Vec<(u16, Option<u64>, Value)> = flood
        .into_iter()
        .flat_map(|t| t.join().expect("flood thread"))
        .collect();
    let round = Round {
        p99_before: p99(before),
        p99: p99(took.clone()),
        max: took.iter().copied().fold(0.0, f64::max),
        requests: took.len(),
        answers,
    };
    eprintln!(
        "GET /api/environments during a flood of wrong logins: {}",
        round.describe()
    );
    round
}

#[test]
fn a_flood_of_wrong_logins_leaves_the_api_fast_and_the_right_password_works_once_the_window_passes()
{
    const WINDOW: u64 = 3;
    let h = Hippo::start(&[
        ("HIPPO_LOGIN_WINDOW_SECS", &WINDOW.to_string()),
        ("HIPPO_LOGIN_MAX_FAILURES", "5"),
        ("HIPPO_LOGIN_MAX_FAILURES_PER_ADDR", "10"),
        ("HIPPO_LOGIN_LOCKOUT_AFTER", "100"),
        ("HIPPO_LOGIN_HASH_THREADS", "1"),
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    h.ok(
        "/api/users",
        &json!({"username": "li", "password": PASSWORD, "roles": []}),
        201,
    );
    h.ok(
        "/api/environments",
        &json!({"name": "Production", "tag": "prod"}),
        201,
    );

    // The bound is p99 < 50 ms. On a machine that is busy with other work (CI beside
    // parallel builds) the same requests are already slow before the flood, so the flood may
    // add at most 50 ms on top of the p99 measured just before it; and a round spoiled by other
    // work on the machine is measured again, up to three rounds. Without the login guard the
    // flood made it seconds (4.75 s at 32 clients), which fails every round by far.
    let mut rounds = vec![flood_round(&h)];
    while !rounds.last().expect("a round").fast() && rounds.len() < 3 {
        std::thread::sleep(Duration::from_secs(WINDOW + 1));
        rounds.push(flood_round(&h));
    }
    let round = rounds.last().expect("a round");
    assert!(
        round.fast(),
        "GET /api/environments too slow during the flood in every round: {}\n{}",
        rounds
            .iter()
            .map(Round::describe)
            .collect::<Vec<_>>()
            .join("; "),
        h.log()
    );
    let answers = &round.answers;
    let count = |s: u16| answers.iter().filter(|a| a.0 == s).count();
    let (unauthorized, limited) = (count(401), count(429));
    assert_eq!(
        unauthorized + limited,
        answers.len(),
        "only 401 and 429: {:?}",
        answers.iter().find(|a| a.0 != 401 && a.0 != 429)
    );
    // The address's limit (10) bounds the passwords checked per window; 5 s is two windows.
    assert!(
        (1..=20).contains(&unauthorized),
        "{unauthorized} checked passwords"
    );
    assert!(limited > 64, "{limited} limited");
    for (_, retry, body) in answers.iter().filter(|a| a.0 == 429) {
        assert_eq!(body["error"], "too_many_logins", "{body}");
        assert!(
            retry.is_some_and(|r| (1..=WINDOW).contains(&r)),
            "Retry-After {retry:?}"
        );
    }

    // The right password: refused while the limit holds, accepted once the window has passed
    // (following Retry-After).
    let deadline = Instant::now() + Duration::from_secs(4 * WINDOW);
    let mut refused = 0;
    loop {
        let (status, retry, body) = Flooder::new(&h.base)
            .login("li", PASSWORD)
            .expect("login answered");
        if status == 200 {
            assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));
            break;
        }
        assert_eq!(status, 429, "{body}");
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "li still refused after {}s: {body}",
            4 * WINDOW
        );
        std::thread::sleep(Duration::from_secs(retry.unwrap_or(1)));
    }
    assert!(refused >= 1, "the limit held right after the flood");
}
