//! Where Hippo may connect on a user's behalf: the SSRF guard of notices (robot and webhook
//! URLs, SMTP hosts) and the rules for repository locations.
//!
//! The rule: a destination that a user typed is resolved **when it is used** (DNS can change
//! between save and send) and every address it resolves to must be public. Loopback,
//! private (RFC 1918), shared (100.64/10), link-local (169.254/16, the cloud metadata
//! address), unique-local (fc00::/7), unspecified, multicast, broadcast, documentation and
//! reserved ranges are refused, including IPv4 written as IPv6 (`::ffff:127.0.0.1`,
//! `::127.0.0.1`, `64:ff9b::7f00:1`, `2002:7f00:1::`). Obfuscated IPv4 forms (`0x7f000001`,
//! `2130706433`, `127.1`, `0177.0.0.1`) are normalised by the WHATWG URL parser and by the
//! system resolver alike, and only the resulting address is checked. The caller then connects
//! to exactly the checked addresses (no second lookup).
//!
//! [`AddressPolicy`] carries the allow-list (`HIPPO_INTERNAL_ALLOWLIST`): CIDRs and host
//! names that may be internal anyway (a company's mail relay, an internal chat gateway).
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Why a destination was refused. Worded for the person who configured it; it names the
/// address, never a URL (URLs carry tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error(
        "refused: {host} is {class} address {addr}; notices go to public addresses only \
         (an administrator can allow it with HIPPO_INTERNAL_ALLOWLIST)"
    )]
    Internal {
        host: String,
        addr: IpAddr,
        class: &'static str,
    },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// The allow-list for internal destinations. Default: nothing internal is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    nets: Vec<IpNet>,
    /// Lowercase host names; `*.example.com` allows every name under example.com.
    names: Vec<String>,
}

impl AddressPolicy {
    /// From the setting's entries: `10.0.0.0/8`, `127.0.0.1` (one address), `::1`,
    /// `smtp.corp.example`, `*.corp.example`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, NetError> {
        let mut p = Self::default();
        for raw in entries {
            let e = raw.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            if let Ok(net) = e.parse::<IpNet>() {
                p.nets.push(net.trunc());
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                p.nets.push(IpNet::from(ip));
            } else if is_host_pattern(e) {
                p.names.push(e.to_ascii_lowercase());
            } else {
                return Err(NetError::Invalid(format!(
                    "'{e}' in HIPPO_INTERNAL_ALLOWLIST is neither a CIDR, an address nor a host name"
                )));
            }
        }
        Ok(p)
    }

    /// Everything allowed (tests of the senders themselves).
    pub fn allow_all() -> Self {
        Self {
            nets: Vec::new(),
            names: vec!["*".into()],
        }
    }

    fn name_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|n| {
            n == "*"
                || *n == host
                || n.strip_prefix("*.")
                    .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
        })
    }

    /// Ok when `ip` is public or allow-listed; else why not.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), NetError> {
        let Some(class) = internal_class(ip) else {
            return Ok(());
        };
        let ip = canonical(ip);
        if self.nets.iter().any(|n| n.contains(&ip)) || self.name_allowed(host) {
            return Ok(());
        }
        Err(NetError::Internal {
            host: host.to_owned(),
            addr: ip,
            class,
        })
    }

    /// Resolves `host` (a name or an address literal, IPv6 with or without brackets) and checks
    /// every address it resolves to. The addresses to connect to, with `port`.
    pub async fn resolve(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Vec<SocketAddr>, NetError> {
        let bare = host.trim().trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty() {
            return Err(NetError::Invalid("no host".into()));
        }
        let addrs: Vec<SocketAddr> = match parse_ip_literal(bare) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => {
                let lookup = tokio::net::lookup_host((bare.to_owned(), port));
                match tokio::time::timeout(timeout, lookup).await {
                    Ok(Ok(found)) => found.collect(),
                    Ok(Err(e)) => {
                        return Err(NetError::Resolve {
                            host: bare.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                    Err(_) => {
                        return Err(NetError::Resolve {
                            host: bare.to_owned(),
                            reason: format!("no answer within {} s", timeout.as_secs()),
                        });
                    }
                }
            }
        };
        if addrs.is_empty() {
            return Err(NetError::Resolve {
                host: bare.to_owned(),
                reason: "no address".into(),
            });
        }
        // All or nothing: one internal address among public ones is how a rebinding attack
        // looks.
        for a in &addrs {
            self.check_ip(bare, a.ip())?;
        }
        Ok(addrs
            .into_iter()
            .map(|a| SocketAddr::new(canonical(a.ip()), a.port()))
            .collect())
    }
}

/// A host name (or `*.name`) of letters, digits, `-`, `_` and dots.
fn is_host_pattern(s: &str) -> bool {
    let name = s.strip_prefix("*.").unwrap_or(s);
    s == "*"
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }))
}

/// An address literal, in any form a URL parser or `inet_aton` accepts: dotted, hex
/// (`0x7f000001`), decimal (`2130706433`), octal (`0177.0.0.1`), short (`127.1`), IPv6.
pub fn parse_ip_literal(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    // The WHATWG host parser (what browsers and the `url` crate do with http URLs).
    match url::Host::parse(s) {
        Ok(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Ok(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// IPv4 carried in IPv6 (mapped, compatible, NAT64, 6to4) as the IPv4 address it reaches.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let v4 = |a: usize| Ipv4Addr::new(o[a], o[a + 1], o[a + 2], o[a + 3]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(v4(12)); // ::a.b.c.d (deprecated "compatible")
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(v4(12)); // 64:ff9b::a.b.c.d (NAT64)
    }
    if s[0] == 0x2002 {
        return Some(v4(2)); // 2002:aabb:ccdd:: (6to4)
    }
    None
}

/// The address as connected to: IPv4 carried in IPv6 becomes the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `None` for a public address; else what kind of internal or special address it is.
pub fn internal_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_class(v4).or(
                // Teredo-like tricks aside, 6to4 of a public v4 is still a relay hop.
                if v6.segments()[0] == 0x2002 {
                    Some("a 6to4")
                } else {
                    None
                },
            ),
            None => v6_class(v6),
        },
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() => "an unspecified",
        (0, _, _) => "a this-network",
        (127, _, _) => "a loopback",
        (10, _, _) => "a private",
        (172, 16..=31, _) => "a private",
        (192, 168, _) => "a private",
        (100, 64..=127, _) => "a shared (carrier-grade NAT)",
        (169, 254, _) => "a link-local",
        (192, 0, 0) => "an IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation",
        (192, 88, 99) => "a 6to4 relay",
        (198, 18..=19, _) => "a benchmarking",
        (224..=239, _, _) => "a multicast",
        _ if ip.is_broadcast() => "a broadcast",
        (240..=255, _, _) => "a reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_unspecified() => "an unspecified",
        _ if ip.is_loopback() => "a loopback",
        0 if s[..6] == [0, 0, 0, 0, 0, 0] => "a reserved",
        0x64 if s[1] == 0xff9b => "a NAT64",
        0x100 if s[1..4] == [0, 0, 0] => "a discard",
        0x2001 if s[1] == 0xdb8 => "a documentation",
        0x2001 if s[1] < 0x200 => "an IETF protocol (Teredo, ORCHID…)",
        x if x & 0xfe00 == 0xfc00 => "a unique-local",
        x if x & 0xffc0 == 0xfe80 => "a link-local",
        x if x & 0xffc0 == 0xfec0 => "a site-local",
        x if x & 0xff00 == 0xff00 => "a multicast",
        _ => return None,
    })
}

/// `path` made absolute and free of `.`/`..`, with symbolic links of its longest existing
/// prefix resolved (the rest need not exist yet).
pub fn resolve_path(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // Resolve what exists; append what does not.
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|f| f.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return clean,
        }
    }
}

/// The local folder a repository location names (`/srv/git/x.git`, `file:///srv/git/x.git`),
/// or `None` for a network URL.
pub fn local_repo_path(url: &str) -> Option<PathBuf> {
    let url = url.trim();
    if url.starts_with('/') {
        return Some(PathBuf::from(url));
    }
    let rest = url.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded
        .starts_with('/')
        .then(|| PathBuf::from(decoded.as_ref()))
}

/// Refuses a local repository location inside one of `private` (`Settings::private_dirs`:
/// the master key, the database, other configs' repository caches, kept copies live there).
/// Symbolic links are followed.
pub fn check_repo_location(url: &str, private: &[PathBuf]) -> Result<(), String> {
    let Some(path) = local_repo_path(url) else {
        return Ok(());
    };
    let repo = resolve_path(&path);
    if private.iter().any(|d| repo.starts_with(resolve_path(d))) {
        return Err(
            "must not point into Hippo's data folder (its keys, database and repository caches) or its kept copies"
                .into(),
        );
    }
    Ok(())
}

/// The host a Git URL connects to (`ssh://`, `https://`, scp-like `user@host:path`), or
/// `None` for a local location.
pub fn repo_host(url: &str) -> Option<String> {
    let url = url.trim();
    if local_repo_path(url).is_some() || url.starts_with('/') {
        return None;
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host_port.split(':').next().unwrap_or(host_port),
        };
        return Some(host.to_ascii_lowercase());
    }
    let before_colon = url.split(':').next()?;
    Some(
        before_colon
            .rsplit('@')
            .next()
            .unwrap_or(before_colon)
            .to_ascii_lowercase(),
    )
}

/// True when fetching `url` reaches this machine or an internal network: a local path, or a
/// host that is (or resolves to) a loopback, private, link-local… address. A fetch error of
/// such a repository would tell its reader which ports and paths exist there, so only
/// administrators see its details. A name that does not resolve counts as internal.
pub async fn repo_is_internal(url: &str) -> bool {
    let Some(host) = repo_host(url) else {
        return true;
    };
    if let Some(ip) = parse_ip_literal(&host) {
        return internal_class(ip).is_some();
    }
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::lookup_host((host.as_str(), 0)),
    )
    .await
    {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            addrs.is_empty() || addrs.iter().any(|a| internal_class(a.ip()).is_some())
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn deny(host: &str) -> NetError {
        let ip = parse_ip_literal(host).unwrap_or_else(|| panic!("{host} is not an address"));
        AddressPolicy::default().check_ip(host, ip).expect_err(host)
    }

    #[test]
    fn obfuscated_and_internal_addresses_are_refused() {
        for (host, class) in [
            ("127.0.0.1", "a loopback"),
            ("0x7f000001", "a loopback"),
            ("2130706433", "a loopback"),
            ("127.1", "a loopback"),
            ("0177.0.0.1", "a loopback"),
            ("[::1]", "a loopback"),
            ("::1", "a loopback"),
            ("[::ffff:127.0.0.1]", "a loopback"),
            ("::ffff:7f00:1", "a loopback"),
            ("::127.0.0.1", "a loopback"),
            ("64:ff9b::7f00:1", "a loopback"),
            ("2002:7f00:1::", "a loopback"),
            ("169.254.169.254", "a link-local"),
            ("[fe80::1]", "a link-local"),
            ("10.1.2.3", "a private"),
            ("172.31.255.255", "a private"),
            ("192.168.0.1", "a private"),
            ("100.64.0.1", "a shared (carrier-grade NAT)"),
            ("fd00::1", "a unique-local"),
            ("0.0.0.0", "an unspecified"),
            ("0", "an unspecified"),
            ("[::]", "an unspecified"),
            ("224.0.0.1", "a multicast"),
            ("ff02::1", "a multicast"),
            ("255.255.255.255", "a broadcast"),
            ("240.0.0.1", "a reserved"),
        ] {
            match deny(host) {
                NetError::Internal { class: c, .. } => assert_eq!(c, class, "{host}"),
                other => panic!("{host}: {other:?}"),
            }
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = AddressPolicy::default();
        for host in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "[2a00:1450::1]",
        ] {
            let ip = parse_ip_literal(host).unwrap();
            assert!(p.check_ip(host, ip).is_ok(), "{host}");
        }
        for host in ["172.32.0.1", "100.128.0.1", "11.0.0.1"] {
            assert!(
                p.check_ip(host, parse_ip_literal(host).unwrap()).is_ok(),
                "{host}"
            );
        }
    }

    #[test]
    fn the_allow_list_takes_cidrs_addresses_and_names() {
        let p = AddressPolicy::parse(&[
            "127.0.0.0/8",
            "10.9.9.9",
            "smtp.corp.example",
            "*.hooks.lan",
        ])
        .unwrap();
        let ip = |s: &str| parse_ip_literal(s).unwrap();
        assert!(p.check_ip("127.0.0.2", ip("127.0.0.2")).is_ok());
        assert!(p.check_ip("x", ip("::ffff:127.0.0.1")).is_ok());
        assert!(p.check_ip("10.9.9.9", ip("10.9.9.9")).is_ok());
        assert!(p.check_ip("10.9.9.8", ip("10.9.9.8")).is_err());
        assert!(p.check_ip("smtp.corp.example", ip("10.0.0.5")).is_ok());
        assert!(p.check_ip("SMTP.corp.example.", ip("10.0.0.5")).is_ok());
        assert!(p.check_ip("a.hooks.lan", ip("192.168.1.1")).is_ok());
        assert!(p.check_ip("hooks.lan.evil", ip("192.168.1.1")).is_err());
        assert!(p.check_ip("evilhooks.lan", ip("192.168.1.1")).is_err());
        assert!(AddressPolicy::parse(&["not a host!"]).is_err());
        assert!(AddressPolicy::parse(&["10.0.0.0/40"]).is_err());
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        let p = AddressPolicy::default();
        let e = p
            .resolve("localhost", 80, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                NetError::Internal {
                    class: "a loopback",
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("localhost") && msg.contains("loopback"),
            "{msg}"
        );
        let e = p.resolve("0x7f000001", 80, Duration::from_secs(5)).await;
        assert!(matches!(e, Err(NetError::Internal { .. })), "{e:?}");
        let ok = AddressPolicy::parse(&["127.0.0.1"])
            .unwrap()
            .resolve("127.0.0.1", 8080, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(ok, vec!["127.0.0.1:8080".parse().unwrap()]);
    }

    #[tokio::test]
    async fn repository_hosts_are_classified() {
        assert_eq!(
            repo_host("git@gitee.com:a/b.git").as_deref(),
            Some("gitee.com")
        );
        assert_eq!(
            repo_host("ssh://git@[::1]:22/x.git").as_deref(),
            Some("::1")
        );
        assert_eq!(
            repo_host("https://GitHub.com/a/b.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(repo_host("/srv/git/x.git"), None);
        assert_eq!(repo_host("file:///srv/git/x.git"), None);
        for internal in [
            "/srv/git/x.git",
            "ssh://git@127.0.0.1:2222/x.git",
            "git@10.0.0.5:a/b.git",
            "https://0x7f000001:6379/x",
            "https://localhost:5432/x.git",
            "http://169.254.169.254/latest/",
            "ssh://git@does-not-resolve.invalid/x.git",
        ] {
            assert!(repo_is_internal(internal).await, "{internal}");
        }
        assert!(!repo_is_internal("https://93.184.216.34/x.git").await);
    }

    #[test]
    fn local_repositories_inside_the_data_folder_or_the_kept_copies_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let private = [data.clone(), dir.path().join("shared/artifacts")];
        std::fs::create_dir_all(data.join("repos/abc")).unwrap();
        std::fs::create_dir_all(dir.path().join("git/app.git")).unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("sneaky")).unwrap();
        let d = dir.path().display();
        for bad in [
            format!("{d}/data/repos/abc"),
            format!("{d}/data"),
            format!("{d}/git/../data/repos/abc"),
            format!("{d}/sneaky/repos/abc"),
            format!("file://{d}/data/repos/abc"),
            format!("file://{d}/data/%72epos/abc"),
            format!("{d}/data/not-yet"),
            format!("{d}/shared/artifacts/config-1"),
        ] {
            assert!(check_repo_location(&bad, &private).is_err(), "{bad}");
        }
        for ok in [
            format!("{d}/git/app.git"),
            format!("file://{d}/git/app.git"),
            "git@gitee.com:a/b.git".to_string(),
            "https://example.com/x.git".to_string(),
            format!("{d}/shared/other.git"),
        ] {
            assert!(check_repo_location(&ok, &private).is_ok(), "{ok}");
        }
    }
}
