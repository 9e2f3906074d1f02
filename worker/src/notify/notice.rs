//! What happened to a release, as a plain value every channel renders its own way.
use hippo_shared::domain::ReleaseId;
use serde::{Deserialize, Serialize};

/// Most failed hosts a chat message lists; the rest are counted ("… and 3 more").
pub const MAX_LISTED_HOSTS: usize = 20;
/// Longest failure reason a chat message shows (characters); emails show it whole.
pub const MAX_REASON_CHARS: usize = 300;

/// The event a notice tells about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A release was requested and waits for review (sent to the reviewers).
    Requested,
    Approved,
    Rejected,
    Started,
    Succeeded,
    Failed,
    /// A rollback release ran.
    Rollback,
    /// Someone (or a pause's time-out) cancelled the release: before it ran, or while it ran.
    /// The actor is who cancelled it, the comment says how far it got.
    Cancelled,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 8] = [
        NoticeKind::Requested,
        NoticeKind::Approved,
        NoticeKind::Rejected,
        NoticeKind::Started,
        NoticeKind::Succeeded,
        NoticeKind::Failed,
        NoticeKind::Rollback,
        NoticeKind::Cancelled,
    ];

    /// The wire name (`kind` in the webhook JSON, `status` in SMS parameters).
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Requested => "requested",
            NoticeKind::Approved => "approved",
            NoticeKind::Rejected => "rejected",
            NoticeKind::Started => "started",
            NoticeKind::Succeeded => "succeeded",
            NoticeKind::Failed => "failed",
            NoticeKind::Rollback => "rollback",
            NoticeKind::Cancelled => "cancelled",
        }
    }

    /// A short human headline.
    pub fn headline(self) -> &'static str {
        match self {
            NoticeKind::Requested => "Release waiting for review",
            NoticeKind::Approved => "Release approved",
            NoticeKind::Rejected => "Release rejected",
            NoticeKind::Started => "Release started",
            NoticeKind::Succeeded => "Release succeeded",
            NoticeKind::Failed => "Release failed",
            NoticeKind::Rollback => "Rollback",
            NoticeKind::Cancelled => "Release cancelled",
        }
    }

    /// How the acting person is labelled for this kind.
    pub fn actor_label(self) -> &'static str {
        match self {
            NoticeKind::Requested => "Requested by",
            NoticeKind::Approved | NoticeKind::Rejected => "Reviewed by",
            NoticeKind::Cancelled => "Cancelled by",
            _ => "Released by",
        }
    }
}

/// A name and its short tag (apps and environments have both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
    #[serde(default)]
    pub tag: String,
}

impl Named {
    pub fn new(name: impl Into<String>, tag: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            tag: tag.into(),
        }
    }

    /// `name (tag)`, or just the name when the tag is empty or the same.
    pub fn display(&self) -> String {
        let name = one_line(&self.name);
        let tag = one_line(&self.tag);
        if tag.is_empty() || tag == name {
            name
        } else {
            format!("{name} ({tag})")
        }
    }
}

/// One host a release failed on, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedHost {
    pub host: String,
    pub reason: String,
}

impl FailedHost {
    pub fn new(host: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            reason: reason.into(),
        }
    }
}

/// What happened, with everything a message needs. Build one per event; every channel renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub app: Named,
    pub environment: Named,
    pub release_id: ReleaseId,
    pub release_name: String,
    /// Branch or tag that was released.
    pub git_ref: String,
    /// Short commit id.
    pub commit: String,
    /// The version folder name on the hosts, when there is one.
    #[serde(default)]
    pub version: Option<String>,
    pub requested_by: String,
    /// The reviewer (approved / rejected) or the releaser (started and after).
    #[serde(default)]
    pub actor: Option<String>,
    /// The review comment (required to reject), or a releaser's note.
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub failed_hosts: Vec<FailedHost>,
    /// Link to the release in the web UI (only http/https links are rendered as links).
    #[serde(default)]
    pub link: Option<String>,
    /// Free text set on the release config (the seed's "notice content").
    #[serde(default)]
    pub message: Option<String>,
}

impl Notice {
    /// A one-line title: `Release failed: cart → prod (r-42)`.
    pub fn title(&self) -> String {
        format!(
            "{}: {} → {} ({})",
            self.kind.headline(),
            one_line(&self.app.name),
            one_line(&self.environment.name),
            one_line(&self.release_name)
        )
    }

    /// The labelled facts every channel lists, in order, already single-line.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = vec![
            ("App", self.app.display()),
            ("Environment", self.environment.display()),
            (
                "Release",
                format!("#{} {}", self.release_id, one_line(&self.release_name)),
            ),
        ];
        let git = match (self.git_ref.trim(), self.commit.trim()) {
            ("", "") => String::new(),
            (r, "") => one_line(r),
            ("", c) => one_line(c),
            (r, c) => format!("{} @ {}", one_line(r), one_line(c)),
        };
        if !git.is_empty() {
            facts.push(("Ref", git));
        }
        if let Some(v) = non_empty(&self.version) {
            facts.push(("Version", one_line(v)));
        }
        if !self.requested_by.trim().is_empty() {
            facts.push(("Requested by", one_line(&self.requested_by)));
        }
        if let Some(a) = non_empty(&self.actor)
            && self.kind != NoticeKind::Requested
        {
            facts.push((self.kind.actor_label(), one_line(a)));
        }
        facts
    }

    pub fn comment(&self) -> Option<&str> {
        non_empty(&self.comment)
    }

    pub fn message(&self) -> Option<&str> {
        non_empty(&self.message)
    }

    /// The link, only when it is an http(s) URL.
    pub fn safe_link(&self) -> Option<&str> {
        let link = non_empty(&self.link)?;
        let lower = link.to_ascii_lowercase();
        (lower.starts_with("https://") || lower.starts_with("http://")).then_some(link)
    }

    /// Failed hosts for a chat message: at most [`MAX_LISTED_HOSTS`], reasons single-line and
    /// cut to [`MAX_REASON_CHARS`]; the second value counts the hosts left out.
    pub fn listed_failures(&self) -> (Vec<(String, String)>, usize) {
        let listed = self
            .failed_hosts
            .iter()
            .take(MAX_LISTED_HOSTS)
            .map(|f| {
                (
                    one_line(&f.host),
                    truncate_chars(&one_line(&f.reason), MAX_REASON_CHARS),
                )
            })
            .collect();
        (
            listed,
            self.failed_hosts.len().saturating_sub(MAX_LISTED_HOSTS),
        )
    }

    /// The plain-text rendering (email text part; the base of Feishu's text message).
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n\n", self.title());
        for (label, value) in self.facts() {
            out.push_str(&format!("{label}: {value}\n"));
        }
        if let Some(c) = self.comment() {
            out.push_str(&format!("Comment: {}\n", c.trim()));
        }
        if !self.failed_hosts.is_empty() {
            out.push_str(&format!("\nFailed hosts ({}):\n", self.failed_hosts.len()));
            for f in &self.failed_hosts {
                out.push_str(&format!(
                    "  - {}: {}\n",
                    one_line(&f.host),
                    one_line(&f.reason)
                ));
            }
        }
        if let Some(m) = self.message() {
            out.push_str(&format!("\n{}\n", m.trim()));
        }
        if let Some(l) = self.safe_link() {
            out.push_str(&format!("\nOpen: {l}\n"));
        }
        out
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

/// Collapses line breaks and tabs into spaces and trims, so a user value cannot add lines (or
/// markdown structure) to a message.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split(['\n', '\r', '\t']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// At most `max` characters, with `…` when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max` bytes (UTF-8 safe), with `…` when cut.
pub fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ell = '…'.len_utf8();
    let mut end = max.saturating_sub(ell);
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Escapes a value for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) fn sample(kind: NoticeKind) -> Notice {
    Notice {
        kind,
        app: Named::new("cart", "shop-cart"),
        environment: Named::new("prod", "production"),
        release_id: hippo_shared::domain::ReleaseId::new(42),
        release_name: "cart 1.4 hotfix".into(),
        git_ref: "main".into(),
        commit: "abc1234".into(),
        version: Some("20260101-120000-abc1234".into()),
        requested_by: "alice".into(),
        actor: Some("bob".into()),
        comment: Some("looks good".into()),
        failed_hosts: vec![
            FailedHost::new("web-1", "exit 1: npm ERR!\nmissing script"),
            FailedHost::new("web-2", "connect timed out"),
        ],
        link: Some("https://hippo.example/releases/42".into()),
        message: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn html_escape_covers_the_five() {
        assert_eq!(
            html_escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
    }

    #[test]
    fn one_line_and_truncation() {
        assert_eq!(one_line(" a\r\n b\t c \n"), "a b c");
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
        let cut = truncate_bytes("发布发布发布", 8);
        assert!(cut.len() <= 8, "{cut}");
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn facts_and_text() {
        let n = sample(NoticeKind::Failed);
        let text = n.to_text();
        assert!(text.starts_with("Release failed: cart → prod (cart 1.4 hotfix)"));
        assert!(text.contains("App: cart (shop-cart)"));
        assert!(text.contains("Ref: main @ abc1234"));
        assert!(text.contains("Released by: bob"));
        assert!(text.contains("  - web-1: exit 1: npm ERR! missing script\n"));
        assert!(text.contains("Open: https://hippo.example/releases/42"));
        let mut r = sample(NoticeKind::Requested);
        r.link = Some("javascript:alert(1)".into());
        assert!(r.safe_link().is_none());
        assert!(!r.facts().iter().any(|(l, _)| *l == "Reviewed by"));
        let mut c = sample(NoticeKind::Cancelled);
        c.comment = Some("cancelled by bob: stopped before the switch".into());
        c.failed_hosts.clear();
        let text = c.to_text();
        assert!(text.starts_with("Release cancelled: cart → prod"), "{text}");
        assert!(text.contains("Cancelled by: bob\n"), "{text}");
        assert!(
            text.contains("Comment: cancelled by bob: stopped before the switch"),
            "{text}"
        );
    }

    #[test]
    fn listed_failures_are_capped() {
        let mut n = sample(NoticeKind::Failed);
        n.failed_hosts = (0..25)
            .map(|i| FailedHost::new(format!("h{i}"), "x".repeat(500)))
            .collect();
        let (listed, more) = n.listed_failures();
        assert_eq!(listed.len(), MAX_LISTED_HOSTS);
        assert_eq!(more, 5);
        assert_eq!(listed[0].1.chars().count(), MAX_REASON_CHARS);
    }
}
