//! A string that must never be shown: settings (database URL, master key, admin password),
//! notice channel secrets, passwords and robot webhook URLs (whose query or path carries the
//! robot's token). One type for all of them.
use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret value. `Debug` prints `Secret(***)` and `Display` `***`; the value itself is only
/// reachable through [`Secret::expose`]. It (de)serializes as a plain string, because notice
/// channels are stored (sealed) with it: never serialize a channel into an API answer, use
/// `worker::notify::Channel::redacted` for that.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
