//! Hooks that run on the release server (before / after checkout). The script reaches `bash`
//! on stdin and the variables through the environment: nothing is spliced into a command line.
//! Target-side hooks are `commands::run_hook`, run by the SSH transport.
use crate::context::Events;
use hippo_shared::events::{EventStatus, Stage};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{hook} hook exited with code {code}")]
    Exit { hook: &'static str, code: i32 },
    #[error("{hook} hook timed out after {secs} s")]
    TimedOut { hook: &'static str, secs: u64 },
    #[error("{hook} hook could not start: {source}")]
    Spawn {
        hook: &'static str,
        source: std::io::Error,
    },
}

/// Runs `script` with `bash -e` in `dir`. Empty scripts are skipped. Output lines become events.
pub async fn run_local(
    hook: &'static str,
    script: &str,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
    events: &Events,
    stage: Stage,
) -> Result<(), HookError> {
    if script.trim().is_empty() {
        return Ok(());
    }
    events.info(stage, format!("running {hook} hook"));
    let mut child = tokio::process::Command::new("bash")
        .arg("-e")
        .arg("-s")
        .current_dir(dir)
        // Only the basics of the worker's own environment: its settings (database URL, Redis
        // URL, master key) must not reach a user's script.
        .env_clear()
        .envs(
            ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"]
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v))),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|source| HookError::Spawn { hook, source })?;
    let pid = child.id();
    let mut stdin = child.stdin.take();
    let script = script.to_owned();
    let feed = async move {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(script.as_bytes()).await;
            let _ = s.write_all(b"\n").await;
        }
        drop(stdin);
    };
    let pump = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        let events = events.clone();
        async move {
            let Some(r) = r else { return };
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                events.send(events.event(stage, EventStatus::Output).message(line));
            }
        }
    };
    let out = pump(child.stdout.take().map(|s| Box::new(s) as _));
    let err = pump(child.stderr.take().map(|s| Box::new(s) as _));
    let run = async {
        let (_, _, _, status) = tokio::join!(feed, out, err, child.wait());
        status
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(HookError::Exit {
            hook,
            code: status.code().unwrap_or(128),
        }),
        Ok(Err(source)) => Err(HookError::Spawn { hook, source }),
        Err(_) => {
            // The hook and everything it started share one process group: end them all.
            if let Some(pid) = pid {
                let _ = std::process::Command::new("kill")
                    .arg("-KILL")
                    .arg("--")
                    .arg(format!("-{pid}"))
                    .status();
            }
            Err(HookError::TimedOut {
                hook,
                secs: timeout.as_secs(),
            })
        }
    }
}
