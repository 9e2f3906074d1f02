//! The health check after a wave (issue 12): on each host of the wave, an HTTP(S) request that
//! must answer the expected status and/or a command on the host (a script run like a hook, in
//! the deploy path, with the release's variables) that must exit 0. Every try has the check's
//! time-out; a host that fails is tried again `retries` times. The URL's host is always the
//! config's own host (`{addr}` or `{host}`, `shared::waves::HealthUrl`); no redirect is
//! followed and no proxy from the environment is used.
use crate::context::{Events, Run};
use crate::outcome::HostRun;
use crate::targets::{Target, fan_out};
use hippo_shared::db::inventory::Host;
use hippo_shared::events::{EventStatus, Stage};
use hippo_shared::waves::HealthCheck;
use std::time::Duration;

/// At most this much of an answer's body is quoted in a failure.
const BODY_QUOTE: usize = 300;
/// Lines of a check command's output quoted in a failure.
const OUTPUT_LINES: usize = 10;

/// Checks each of `hosts` (on the connections their switch used), in parallel; per host
/// `Ok(())` or `Err(what the check said)`, in the order given.
pub async fn check(
    run: &Run,
    check: &HealthCheck,
    hosts: &mut [&mut HostRun],
) -> Vec<Result<(), String>> {
    let job = HostCheck {
        events: run.events.clone(),
        check: check.clone(),
        deploy_path: run.spec.deploy_path.to_string(),
        hook_timeout: Duration::from_secs(check.timeout_secs.max(1)),
        rt: tokio::runtime::Handle::current(),
    };
    let jobs = hosts
        .iter_mut()
        .map(|h| {
            let env = run.hook_env(Some(&h.host));
            (h.host.clone(), (env, h.conn.take()))
        })
        .collect();
    let limit = crate::fleet::hosts_in_flight(run.spec.parallelism, hosts.len());
    let checked = fan_out(
        jobs,
        limit,
        move |host, (env, conn)| job.on(host, &env, conn),
        |e| (Err(e), None),
    )
    .await;
    let mut out = Vec::with_capacity(checked.len());
    for (h, (_, (result, conn))) in hosts.iter_mut().zip(checked) {
        h.conn = conn;
        out.push(result);
    }
    out
}

struct HostCheck {
    events: Events,
    check: HealthCheck,
    deploy_path: String,
    hook_timeout: Duration,
    rt: tokio::runtime::Handle,
}

impl HostCheck {
    fn on(
        &self,
        host: &Host,
        env: &[(String, String)],
        mut conn: Option<Target>,
    ) -> (Result<(), String>, Option<Target>) {
        let ev = &self.events;
        if let Some(t) = conn.as_mut() {
            t.set_stage(Stage::Health);
        }
        let tries = self.check.retries.saturating_add(1);
        let mut last = String::new();
        for attempt in 1..=tries {
            ev.send(
                ev.event(Stage::Health, EventStatus::Started)
                    .host(&host.name)
                    .message(format!(
                        "{}: health check, try {attempt} of {tries}",
                        host.name
                    )),
            );
            match self.once(host, env, conn.as_ref()) {
                Ok(said) => {
                    ev.send(
                        ev.event(Stage::Health, EventStatus::Succeeded)
                            .host(&host.name)
                            .message(format!("{}: healthy ({said})", host.name)),
                    );
                    return (Ok(()), conn);
                }
                Err(why) => {
                    let final_try = attempt == tries;
                    ev.send(
                        ev.event(
                            Stage::Health,
                            if final_try {
                                EventStatus::Failed
                            } else {
                                EventStatus::Info
                            },
                        )
                        .host(&host.name)
                        .message(format!(
                            "{}: unhealthy (try {attempt} of {tries}): {why}",
                            host.name
                        )),
                    );
                    last = why;
                    if !final_try {
                        std::thread::sleep(Duration::from_secs(self.check.interval_secs));
                    }
                }
            }
        }
        (Err(last), conn)
    }

    /// One try: the URL, then the command; `Ok(what passed)`.
    fn once(
        &self,
        host: &Host,
        env: &[(String, String)],
        conn: Option<&Target>,
    ) -> Result<String, String> {
        let mut passed = Vec::new();
        if let Some(url) = &self.check.url {
            let url = url.for_host(&host.name, &host.addr)?;
            let timeout = Duration::from_secs(self.check.timeout_secs.max(1));
            let status = self
                .rt
                .block_on(http_check(&url, self.check.expect_status, timeout))?;
            passed.push(format!("HTTP {status}"));
        }
        if !self.check.command.is_empty() {
            let t = conn.ok_or("no connection to run the check command on")?;
            let (result, tail) = t.hook_tail(
                "health check",
                &self.deploy_path,
                env,
                &self.check.command,
                self.hook_timeout,
                OUTPUT_LINES,
            );
            if let Err(why) = result {
                return Err(failed_command(&why, &tail));
            }
            passed.push("command exited 0".into());
        }
        Ok(passed.join(", "))
    }
}

/// A check command's failure with the last lines it printed, on one line: the text goes into
/// the release's error (and so mid-sentence into its notices), where a line break would split
/// the sentence.
fn failed_command(why: &str, tail: &[String]) -> String {
    let said: Vec<&str> = tail
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    if said.is_empty() {
        why.to_owned()
    } else {
        format!("{why}; its output: {}", said.join(" | "))
    }
}

/// One request: `Ok(status)` if it answered `expect`, otherwise what it said (status and the
/// start of its body, or why there was no answer).
pub async fn http_check(url: &url::Url, expect: u16, timeout: Duration) -> Result<u16, String> {
    crate::notify::http::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let answer = client.get(url.clone()).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("GET {url}: no answer within {} s", timeout.as_secs())
        } else if e.is_connect() {
            format!("GET {url}: cannot connect")
        } else {
            format!("GET {url}: {e}")
        }
    })?;
    let status = answer.status().as_u16();
    if status == expect {
        return Ok(status);
    }
    let body = read_start(answer, BODY_QUOTE).await;
    let body = body.trim();
    Err(if body.is_empty() {
        format!("GET {url}: HTTP {status} (expected {expect})")
    } else {
        format!("GET {url}: HTTP {status} (expected {expect}): {body}")
    })
}

/// The first `limit` bytes of a body (as text), not reading more than that.
async fn read_start(mut answer: reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match answer.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(limit);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_command_quotes_its_last_lines_on_one_line() {
        let tail = vec![
            "service down on web-1".to_owned(),
            "  ".to_owned(),
            "port 8080: connection refused".to_owned(),
        ];
        assert_eq!(
            failed_command("health check hook exited with code 4", &tail),
            "health check hook exited with code 4; its output: service down on web-1 | port 8080: connection refused"
        );
        assert_eq!(
            failed_command("health check hook timed out after 3 s", &[]),
            "health check hook timed out after 3 s"
        );
    }
}
