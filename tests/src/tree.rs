//! Snapshots of a directory tree (path → kind, mode, content or link target) to compare what a
//! host holds with what was expected.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File { mode: u32, content: Vec<u8> },
    Link(String),
}

pub fn snapshot(root: &Path) -> anyhow::Result<BTreeMap<String, Node>> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            out.insert(
                rel,
                Node::Link(std::fs::read_link(&path)?.to_string_lossy().into_owned()),
            );
        } else if meta.is_dir() {
            out.insert(rel, Node::Dir);
            walk(root, &path, out)?;
        } else {
            out.insert(
                rel,
                Node::File {
                    mode: meta.permissions().mode() & 0o777,
                    content: std::fs::read(&path)?,
                },
            );
        }
    }
    Ok(())
}
