//! The HTTP server: the poem routes served over hyper's HTTP/1.1, with what `poem::Server`
//! lacks against slow and idle clients (issue 9). poem 3.1's `Server` offers only an
//! inactivity time-out (any byte resets it, so a client trickling a header line every few
//! seconds stays forever) and no connection limit; its hyper builder is private. So this module
//! accepts and serves connections itself and, per connection:
//!
//! - **header time-out** (`http_header_timeout_secs`): a new connection must deliver a whole
//!   request head within it, and so must a kept-alive one once the head's first byte came;
//! - **body time-out** (`http_body_timeout_secs`): a request body must arrive within it of the
//!   head; the handler then sees a read error and the client gets 408 and a closed connection;
//! - **keep-alive time-out** (`http_keepalive_timeout_secs`): an idle connection between
//!   requests is closed after it (longer than a load balancer's idle time-out, so the balancer
//!   closes first);
//! - **connection limit** (`http_max_connections`): at the limit, a new connection replaces
//!   the longest-idle one (no request in progress: idle, or still sending its head); with none
//!   idle it is closed at once. A request in progress (an event stream too) is never cut.
//!
//! What is in progress is known exactly, not guessed from bytes: the service call marks the
//! connection busy from the complete head until hyper drops the response body. Only the first
//! byte of a head is seen at the socket. HTTP/2 is not offered (poem's server accepted h2c).
use crate::problem::Problem;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use poem::http::{StatusCode, header};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt as _, IntoResponse as _, Response};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::time::{Instant, Sleep};

/// The server's limits (settings `http_*`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_settings(s: &hippo_shared::config::Settings) -> Self {
        Self {
            header_timeout: Duration::from_secs(s.http_header_timeout_secs),
            body_timeout: Duration::from_secs(s.http_body_timeout_secs),
            keepalive_timeout: Duration::from_secs(s.http_keepalive_timeout_secs),
            max_connections: s.http_max_connections,
        }
    }
}

/// Connections waiting for an evicted one's place at most (beyond: closed at once).
const MAX_WAITING: usize = 64;
/// How long a connection waits for an evicted one's place.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// File descriptors kept for everything but client connections (database, SSH, files).
const FD_RESERVE: u64 = 256;

/// Raises the soft limit of open files to the hard limit and returns how many client
/// connections fit under it (at most `wanted`; fewer, with a warning, when the limit is low).
pub fn fit_connection_limit(wanted: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        lim.current = Some(max);
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(error = %e, "could not raise the open files limit");
            lim = getrlimit(Resource::Nofile);
        }
    }
    let Some(files) = lim.current else {
        return wanted;
    };
    let fit = files.saturating_sub(FD_RESERVE).max(16) as usize;
    if fit < wanted {
        tracing::warn!(
            open_files = files,
            wanted,
            using = fit,
            "the open files limit (ulimit -n) is below HIPPO_HTTP_MAX_CONNECTIONS; using less"
        );
        return fit;
    }
    wanted
}

/// Serves `ep` on `listener` until `shutdown` resolves; then lets requests in progress finish
/// for up to `grace` and returns.
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let ep: Arc<dyn DynEndpoint> = Arc::new(ep.map_to_response());
    let local = listener.local_addr()?;
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let registry = Arc::new(Registry::new(limits));
    let waiting = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut last_refusal_log: Option<Instant> = None;
    let mut last_accept_error_log: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: say so now and then, and breathe.
                    if last_accept_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        last_accept_error_log = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let serve_one = {
            let (ep, registry, stop_rx) = (ep.clone(), registry.clone(), stop_rx.clone());
            move |stream, permit| {
                serve_connection(stream, local, peer, ep, registry, stop_rx, grace, permit)
            }
        };
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            tokio::spawn(serve_one(stream, permit));
            continue;
        }
        // At the limit: replace the longest-idle connection, if any; its slot is handed over
        // to this one (not to whoever asks the semaphore first).
        if waiting.load(Ordering::Relaxed) < MAX_WAITING
            && let Some(handed) = registry.evict_longest_idle()
        {
            waiting.fetch_add(1, Ordering::Relaxed);
            let waiting = waiting.clone();
            tokio::spawn(async move {
                let slot = tokio::time::timeout(EVICTION_WAIT, handed).await;
                waiting.fetch_sub(1, Ordering::Relaxed);
                if let Ok(Ok(slot)) = slot {
                    serve_one(stream, slot).await;
                }
            });
            continue;
        }
        drop(stream);
        if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            tracing::warn!(
                max_connections = max,
                "connection limit reached and every connection is busy: refusing connections"
            );
            last_refusal_log = Some(Instant::now());
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection gives back its slot when it ends (within `grace`, see serve_connection).
    let _ = tokio::time::timeout(
        grace + Duration::from_secs(1),
        slots.acquire_many(max as u32),
    )
    .await;
    Ok(())
}

/// The endpoint behind an `Arc` (poem's own `DynEndpoint` is not object-safe to name here).
trait DynEndpoint: Send + Sync {
    fn respond(&self, req: poem::Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>>;
}

impl<E: Endpoint<Output = Response>> DynEndpoint for E {
    fn respond(&self, req: poem::Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(self.get_response(req))
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    stream: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    ep: Arc<dyn DynEndpoint>,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    slot: OwnedSemaphorePermit,
) {
    let conn = registry.open();
    let io = TokioIo::new(Tracked {
        io: stream,
        conn: conn.clone(),
        registry: registry.clone(),
    });
    let service = {
        let (conn, registry) = (conn.clone(), registry.clone());
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let (ep, conn, registry) = (ep.clone(), conn.clone(), registry.clone());
            async move {
                let busy = Busy::start(conn, registry.clone());
                let req = poem::Request::from((
                    req,
                    LocalAddr(Addr::SocketAddr(local)),
                    RemoteAddr(Addr::SocketAddr(peer)),
                    poem::http::uri::Scheme::HTTP,
                ));
                let resp = respond(&*ep, req, registry.limits.body_timeout).await;
                let resp: hyper::Response<BoxBody<Bytes, io::Error>> = resp.into();
                Ok::<_, Infallible>(resp.map(|inner| Guarded { inner, _busy: busy }))
            }
        })
    };
    // hyper's own header time-out stays off (it would apply to idle keep-alive connections
    // too, and needs a timer); `Registry::expired` does it.
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service)
        // The web terminal's WebSocket (`routes::terminal`) takes the connection over.
        .with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        done = served.as_mut() => {
            if let Err(e) = done {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        reason = registry.expired(&conn) => {
            tracing::debug!(%peer, reason, "closing a connection");
        }
        _ = conn.evict.notified() => {
            tracing::debug!(%peer, "closing an idle connection: the connection limit is reached");
        }
        _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
            served.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(grace, served.as_mut()).await;
        }
    }
    registry.close(conn.id);
    // Evicted (or ended while being evicted): the slot goes to the connection that needs it.
    let heir = conn.heir.lock().ok().and_then(|mut h| h.take());
    if let Some(heir) = heir {
        let _ = heir.send(slot);
    }
}

/// Calls the endpoint; the request body, if any, must arrive within `body_timeout`.
async fn respond(ep: &dyn DynEndpoint, mut req: poem::Request, body_timeout: Duration) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return ep.respond(req).await;
    }
    let late = Arc::new(AtomicBool::new(false));
    let body = BoxBody::from(req.take_body());
    req.set_body(poem::Body::from(BoxBody::new(DeadlineBody {
        inner: body,
        sleep: Box::pin(tokio::time::sleep(body_timeout)),
        late: late.clone(),
        limit: body_timeout,
    })));
    let resp = ep.respond(req).await;
    if !late.load(Ordering::Relaxed) {
        return resp;
    }
    poem::web::Json(Problem {
        error: "request_timeout".into(),
        message: format!(
            "the request body did not arrive within {} s",
            body_timeout.as_secs()
        ),
        field: None,
        permission: None,
    })
    .with_status(StatusCode::REQUEST_TIMEOUT)
    .with_header(header::CONNECTION, "close")
    .into_response()
}

/// All open connections, to find the longest-idle one at the limit.
struct Registry {
    limits: Limits,
    epoch: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// `Conn::head_started` when no head is being read.
const NONE: u64 = u64::MAX;

/// One connection's state, in milliseconds since the registry's epoch.
struct Conn {
    id: u64,
    /// Requests in progress (from the complete head until the response body is dropped).
    busy: AtomicUsize,
    /// Requests served so far.
    served: AtomicU64,
    /// When it last became idle (opened, or a response ended).
    idle_since: AtomicU64,
    /// When the current head's first byte arrived, or [`NONE`].
    head_started: AtomicU64,
    /// Chosen to make room (once).
    evicting: AtomicBool,
    /// Where its slot goes when it closes, once chosen to make room.
    heir: Mutex<Option<oneshot::Sender<OwnedSemaphorePermit>>>,
    /// Wakes the time-out watcher after a change of state.
    changed: Notify,
    /// Closes the connection to make room.
    evict: Notify,
}

impl Registry {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn open(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(self.now()),
            head_started: AtomicU64::new(NONE),
            evicting: AtomicBool::new(false),
            heir: Mutex::new(None),
            changed: Notify::new(),
            evict: Notify::new(),
        });
        if let Ok(mut open) = self.open.lock() {
            open.insert(conn.id, conn.clone());
        }
        conn
    }

    fn close(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// When `conn` must be closed unless something happens first (None: a request is in
    /// progress), and why.
    fn deadline(&self, conn: &Conn) -> Option<(u64, &'static str)> {
        if conn.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let head = conn.head_started.load(Ordering::Acquire);
        if head != NONE {
            return Some((
                head + ms(self.limits.header_timeout),
                "request head not received within the header time-out",
            ));
        }
        let idle = conn.idle_since.load(Ordering::Acquire);
        if conn.served.load(Ordering::Acquire) == 0 {
            Some((
                idle + ms(self.limits.header_timeout),
                "no request within the header time-out",
            ))
        } else {
            Some((
                idle + ms(self.limits.keepalive_timeout),
                "idle beyond the keep-alive time-out",
            ))
        }
    }

    /// Resolves when `conn` passes its deadline; the reason.
    async fn expired(&self, conn: &Conn) -> &'static str {
        loop {
            match self.deadline(conn) {
                None => conn.changed.notified().await,
                Some((at, why)) => {
                    let now = self.now();
                    if now >= at {
                        return why;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(at - now)) => {}
                        _ = conn.changed.notified() => {}
                    }
                }
            }
        }
    }

    /// Closes the connection idle (no request in progress) for longest; its slot will arrive
    /// on the receiver. None if no connection is idle.
    fn evict_longest_idle(&self) -> Option<oneshot::Receiver<OwnedSemaphorePermit>> {
        let open = self.open.lock().ok()?;
        let victim = open
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0 && !c.evicting.load(Ordering::Acquire))
            .min_by_key(|c| {
                let head = c.head_started.load(Ordering::Acquire);
                if head != NONE {
                    head
                } else {
                    c.idle_since.load(Ordering::Acquire)
                }
            });
        let c = victim?;
        let (tx, rx) = oneshot::channel();
        *c.heir.lock().ok()? = Some(tx);
        c.evicting.store(true, Ordering::Release);
        c.evict.notify_one();
        Some(rx)
    }
}

/// Marks a connection busy while a request is in progress.
struct Busy {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Busy {
    fn start(conn: Arc<Conn>, registry: Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        conn.served.fetch_add(1, Ordering::AcqRel);
        conn.head_started.store(NONE, Ordering::Release);
        conn.changed.notify_one();
        Self { conn, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conn
                .idle_since
                .store(self.registry.now(), Ordering::Release);
        }
        self.conn.changed.notify_one();
    }
}

/// The socket, noting when an idle connection's next request head starts.
struct Tracked {
    io: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let conn = &self.conn;
            if conn.busy.load(Ordering::Acquire) == 0
                && conn.head_started.load(Ordering::Acquire) == NONE
            {
                conn.head_started
                    .store(self.registry.now(), Ordering::Release);
                conn.changed.notify_one();
            }
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body that fails once its time is up.
struct DeadlineBody {
    inner: BoxBody<Bytes, io::Error>,
    sleep: Pin<Box<Sleep>>,
    late: Arc<AtomicBool>,
    limit: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.late.store(true, Ordering::Relaxed);
            let limit = self.limit;
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("request body not received within {limit:?}"),
            ))));
        }
        Poll::Pending
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its connection marked busy until hyper drops it (sent, or the
/// client went away).
struct Guarded {
    inner: BoxBody<Bytes, io::Error>,
    _busy: Busy,
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
