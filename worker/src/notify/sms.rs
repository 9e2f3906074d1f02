//! SMS through Alibaba Cloud's SMS service (`dysmsapi`, `SendSms`, API version 2017-05-25),
//! signed with the RPC "signature method V2" (SignatureVersion 1.0, HMAC-SHA1).
//!
//! The algorithm, as documented by Alibaba Cloud ("签名机制" / "Signature mechanism", e.g.
//! help.aliyun.com/document_detail/28839.html and the SMS product's own page
//! alibabacloud.com/help/zh/doc-detail/252839.htm; also "Request syntax and signature method V2
//! for RPC APIs", help.aliyun.com/en/sdk/product-overview/rpc-mechanism):
//! 1. Take every request parameter except `Signature` (common ones — `AccessKeyId`, `Action`,
//!    `Format`, `RegionId`, `SignatureMethod`, `SignatureNonce`, `SignatureVersion`,
//!    `Timestamp` (ISO 8601 UTC, `yyyy-MM-ddTHH:mm:ssZ`), `Version` — and the operation's:
//!    `PhoneNumbers` (comma-joined), `SignName`, `TemplateCode`, `TemplateParam` (JSON)), sort
//!    them by name.
//! 2. Percent-encode each name and value as UTF-8 per RFC 3986: `A-Z a-z 0-9 - _ . ~` stay,
//!    everything else becomes `%XY`; a space is `%20`, never `+` (the docs' Java recipe:
//!    `URLEncoder.encode(..).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")`).
//! 3. Join as `name=value` with `&`: the canonicalized query string.
//! 4. `StringToSign = "GET" + "&" + percentEncode("/") + "&" + percentEncode(canonicalized)`.
//! 5. `Signature = Base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))`, added
//!    (percent-encoded) as the `Signature` parameter.
//!
//! The unit tests reproduce Alibaba's published example (DescribeRegions, `testid` /
//! `testsecret` → `CT9X0VtwR86fNWSnsc6v8YGOjuE=`) with these functions.
//!
//! The answer is JSON; success is `"Code": "OK"` (an error has its `Code` and `Message`, e.g.
//! `SignatureDoesNotMatch`, often with HTTP 400). The docs give a timestamp validity of 15
//! (older pages) to 31 minutes and say the nonce must differ for every request.
//!
//! Note: Alibaba marks signature V2 "no longer recommended" in favour of V3 (ACS3-HMAC-SHA256);
//! the SMS endpoint still documents V2. If V2 is ever switched off, only this file changes.
use super::http;
use super::notice::{Notice, truncate_chars};
use super::{Delivered, NoticeError, Secret, SecretField, SendOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use std::collections::BTreeMap;

pub const DEFAULT_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";
/// Longest value of one template parameter (Alibaba limits variables; 20 is safe for all kinds).
pub const MAX_PARAM_CHARS: usize = 20;

/// RFC 3986 unreserved characters stay; everything else is encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// The approved signature name (签名), shown as 【…】 in the message.
    pub sign_name: String,
    /// The approved template (`SMS_…`); it may use the variables of [`template_params`].
    pub template_code: String,
    pub phone_numbers: Vec<String>,
}

/// Percent-encoding per the document (RFC 3986, UTF-8, space as `%20`).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// Sorted `name=value` pairs, each side percent-encoded, joined with `&`.
pub fn canonicalized_query(params: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET&%2F&<percentEncode(canonicalized query)>`
pub fn string_to_sign(method: &str, canonicalized: &str) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(canonicalized)
    )
}

/// `Base64(HMAC-SHA1(key = secret + "&", string_to_sign))`
pub fn sign(access_key_secret: &str, string_to_sign: &str) -> String {
    let key = format!("{access_key_secret}&");
    let mut mac = match Hmac::<Sha1>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The template variables: `status`, `app`, `env`, `release`, `version`, `actor`, `failed` (the
/// number of failed hosts), each at most [`MAX_PARAM_CHARS`] characters. A template may use any
/// subset of them, e.g. `发布 ${app} 到 ${env}: ${status}（${failed} 台失败）`.
pub fn template_params(notice: &Notice) -> serde_json::Value {
    let short = |s: &str| truncate_chars(&super::notice::one_line(s), MAX_PARAM_CHARS);
    let actor = notice
        .actor
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .unwrap_or(&notice.requested_by);
    serde_json::json!({
        "status": notice.kind.as_str(),
        "app": short(&notice.app.name),
        "env": short(&notice.environment.name),
        "release": short(&notice.release_name),
        "version": short(notice.version.as_deref().unwrap_or("")),
        "actor": short(actor),
        "failed": notice.failed_hosts.len().to_string(),
    })
}

impl Sms {
    /// Its secret fields (see [`super::SecretField`]): redacted in API answers, scrubbed from
    /// errors and logs.
    pub const SECRET_FIELDS: &'static [SecretField] = &[SecretField::Value("access_key_secret")];

    pub fn validate(&self) -> Result<(), NoticeError> {
        http::parse_http_url(&self.endpoint, "endpoint")?;
        for (value, what) in [
            (self.access_key_id.as_str(), "access_key_id"),
            (self.access_key_secret.expose(), "access_key_secret"),
            (self.sign_name.as_str(), "sign_name"),
            (self.template_code.as_str(), "template_code"),
        ] {
            if value.trim().is_empty() {
                return Err(NoticeError::Config(format!("{what} is empty")));
            }
        }
        if self.phone_numbers.iter().all(|p| p.trim().is_empty()) {
            return Err(NoticeError::Config("no phone numbers".into()));
        }
        Ok(())
    }

    /// Every parameter of the request, before `Signature`.
    pub fn request_params(
        &self,
        notice: &Notice,
        nonce: &str,
        timestamp: chrono::DateTime<chrono::Utc>,
    ) -> BTreeMap<String, String> {
        let phones: Vec<&str> = self
            .phone_numbers
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect();
        let pairs = [
            ("AccessKeyId", self.access_key_id.trim().to_string()),
            ("Action", "SendSms".to_string()),
            ("Format", "JSON".to_string()),
            ("PhoneNumbers", phones.join(",")),
            ("RegionId", "cn-hangzhou".to_string()),
            ("SignName", self.sign_name.clone()),
            ("SignatureMethod", "HMAC-SHA1".to_string()),
            ("SignatureNonce", nonce.to_string()),
            ("SignatureVersion", "1.0".to_string()),
            ("TemplateCode", self.template_code.trim().to_string()),
            ("TemplateParam", template_params(notice).to_string()),
            (
                "Timestamp",
                timestamp.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("Version", "2017-05-25".to_string()),
        ];
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The GET URL: endpoint + canonicalized query + `&Signature=…`.
    pub fn signed_url(&self, params: &BTreeMap<String, String>) -> Result<url::Url, NoticeError> {
        let mut url = http::parse_http_url(&self.endpoint, "endpoint")?;
        let canonical = canonicalized_query(params);
        let signature = sign(
            self.access_key_secret.expose(),
            &string_to_sign("GET", &canonical),
        );
        url.set_query(Some(&format!(
            "{canonical}&Signature={}",
            percent_encode(&signature)
        )));
        Ok(url)
    }

    pub(crate) async fn send(
        &self,
        notice: &Notice,
        opts: &SendOptions,
    ) -> Result<Delivered, NoticeError> {
        self.validate()?;
        let nonce = uuid::Uuid::new_v4().to_string();
        let params = self.request_params(notice, &nonce, chrono::Utc::now());
        let url = self.signed_url(&params)?;
        let client = http::client(&url, opts).await?;
        let (status, text) = http::execute(client.get(url), opts).await?;
        let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let code = json
            .as_ref()
            .and_then(|j| j.get("Code"))
            .and_then(|c| c.as_str());
        match (code, json.as_ref()) {
            (Some("OK"), Some(j)) if (200..300).contains(&status) => Ok(Delivered {
                http_status: Some(status),
                detail: j
                    .get("BizId")
                    .and_then(|b| b.as_str())
                    .map(|b| format!("BizId {b}")),
            }),
            (Some(code), Some(j)) => Err(NoticeError::Provider {
                provider: "Alibaba Cloud SMS",
                status,
                code: http::quote(code),
                message: http::quote(j.get("Message").and_then(|m| m.as_str()).unwrap_or("")),
            }),
            _ if !(200..300).contains(&status) => Err(NoticeError::Http {
                status,
                body: http::quote(&text),
            }),
            _ => Err(NoticeError::BadResponse {
                status,
                detail: format!("no Code in {}", http::quote(&text)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::notify::notice::{NoticeKind, sample};

    #[test]
    fn percent_encoding_follows_the_java_recipe() {
        assert_eq!(percent_encode("a b*c~d+e/f:g"), "a%20b%2Ac~d%2Be%2Ff%3Ag");
        assert_eq!(percent_encode("发"), "%E5%8F%91");
        assert_eq!(percent_encode("-_.~AZaz09"), "-_.~AZaz09");
    }

    /// Alibaba's published DescribeRegions example (help.aliyun.com "签名机制", developer
    /// community "API 签名机制（示例）"): AccessKeyId `testid`, AccessKeySecret `testsecret`,
    /// HMAC key `testsecret&`, published signature `CT9X0VtwR86fNWSnsc6v8YGOjuE=`. (Some copies
    /// of the page print the StringToSign with bare `&` between the pairs: a rendering loss;
    /// the published signature is that of the `%26` form below, per the algorithm.)
    #[test]
    fn documented_example() {
        let params: BTreeMap<String, String> = [
            ("TimeStamp", "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sts = string_to_sign("GET", &canonicalized_query(&params));
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML\
             %26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\
             %26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z\
             %26Version%3D2014-05-26"
        );
        // Independently: the primitives over the documented key and string.
        let mut mac = Hmac::<Sha1>::new_from_slice(b"testsecret&").unwrap();
        mac.update(sts.as_bytes());
        let independent =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sign("testsecret", &sts), independent);
        // And the published value.
        assert_eq!(sign("testsecret", &sts), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
    }

    #[test]
    fn send_sms_request() {
        let sms = Sms {
            endpoint: DEFAULT_ENDPOINT.into(),
            access_key_id: "LTAIkey".into(),
            access_key_secret: Secret::new("s3cr3t"),
            sign_name: "河马发布".into(),
            template_code: "SMS_123".into(),
            phone_numbers: vec!["13800000000".into(), " 13900000000 ".into()],
        };
        let ts = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let params = sms.request_params(&sample(NoticeKind::Failed), "nonce-1", ts);
        assert_eq!(params["PhoneNumbers"], "13800000000,13900000000");
        assert_eq!(params["Timestamp"], "2026-01-02T03:04:05Z");
        let tp: serde_json::Value = serde_json::from_str(&params["TemplateParam"]).unwrap();
        assert_eq!(tp["status"], "failed");
        assert_eq!(tp["failed"], "2");
        assert_eq!(tp["release"], "cart 1.4 hotfix");
        let url = sms.signed_url(&params).unwrap();
        let query = url.query().unwrap_or_default();
        let (canonical, sig) = query.rsplit_once("&Signature=").unwrap();
        assert_eq!(canonical, canonicalized_query(&params));
        assert!(canonical.starts_with("AccessKeyId=LTAIkey&Action=SendSms&Format=JSON"));
        assert!(canonical.contains("SignName=%E6%B2%B3%E9%A9%AC%E5%8F%91%E5%B8%83"));
        let mut mac = Hmac::<Sha1>::new_from_slice(b"s3cr3t&").unwrap();
        mac.update(string_to_sign("GET", canonical).as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, percent_encode(&expected));
    }

    #[test]
    fn params_are_short() {
        let mut n = sample(NoticeKind::Succeeded);
        n.release_name = "a very long release name that goes on".into();
        let tp = template_params(&n);
        assert_eq!(
            tp["release"].as_str().unwrap().chars().count(),
            MAX_PARAM_CHARS
        );
        assert_eq!(tp["actor"], "bob");
    }
}
