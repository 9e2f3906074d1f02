//! The text fields of the API, one type per kind of text, each with its limits stated once: the
//! spec's `minLength`/`maxLength`/`pattern` come from here and `body::JsonBody` enforces exactly
//! them (422 naming the field). The domain parsers (`hippo_shared::domain`) may check more; the
//! patterns are written to accept nothing those parsers refuse for syntax alone (regex syntax
//! valid in Rust, Python and JavaScript alike, so generated clients and fuzzers agree).
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;
use std::borrow::Cow;

/// No control characters (Unicode Cc: C0, DEL, C1).
const LINE: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
/// One line with at least one visible character.
const NAME: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";
/// Any text but NUL.
const NO_NUL: &str = r"^[^\u0000]*$";

macro_rules! text_type {
    ($(#[$m:meta])* $name:ident, $min:expr, $max:expr, $pattern:expr, $desc:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name(pub String);

        impl $name {
            pub const MAX: usize = $max;
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;
            fn name() -> Cow<'static, str> {
                "string".into()
            }
            fn schema_ref() -> MetaSchemaRef {
                let pattern: Option<&str> = $pattern;
                let min: usize = $min;
                MetaSchemaRef::Inline(Box::new(MetaSchema {
                    min_length: (min > 0).then_some(min),
                    max_length: Some($max),
                    pattern: pattern.map(str::to_owned),
                    description: Some($desc),
                    ..MetaSchema::new("string")
                }))
            }
            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }
            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(std::iter::once(self))
            }
            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(s)) => Ok(Self(s)),
                    Some(other) => Err(ParseError::expected_type(other)),
                    None => Err(ParseError::expected_input()),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

text_type!(
    /// A display name (environment, app, host, user, role, token, release).
    Name, 1, 100, Some(NAME),
    "1-100 characters on one line, not blank."
);
text_type!(
    /// A short unique name such as `prod` or `cart`.
    TagText, 1, 32, Some(r"^[a-z0-9][a-z0-9_-]*$"),
    "1-32 of a-z, 0-9, `-`, `_`, starting with a letter or digit."
);
text_type!(
    /// Free text describing a record.
    Description, 0, 1000, None,
    "At most 1000 characters."
);
text_type!(
    /// A host name or IP address.
    HostAddrText, 1, 253, Some(r"^[A-Za-z0-9._:][A-Za-z0-9._:-]*$"),
    "Host name or IP address (letters, digits, `.`, `-`, `:`, `_`)."
);
text_type!(
    /// A login name on a target host.
    SshUserText, 1, 32, Some(r"^[A-Za-z_][A-Za-z0-9_.-]*$"),
    "A user name: letters, digits, `_`, `-`, `.`, starting with a letter or `_`."
);
text_type!(
    /// A host's category (`web`, `db`).
    Category, 0, 64, Some(LINE),
    "At most 64 characters on one line."
);
text_type!(
    /// A shell script run as a hook.
    Script, 0, 65536, Some(NO_NUL),
    "A shell script of at most 65536 characters."
);
text_type!(
    /// A path inside the checked-out tree (`dist/`).
    TreePathText, 1, 1024, Some(LINE),
    "A relative path inside the checked-out tree (`dist/`; `.` is all of it), without `..`."
);
text_type!(
    /// Multi-line settings text (file filter, variables).
    LongText, 0, 65536, Some(NO_NUL),
    "At most 65536 characters."
);
text_type!(
    /// `KEY=value` lines given to every hook. Each value at most 100000 bytes (the kernel's
    /// limit for one environment entry is 128 KiB); all of them at most 1000000 characters (a
    /// process's whole environment is limited too, and they must fit in a request).
    VariablesText, 0, 1_000_000, Some(NO_NUL),
    "At most 1000000 characters; each value at most 100000 bytes."
);
text_type!(
    /// A review comment.
    Comment, 0, 2000, None,
    "At most 2000 characters."
);
text_type!(
    /// A Git repository location.
    RepoUrlText, 1, 2048, Some(r"^[^\s\-\u0000-\u001f\u007f-\u009f][^\s\u0000-\u001f\u007f-\u009f]*$"),
    "Git URL: SSH (`git@host:o/r.git`, `ssh://`), HTTPS, `file://` or an absolute local path; \
     no spaces, no credentials in the URL."
);
text_type!(
    /// An absolute path on the target hosts.
    RemotePathText, 2, 1024,
    Some(r"^(/([^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.[^/.\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*|\.\.[^/\u0000-\u001f\u007f-\u009f]+))+/?$"),
    "An absolute path, not `/`, without `.`, `..` or empty components."
);
text_type!(
    /// A branch or tag name.
    RefName, 1, 255, Some(r"^[^\-/\s~^:?*\[\\\u0000-\u001f\u007f-\u009f][^\s~^:?*\[\\\u0000-\u001f\u007f-\u009f]*$"),
    "A Git branch or tag name."
);
text_type!(
    /// A branch or tag name, or a glob of them: `*` any characters but `/`, `**` any, `?` one.
    RefPattern, 1, 255, Some(r"^[^\s~^:\[\\\u0000-\u001f\u007f-\u009f]+$"),
    "A branch or tag name, or a glob (`release/*`, `v*`)."
);
text_type!(
    /// A full or abbreviated commit id (SHA-1: Hippo's Git library reads SHA-1 repositories).
    CommitText, 7, 40, Some(r"^[0-9a-fA-F]+$"),
    "7-40 hexadecimal characters."
);
text_type!(
    /// The folder name of a kept version.
    VersionText, 1, 128, Some(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"),
    "A kept version's folder name, e.g. `20261123T231800Z-r42-1a2b3c4`."
);
text_type!(
    /// A new password.
    Password, 10, 1024, None,
    "10-1024 characters."
);
text_type!(
    /// A password as typed at login.
    LoginPassword, 1, 1024, None,
    "The user's password."
);
text_type!(
    /// A user name as typed at login.
    LoginName, 1, 100, None,
    "The user name."
);
text_type!(
    /// A credential (token, signing secret, password of a service).
    SecretText, 0, 4096, Some(LINE),
    "Write-only; never returned."
);
text_type!(
    /// A short setting on one line (user names, codes, endpoints).
    ShortText, 0, 256, Some(LINE),
    "At most 256 characters on one line."
);
text_type!(
    /// A point in time as given (checked by the handler, which names the field).
    DateTimeText, 1, 64, Some(LINE),
    "An RFC 3339 date-time, e.g. `2026-12-02T02:00:00+08:00`."
);
text_type!(
    /// A URL.
    UrlText, 1, 2048, Some(r"^[^\s\u0000-\u001f\u007f-\u009f]+$"),
    "An http(s) URL."
);

text_type!(
    /// A host login password, for one connection (install-key).
    HostPassword, 1, 1024, None,
    "The login user's password on the host, used for this one connection: never stored, \
     logged, audited or returned."
);
text_type!(
    /// A CSV or JSON file of hosts.
    ImportText, 1, 500000, Some(NO_NUL),
    "The file's text, at most 500000 characters and 1000 hosts."
);

/// A point in time, RFC 3339 in UTC (`2026-11-30T21:58:56.123Z`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timestamp(pub String);

impl From<String> for Timestamp {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl Type for Timestamp {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;
    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }
    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
    }
    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }
    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ToJSON for Timestamp {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(s)) => Ok(Self(s)),
            Some(other) => Err(ParseError::expected_type(other)),
            None => Err(ParseError::expected_input()),
        }
    }
}

impl poem_openapi::types::ParseFromParameter for Timestamp {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        let t = chrono::DateTime::parse_from_rfc3339(value)
            .map_err(|_| ParseError::custom("an RFC 3339 date-time is expected"))?;
        Ok(Self(
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ))
    }
}
text_type!(
    /// One wave of a rollout.
    WaveText, 1, 8, Some(r"^([0-9]{1,4}%?|rest)$"),
    "A number of hosts (`1`), a percentage of them (`25%`) or `rest` (last only)."
);
