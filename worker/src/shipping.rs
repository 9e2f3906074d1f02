//! What each host of a release is sent (issue 11), built once per run and shared by the host
//! tasks: the full archive in the codec the host can unpack, or a delta from the version the
//! host serves (one plan and one archive per distinct base manifest and codec). Nothing is
//! packed before a host needs it: a redeploy whose hosts all take a delta never packs the
//! whole tree for them. The kept copy for rollbacks (the full archive in the kept codec, put
//! in the artifact store by [`Shipment::keep_copy`] after prepare) is made then, unless a host
//! already needed it. Blocking; called from the prepare stage's host
//! threads, which wait for each other when they need the same thing.
use crate::commands::Codec;
use crate::delta::{self, DeltaMode, HostManifest, Plan};
use crate::package::{self, FileFilter, ManifestEntry, PackageInfo};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// A result several host threads wait for.
type Shared<T> = Arc<OnceLock<T>>;
/// An archive made in the run's work folder, and what it holds.
type Built = Result<(PathBuf, PackageInfo), String>;

/// One run's payload for new versions.
pub struct Shipment {
    /// The exported tree (after the after-checkout hook) and the config's filter.
    src: PathBuf,
    filter: FileFilter,
    /// Scratch folder of the run: archives are written here first.
    work: PathBuf,
    /// The package's manifest of the new version.
    entries: Vec<ManifestEntry>,
    release_id: i64,
    commit: String,
    version: String,
    /// The kept copy of the version (for rollbacks that find it gone from a host): the full
    /// archive in `kept_codec`, at this path in the artifact store.
    kept: PathBuf,
    kept_codec: Codec,
    /// Whether zstd may be used at all (settings), and how unchanged files are made.
    pub zstd: bool,
    pub mode: DeltaMode,
    /// The full archive per codec (made on first need) and what it holds.
    fulls: Mutex<HashMap<Codec, Shared<Built>>>,
    /// Per base manifest hash: its delta (`None`: no usable delta from that base).
    deltas: Mutex<HashMap<String, Shared<Option<Arc<Delta>>>>>,
}

/// A delta from one base, and its archives per codec.
pub struct Delta {
    pub plan: Plan,
    /// The manifest written beside the new version on such a host, the keep list and the drop
    /// list (for a host with a spare of the base), gzip-compressed as
    /// `commands::receive_delta` reads them.
    pub manifest_gz: Vec<u8>,
    pub keep_gz: Vec<u8>,
    pub drop_gz: Vec<u8>,
    archives: Mutex<HashMap<Codec, Shared<Result<PathBuf, String>>>>,
}

/// What the package stage made, to build a [`Shipment`] from: the filtered tree's manifest.
pub struct Packaged {
    pub src: PathBuf,
    pub filter: FileFilter,
    pub entries: Vec<ManifestEntry>,
}

impl Shipment {
    /// `kept`: where the kept copy goes, in `kept_codec` (see [`kept_codec`]).
    pub fn new(
        run: &crate::context::Run,
        p: Packaged,
        zstd: bool,
        (kept, kept_codec): (PathBuf, Codec),
    ) -> Shipment {
        Shipment {
            src: p.src,
            filter: p.filter,
            work: run.work.clone(),
            entries: p.entries,
            release_id: run.release.id.get(),
            commit: run.release.commit_id.to_string(),
            version: run.version.to_string(),
            kept,
            kept_codec,
            zstd,
            mode: run.spec.delta,
            fulls: Mutex::default(),
            deltas: Mutex::default(),
        }
    }

    /// The codec to use for a host that has (`host_zstd`) or lacks zstd.
    pub fn codec(&self, host_zstd: bool) -> Codec {
        if self.zstd && host_zstd {
            Codec::Zstd
        } else {
            Codec::Gzip
        }
    }

    /// What cleanup sends a host to make the spare of this version (`commands::clean_input`'s
    /// list: the version's regular files, gzip-compressed), or `None` when the config's delta
    /// is not `hardlink` (a spare of copies would double the disk used; with `off` it is never
    /// used).
    pub fn spare_list(&self) -> Option<Vec<u8>> {
        (self.mode == DeltaMode::Hardlink).then(|| {
            let files: Vec<&str> = self
                .entries
                .iter()
                .filter(|e| e.kind == package::EntryKind::File)
                .map(|e| e.path.as_str())
                .collect();
            delta::gzip(&delta::path_list(&files))
        })
    }

    /// Regular files and their bytes in the new version.
    pub fn totals(&self) -> (u64, u64) {
        self.entries
            .iter()
            .filter(|e| e.kind == package::EntryKind::File)
            .fold((0, 0), |(n, b), e| (n + 1, b + e.size))
    }

    /// The manifest JSON written beside a version on a host.
    fn manifest_json(&self, files: &[ManifestEntry], shipped: &str) -> Vec<u8> {
        let m = HostManifest {
            release_id: Some(self.release_id.into()),
            commit: Some(self.commit.clone()),
            version: Some(self.version.clone()),
            shipped: Some(shipped.to_owned()),
            files: files.to_vec(),
        };
        serde_json::to_vec(&m).unwrap_or_default()
    }

    /// The full archive in `codec` and the manifest to write beside it.
    pub fn full(&self, codec: Codec) -> Result<(PathBuf, Vec<u8>), String> {
        let (path, _) = self.full_archive(codec)?;
        Ok((path, self.manifest_json(&self.entries, "full")))
    }

    /// The full archive in `codec`, made once (in the run's work folder).
    fn full_archive(&self, codec: Codec) -> Built {
        let cell = self
            .fulls
            .lock()
            .map_err(|_| "archive cache poisoned".to_owned())?
            .entry(codec)
            .or_default()
            .clone();
        cell.get_or_init(|| {
            let out = self
                .work
                .join(format!("full.{}", package::extension(codec)));
            package::build_archive_with(&self.src, &self.filter, &out, codec, None)
                .map(|info| (out, info))
                .map_err(|e| format!("making the {} archive: {e}", codec.as_str()))
        })
        .clone()
    }

    /// Puts the kept copy for rollbacks in the artifact store: the full archive in the kept
    /// codec, made now unless a host already needed it. Its path and what it holds.
    pub fn keep_copy(&self) -> Built {
        let (tmp, info) = self.full_archive(self.kept_codec)?;
        package::keep_in_store(&tmp, &self.kept)
            .map_err(|e| format!("{}: {e}", self.kept.display()))?;
        Ok((self.kept.clone(), info))
    }

    /// The delta for hosts whose live version's manifest has sha256 `base_sha`; `fetch` reads
    /// that manifest from the host (called by the first host with this base only). `None`: no
    /// delta from this base (unreadable, or nothing in common).
    pub fn delta(
        &self,
        base_sha: &str,
        fetch: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Option<Arc<Delta>> {
        if self.mode == DeltaMode::Off {
            return None;
        }
        let cell = self
            .deltas
            .lock()
            .ok()?
            .entry(base_sha.to_owned())
            .or_default()
            .clone();
        cell.get_or_init(|| {
            let bytes = match fetch() {
                Ok(b) => b,
                Err(e) => {
                    tracing::info!(error = %e, "cannot read a base manifest; full archive");
                    return None;
                }
            };
            let base: HostManifest = serde_json::from_slice(&bytes).ok()?;
            let plan = delta::plan(&self.entries, &base.files);
            if !plan.worth_it() {
                return None;
            }
            Some(Arc::new(Delta {
                manifest_gz: delta::gzip(&self.manifest_json(&plan.manifest, "delta")),
                keep_gz: delta::gzip(&delta::path_list(&plan.keep)),
                drop_gz: delta::gzip(&delta::path_list(&plan.drop)),
                plan,
                archives: Mutex::default(),
            }))
        })
        .clone()
    }

    /// The delta archive of `d` in `codec` (made once).
    pub fn delta_archive(&self, d: &Delta, codec: Codec) -> Result<PathBuf, String> {
        let cell = d
            .archives
            .lock()
            .map_err(|_| "delta cache poisoned".to_owned())?
            .entry(codec)
            .or_default()
            .clone();
        cell.get_or_init(|| {
            let name = format!(
                "delta-{}.{}",
                d.plan.listing_sha256.get(..16).unwrap_or("x"),
                package::extension(codec)
            );
            let out = self.work.join(name);
            let only: HashSet<&str> = d.plan.send.iter().map(String::as_str).collect();
            package::build_archive_with(&self.src, &self.filter, &out, codec, Some(&only))
                .map(|_| out)
                .map_err(|e| format!("making the delta archive: {e}"))
        })
        .clone()
    }
}

/// The codec of kept copies: zstd (several times faster to make than gzip; a host without
/// `zstd` that needs a kept copy gets it re-compressed, `package::to_gzip`), gzip when the
/// worker's settings turn zstd off.
pub fn kept_codec(zstd: bool) -> Codec {
    if zstd { Codec::Zstd } else { Codec::Gzip }
}

/// A rollback's kept copy, for hosts that lost the version: the first of the candidate files
/// (the kept codecs, newest first) that exists, sent as it is to a host that can unpack it,
/// re-compressed as gzip (once per run) for one that cannot.
pub struct KeptCopy {
    candidates: Vec<(PathBuf, Codec)>,
    /// Whether zstd may be sent at all (settings).
    zstd: bool,
    work: PathBuf,
    gzip: OnceLock<Result<PathBuf, String>>,
}

impl KeptCopy {
    pub fn new(candidates: Vec<(PathBuf, Codec)>, zstd: bool, work: PathBuf) -> KeptCopy {
        KeptCopy {
            candidates,
            zstd,
            work,
            gzip: OnceLock::new(),
        }
    }

    /// The archive for a host that has (`host_zstd`) or lacks zstd, and its codec; `None`
    /// when no copy is kept.
    pub fn for_host(&self, host_zstd: bool) -> Option<Result<(PathBuf, Codec), String>> {
        let (path, codec) = self.candidates.iter().find(|(p, _)| p.exists())?;
        if *codec == Codec::Gzip || (self.zstd && host_zstd) {
            return Some(Ok((path.clone(), *codec)));
        }
        let gz = self
            .gzip
            .get_or_init(|| {
                let out = self.work.join("kept.tar.gz");
                package::to_gzip(path, &out)
                    .map(|_| out)
                    .map_err(|e| format!("re-compressing the kept copy as gzip: {e}"))
            })
            .clone();
        Some(gz.map(|p| (p, Codec::Gzip)))
    }
}
