//! Waves and health checks (issue 12): a config may switch its hosts a few at a time
//! (`["1", "25%", "rest"]`), check their health after each wave, and pause for a person's
//! "continue". Parsed once at the API edge; the worker trusts these values.
use crate::domain::Invalid;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most waves a config may name.
pub const MAX_WAVES: usize = 20;

/// One wave's size: a number of hosts, a percentage of the release's hosts (rounded up, at
/// least one host), or every host not yet switched (`rest`, last only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaveSize {
    Count(u32),
    Percent(u8),
    Rest,
}

impl WaveSize {
    pub fn parse(s: &str) -> Result<WaveSize, Invalid> {
        let t = s.trim();
        if t == "rest" {
            return Ok(WaveSize::Rest);
        }
        if let Some(p) = t.strip_suffix('%') {
            return match p.parse::<u8>() {
                Ok(n @ 1..=100) => Ok(WaveSize::Percent(n)),
                _ => Err(Invalid(format!("wave '{s}': a percentage is 1% to 100%"))),
            };
        }
        match t.parse::<u32>() {
            Ok(n @ 1..=1000) => Ok(WaveSize::Count(n)),
            _ => Err(Invalid(format!(
                "wave '{s}': a wave is a number of hosts (1 to 1000), a percentage (25%) or rest"
            ))),
        }
    }
}

impl fmt::Display for WaveSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveSize::Count(n) => write!(f, "{n}"),
            WaveSize::Percent(p) => write!(f, "{p}%"),
            WaveSize::Rest => f.write_str("rest"),
        }
    }
}

/// A config's waves, in order. Empty: every host in one wave (no waves). Stored and shown as
/// their text (`"1"`, `"25%"`, `"rest"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Waves(Vec<WaveSize>);

impl Waves {
    /// Parses the list: at most [`MAX_WAVES`], `rest` only as the last one.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Waves, Invalid> {
        if items.len() > MAX_WAVES {
            return Err(Invalid(format!("at most {MAX_WAVES} waves")));
        }
        let sizes = items
            .iter()
            .map(|s| WaveSize::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(i) = sizes.iter().position(|w| *w == WaveSize::Rest)
            && i + 1 != sizes.len()
        {
            return Err(Invalid("'rest' can only be the last wave".into()));
        }
        Ok(Waves(sizes))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// How many of `hosts` hosts each wave switches, in order: every wave at least one host,
    /// none empty, all of them covered (hosts left after the named waves form a last wave, as if
    /// it said `rest`). No waves: one wave of every host.
    pub fn split(&self, hosts: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut left = hosts;
        for w in &self.0 {
            if left == 0 {
                break;
            }
            let n = match *w {
                WaveSize::Count(n) => n as usize,
                WaveSize::Percent(p) => (hosts * p as usize).div_ceil(100).max(1),
                WaveSize::Rest => left,
            };
            let n = n.min(left);
            out.push(n);
            left -= n;
        }
        if left > 0 {
            out.push(left);
        }
        out
    }
}

impl Serialize for Waves {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.texts().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Waves {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Waves::parse(&items).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// A URL to check on every host of a wave: `http(s)://{addr}:8080/health` — its host part is
/// `{addr}` (the host's address) or `{host}` (its name in Hippo), so a check only ever reaches
/// the config's own hosts. Kept as the template; [`HealthUrl::for_host`] fills it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HealthUrl(String);

const ADDR_MARK: &str = "hippo-addr.invalid";
const NAME_MARK: &str = "hippo-host.invalid";

impl HealthUrl {
    pub fn parse(s: &str) -> Result<HealthUrl, Invalid> {
        let t = s.trim();
        if t.len() > 2000 {
            return Err(Invalid("the URL is longer than 2000 characters".into()));
        }
        let probe = t.replace("{addr}", ADDR_MARK).replace("{host}", NAME_MARK);
        let u = url::Url::parse(&probe).map_err(|e| Invalid(format!("not a URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Invalid("the URL must be http:// or https://".into()));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(Invalid(
                "the URL must not hold a user name or password".into(),
            ));
        }
        if !matches!(u.host_str(), Some(ADDR_MARK | NAME_MARK)) {
            return Err(Invalid(
                "the URL's host must be {addr} or {host} (a health check reaches only the config's own hosts)"
                    .into(),
            ));
        }
        Ok(HealthUrl(t.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The URL for one host (`name`, `addr`; an IPv6 address gets its brackets).
    pub fn for_host(&self, name: &str, addr: &str) -> Result<url::Url, String> {
        let addr = if addr.contains(':') && !addr.starts_with('[') {
            format!("[{addr}]")
        } else {
            addr.to_owned()
        };
        let text = self.0.replace("{addr}", &addr).replace("{host}", name);
        url::Url::parse(&text).map_err(|e| format!("the health URL for this host is invalid: {e}"))
    }
}

impl TryFrom<String> for HealthUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        HealthUrl::parse(&s).map_err(|e| e.0)
    }
}

impl From<HealthUrl> for String {
    fn from(u: HealthUrl) -> String {
        u.0
    }
}

/// What is checked on each host after its wave switched: an HTTP(S) URL that must answer
/// `expect_status`, and/or a command (a shell script run on the host in the deploy path, with
/// the release's variables) that must exit 0. Each try has `timeout_secs`; a host that fails
/// is tried again up to `retries` times, `interval_secs` apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(default)]
    pub url: Option<HealthUrl>,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub command: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub retries: u32,
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

fn default_status() -> u16 {
    200
}
fn default_timeout() -> u64 {
    5
}
fn default_interval() -> u64 {
    2
}

impl HealthCheck {
    /// Checks the parts together; `Err((field, why))` names the bad one.
    pub fn new(
        url: Option<&str>,
        expect_status: Option<u16>,
        command: Option<&str>,
        timeout_secs: Option<u64>,
        retries: Option<u32>,
        interval_secs: Option<u64>,
    ) -> Result<HealthCheck, (&'static str, String)> {
        let url = url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| HealthUrl::parse(u).map_err(|e| ("health_check.url", e.0)))
            .transpose()?;
        let command = command.unwrap_or_default().trim().to_owned();
        if url.is_none() && command.is_empty() {
            return Err((
                "health_check",
                "a health check needs a url, a command or both".into(),
            ));
        }
        let expect_status = expect_status.unwrap_or_else(default_status);
        if !(100..=599).contains(&expect_status) {
            return Err((
                "health_check.expect_status",
                "expect_status is an HTTP status (100 to 599)".into(),
            ));
        }
        Ok(HealthCheck {
            url,
            expect_status,
            command,
            timeout_secs: timeout_secs.unwrap_or_else(default_timeout),
            retries: retries.unwrap_or(0),
            interval_secs: interval_secs.unwrap_or_else(default_interval),
        })
    }
}

fn default_pause_timeout() -> u64 {
    3600
}

/// How a config rolls out: its waves, the check after each, and whether it waits for a
/// person between waves (`pause`: after every wave but the last, until `POST
/// /api/releases/{id}/continue`; after `pause_timeout_secs` without one, the release is
/// cancelled and its switched hosts go back to their previous version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Rollout {
    #[serde(default)]
    pub waves: Waves,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    #[serde(default)]
    pub pause: bool,
    #[serde(default = "default_pause_timeout")]
    pub pause_timeout_secs: u64,
}

impl Rollout {
    /// Nothing to do between switches: the switch stage as it always was.
    pub fn is_plain(&self) -> bool {
        self.waves.is_empty() && self.health_check.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn waves(items: &[&str]) -> Waves {
        Waves::parse(items).unwrap()
    }

    #[test]
    fn one_then_the_rest_splits_any_number_of_hosts() {
        let w = waves(&["1", "rest"]);
        assert_eq!(w.split(3), [1, 2]);
        assert_eq!(w.split(2), [1, 1]);
        assert_eq!(w.split(1), [1]);
        assert_eq!(w.split(0), Vec::<usize>::new());
    }

    #[test]
    fn percentages_round_up_and_every_wave_has_a_host() {
        let w = waves(&["1", "25%", "rest"]);
        assert_eq!(w.split(10), [1, 3, 6]);
        assert_eq!(w.split(2), [1, 1]);
        assert_eq!(waves(&["10%", "50%"]).split(3), [1, 2]);
        assert_eq!(waves(&["100%"]).split(7), [7]);
    }

    #[test]
    fn hosts_left_after_the_named_waves_form_a_last_wave() {
        assert_eq!(waves(&["1", "2"]).split(6), [1, 2, 3]);
        assert_eq!(waves(&["5"]).split(3), [3]);
        assert_eq!(Waves::default().split(4), [4]);
    }

    #[test]
    fn bad_waves_are_refused_with_the_reason() {
        for (bad, why) in [
            (vec!["0"], "a number of hosts"),
            (vec!["-1"], "a number of hosts"),
            (vec!["two"], "a number of hosts"),
            (vec!["0%"], "1% to 100%"),
            (vec!["101%"], "1% to 100%"),
            (vec!["rest", "1"], "last wave"),
        ] {
            let e = Waves::parse(&bad).unwrap_err();
            assert!(e.0.contains(why), "{bad:?}: {}", e.0);
        }
        assert!(Waves::parse(&vec!["1"; MAX_WAVES + 1]).is_err());
    }

    #[test]
    fn waves_are_stored_as_their_text() {
        let w = waves(&["1", "25%", "rest"]);
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(json, r#"["1","25%","rest"]"#);
        assert_eq!(serde_json::from_str::<Waves>(&json).unwrap(), w);
    }

    #[test]
    fn a_health_url_reaches_only_the_configs_own_hosts() {
        let u = HealthUrl::parse("http://{addr}:8080/health?from=hippo").unwrap();
        assert_eq!(
            u.for_host("web-1", "10.0.0.5").unwrap().as_str(),
            "http://10.0.0.5:8080/health?from=hippo"
        );
        assert_eq!(
            u.for_host("web-1", "::1").unwrap().as_str(),
            "http://[::1]:8080/health?from=hippo"
        );
        let n = HealthUrl::parse("https://{host}/up").unwrap();
        assert_eq!(
            n.for_host("web-1", "x").unwrap().as_str(),
            "https://web-1/up"
        );
        for bad in [
            "http://169.254.169.254/latest",
            "http://{addr}.evil.example/",
            "ftp://{addr}/",
            "http://user:pw@{addr}/",
            "{addr}/health",
        ] {
            assert!(HealthUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_health_check_needs_a_url_or_a_command() {
        let e = HealthCheck::new(None, None, Some("  "), None, None, None).unwrap_err();
        assert_eq!(e.0, "health_check");
        let e =
            HealthCheck::new(Some("http://{addr}/"), Some(42), None, None, None, None).unwrap_err();
        assert_eq!(e.0, "health_check.expect_status");
        let c =
            HealthCheck::new(None, None, Some("curl -f localhost"), None, Some(2), None).unwrap();
        assert_eq!((c.expect_status, c.timeout_secs, c.retries), (200, 5, 2));
    }
}
