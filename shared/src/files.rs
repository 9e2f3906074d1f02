//! Owner-only files and folders: Hippo's data folder (0700) and the SQLite files in it (0600,
//! like `master.key`): the database holds password hashes, sealed secrets and the audit
//! trail, the queue the jobs. Modes are set on creation and corrected on every start (an
//! installation from before this rule, or a restore that kept other modes).
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Makes sure the SQLite database `path` exists with mode 0600, and its `-wal`, `-shm` and
/// `-journal` companions too if they exist (SQLite creates them with the database's mode).
pub fn private_sqlite(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    set_mode(path, 0o600)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = Path::new(&companion);
        if companion.exists() {
            set_mode(companion, 0o600)?;
        }
    }
    Ok(())
}

/// Sets `mode`. A file Hippo does not own (a volume prepared by someone else) keeps its mode,
/// with a warning: refusing to start would help no one.
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = fs::metadata(path)?.permissions().mode() & 0o7777;
    if current != mode
        && let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(mode))
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot make it owner-only ({mode:o}); please do");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_databases_become_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("hippo.db");
        private_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        // An older installation's files are corrected.
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(dir.join("hippo.db-wal"), b"").unwrap();
        fs::set_permissions(dir.join("hippo.db-wal"), fs::Permissions::from_mode(0o644)).unwrap();
        private_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("hippo.db-wal")), 0o600);
    }
}
