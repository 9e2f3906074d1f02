//! Slow and idle clients cannot hold the API (issue 9): a request head must arrive within the
//! header time-out, a body within the body time-out, idle keep-alive connections close, and
//! beyond the connection limit the longest-idle connection makes room, so the API keeps
//! answering. Requests in progress (an event stream too) are never cut.
use hippo_e2e::hippo::{Hippo, client_builder};
use hippo_e2e::lab::Lab;
use serde_json::json;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn start(settings: &[(&str, &str)]) -> Hippo {
    Hippo::start(settings).unwrap_or_else(|e| panic!("{e:#}"))
}

fn addr(h: &Hippo) -> String {
    h.base.trim_start_matches("http://").to_owned()
}

/// Whether the server has closed `s` (non-blocking): end of stream, a reset, or an answer it
/// sent before closing.
fn closed_by_server(mut s: &TcpStream) -> bool {
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        // End of stream, or an answer sent before closing.
        Ok(0 | 1..) => true,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// A normal request on a new connection; how long it took (it must succeed).
fn timed_get(h: &Hippo) -> Duration {
    let c = client_builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let t = Instant::now();
    let r = c
        .get(format!("{}/api/environments", h.base))
        .bearer_auth(&h.token)
        .send()
        .unwrap_or_else(|e| panic!("GET /api/environments: {e}\n{}", h.log()));
    assert_eq!(r.status().as_u16(), 200);
    let _ = r.bytes();
    t.elapsed()
}

#[test]
fn hundreds_of_clients_trickling_headers_are_cut_off_at_the_header_timeout_while_others_are_served()
{
    let h = start(&[("HIPPO_HTTP_HEADER_TIMEOUT_SECS", "2")]);
    const N: usize = 300;
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..N)
        .map(|_| {
            let mut s = TcpStream::connect(addr(&h)).expect("connect");
            s.write_all(b"GET /api/environments HTTP/1.1\r\nHost: hippo\r\n")
                .expect("first line");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    let all_open = opened.elapsed();
    let mut closed_at: Vec<Option<Duration>> = vec![None; N];
    let mut normal = Vec::new();
    let mut round = 0;
    // Every 250 ms each slow client sends one more header line (so no connection is ever
    // silent for long), and a normal client asks for the environments.
    while opened.elapsed() < Duration::from_secs(8) && closed_at.iter().any(Option::is_none) {
        round += 1;
        for (i, s) in slow.iter_mut().enumerate() {
            if closed_at[i].is_some() {
                continue;
            }
            let line = format!("X-Trickle-{round}: {i}\r\n");
            if closed_by_server(s) || s.write_all(line.as_bytes()).is_err() {
                closed_at[i] = Some(opened.elapsed());
            }
        }
        normal.push(timed_get(&h));
        std::thread::sleep(Duration::from_millis(250));
    }
    let still_open = closed_at.iter().filter(|c| c.is_none()).count();
    assert_eq!(
        still_open,
        0,
        "{still_open} of {N} trickling connections still open after 8 s\n{}",
        h.log()
    );
    let first = closed_at
        .iter()
        .flatten()
        .min()
        .copied()
        .unwrap_or_default();
    let last = closed_at
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default();
    // Each had 2 s from its first byte; the last was opened `all_open` after the first. The
    // check is done every 250 ms (and a round can take a while on a busy machine).
    assert!(
        first >= Duration::from_millis(1500),
        "closed early: {first:?}"
    );
    assert!(
        last <= all_open + Duration::from_millis(4500),
        "the last closed at {last:?} (all opened within {all_open:?})"
    );
    let slowest = normal.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(1),
        "a normal request took {slowest:?} among the slow clients: {normal:?}"
    );
}

#[test]
fn idle_connections_beyond_the_limit_do_not_stop_the_api_answering() {
    // Idle connections would stay a minute: only the limit makes room.
    let h = start(&[
        ("HIPPO_HTTP_MAX_CONNECTIONS", "50"),
        ("HIPPO_HTTP_HEADER_TIMEOUT_SECS", "60"),
    ]);
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| {
            let s = TcpStream::connect(addr(&h)).expect("connect");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..10 {
        let took = timed_get(&h);
        assert!(
            took < Duration::from_secs(2),
            "a request took {took:?} with 200 idle connections open\n{}",
            h.log()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let closed = idle.iter().filter(|s| closed_by_server(s)).count();
    // At most 50 are kept (the limit), so at least 150 were closed to make room.
    assert!(
        closed >= 150,
        "only {closed} of 200 idle connections closed"
    );
}

#[test]
fn a_request_body_that_stops_arriving_gets_408_and_an_idle_kept_alive_connection_is_closed() {
    let h = start(&[
        ("HIPPO_HTTP_BODY_TIMEOUT_SECS", "2"),
        ("HIPPO_HTTP_KEEPALIVE_TIMEOUT_SECS", "2"),
    ]);
    // A body announced as 100 bytes of which 1 arrives.
    let mut s = TcpStream::connect(addr(&h)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let t = Instant::now();
    write!(
        s,
        "POST /api/environments HTTP/1.1\r\nHost: hippo\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        h.token
    )
    .expect("write");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let took = t.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {took:?}"
    );
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let (_, envs) = h.get("/api/environments");
    assert_eq!(envs, json!([]), "nothing was created");

    // A kept-alive connection idle after its answer is closed after the keep-alive time-out.
    let mut s = TcpStream::connect(addr(&h)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: hippo\r\n\r\n")
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let t = Instant::now();
    let rest = s.read(&mut buf);
    let idle = t.elapsed();
    assert!(matches!(rest, Ok(0)), "{rest:?}");
    assert!(
        idle >= Duration::from_millis(1500) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
}

#[test]
fn a_release_whose_event_stream_outlasts_every_time_out_is_followed_to_its_end() {
    // Time-outs of 1 s, a hook of 4 s: the event stream is a request in progress, never cut.
    let lab = Lab::new(
        1,
        &[
            ("HIPPO_HTTP_HEADER_TIMEOUT_SECS", "1"),
            ("HIPPO_HTTP_BODY_TIMEOUT_SECS", "1"),
            ("HIPPO_HTTP_KEEPALIVE_TIMEOUT_SECS", "1"),
        ],
    );
    let config = lab.config(json!({"hooks": {"before_release": "sleep 4\n"}}));
    let r = lab.request(config, "slow hook", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r);
    assert_eq!(
        release["status"],
        "succeeded",
        "{release}\n{}",
        lab.hippo.log()
    );
    assert_eq!(events.last().expect("events")["status"], "succeeded");
}
