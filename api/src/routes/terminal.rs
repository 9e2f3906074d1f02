//! The web terminal (issue 14): an interactive shell on a host over a WebSocket, with the
//! platform key (host key pinned as usual), for admins and holders of `terminal` in the host's
//! environment. Every session is audited (who, host, start, end) and its input and output are
//! recorded; admins read them (`/api/terminal-sessions`).
//!
//! Browsers cannot send a bearer header on a WebSocket, so opening one takes two steps:
//! `POST /api/hosts/{id}/terminal` (bearer token, permission checked) creates the session and a
//! one-time ticket valid for [`TICKET_SECS`]; the browser then opens
//! `GET /ws/terminal?ticket=…`. Only the ticket's SHA-256 is stored; the first use clears it
//! (one UPDATE decides, so it works across API replicas).
//!
//! On the socket: the browser sends text frames `{"type":"input","data":"…"}` and
//! `{"type":"resize","cols":120,"rows":40}`; Hippo sends the shell's output as binary frames
//! and, at the end, a text frame `{"type":"end","reason":"…"}` before closing.
use super::{AUTH, ApiResult, ApiTags, BAD_PARAM, Created, FORBIDDEN, NOT_FOUND};
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::Timestamp;
use futures::{SinkExt, StreamExt};
use hippo_shared::db::audit::Actor;
use hippo_shared::db::terminal::TerminalSession;
use hippo_shared::domain::{EnvironmentId, HostId, Permission, TerminalSessionId, UserId};
use hippo_worker::hostops::{self, TermEvent};
use hippo_worker::ssh::{TermInput, Timeouts};
use poem::web::websocket::{Message, WebSocket};
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, handler};
use poem_openapi::param::{Path, Query as OQuery};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a ticket opens its session.
pub const TICKET_SECS: i64 = 30;
/// At most this much of a session is recorded (then `[transcript truncated]`).
const MAX_TRANSCRIPT: usize = 8 * 1024 * 1024;

#[derive(Object)]
pub struct TerminalTicketOut {
    pub session_id: TerminalSessionId,
    /// Opens the session once, within 30 seconds: `GET /ws/terminal?ticket=…` (a WebSocket).
    pub ticket: String,
    /// The WebSocket's path, with the ticket.
    pub ws_path: String,
    pub expires_at: Timestamp,
}

#[derive(Object)]
pub struct TerminalSessionOut {
    pub id: TerminalSessionId,
    pub host_id: HostId,
    pub host_name: String,
    pub environment_id: EnvironmentId,
    pub user_id: UserId,
    pub username: String,
    pub started_at: Timestamp,
    #[oai(skip_serializing_if_is_none)]
    pub ended_at: Option<Timestamp>,
    /// `closed`, `idle`, `host_closed`, or what failed; empty while open.
    pub end_reason: String,
    pub transcript_bytes: i64,
}

/// One piece of a session: `i` (typed), `o` (shown), `r` (resized, `d` = `COLSxROWS`), at `t`
/// milliseconds after the start.
#[derive(Object, serde::Deserialize)]
pub struct TranscriptEntry {
    pub t: u64,
    pub k: String,
    pub d: String,
}

#[derive(Object)]
pub struct TerminalTranscriptOut {
    pub session: TerminalSessionOut,
    pub entries: Vec<TranscriptEntry>,
}

fn session_out(s: TerminalSession) -> TerminalSessionOut {
    TerminalSessionOut {
        id: s.id,
        host_id: s.host_id,
        host_name: s.host_name,
        environment_id: s.environment_id,
        user_id: s.user_id,
        username: s.username,
        started_at: s.started_at.unwrap_or(s.created_at).into(),
        ended_at: s.ended_at.map(Into::into),
        end_reason: s.end_reason,
        transcript_bytes: s.transcript_bytes,
    }
}

#[derive(Default)]
pub struct TerminalApi;

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Hosts")]
impl TerminalApi {
    /// Open a web terminal on a host (admins, or `terminal` in its environment): creates the
    /// session and a one-time ticket for the WebSocket `GET /ws/terminal?ticket=…` (browsers
    /// cannot send a bearer header there). Everything typed and shown is recorded.
    #[oai(
        path = "/hosts/:id/terminal",
        method = "post",
        operation_id = "openTerminal"
    )]
    async fn open(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<HostId>,
    ) -> ApiResult<Created<TerminalTicketOut>, { AUTH | FORBIDDEN | NOT_FOUND }> {
        let host = st.db.get_host(id.0).await?;
        auth.0.require_sees(host.environment_id, None, "host")?;
        auth.0
            .require(Permission::Terminal, Some(host.environment_id), None)?;
        let (ticket, ticket_hash) = hippo_shared::crypto::new_token();
        let expires = (chrono::Utc::now() + chrono::Duration::seconds(TICKET_SECS))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let session = st
            .db
            .create_terminal_session(&host, auth.0.id, &auth.0.username, &ticket_hash, &expires)
            .await?;
        Ok(Created::Ok(Json(TerminalTicketOut {
            session_id: session.id,
            ws_path: format!("/ws/terminal?ticket={ticket}"),
            ticket,
            expires_at: expires.into(),
        })))
    }

    /// Terminal sessions, newest first (at most 500), optionally of one host. Admins only.
    #[oai(
        path = "/terminal-sessions",
        method = "get",
        operation_id = "listTerminalSessions"
    )]
    async fn list(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        host_id: OQuery<Option<HostId>>,
    ) -> ApiResult<Json<Vec<TerminalSessionOut>>, { AUTH | BAD_PARAM | FORBIDDEN }> {
        auth.0.require_admin()?;
        Ok(Json(
            st.db
                .list_terminal_sessions(host_id.0)
                .await?
                .into_iter()
                .map(session_out)
                .collect(),
        ))
    }

    /// One session with its transcript. Admins only.
    #[oai(
        path = "/terminal-sessions/:id",
        method = "get",
        operation_id = "getTerminalSession"
    )]
    async fn get(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<TerminalSessionId>,
    ) -> ApiResult<Json<TerminalTranscriptOut>, { AUTH | FORBIDDEN | NOT_FOUND }> {
        auth.0.require_admin()?;
        let session = st.db.get_terminal_session(id.0).await?;
        let text = st.db.terminal_transcript(id.0).await?;
        let entries = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        Ok(Json(TerminalTranscriptOut {
            session: session_out(session),
            entries,
        }))
    }
}

#[derive(serde::Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Input { data: String },
    Resize { cols: u32, rows: u32 },
}

/// `GET /ws/terminal?ticket=…`: the WebSocket of a session opened with `openTerminal`.
#[handler]
pub async fn websocket(
    ws: WebSocket,
    Query(q): Query<TicketQuery>,
    Data(st): Data<&Arc<State>>,
) -> Response {
    let refuse = |status: u16, code: &str, message: &str| {
        let body = crate::problem::Problem {
            error: code.to_owned(),
            message: message.to_owned(),
            field: None,
            permission: None,
        };
        poem::web::Json(body)
            .with_status(
                poem::http::StatusCode::from_u16(status)
                    .unwrap_or(poem::http::StatusCode::UNAUTHORIZED),
            )
            .into_response()
    };
    let Some(ticket) = q.ticket.filter(|t| !t.is_empty() && t.len() <= 256) else {
        return refuse(
            401,
            "unauthorized",
            "a terminal ticket is required (POST /api/hosts/{id}/terminal)",
        );
    };
    let session = match st
        .db
        .claim_terminal_ticket(&hippo_shared::crypto::token_hash(&ticket))
        .await
    {
        Ok(Some(s)) => s,
        Ok(None) => {
            return refuse(
                401,
                "unauthorized",
                "the terminal ticket is unknown, used or expired",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let host = match st.db.get_host(session.host_id).await {
        Ok(h) => h,
        Err(e) => {
            let _ = st
                .db
                .end_terminal_session(session.id, "the host is gone")
                .await;
            return ApiError::from(e).into_response();
        }
    };
    let st = (*st).clone();
    ws.on_upgrade(move |socket| async move {
        run(st, session, host, socket).await;
    })
    .into_response()
}

/// The transcript being written: JSON lines, flushed to the database about every second.
struct Transcript {
    id: TerminalSessionId,
    started: Instant,
    buf: String,
    written: usize,
    truncated: bool,
    /// Output bytes that end inside a UTF-8 character, kept for the next chunk.
    carry: Vec<u8>,
    last_flush: Instant,
}

impl Transcript {
    fn push(&mut self, kind: &str, data: &str) {
        if self.truncated || data.is_empty() {
            return;
        }
        let t = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let line = json!({"t": t, "k": kind, "d": data}).to_string();
        if self.written + self.buf.len() + line.len() > MAX_TRANSCRIPT {
            self.truncated = true;
            self.buf.push_str(
                &json!({"t": t, "k": "o", "d": "\r\n[transcript truncated]\r\n"}).to_string(),
            );
            self.buf.push('\n');
            return;
        }
        self.buf.push_str(&line);
        self.buf.push('\n');
    }

    fn output(&mut self, bytes: &[u8]) {
        self.carry.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.carry) {
            Ok(_) => self.carry.len(),
            // An incomplete character at the end waits; a bad byte elsewhere is replaced.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.carry.len(),
        };
        let rest = self.carry.split_off(valid);
        let text = String::from_utf8_lossy(&self.carry).into_owned();
        self.carry = rest;
        self.push("o", &text);
    }

    async fn flush(&mut self, st: &State, force: bool) {
        if self.buf.is_empty() || (!force && self.last_flush.elapsed() < Duration::from_secs(1)) {
            return;
        }
        let chunk = std::mem::take(&mut self.buf);
        self.written += chunk.len();
        self.last_flush = Instant::now();
        if let Err(e) = st.db.append_transcript(self.id, &chunk).await {
            tracing::error!(session = %self.id, error = %e, "could not record a terminal transcript");
        }
    }
}

async fn audit(st: &State, s: &TerminalSession, changes: serde_json::Value) {
    let actor = Actor::user(s.user_id, &s.username);
    if let Err(e) = st
        .db
        .audit(
            &actor,
            "host",
            Some(s.host_id.get()),
            "terminal",
            &changes,
            "",
        )
        .await
    {
        tracing::error!(error = %e, "could not record an audit entry");
    }
}

async fn run(
    st: Arc<State>,
    session: TerminalSession,
    host: hippo_shared::db::inventory::Host,
    socket: poem::web::websocket::WebSocketStream,
) {
    let started_at = session.started_at.clone().unwrap_or_default();
    audit(
        &st,
        &session,
        json!({"session_id": {"from": null, "to": session.id}, "started_at": {"from": null, "to": started_at}}),
    )
    .await;
    tracing::info!(session = %session.id, host = %host.name, user = %session.username, "terminal session started");
    let (mut sink, mut stream) = socket.split();
    let (in_tx, in_rx) = std::sync::mpsc::channel::<TermInput>();
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel::<TermEvent>(64);
    let key = st.key.private_openssh.expose().to_owned();
    let t = Timeouts {
        connect: st.settings.ssh_connect_timeout(),
        io: st.settings.ssh_io_timeout(),
    };
    let idle = Duration::from_secs(st.settings.terminal_idle_secs);
    let h = host.clone();
    let mut ssh = tokio::task::spawn_blocking(move || {
        hostops::terminal(&h, &key, &t, 80, 24, idle, &in_rx, &ev_tx).map(|e| e.as_str().to_owned())
    });
    let mut tr = Transcript {
        id: session.id,
        started: Instant::now(),
        buf: String::new(),
        written: 0,
        truncated: false,
        carry: Vec::new(),
        last_flush: Instant::now(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut browser_open = true;
    let reason = loop {
        tokio::select! {
            ev = ev_rx.recv() => match ev {
                Some(TermEvent::Connected { pin }) => {
                    if let Some(k) = pin
                        && let Err(e) = st.db.pin_host_key(host.id, &k.key_type, &k.key_base64).await
                    {
                        tracing::error!(error = %e, "could not pin a host key");
                    }
                }
                Some(TermEvent::Output(bytes)) => {
                    tr.output(&bytes);
                    if browser_open && sink.send(Message::Binary(bytes)).await.is_err() {
                        browser_open = false;
                        let _ = in_tx.send(TermInput::Close);
                    }
                }
                // The SSH side is done: its result says why.
                None => {
                    break match (&mut ssh).await {
                        Ok(Ok(reason)) => reason,
                        Ok(Err(e)) => format!("error: {e}"),
                        Err(e) => format!("error: {e}"),
                    };
                }
            },
            msg = stream.next(), if browser_open => match msg {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Input { data }) => {
                        tr.push("i", &data);
                        let _ = in_tx.send(TermInput::Data(data.into_bytes()));
                    }
                    Ok(ClientMessage::Resize { cols, rows }) => {
                        tr.push("r", &format!("{cols}x{rows}"));
                        let _ = in_tx.send(TermInput::Resize { cols, rows });
                    }
                    Err(_) => {}
                },
                Some(Ok(Message::Binary(data))) => {
                    tr.push("i", &String::from_utf8_lossy(&data));
                    let _ = in_tx.send(TermInput::Data(data));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    browser_open = false;
                    let _ = in_tx.send(TermInput::Close);
                }
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => tr.flush(&st, false).await,
        }
    };
    tr.flush(&st, true).await;
    if let Err(e) = st.db.end_terminal_session(session.id, &reason).await {
        tracing::error!(error = %e, "could not end a terminal session");
    }
    let ended = hippo_shared::db::now();
    audit(
        &st,
        &session,
        json!({"session_id": {"from": null, "to": session.id}, "started_at": {"from": null, "to": started_at},
               "ended_at": {"from": null, "to": ended}, "end_reason": {"from": null, "to": reason}}),
    )
    .await;
    // The end frame goes last: a client that reads it and then lists the sessions finds this
    // one ended (the record and the audit entry are written first).
    if browser_open {
        let _ = sink
            .send(Message::Text(
                json!({"type": "end", "reason": reason}).to_string(),
            ))
            .await;
        let _ = sink.close().await;
    }
    tracing::info!(session = %session.id, reason = %reason, "terminal session ended");
}
