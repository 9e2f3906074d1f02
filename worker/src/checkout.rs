//! Stage 1, on the release server: before-checkout hook (in the repository cache), fetch,
//! export exactly the requested commit with its submodules, after-checkout hook (in the
//! exported tree, where builds go).
use crate::context::{Deps, Run};
use crate::hooks::{self, Hook};
use crate::sandbox::{REPO_INSIDE, SRC_INSIDE, WorkDir};
use hippo_shared::events::{EventStatus, Stage};
use std::path::PathBuf;
use std::time::Duration;

/// Where the exported tree goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// A fresh export in the run's work folder (`<work>/src`), removed with it: for trees a
    /// hook or a step may change (after-checkout hook, custom releases' server commands).
    Fresh,
    /// The config's kept tree (`<data>/work/trees/config-<id>/tree`), brought from the commit
    /// it holds to the release's by writing only what differs (`git::RepoCache::update_export`)
    /// and kept for the next release. Only for configs without an after-checkout hook: nothing
    /// else writes in it, so it is exactly the commit it says it is.
    Kept,
}

impl Tree {
    /// [`Tree::Kept`] when the config has no after-checkout hook, else [`Tree::Fresh`].
    pub fn for_release(run: &Run) -> Tree {
        if run.spec.hooks.after_checkout.trim().is_empty() {
            Tree::Kept
        } else {
            Tree::Fresh
        }
    }
}

/// A config's kept tree and the note of what it holds (`exported`: format, sha256 of the
/// repository URL, commit). The note is removed before the tree is touched and written after
/// it is complete, so a tree cut off half-way (a crash, an error) is never trusted.
struct KeptTree {
    tree: PathBuf,
    note: PathBuf,
}

const KEPT_TREE_FORMAT: &str = "hippo-kept-tree-1";

impl KeptTree {
    fn of(deps: &Deps, run: &Run) -> KeptTree {
        let dir = deps
            .work_dir()
            .join("trees")
            .join(format!("config-{}", run.release.config_id));
        KeptTree {
            tree: dir.join("tree"),
            note: dir.join("exported"),
        }
    }

    fn url_key(url: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(url.as_bytes()))
    }

    /// The commit the tree holds, if its note is there and names this repository; the note
    /// is removed either way (the caller is about to change the tree).
    fn take(&self, url: &str) -> Result<Option<String>, String> {
        let text = std::fs::read_to_string(&self.note).ok();
        match std::fs::remove_file(&self.note) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot update the kept tree's note: {e}")),
        }
        let Some(text) = text else { return Ok(None) };
        let mut lines = text.lines();
        Ok(
            match (lines.next(), lines.next(), lines.next(), lines.next()) {
                (Some(KEPT_TREE_FORMAT), Some(key), Some(commit), None)
                    if key == Self::url_key(url) && !commit.is_empty() =>
                {
                    Some(commit.to_owned())
                }
                _ => None,
            },
        )
    }

    /// The note's text for a tree holding `commit` of `url`.
    fn note_text(url: &str, commit: &str) -> String {
        format!("{KEPT_TREE_FORMAT}\n{}\n{commit}\n", Self::url_key(url))
    }

    /// Whether the note says the tree holds `commit` of `url`.
    fn holds(&self, url: &str, commit: &str) -> bool {
        std::fs::read_to_string(&self.note).is_ok_and(|text| text == Self::note_text(url, commit))
    }

    fn note_commit(&self, url: &str, commit: &str) -> Result<(), String> {
        let tmp = self.note.with_extension("tmp");
        std::fs::write(&tmp, Self::note_text(url, commit))
            .and_then(|()| std::fs::rename(&tmp, &self.note))
            .map_err(|e| format!("cannot write the kept tree's note: {e}"))
    }
}

/// The tree this run's checkout exported, if there is one: where the on-failure hook runs
/// (read-only). A kept tree counts only when its note says it holds this run's commit. With
/// the sandbox off nothing keeps the hook from writing in it, so the kept tree's note goes
/// first: the next release exports afresh instead of shipping what the hook left there.
pub fn tree_of(deps: &Deps, run: &Run) -> Option<PathBuf> {
    use hippo_shared::custom::ConfigKind;
    use hippo_shared::domain::ReleaseKind;
    if run.release.kind != ReleaseKind::Release {
        return None;
    }
    let dir = match (run.spec.kind, Tree::for_release(run)) {
        (ConfigKind::Custom, _) | (_, Tree::Fresh) => run.work.join("src"),
        (_, Tree::Kept) => {
            let kept = KeptTree::of(deps, run);
            let url = run.spec.repo_url.to_string();
            if !kept.holds(&url, &run.release.commit_id.to_string()) {
                return None;
            }
            if !deps.sandbox.confines() && std::fs::remove_file(&kept.note).is_err() {
                return None;
            }
            kept.tree
        }
    };
    dir.is_dir().then_some(dir)
}

/// How the tree came to be.
enum Exported {
    Full(crate::git::ExportInfo),
    Updated {
        from: String,
        info: crate::git::UpdateInfo,
    },
}

/// Exports the release's commit (see [`Tree`] for where) and returns that folder.
pub async fn run(deps: &Deps, run: &Run, tree: Tree) -> Result<PathBuf, String> {
    let _timer = hippo_shared::metrics::global().time_stage(Stage::Checkout);
    let ev = &run.events;
    ev.send(
        ev.event(Stage::Checkout, EventStatus::Started)
            .message(format!(
                "checking out {} {} ({})",
                run.release.ref_kind,
                run.release.ref_name,
                run.release.commit_id.short()
            )),
    );
    let url = run.spec.repo_url.to_string();
    // Checked again here: this worker's data folder may differ from the API's, and a link on
    // the way may have changed since the config was saved.
    hippo_shared::net::check_repo_location(&url, &deps.settings.private_dirs())
        .map_err(|why| format!("repository location refused: it {why}"))?;
    let auth = deps.repo_auth(run.release.config_id, &run.spec).await?;
    let env = run.hook_env(None);
    let timeout = Duration::from_secs(run.spec.hook_timeout_secs);

    let mirror = deps.repos.mirror_dir(&url);
    std::fs::create_dir_all(&mirror)
        .map_err(|e| format!("cannot create the repository cache: {e}"))?;
    // In the repository cache, read-only: other releases of the same repository use it.
    let before = Hook {
        name: "before_checkout",
        script: &run.spec.hooks.before_checkout,
        work: WorkDir {
            host: &mirror,
            inside: REPO_INSIDE,
            writable: false,
        },
        scratch: &run.work.join("before_checkout"),
        env: &env,
        timeout,
    };
    hooks::run_local_until(
        &deps.sandbox,
        before,
        ev,
        Stage::Checkout,
        Some(&run.cancel),
    )
    .await
    .map_err(|e| e.to_string())?;

    let kept = (tree == Tree::Kept).then(|| KeptTree::of(deps, run));
    let src = match &kept {
        Some(k) => k.tree.clone(),
        None => {
            let src = run.work.join("src");
            let _ = std::fs::remove_dir_all(&src);
            src
        }
    };
    let pinned = deps.db.git_host_keys().await.map_err(|e| e.to_string())?;
    deps.repos.set_pinned_host_keys(pinned);
    let repos = deps.repos.clone();
    let commit = run.release.commit_id.to_string();
    let dest = src.clone();
    let shown_url = run.spec.repo_url.to_string();
    let info = tokio::task::spawn_blocking(move || {
        repos.sync(&url, &auth).map_err(|e| (true, e))?;
        let Some(kept) = kept else {
            return repos
                .export(&url, &auth, &commit, &dest)
                .map(Exported::Full)
                .map_err(|e| (false, e));
        };
        let local = |message: String| {
            (
                false,
                crate::git::GitError::Destination {
                    path: dest.clone(),
                    message,
                },
            )
        };
        if let Some(from) = kept.take(&url).map_err(local)? {
            match repos.update_export(&url, &from, &commit, &dest) {
                Ok(Some(info)) => {
                    kept.note_commit(&url, &commit).map_err(local)?;
                    return Ok(Exported::Updated { from, info });
                }
                Ok(None) => {
                    tracing::info!(from = %from, to = %commit, "kept tree not updatable; exporting afresh")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "updating the kept tree failed; exporting afresh")
                }
            }
        }
        if std::fs::symlink_metadata(&dest).is_ok() {
            std::fs::remove_dir_all(&dest)
                .map_err(|e| local(format!("cannot empty the kept tree: {e}")))?;
        }
        let info = repos
            .export(&url, &auth, &commit, &dest)
            .map_err(|e| (false, e))?;
        kept.note_commit(&url, &commit).map_err(local)?;
        Ok(Exported::Full(info))
    })
    .await
    .map_err(|e| format!("checkout task failed: {e}"))?;
    for k in deps.repos.take_new_host_keys() {
        if let Err(e) = deps
            .db
            .pin_git_host_key(&k.host, &k.key, &k.fingerprint)
            .await
        {
            tracing::warn!(host = %k.host, error = %e, "could not pin a Git server's host key");
        }
    }
    let info = match info {
        Ok(info) => info,
        // Every reader of the release sees its events: a failed fetch from this machine or an
        // internal network says no more than that (no port or path probing through repo_url;
        // docs/security.md). The details go to the worker's log.
        Err((true, e)) if hippo_shared::net::repo_is_internal(&shown_url).await => {
            tracing::warn!(release_id = %run.release.id, error = %e, "fetching the repository failed");
            return Err(format!(
                "fetching {} failed (the repository is on this machine or an internal network: \
                 the details are in the worker's log)",
                crate::git::redact_url(&shown_url)
            ));
        }
        Err((_, e)) => return Err(e.to_string()),
    };
    ev.info(
        Stage::Checkout,
        match info {
            Exported::Full(info) => format!(
                "exported {} files ({} bytes, {} submodules)",
                info.files, info.bytes, info.submodules
            ),
            Exported::Updated { from, info } => format!(
                "updated the tree kept from {}: {} files written ({} bytes), {} removed",
                from.get(..7).unwrap_or(&from),
                info.written,
                info.bytes,
                info.removed
            ),
        },
    );

    // In the exported tree, writable: builds go here.
    let after = Hook {
        name: "after_checkout",
        script: &run.spec.hooks.after_checkout,
        work: WorkDir {
            host: &src,
            inside: SRC_INSIDE,
            writable: true,
        },
        scratch: &run.work.join("after_checkout"),
        env: &env,
        timeout,
    };
    hooks::run_local_until(&deps.sandbox, after, ev, Stage::Checkout, Some(&run.cancel))
        .await
        .map_err(|e| e.to_string())?;
    ev.send(ev.event(Stage::Checkout, EventStatus::Succeeded));
    Ok(src)
}
