//! The notice channels of a release config as typed shapes: one object per channel `type`
//! (a `oneOf` with a `type` discriminator in the spec). Secrets are write-only: read back they
//! are `***` (robot URLs shortened to `scheme://host/***`).
use crate::problem::ApiError;
use crate::text::{SecretText, ShortText, UrlText};
use hippo_worker::notify::Channel;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{Enum, Object, Union};

/// A DingTalk group robot, signed.
#[derive(Object, Clone)]
pub struct DingTalkChannel {
    /// `https://oapi.dingtalk.com/robot/send?access_token=…` (the token makes it a secret).
    pub webhook_url: UrlText,
    /// The robot's signing secret (`SEC…`).
    pub secret: SecretText,
}

/// A WeCom (企业微信) group robot.
#[derive(Object, Clone)]
pub struct WeComChannel {
    /// `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`
    pub webhook_url: UrlText,
}

/// Feishu message type (default `post`).
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum FeishuMsgType {
    Text,
    Post,
}

/// A Feishu (飞书) group bot.
#[derive(Object, Clone)]
pub struct FeishuChannel {
    /// `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`
    pub webhook_url: UrlText,
    /// The bot's signing secret, when signature verification is on.
    #[oai(skip_serializing_if_is_none)]
    pub secret: Option<SecretText>,
    #[oai(skip_serializing_if_is_none)]
    pub msg_type: Option<FeishuMsgType>,
}

/// A webhook of your own: the notice as JSON, signed with HMAC-SHA256
/// (`X-Hippo-Signature: sha256=…` over `<timestamp>.<body>`).
#[derive(Object, Clone)]
pub struct WebhookChannel {
    pub url: UrlText,
    /// The shared HMAC key.
    pub secret: SecretText,
}

/// How to talk to the SMTP server: `tls` (implicit, 465), `starttls` (587), `plain` (25).
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
pub enum SmtpSecurity {
    Tls,
    Starttls,
    Plain,
}

/// Email through an SMTP server.
#[derive(Object, Clone)]
pub struct EmailChannel {
    pub host: ShortText,
    /// Defaults by `security`: 465 / 587 / 25.
    #[oai(skip_serializing_if_is_none, validator(minimum(value = "1")))]
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<ShortText>,
    #[oai(skip_serializing_if_is_none)]
    pub password: Option<SecretText>,
    /// `Hippo <hippo@example.com>` or a bare address.
    pub from: ShortText,
    #[oai(validator(min_items = 1, max_items = 50))]
    pub to: Vec<ShortText>,
}

/// SMS through Alibaba Cloud.
#[derive(Object, Clone)]
pub struct SmsChannel {
    /// The API endpoint (default `https://dysmsapi.aliyuncs.com/`).
    #[oai(skip_serializing_if_is_none)]
    pub endpoint: Option<UrlText>,
    pub access_key_id: ShortText,
    pub access_key_secret: SecretText,
    /// The approved signature name (签名).
    pub sign_name: ShortText,
    /// The approved template (`SMS_…`).
    pub template_code: ShortText,
    #[oai(validator(min_items = 1, max_items = 50))]
    pub phone_numbers: Vec<ShortText>,
}

/// Where a config's notices go; `type` says which kind of channel.
#[derive(Union, Clone)]
#[oai(discriminator_name = "type", one_of)]
pub enum NoticeChannel {
    #[oai(mapping = "dingtalk")]
    DingTalk(DingTalkChannel),
    #[oai(mapping = "wecom")]
    WeCom(WeComChannel),
    #[oai(mapping = "feishu")]
    Feishu(FeishuChannel),
    #[oai(mapping = "webhook")]
    Webhook(WebhookChannel),
    #[oai(mapping = "email")]
    Email(EmailChannel),
    #[oai(mapping = "sms")]
    Sms(SmsChannel),
}

/// Parses and checks the channels of a request (422 naming `notice_channels[i]`).
pub fn parse(raw: &[NoticeChannel]) -> Result<Vec<Channel>, ApiError> {
    raw.iter()
        .enumerate()
        .map(|(i, c)| {
            let field = format!("notice_channels[{i}]");
            let json = c.to_json().unwrap_or_default();
            let c: Channel = serde_json::from_value(json)
                .map_err(|e| ApiError::invalid(&field, format!("{field}: {e}")))?;
            c.validate()
                .map_err(|e| ApiError::invalid(&field, format!("{field}: {e}")))?;
            Ok(c)
        })
        .collect()
}

/// A stored channel as the API shows it: secrets redacted.
pub fn shown(c: &Channel) -> Option<NoticeChannel> {
    let mut v = c.redacted();
    // Unset optional values read back absent, not null.
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    NoticeChannel::parse_from_json(Some(v)).ok()
}
