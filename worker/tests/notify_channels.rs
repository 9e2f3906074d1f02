//! Notices against real local listeners on 127.0.0.1: every HTTP listener verifies the request
//! the way its provider does (signature recomputed from the received request and the shared
//! secret, timestamp freshness) and answers like the provider; a small SMTP server receives the
//! mail; failing and hanging listeners check retries and time bounds.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use hippo_worker::notify::{
    self, AddressPolicy, Channel, DingTalk, Email, FailedHost, Feishu, FeishuMsgType, Named,
    Notice, NoticeError, NoticeKind, RetryPolicy, Secret, SendOptions, Sms, SmtpSecurity, WeCom,
    Webhook,
};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn notice(kind: NoticeKind) -> Notice {
    Notice {
        kind,
        app: Named::new("cart", "shop-cart"),
        environment: Named::new("prod", "production"),
        release_id: hippo_shared::domain::ReleaseId::new(7),
        release_name: "cart-release-7".into(),
        git_ref: "main".into(),
        commit: "abc1234".into(),
        version: Some("20260101-120000-abc1234".into()),
        requested_by: "alice".into(),
        actor: Some("bob".into()),
        comment: None,
        failed_hosts: vec![
            FailedHost::new("web-1", "after-release hook exited 3"),
            FailedHost::new("web-2", "ssh: connection refused"),
        ],
        link: Some("http://hippo.local/releases/7".into()),
        message: None,
    }
}

/// The listeners are on loopback, which notices may only reach when the allow-list says so.
fn opts(timeout: Duration) -> SendOptions {
    SendOptions {
        timeout,
        addresses: AddressPolicy::parse(&["127.0.0.0/8"]).unwrap(),
        ..SendOptions::default()
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time comparison, as a provider would do.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 server: one request per connection, answers with `Connection: close`.

#[derive(Clone, Debug)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn query(&self) -> Vec<(String, String)> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }
    fn query_value(&self, name: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct Resp {
    status: u16,
    body: String,
}

fn json(status: u16, v: serde_json::Value) -> Resp {
    Resp {
        status,
        body: v.to_string(),
    }
}

type Seen = Arc<Mutex<Vec<Req>>>;

async fn read_request(stream: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Some(Req {
        method,
        target,
        headers,
        body,
    })
}

/// Serves `handler` on a random loopback port; returns the address and the requests seen.
async fn serve<F>(handler: F) -> (SocketAddr, Seen)
where
    F: Fn(&Req) -> Resp + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let handler = Arc::new(handler);
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Some(req) = read_request(&mut stream).await else {
                    return;
                };
                let resp = handler(&req);
                seen.lock().unwrap().push(req);
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    resp.status,
                    resp.body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(resp.body.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, seen)
}

// ---------------------------------------------------------------------------------------------
// DingTalk

const DING_TOKEN: &str = "ding-access-token-0001";
const DING_SECRET: &str = "SECding0123456789abcdef";

/// A DingTalk robot: access_token, then `timestamp` within an hour and `sign` recomputed as
/// base64(HMAC-SHA256(secret, timestamp + "\n" + secret)); errcode 310000 when it does not match.
fn dingtalk_robot(req: &Req) -> Resp {
    if req.method != "POST" || req.path() != "/robot/send" {
        return json(
            404,
            serde_json::json!({"errcode": 404, "errmsg": "not found"}),
        );
    }
    if req.query_value("access_token").as_deref() != Some(DING_TOKEN) {
        return json(
            200,
            serde_json::json!({"errcode": 300001, "errmsg": "token is not exist"}),
        );
    }
    let ts: i64 = req
        .query_value("timestamp")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let now = chrono::Utc::now().timestamp_millis();
    let expected = B64.encode(hmac_sha256(
        DING_SECRET.as_bytes(),
        format!("{ts}\n{DING_SECRET}").as_bytes(),
    ));
    let sign = req.query_value("sign").unwrap_or_default();
    if (now - ts).abs() > 3_600_000 || !same(&sign, &expected) {
        return json(
            200,
            serde_json::json!({"errcode": 310000, "errmsg": "sign not match, more: [https://open.dingtalk.com]"}),
        );
    }
    let body = req.json();
    let ok = body["msgtype"] == "markdown"
        && body["markdown"]["title"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        && body["markdown"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty());
    if !ok {
        return json(
            200,
            serde_json::json!({"errcode": 40035, "errmsg": "缺少参数 json"}),
        );
    }
    json(200, serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

#[tokio::test]
async fn dingtalk_signed_markdown_is_accepted_and_a_wrong_secret_is_refused() {
    let (addr, seen) = serve(dingtalk_robot).await;
    let url = format!("http://{addr}/robot/send?access_token={DING_TOKEN}");
    let good = Channel::DingTalk(DingTalk {
        webhook_url: Secret::new(url.clone()),
        secret: Secret::new(DING_SECRET),
    });
    let n = notice(NoticeKind::Failed);
    let delivered = notify::send(&good, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(delivered.http_status, Some(200));
    {
        let seen = seen.lock().unwrap();
        let text = seen[0].json()["markdown"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("cart-release-7"), "{text}");
        assert!(
            text.contains("**web-1**: after-release hook exited 3"),
            "{text}"
        );
        assert!(
            text.contains("**web-2**: ssh: connection refused"),
            "{text}"
        );
    }

    let wrong = Channel::DingTalk(DingTalk {
        webhook_url: Secret::new(url),
        secret: Secret::new("SECwrong-wrong-wrong"),
    });
    let err = notify::send(&wrong, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap_err();
    match &err {
        NoticeError::Provider { code, status, .. } => {
            assert_eq!(code, "310000");
            assert_eq!(*status, 200);
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("sign not match"), "{text}");
    for secret in [DING_TOKEN, "SECwrong-wrong-wrong", DING_SECRET] {
        assert!(!text.contains(secret), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// WeCom

const WECOM_KEY: &str = "wecom-robot-key-0001";

fn wecom_robot(req: &Req) -> Resp {
    if req.method != "POST" || req.path() != "/cgi-bin/webhook/send" {
        return json(
            404,
            serde_json::json!({"errcode": 404, "errmsg": "not found"}),
        );
    }
    if req.query_value("key").as_deref() != Some(WECOM_KEY) {
        return json(
            200,
            serde_json::json!({"errcode": 93000, "errmsg": "invalid webhook url, hint: [x]"}),
        );
    }
    let body = req.json();
    let content = body["markdown"]["content"].as_str().unwrap_or("");
    if body["msgtype"] != "markdown" || content.is_empty() {
        return json(
            200,
            serde_json::json!({"errcode": 40008, "errmsg": "invalid message type"}),
        );
    }
    if content.len() > 4096 {
        return json(
            200,
            serde_json::json!({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}),
        );
    }
    json(200, serde_json::json!({"errcode": 0, "errmsg": "ok"}))
}

#[tokio::test]
async fn wecom_markdown_is_accepted_and_a_wrong_key_is_refused() {
    let (addr, seen) = serve(wecom_robot).await;
    let n = notice(NoticeKind::Failed);
    let good = Channel::WeCom(WeCom {
        webhook_url: Secret::new(format!(
            "http://{addr}/cgi-bin/webhook/send?key={WECOM_KEY}"
        )),
    });
    notify::send(&good, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap();
    let content = seen.lock().unwrap()[0].json()["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains("web-1</font>: after-release hook exited 3"),
        "{content}"
    );

    let wrong = Channel::WeCom(WeCom {
        webhook_url: Secret::new(format!(
            "http://{addr}/cgi-bin/webhook/send?key=not-the-right-key"
        )),
    });
    let err = notify::send(&wrong, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NoticeError::Provider { code, .. } if code == "93000"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-right-key"));
}

// ---------------------------------------------------------------------------------------------
// Feishu

const FEISHU_HOOK: &str = "feishu-hook-0001";
const FEISHU_SECRET: &str = "feishu-signing-secret";

/// A Feishu bot with signature verification: body `timestamp` (seconds, within an hour) and
/// `sign` = base64(HMAC-SHA256(key = timestamp + "\n" + secret, msg = "")).
fn feishu_bot(old_api: bool) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    move |req: &Req| {
        if req.method != "POST" || req.path() != format!("/open-apis/bot/v2/hook/{FEISHU_HOOK}") {
            return json(
                404,
                serde_json::json!({"code": 19001, "msg": "param invalid: incoming webhook access token invalid"}),
            );
        }
        let body = req.json();
        let ts: i64 = body["timestamp"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let expected = B64.encode(hmac_sha256(
            format!("{ts}\n{FEISHU_SECRET}").as_bytes(),
            b"",
        ));
        let sign = body["sign"].as_str().unwrap_or("");
        let fresh = (chrono::Utc::now().timestamp() - ts).abs() <= 3600;
        if !fresh || !same(sign, &expected) {
            return json(
                200,
                serde_json::json!({"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}),
            );
        }
        let ok = match body["msg_type"].as_str() {
            Some("text") => body["content"]["text"].as_str().is_some(),
            Some("post") => body["content"]["post"]["zh_cn"]["content"].is_array(),
            _ => false,
        };
        if !ok {
            return json(200, serde_json::json!({"code": 9499, "msg": "Bad Request"}));
        }
        if old_api {
            json(
                200,
                serde_json::json!({"Extra": null, "StatusCode": 0, "StatusMessage": "success"}),
            )
        } else {
            json(
                200,
                serde_json::json!({"code": 0, "data": {}, "msg": "success"}),
            )
        }
    }
}

#[tokio::test]
async fn feishu_signed_post_and_text_are_accepted_and_a_wrong_secret_is_refused() {
    let (addr, seen) = serve(feishu_bot(false)).await;
    let url = format!("http://{addr}/open-apis/bot/v2/hook/{FEISHU_HOOK}");
    let n = notice(NoticeKind::Failed);
    for msg_type in [FeishuMsgType::Post, FeishuMsgType::Text] {
        let ch = Channel::Feishu(Feishu {
            webhook_url: Secret::new(url.clone()),
            secret: Some(Secret::new(FEISHU_SECRET)),
            msg_type,
        });
        notify::send(&ch, &n, &opts(Duration::from_secs(5)))
            .await
            .unwrap();
    }
    {
        let seen = seen.lock().unwrap();
        let post = seen[0].json()["content"].to_string();
        assert!(post.contains("web-2: ssh: connection refused"), "{post}");
        let text = seen[1].json()["content"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.contains("- web-1: after-release hook exited 3"),
            "{text}"
        );
    }
    let wrong = Channel::Feishu(Feishu {
        webhook_url: Secret::new(url.clone()),
        secret: Some(Secret::new("not-the-feishu-secret")),
        msg_type: FeishuMsgType::Post,
    });
    let err = notify::send(&wrong, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NoticeError::Provider { code, .. } if code == "19021"),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-feishu-secret"));

    // Older deployments answer StatusCode instead of code.
    let (addr, _) = serve(feishu_bot(true)).await;
    let old = Channel::Feishu(Feishu {
        webhook_url: Secret::new(format!("http://{addr}/open-apis/bot/v2/hook/{FEISHU_HOOK}")),
        secret: Some(Secret::new(FEISHU_SECRET)),
        msg_type: FeishuMsgType::Post,
    });
    notify::send(&old, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Generic webhook

const HOOK_SECRET: &str = "webhook-shared-secret";

/// A receiver: `X-Hippo-Timestamp` within 5 minutes, `X-Hippo-Signature` recomputed over
/// `timestamp + "." + raw body`; 401 otherwise.
fn webhook_receiver(req: &Req) -> Resp {
    let ts = req.header("X-Hippo-Timestamp").unwrap_or("");
    let sig = req.header("X-Hippo-Signature").unwrap_or("");
    let mut msg = ts.as_bytes().to_vec();
    msg.push(b'.');
    msg.extend_from_slice(&req.body);
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(HOOK_SECRET.as_bytes(), &msg))
    );
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    if !fresh || !same(sig, &expected) {
        return json(401, serde_json::json!({"error": "bad signature"}));
    }
    if req.header("Content-Type") != Some("application/json") {
        return json(415, serde_json::json!({"error": "json only"}));
    }
    json(204, serde_json::json!({}))
}

#[tokio::test]
async fn webhook_signature_is_verified_and_a_wrong_secret_gets_401() {
    let (addr, seen) = serve(webhook_receiver).await;
    let n = notice(NoticeKind::Failed);
    let good = Channel::Webhook(Webhook {
        url: Secret::new(format!("http://{addr}/hooks/hippo")),
        secret: Secret::new(HOOK_SECRET),
    });
    let delivered = notify::send(&good, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(delivered.http_status, Some(204));
    {
        let seen = seen.lock().unwrap();
        let body = seen[0].json();
        assert_eq!(body["kind"], "failed");
        assert_eq!(body["release_name"], "cart-release-7");
        assert_eq!(body["failed_hosts"][1]["reason"], "ssh: connection refused");
        assert_eq!(seen[0].header("X-Hippo-Event"), Some("failed"));
        let back: Notice = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(back, n);
    }
    let wrong = Channel::Webhook(Webhook {
        url: Secret::new(format!("http://{addr}/hooks/hippo")),
        secret: Secret::new("wrong-webhook-secret"),
    });
    let err = notify::send(&wrong, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(401), "{err:?}");
    assert!(!err.to_string().contains("wrong-webhook-secret"));
}

// ---------------------------------------------------------------------------------------------
// Alibaba Cloud SMS

const ALI_KEY_ID: &str = "LTAI-test-key-id";
const ALI_SECRET: &str = "aliyun-access-key-secret";

/// RFC 3986 encoding written here independently of the library.
fn ali_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `SendSms` endpoint: recomputes the V2 signature from the received (decoded) query
/// parameters, checks the fixed parameters, the timestamp (15 min) and the nonce (once).
fn aliyun_sms() -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
    let nonces: Mutex<HashSet<String>> = Mutex::default();
    move |req: &Req| {
        let error = |status: u16, code: &str, message: &str| {
            json(
                status,
                serde_json::json!({"Code": code, "Message": message, "RequestId": "RID-1"}),
            )
        };
        if req.method != "GET" || req.path() != "/" {
            return error(404, "InvalidAction.NotFound", "not found");
        }
        let mut params: BTreeMap<String, String> = req.query().into_iter().collect();
        let Some(signature) = params.remove("Signature") else {
            return error(400, "MissingSignature", "Signature is mandatory");
        };
        if params.get("AccessKeyId").map(String::as_str) != Some(ALI_KEY_ID) {
            return error(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            );
        }
        let canonical = params
            .iter()
            .map(|(k, v)| format!("{}={}", ali_encode(k), ali_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let string_to_sign = format!("GET&{}&{}", ali_encode("/"), ali_encode(&canonical));
        let mut mac = Hmac::<Sha1>::new_from_slice(format!("{ALI_SECRET}&").as_bytes()).unwrap();
        mac.update(string_to_sign.as_bytes());
        let expected = B64.encode(mac.finalize().into_bytes());
        if !same(&signature, &expected) {
            return error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            );
        }
        let fixed = [
            ("Action", "SendSms"),
            ("Version", "2017-05-25"),
            ("Format", "JSON"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
        ];
        for (k, v) in fixed {
            if params.get(k).map(String::as_str) != Some(v) {
                return error(400, "InvalidParameter", k);
            }
        }
        let fresh = params
            .get("Timestamp")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                    .num_seconds()
                    .abs()
                    <= 900
            });
        if !fresh {
            return error(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            );
        }
        let nonce = params.get("SignatureNonce").cloned().unwrap_or_default();
        if nonce.is_empty() || !nonces.lock().unwrap().insert(nonce) {
            return error(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            );
        }
        let tp: serde_json::Value = params
            .get("TemplateParam")
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        if !tp.is_object() || params.get("PhoneNumbers").is_none_or(String::is_empty) {
            return error(
                200,
                "isv.INVALID_PARAMETERS",
                "bad template params or phones",
            );
        }
        json(
            200,
            serde_json::json!({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "RID-2"}),
        )
    }
}

fn sms_channel(addr: SocketAddr, secret: &str) -> Channel {
    Channel::Sms(Sms {
        endpoint: format!("http://{addr}/"),
        access_key_id: ALI_KEY_ID.into(),
        access_key_secret: Secret::new(secret),
        sign_name: "河马发布".into(),
        template_code: "SMS_154950909".into(),
        phone_numbers: vec!["13800000000".into(), "13900000000".into()],
    })
}

#[tokio::test]
async fn sms_signature_is_verified_and_a_wrong_secret_is_refused() {
    let (addr, seen) = serve(aliyun_sms()).await;
    let n = notice(NoticeKind::Failed);
    let delivered = notify::send(
        &sms_channel(addr, ALI_SECRET),
        &n,
        &opts(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    assert_eq!(
        delivered.detail.as_deref(),
        Some("BizId 900619746936498440^0")
    );
    // A second send uses a new nonce and is accepted too.
    notify::send(
        &sms_channel(addr, ALI_SECRET),
        &n,
        &opts(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    {
        let seen = seen.lock().unwrap();
        let q: BTreeMap<String, String> = seen[0].query().into_iter().collect();
        assert_eq!(q["PhoneNumbers"], "13800000000,13900000000");
        assert_eq!(q["SignName"], "河马发布");
        let tp: serde_json::Value = serde_json::from_str(&q["TemplateParam"]).unwrap();
        assert_eq!(tp["status"], "failed");
        assert_eq!(tp["app"], "cart");
        assert_eq!(tp["env"], "prod");
        assert_eq!(tp["failed"], "2");
    }
    let err = notify::send(
        &sms_channel(addr, "wrong-aliyun-secret"),
        &n,
        &opts(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    match &err {
        NoticeError::Provider { code, status, .. } => {
            assert_eq!(code, "SignatureDoesNotMatch");
            assert_eq!(*status, 400);
        }
        other => panic!("expected a provider error, got {other:?}"),
    }
    assert!(!err.to_string().contains("wrong-aliyun-secret"));
}

// ---------------------------------------------------------------------------------------------
// SMTP

#[derive(Clone, Debug, Default)]
struct Mail {
    auth: Option<String>,
    from: String,
    rcpt: Vec<String>,
    data: String,
}

/// A small SMTP server: EHLO (offers AUTH PLAIN, no STARTTLS), AUTH PLAIN, MAIL, RCPT, DATA
/// (dot-unstuffed), RSET, NOOP, QUIT.
async fn smtp_server() -> (SocketAddr, Arc<Mutex<Vec<Mail>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mails: Arc<Mutex<Vec<Mail>>> = Arc::default();
    let mails2 = mails.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mails = mails2.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read);
                let _ = write.write_all(b"220 localhost ESMTP test\r\n").await;
                let mut mail = Mail::default();
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let upper = cmd.to_ascii_uppercase();
                    let reply: String = if upper.starts_with("EHLO") {
                        "250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n".into()
                    } else if upper.starts_with("HELO") || upper == "NOOP" {
                        "250 OK\r\n".into()
                    } else if upper.starts_with("AUTH PLAIN ") {
                        let raw = B64.decode(cmd[11..].trim()).unwrap_or_default();
                        mail.auth = Some(String::from_utf8_lossy(&raw).replace('\0', "|"));
                        "235 2.7.0 Authentication successful\r\n".into()
                    } else if upper.starts_with("MAIL FROM:") {
                        mail.from = cmd[10..].trim().to_string();
                        "250 2.1.0 OK\r\n".into()
                    } else if upper.starts_with("RCPT TO:") {
                        mail.rcpt.push(cmd[8..].trim().to_string());
                        "250 2.1.5 OK\r\n".into()
                    } else if upper == "DATA" {
                        let _ = write
                            .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await;
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(line.strip_prefix('.').unwrap_or(&line));
                        }
                        mail.data = data;
                        mails.lock().unwrap().push(std::mem::take(&mut mail));
                        "250 2.0.0 Ok: queued as TEST123\r\n".into()
                    } else if upper == "RSET" {
                        mail = Mail::default();
                        "250 OK\r\n".into()
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
                        return;
                    } else {
                        "502 5.5.2 Command not recognized\r\n".into()
                    };
                    let _ = write.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    (addr, mails)
}

/// Decodes RFC 2047 `=?utf-8?b?…?=` / `=?utf-8?q?…?=` words in an unfolded header value.
fn decode_header(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let word = &rest[start + 2..];
        let parts: Vec<&str> = word.splitn(3, '?').collect();
        if parts.len() < 3 {
            out.push_str(&rest[start..]);
            return out;
        }
        let Some(end) = parts[2].find("?=") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let text = &parts[2][..end];
        let bytes = if parts[1].eq_ignore_ascii_case("b") {
            B64.decode(text).unwrap_or_default()
        } else {
            let mut b = Vec::new();
            let t = text.as_bytes();
            let mut i = 0;
            while i < t.len() {
                match t[i] {
                    b'_' => b.push(b' '),
                    b'=' if i + 2 < t.len() => {
                        b.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap_or(b'?'));
                        i += 2;
                    }
                    c => b.push(c),
                }
                i += 1;
            }
            b
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        rest = &parts[2][end + 2..];
        // Whitespace between two encoded words is not part of the text.
        if rest.trim_start().starts_with("=?") {
            rest = rest.trim_start();
        }
    }
    out.push_str(rest);
    out
}

fn header_of(data: &str, name: &str) -> String {
    let head = data.split("\r\n\r\n").next().unwrap_or("");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| decode_header(v.trim()))
        })
        .unwrap_or_default()
}

/// The decoded body of the first part with this content type.
fn part_of(data: &str, content_type: &str) -> String {
    let at = data.find(&format!("Content-Type: {content_type}")).unwrap();
    let after = &data[at..];
    let body_start = after.find("\r\n\r\n").unwrap() + 4;
    let body = &after[body_start..];
    let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
    let compact: String = body.split_whitespace().collect();
    String::from_utf8(B64.decode(compact).unwrap()).unwrap()
}

#[tokio::test]
async fn email_arrives_with_headers_text_and_html() {
    let (addr, mails) = smtp_server().await;
    let ch = Channel::Email(Email {
        host: "127.0.0.1".into(),
        port: Some(addr.port()),
        security: SmtpSecurity::Plain,
        username: Some("mailer".into()),
        password: Some(Secret::new("smtp-password-1")),
        from: "Hippo <hippo@example.com>".into(),
        to: vec![
            "ops@example.com".into(),
            "Dev Team <dev@example.com>".into(),
        ],
    });
    let mut n = notice(NoticeKind::Failed);
    n.failed_hosts
        .push(FailedHost::new("web-<3>", "exit 1 & \"boom\""));
    let delivered = notify::send(&ch, &n, &opts(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(
        delivered
            .detail
            .unwrap_or_default()
            .contains("queued as TEST123")
    );

    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.auth.as_deref(), Some("|mailer|smtp-password-1"));
    assert_eq!(mail.from, "<hippo@example.com>");
    assert_eq!(mail.rcpt, vec!["<ops@example.com>", "<dev@example.com>"]);
    assert_eq!(header_of(&mail.data, "From"), "Hippo <hippo@example.com>");
    let to = header_of(&mail.data, "To");
    assert_eq!(to, "ops@example.com, \"Dev Team\" <dev@example.com>");
    let subject = header_of(&mail.data, "Subject");
    assert_eq!(
        subject,
        "[Hippo] Release failed: cart → prod (cart-release-7)"
    );
    assert!(header_of(&mail.data, "Content-Type").starts_with("multipart/alternative"));

    let text = part_of(&mail.data, "text/plain");
    assert!(text.contains("cart-release-7"), "{text}");
    assert!(
        text.contains("web-1: after-release hook exited 3"),
        "{text}"
    );
    assert!(text.contains("web-2: ssh: connection refused"), "{text}");
    let html = part_of(&mail.data, "text/html");
    assert!(html.contains("cart-release-7"), "{html}");
    assert!(
        html.contains("<strong>web-1</strong>: after-release hook exited 3"),
        "{html}"
    );
    assert!(
        html.contains("<strong>web-&lt;3&gt;</strong>: exit 1 &amp; &quot;boom&quot;"),
        "{html}"
    );
    assert!(
        html.contains("href=\"http://hippo.local/releases/7\""),
        "{html}"
    );
}

// ---------------------------------------------------------------------------------------------
// Failures, retries and time bounds

#[tokio::test]
async fn deliver_retries_a_500_and_records_every_attempt() {
    let (addr, seen) = serve(|_| json(500, serde_json::json!({"error": "internal"}))).await;
    let ch = Channel::Webhook(Webhook {
        url: Secret::new(format!("http://{addr}/hook")),
        secret: Secret::new(HOOK_SECRET),
    });
    let policy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(50),
        multiplier: 4,
        max_delay: Duration::from_secs(1),
        send: opts(Duration::from_secs(2)),
    };
    let started = Instant::now();
    let attempts = notify::deliver(&ch, &notice(NoticeKind::Succeeded), &policy).await;
    let elapsed = started.elapsed();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(seen.lock().unwrap().len(), 3);
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a.number as usize, i + 1);
        assert!(!a.ok);
        assert_eq!(a.http_status, Some(500));
        assert!(
            a.error.as_deref().unwrap_or("").contains("HTTP 500"),
            "{a:?}"
        );
        chrono::DateTime::parse_from_rfc3339(&a.started_at).unwrap();
    }
    // Backoff 50 ms then 200 ms was slept between the attempts.
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed <= policy.worst_case(), "{elapsed:?}");
}

#[tokio::test]
async fn deliver_stops_at_the_first_success() {
    let calls = Arc::new(Mutex::new(0u32));
    let calls2 = calls.clone();
    let (addr, _) = serve(move |_| {
        let mut c = calls2.lock().unwrap();
        *c += 1;
        if *c < 3 {
            json(503, serde_json::json!({"error": "busy"}))
        } else {
            json(200, serde_json::json!({}))
        }
    })
    .await;
    let ch = Channel::Webhook(Webhook {
        url: Secret::new(format!("http://{addr}/hook")),
        secret: Secret::new(HOOK_SECRET),
    });
    let policy = RetryPolicy {
        attempts: 5,
        first_delay: Duration::from_millis(10),
        multiplier: 2,
        max_delay: Duration::from_secs(1),
        send: opts(Duration::from_secs(2)),
    };
    let attempts = notify::deliver(&ch, &notice(NoticeKind::Started), &policy).await;
    let oks: Vec<bool> = attempts.iter().map(|a| a.ok).collect();
    assert_eq!(oks, vec![false, false, true]);
    assert_eq!(attempts[0].http_status, Some(503));
    assert_eq!(attempts[2].http_status, Some(200));
    assert_eq!(*calls.lock().unwrap(), 3);
}

/// Accepts connections and never answers (keeps them open).
async fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[tokio::test]
async fn a_hanging_listener_fails_within_the_timeout() {
    let addr = silent_listener().await;
    let timeout = Duration::from_secs(1);
    let channels = [
        Channel::DingTalk(DingTalk {
            webhook_url: Secret::new(format!(
                "http://{addr}/robot/send?access_token={DING_TOKEN}"
            )),
            secret: Secret::new(DING_SECRET),
        }),
        Channel::Email(Email {
            host: "127.0.0.1".into(),
            port: Some(addr.port()),
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            from: "hippo@example.com".into(),
            to: vec!["ops@example.com".into()],
        }),
        sms_channel(addr, ALI_SECRET),
    ];
    for ch in &channels {
        let started = Instant::now();
        let err = notify::send(ch, &notice(NoticeKind::Failed), &opts(timeout))
            .await
            .unwrap_err();
        let elapsed = started.elapsed();
        eprintln!("{}: {err} after {elapsed:?}", ch.kind());
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
            "{}: {elapsed:?}",
            ch.kind()
        );
        assert!(
            matches!(err, NoticeError::Timeout(_)) || err.to_string().contains("timed out"),
            "{}: {err:?}",
            ch.kind()
        );
    }

    // deliver with 2 attempts stays within attempts × (timeout + backoff).
    let policy = RetryPolicy {
        attempts: 2,
        first_delay: Duration::from_millis(100),
        multiplier: 4,
        max_delay: Duration::from_secs(1),
        send: opts(timeout),
    };
    let started = Instant::now();
    let attempts = notify::deliver(&channels[0], &notice(NoticeKind::Failed), &policy).await;
    let elapsed = started.elapsed();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| !a.ok && a.http_status.is_none()));
    assert!(
        attempts
            .iter()
            .all(|a| a.error.as_deref().unwrap_or("").contains("timed out")),
        "{attempts:?}"
    );
    assert!(
        elapsed < policy.worst_case() + Duration::from_millis(500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_closed_port_fails_fast_without_leaking_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ch = Channel::WeCom(WeCom {
        webhook_url: Secret::new(format!(
            "http://{addr}/cgi-bin/webhook/send?key={WECOM_KEY}"
        )),
    });
    let started = Instant::now();
    let err = notify::send(
        &ch,
        &notice(NoticeKind::Failed),
        &opts(Duration::from_secs(5)),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(err, NoticeError::Transport(_)), "{err:?}");
    let text = err.to_string();
    eprintln!("closed port: {text}");
    assert!(
        !text.contains(WECOM_KEY) && !text.contains("/cgi-bin"),
        "{text}"
    );
}
