//! The live event feed across processes (cluster mode). A worker stores every event, then also
//! publishes it on a Redis channel; every API replica subscribes and hands what arrives to its
//! in-process subscribers. The feed is best effort on purpose: the database is the record, and a
//! reader that hears nothing for a moment re-reads the stored events, so a Redis restart can
//! delay live events but never lose one.
use crate::events::ReleaseEvent;
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Every Redis call of the feed gives up after this long.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);
/// Events waiting to be published; beyond this they are dropped (they are stored anyway).
const BACKLOG: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("Redis URL: {0}")]
    Url(String),
}

/// The channel events of one installation travel on (named after its queue).
pub fn channel(queue_name: &str) -> String {
    format!("{queue_name}:events")
}

/// The publishing side: hands events to a background task that publishes them in order.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<String>,
}

impl Publisher {
    pub fn start(url: &str, channel: String) -> Result<Self, FeedError> {
        let client = redis::Client::open(url).map_err(|e| FeedError::Url(e.to_string()))?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(publish_loop(client, channel, rx));
        Ok(Self { tx })
    }
    /// Never waits: a full backlog (Redis down for long) drops the event from the feed only.
    pub fn send(&self, ev: &ReleaseEvent) {
        if let Ok(body) = serde_json::to_string(ev) {
            let _ = self.tx.try_send(body);
        }
    }
}

async fn publish_loop(client: redis::Client, channel: String, mut rx: mpsc::Receiver<String>) {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(1);
    let mut conn: Option<redis::aio::ConnectionManager> = None;
    let mut healthy = true;
    while let Some(body) = rx.recv().await {
        // After a Redis restart the first request on the old connection fails and makes the
        // manager reconnect, so a failure is tried once more at once.
        let mut sent = false;
        for _ in 0..2 {
            sent = publish_one(&client, &config, &mut conn, &channel, &body).await;
            if sent {
                break;
            }
        }
        if sent != healthy {
            healthy = sent;
            if sent {
                tracing::info!("publishing live events to Redis again");
            } else {
                tracing::warn!(
                    "cannot publish live events to Redis; readers fall back to the store"
                );
            }
        }
    }
}

async fn publish_one(
    client: &redis::Client,
    config: &redis::aio::ConnectionManagerConfig,
    conn: &mut Option<redis::aio::ConnectionManager>,
    channel: &str,
    body: &str,
) -> bool {
    if conn.is_none() {
        *conn = tokio::time::timeout(
            REDIS_TIMEOUT,
            client.get_connection_manager_with_config(config.clone()),
        )
        .await
        .ok()
        .and_then(Result::ok);
    }
    let Some(c) = conn.as_mut() else {
        return false;
    };
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(channel).arg(body);
    let publish = cmd.query_async::<i64>(c);
    matches!(
        tokio::time::timeout(REDIS_TIMEOUT, publish).await,
        Ok(Ok(_))
    )
}

/// The subscribing side (API replicas): forwards every event heard on `channel` to `live`,
/// reconnecting with backoff for as long as the process runs.
pub fn follow(
    url: &str,
    channel: String,
    live: broadcast::Sender<ReleaseEvent>,
) -> Result<(), FeedError> {
    let client = redis::Client::open(url).map_err(|e| FeedError::Url(e.to_string()))?;
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            if let Ok(Ok(mut pubsub)) =
                tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await
                && let Ok(Ok(())) =
                    tokio::time::timeout(REDIS_TIMEOUT, pubsub.subscribe(&channel)).await
            {
                tracing::info!(%channel, "following live events on Redis");
                backoff = Duration::from_millis(200);
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(body) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if let Ok(ev) = serde_json::from_str::<ReleaseEvent>(&body) {
                        let _ = live.send(ev);
                    }
                }
                tracing::warn!(%channel, "lost the Redis event feed; reconnecting");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    Ok(())
}
