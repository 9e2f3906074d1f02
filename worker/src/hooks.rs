//! Hooks that run on the release server (before / after checkout), in the sandbox of
//! [`crate::sandbox`]. The script and the variables reach `bash -e` as files: nothing is
//! spliced into a command line, and stdin is empty (a command in the script that reads stdin
//! cannot eat the rest of the script). Output lines become events. Target-side hooks are
//! `commands::run_hook`, run by the SSH transport.
use crate::cancel::Cancel;
use crate::context::Events;
use crate::sandbox::{Sandbox, SandboxError, WorkDir};
use hippo_shared::events::{EventStatus, Stage};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The longest output line kept as one event.
const MAX_LINE_BYTES: u64 = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{hook} hook exited with code {code}{hint}")]
    Exit {
        hook: &'static str,
        code: i32,
        hint: String,
    },
    #[error("{hook} hook timed out after {secs} s; it was stopped with every process it started")]
    TimedOut { hook: &'static str, secs: u64 },
    #[error("{hook} hook could not start: {source}")]
    Spawn {
        hook: &'static str,
        source: std::io::Error,
    },
    #[error("{hook} hook not run: {reason}")]
    Sandbox { hook: &'static str, reason: String },
    #[error("{hook} hook stopped: the release was cancelled")]
    Cancelled { hook: &'static str },
}

/// What to run and where.
pub struct Hook<'a> {
    pub name: &'static str,
    pub script: &'a str,
    /// The folder it works in (shown inside as `/hippo/src` or `/hippo/repo`).
    pub work: WorkDir<'a>,
    /// A folder of this run for the hook's files and `/tmp` (made here).
    pub scratch: &'a Path,
    pub env: &'a [(String, String)],
    pub timeout: Duration,
}

/// Runs the hook. Empty scripts are skipped.
pub async fn run_local(
    sandbox: &Sandbox,
    hook: Hook<'_>,
    events: &Events,
    stage: Stage,
) -> Result<(), HookError> {
    run_local_until(sandbox, hook, events, stage, None).await
}

/// [`run_local`], stopped (with every process it started) as soon as `cancel` says the run is
/// stopping.
pub async fn run_local_until(
    sandbox: &Sandbox,
    hook: Hook<'_>,
    events: &Events,
    stage: Stage,
    cancel: Option<&Cancel>,
) -> Result<(), HookError> {
    let name = hook.name;
    if cancel.is_some_and(Cancel::is_stopping) {
        return Err(HookError::Cancelled { hook: name });
    }
    if hook.script.trim().is_empty() {
        return Ok(());
    }
    let prepared = {
        let sandbox = sandbox.clone();
        let (script, scratch) = (hook.script.to_owned(), hook.scratch.to_path_buf());
        let (host, inside, writable) = (
            hook.work.host.to_path_buf(),
            hook.work.inside,
            hook.work.writable,
        );
        let (env, timeout) = (hook.env.to_vec(), hook.timeout);
        tokio::task::spawn_blocking(move || {
            let work = WorkDir {
                host: &host,
                inside,
                writable,
            };
            sandbox.prepare(name, &script, work, &scratch, &env, timeout)
        })
        .await
        .map_err(|e| HookError::Sandbox {
            hook: name,
            reason: e.to_string(),
        })?
        .map_err(|e| HookError::Sandbox {
            hook: name,
            reason: match e {
                SandboxError::Unavailable(why) => why,
                other => other.to_string(),
            },
        })?
    };
    if prepared.confined {
        events.info(stage, format!("running {name} hook (sandboxed)"));
    } else {
        events.send(events.event(stage, EventStatus::Info).message(format!(
            "running {name} hook UNSANDBOXED (HIPPO_HOOK_SANDBOX=off): it runs as \
                     Hippo's own user"
        )));
    }
    let mut command = prepared.command;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|source| HookError::Spawn { hook: name, source })?;
    let pid = child.id();
    let hit_nproc = Arc::new(AtomicBool::new(false));
    let hit_memory = Arc::new(AtomicBool::new(false));
    let pump = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        let events = events.clone();
        let (nproc, memory) = (hit_nproc.clone(), hit_memory.clone());
        async move {
            let Some(r) = r else { return };
            // Bytes, not UTF-8 lines: output that is not UTF-8 (a binary file, Latin-1) is
            // shown lossily instead of ending the reading (which would kill the hook with
            // SIGPIPE).
            let mut reader = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                // A line longer than MAX_LINE_BYTES arrives in pieces (bounded memory).
                match (&mut reader)
                    .take(MAX_LINE_BYTES)
                    .read_until(b'\n', &mut buf)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']).to_owned();
                if line.contains("fork: ") && line.contains("Resource temporarily unavailable") {
                    nproc.store(true, Ordering::Relaxed);
                }
                if mentions_memory_exhaustion(&line) {
                    memory.store(true, Ordering::Relaxed);
                }
                events.send(events.event(stage, EventStatus::Output).message(line));
            }
        }
    };
    let out = pump(child.stdout.take().map(|s| Box::new(s) as _));
    let err = pump(child.stderr.take().map(|s| Box::new(s) as _));
    let run = async {
        let (_, _, status) = tokio::join!(out, err, child.wait());
        status
    };
    let stop = async {
        match cancel {
            Some(c) => c.stopping().await,
            None => std::future::pending().await,
        }
    };
    // `None`: cancelled.
    let result = tokio::select! {
        r = tokio::time::timeout(hook.timeout, run) => Some(r),
        () = stop => None,
    };
    let limits = sandbox.limits();
    let kill_group = || {
        // The hook and everything it started: bwrap's process group here, and its pid
        // namespace, which ends with bwrap (--die-with-parent).
        if let Some(pid) = pid {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .arg(format!("-{pid}"))
                .status();
        }
    };
    let Some(result) = result else {
        kill_group();
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        return Err(HookError::Cancelled { hook: name });
    };
    let outcome = match result {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            let mut hint = String::new();
            if let Some(sig) = status.signal() {
                hint.push_str(&format!(" (killed by signal {sig})"));
            }
            if prepared.confined && hit_nproc.load(Ordering::Relaxed) {
                hint.push_str(&format!(
                    "; it reached the sandbox's limit of {} processes (HIPPO_HOOK_MAX_PROCESSES)",
                    limits.max_processes
                ));
            }
            if prepared.confined && hit_memory.load(Ordering::Relaxed) {
                hint.push_str(&format!(
                    "; it ran out of memory: the sandbox allows {} MiB per process \
                     (HIPPO_HOOK_MEMORY_MB)",
                    limits.memory_mb
                ));
            }
            Err(HookError::Exit {
                hook: name,
                code: status
                    .code()
                    .or(status.signal().map(|s| 128 + s))
                    .unwrap_or(128),
                hint,
            })
        }
        Ok(Err(source)) => Err(HookError::Spawn { hook: name, source }),
        Err(_) => {
            kill_group();
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            Err(HookError::TimedOut {
                hook: name,
                secs: hook.timeout.as_secs(),
            })
        }
    };
    // `prepared` (still holding the hook's user id) is dropped here, after the process ended.
    outcome
}

/// Lines programs print when an allocation fails (bash, glibc, Node, Python, the JVM).
fn mentions_memory_exhaustion(line: &str) -> bool {
    [
        "Cannot allocate memory",
        "cannot allocate",
        "xmalloc",
        "xrealloc",
        "out of memory",
        "Out of memory",
        "MemoryError",
        "heap out of memory",
        "OutOfMemoryError",
    ]
    .iter()
    .any(|m| line.contains(m))
}
