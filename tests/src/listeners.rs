//! Real HTTP listeners on loopback for notice tests: a webhook receiver that checks Hippo's
//! signature as a receiving service would, and one that accepts connections and never answers.
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the webhook listener received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    /// The signature matched (HMAC-SHA256 of `timestamp.body` with the shared secret) and the
    /// timestamp was within 5 minutes.
    pub signature_ok: bool,
}

pub struct WebhookListener {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

/// Lower-cased header names and values, then the body.
type Request = (Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

impl WebhookListener {
    /// Answers 200 to a correctly signed request, 401 otherwise (as a receiver should).
    pub fn start(secret: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hooks/hippo", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let (store, secret) = (received.clone(), secret.to_owned());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some((headers, body)) = read_request(&mut stream) else {
                    continue;
                };
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let ts = header("x-hippo-timestamp");
                let fresh = ts
                    .parse::<i64>()
                    .is_ok_and(|t| (chrono_now() - t).abs() < 300);
                let signature_ok = fresh && {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
                    mac.update(ts.as_bytes());
                    mac.update(b".");
                    mac.update(&body);
                    header("x-hippo-signature")
                        == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
                };
                if let Ok(mut r) = store.lock() {
                    r.push(Received {
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        signature_ok,
                    });
                }
                let status = if signature_ok {
                    "200 OK"
                } else {
                    "401 Unauthorized"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
            }
        });
        Ok(Self { url, received })
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Accepts connections, reads nothing, answers nothing, keeps them open.
pub struct HangingListener {
    pub url: String,
}

impl HangingListener {
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/hooks/slow", listener.local_addr()?);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in listener.incoming().flatten() {
                held.push(s);
            }
        });
        Ok(Self { url })
    }
}

/// A service's health endpoint on a host's address: answers every request with the status and
/// body it is set to (200 "ok" at first) and counts the requests.
pub struct HealthListener {
    pub port: u16,
    answer: Arc<Mutex<(u16, String)>>,
    hits: Arc<Mutex<u32>>,
}

impl HealthListener {
    /// Listens on `addr:port` (`port` 0: any free one).
    pub fn start(addr: &str, port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((addr, port))?;
        let port = listener.local_addr()?.port();
        let answer = Arc::new(Mutex::new((200, "ok".to_owned())));
        let hits = Arc::new(Mutex::new(0));
        let (a, h) = (answer.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if read_request(&mut stream).is_none() {
                    continue;
                }
                if let Ok(mut n) = h.lock() {
                    *n += 1;
                }
                let (status, body) = a.lock().map(|x| x.clone()).unwrap_or((500, String::new()));
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Ok(Self { port, answer, hits })
    }

    /// From now on, answer `status` with `body`.
    pub fn answer(&self, status: u16, body: &str) {
        if let Ok(mut a) = self.answer.lock() {
            *a = (status, body.to_owned());
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> u32 {
        self.hits.lock().map(|n| *n).unwrap_or(0)
    }
}
