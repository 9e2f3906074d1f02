//! Custom releases (a config of kind `custom`): the ordered actions a config lists instead of
//! "package the tree, unpack it on every host, switch the link". Parsed once at the API edge;
//! the worker (`worker::custom`) runs them. docs/configs.md tells the whole design.
//!
//! Layout on a target host: a run's transfers land in its version folder
//! `<versions_path>/<version>`, each at its destination's path without the leading `/`
//! ([`Action::Transfer`] to `/srv/app/static` → `<version>/srv/app/static`). The deploy path is
//! switched to the version folder exactly as in a regular release, and each destination is a
//! symbolic link to `<deploy_path>/<same relative path>`: one rename of the deploy link moves
//! every destination at once, so versions, cleanup, recovery and rollback are the regular ones.
use crate::domain::{Invalid, RemotePath};
use serde::{Deserialize, Serialize};

/// The most actions one custom config may list (the spec states it).
pub const MAX_ACTIONS: usize = 50;

/// `regular` (the default): package the tree, unpack it on every host, switch; `custom`: run
/// the config's `actions` in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum ConfigKind {
    /// Package the checked-out tree, unpack it on every host, switch the deploy path.
    #[default]
    Regular,
    /// Run the config's `actions` in order.
    Custom,
}

/// One step of a custom release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A script on the release server, in the checked-out tree, sandboxed like the
    /// after-checkout hook.
    ServerCommand { script: String },
    /// A script on every target, in the new version folder.
    TargetCommand { script: String },
    /// A path of the checked-out tree, or the file uploaded with the release for this step,
    /// to `destination` on every target.
    Transfer {
        source: TransferSource,
        destination: RemotePath,
    },
}

impl Action {
    /// What the step does, for events and errors ("transfer dist → /srv/app/static").
    pub fn describe(&self) -> String {
        match self {
            Action::ServerCommand { .. } => "command on the release server".into(),
            Action::TargetCommand { .. } => "command on the targets".into(),
            Action::Transfer {
                source: TransferSource::Tree { path },
                destination,
            } => format!("transfer {} → {destination}", path.as_str()),
            Action::Transfer {
                source: TransferSource::Upload,
                destination,
            } => format!("transfer the uploaded file → {destination}"),
        }
    }
    pub fn is_transfer(&self) -> bool {
        matches!(self, Action::Transfer { .. })
    }
    pub fn needs_upload(&self) -> bool {
        matches!(
            self,
            Action::Transfer {
                source: TransferSource::Upload,
                ..
            }
        )
    }
}

/// Where a transfer's files come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransferSource {
    /// A file or folder of the checked-out tree (after the server commands before it ran).
    Tree { path: TreePath },
    /// The file uploaded with the release request for this step.
    Upload,
}

/// A path inside the checked-out tree: relative, normalised (`dist/` → `dist`), no `..`;
/// `.` is the whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TreePath(String);

impl TreePath {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let t = s.trim();
        if t.is_empty() || t.len() > 1024 || t.chars().any(char::is_control) {
            return Err(Invalid(
                "must be 1-1024 characters without control characters".into(),
            ));
        }
        if t.starts_with('/') {
            return Err(Invalid(
                "must be a path inside the checked-out tree (relative, like dist/)".into(),
            ));
        }
        let parts: Vec<&str> = t
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(Invalid("must not contain '..'".into()));
        }
        Ok(Self(if parts.is_empty() {
            ".".into()
        } else {
            parts.join("/")
        }))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TreePath {
    type Error = Invalid;
    fn try_from(v: String) -> Result<Self, Invalid> {
        Self::parse(&v)
    }
}

impl From<TreePath> for String {
    fn from(v: TreePath) -> String {
        v.0
    }
}

/// Where a destination's files sit inside a version folder (and below the deploy link): its
/// path without the leading `/`.
pub fn in_version(destination: &RemotePath) -> &str {
    destination.as_str().trim_start_matches('/')
}

/// Checks the actions as a whole; `Err((index, field, why))` names the first bad one. Every
/// destination must stay clear of the deploy and versions paths and of every other
/// destination (none inside another: each is one link).
pub fn check(
    actions: &[Action],
    deploy_path: &RemotePath,
    versions_path: &RemotePath,
) -> Result<(), (usize, &'static str, String)> {
    if actions.is_empty() {
        return Err((
            0,
            "actions",
            "a custom config needs at least one action".into(),
        ));
    }
    if actions.len() > MAX_ACTIONS {
        return Err((0, "actions", format!("at most {MAX_ACTIONS} actions")));
    }
    let mut seen: Vec<&RemotePath> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match a {
            Action::ServerCommand { script } | Action::TargetCommand { script } => {
                if script.trim().is_empty() {
                    return Err((i, "script", "the script is empty".into()));
                }
            }
            Action::Transfer { destination, .. } => {
                for fixed in [deploy_path, versions_path] {
                    if fixed.contains(destination) || destination.contains(fixed) {
                        return Err((
                            i,
                            "destination",
                            format!(
                                "{destination} must not be {fixed}, inside it or contain it \
                                 (the deploy and versions paths are Hippo's)"
                            ),
                        ));
                    }
                }
                if let Some(other) = seen
                    .iter()
                    .find(|o| o.contains(destination) || destination.contains(o))
                {
                    return Err((
                        i,
                        "destination",
                        format!(
                            "{destination} overlaps the destination {other} of another transfer"
                        ),
                    ));
                }
                seen.push(destination);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(s: &str) -> RemotePath {
        RemotePath::parse(s).unwrap()
    }
    fn transfer(dest: &str) -> Action {
        Action::Transfer {
            source: TransferSource::Upload,
            destination: p(dest),
        }
    }

    #[test]
    fn tree_paths_are_relative_and_normalised() {
        assert_eq!(TreePath::parse("dist/").unwrap().as_str(), "dist");
        assert_eq!(TreePath::parse("./a//b/").unwrap().as_str(), "a/b");
        assert_eq!(TreePath::parse(".").unwrap().as_str(), ".");
        for bad in ["", "/etc", "a/../../b", "..", "a\nb"] {
            assert!(TreePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn destinations_stay_clear_of_hippos_paths_and_of_each_other() {
        let (d, v) = (p("/srv/www/app"), p("/srv/hippo/versions"));
        assert!(check(&[transfer("/srv/app/static")], &d, &v).is_ok());
        assert_eq!(check(&[], &d, &v).unwrap_err().1, "actions");
        let e = check(&[transfer("/srv/www/app/x")], &d, &v).unwrap_err();
        assert_eq!((e.0, e.1), (0, "destination"));
        let e = check(&[transfer("/srv")], &d, &v).unwrap_err();
        assert_eq!(e.1, "destination");
        let e = check(&[transfer("/srv/a"), transfer("/srv/a/b")], &d, &v).unwrap_err();
        assert_eq!((e.0, e.1), (1, "destination"));
        let blank = Action::TargetCommand { script: " ".into() };
        assert_eq!(check(&[blank], &d, &v).unwrap_err().1, "script");
    }

    #[test]
    fn actions_keep_their_json_shape() {
        let a = Action::Transfer {
            source: TransferSource::Tree {
                path: TreePath::parse("dist/").unwrap(),
            },
            destination: p("/srv/app/static"),
        };
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(
            j,
            r#"{"type":"transfer","source":{"kind":"tree","path":"dist"},"destination":"/srv/app/static"}"#
        );
        assert_eq!(serde_json::from_str::<Action>(&j).unwrap(), a);
        assert_eq!(in_version(&p("/srv/app/static")), "srv/app/static");
        assert_eq!(a.describe(), "transfer dist → /srv/app/static");
    }
}
