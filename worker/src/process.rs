//! What both binaries (`hippo-api`, `hippo-worker`) do at the process level: logging, the
//! shutdown signal, telling a supervisor the address they bound.

/// Structured logs to stderr; filter from `HIPPO_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HIPPO_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,apalis=warn")
            }),
        )
        .init();
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// A worker name unique to this process (in-flight jobs are keyed by it).
pub fn worker_name(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{role}-{host}-{}", std::process::id())
}

/// Writes `addr` (as `127.0.0.1:PORT`) to `path`, all at once (a temporary file renamed into
/// place): whoever waits for the file never reads half an address. `HIPPO_ADDR_FILE` names it,
/// so that a process told to listen on port 0 can say which port it got.
pub fn write_addr_file(path: &std::path::Path, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, path)
}
