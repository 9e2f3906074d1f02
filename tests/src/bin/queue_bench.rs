//! Benchmark: how quickly a release starts. The time from `POST /api/releases/{id}/run` to
//! the first event of the run arriving on an already open `GET /api/releases/{id}/events`
//! stream, over N releases (default 100), as a cluster (API + 3 `hippo-worker` processes,
//! PostgreSQL, Redis) next to standalone Hippo (embedded queue, in-process workers) measured in
//! the same run. Target: cluster p50 <= 100 ms.
//!
//! Run it with `bash bench/queue.sh` (release build); see `bench/README.md`.
use anyhow::{Context, bail, ensure};
use hippo_e2e::hippo::{Hippo, Options};
use hippo_e2e::lab::Lab;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TARGET_P50_MS: f64 = 100.0;
const WARM_UP: usize = 3;

const USAGE: &str = "usage: queue_bench [--releases N] [--workers N]

Times POST /run -> first event of the run on the SSE stream for N releases (default 100),
standalone and as a cluster with --workers hippo-worker processes (default 3). Needs PostgreSQL
(HIPPO_BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432) and Redis
(HIPPO_BENCH_REDIS, default redis://127.0.0.1:6379). HIPPO_BIN names the hippo-api binary.";

struct Args {
    releases: usize,
    workers: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        releases: 100,
        workers: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> anyhow::Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| name.to_owned())
        };
        match a.as_str() {
            "--releases" => args.releases = num("--releases")?,
            "--workers" => args.workers = num("--workers")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    ensure!(args.releases >= 2, "--releases must be at least 2");
    ensure!(args.workers >= 1, "--workers must be at least 1");
    Ok(args)
}

/// One mode's measurements.
struct Series {
    name: String,
    /// POST /run sent → first event received, ms.
    first_event: Vec<f64>,
    /// POST /run sent → first checkout event received, ms.
    first_stage: Vec<f64>,
    /// Releases per worker (from the start events).
    by_worker: BTreeMap<String, usize>,
}

/// Opens the release's event stream, then queues the release; returns when the stream ends.
fn timed_run(h: &Hippo, release: i64, s: &mut Series, record: bool) -> anyhow::Result<()> {
    let client = hippo_e2e::hippo::client_builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let resp = client
        .get(format!("{}/api/releases/{release}/events", h.base))
        .bearer_auth(&h.token)
        .send()?;
    ensure!(resp.status().is_success(), "events: {}", resp.status());
    // The stream is open (the server subscribed before answering): read it on a thread that
    // stamps each event as it arrives.
    let (tx, rx) = mpsc::channel::<(Instant, Value)>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { break };
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim_start())
                && tx.send((Instant::now(), v)).is_err()
            {
                break;
            }
        }
    });
    let sent = Instant::now();
    let (status, body) = h.post(&format!("/api/releases/{release}/run"), &Value::Null);
    ensure!(status == 200, "run: {status} {body}");
    let mut first = None;
    let mut checkout = None;
    let mut end = None;
    let mut worker = None;
    // A release that never ends must fail the benchmark, not hang it (keep-alive comments keep
    // every read of the stream short, so only a total deadline ends the wait).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, ev) = match rx.recv_timeout(left) {
            Ok(e) => e,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("release {release}: its event stream did not end within 300 s")
            }
        };
        let ms = at.duration_since(sent).as_secs_f64() * 1000.0;
        first.get_or_insert(ms);
        if ev["stage"] == "checkout" {
            checkout.get_or_insert(ms);
        }
        if ev["stage"] == "release" && ev["status"] == "started" {
            worker = ev["message"]
                .as_str()
                .and_then(|m| m.rsplit_once("by worker "))
                .map(|(_, w)| w.to_owned());
        }
        if ev["stage"] == "release" && (ev["status"] == "succeeded" || ev["status"] == "failed") {
            end = Some(ev);
        }
    }
    let _ = reader.join();
    let end = end.context("the stream ended without a final event")?;
    ensure!(end["status"] == "succeeded", "release {release}: {end}");
    if record {
        s.first_event.push(first.context("no event")?);
        s.first_stage.push(checkout.context("no checkout event")?);
        *s.by_worker
            .entry(worker.unwrap_or_else(|| "?".into()))
            .or_default() += 1;
    }
    Ok(())
}

fn measure(name: &str, opts: Options, n: usize) -> anyhow::Result<Series> {
    eprintln!("== {name}: starting Hippo and a host");
    let lab = Lab::with(1, opts);
    let config = lab.config(json!({"keep_versions": 3}));
    let mut s = Series {
        name: name.to_owned(),
        first_event: Vec::new(),
        first_stage: Vec::new(),
        by_worker: BTreeMap::new(),
    };
    for i in 0..WARM_UP + n {
        let id = lab.request(config, &format!("bench {i}"), json!({"branch": "main"}));
        timed_run(&lab.hippo, id, &mut s, i >= WARM_UP)
            .with_context(|| format!("{name}: release {id}\n{}", lab.hippo.log()))?;
        if (i + 1) % 20 == 0 {
            eprintln!("   {name}: {}/{}", i + 1, WARM_UP + n);
        }
    }
    Ok(s)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    // Nearest rank.
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let postgres = std::env::var("HIPPO_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let redis =
        std::env::var("HIPPO_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let standalone = measure("standalone", Options::default(), args.releases)?;
    let cluster = measure(
        &format!("cluster ({} workers)", args.workers),
        Options {
            postgres: Some(postgres),
            redis: Some(redis),
            workers: args.workers,
            ..Options::default()
        },
        args.releases,
    )?;

    println!(
        "\nPOST /run -> first event of the run on an open SSE stream; {} releases each, one at a time \
         (1 host, tiny repository, after {WARM_UP} warm-up releases).\n",
        args.releases
    );
    println!(
        "| mode                   | first event p50 | p99      | first checkout event p50 | p99      |"
    );
    println!(
        "|------------------------|-----------------|----------|--------------------------|----------|"
    );
    for s in [&standalone, &cluster] {
        println!(
            "| {:<22} | {:>12.1} ms | {:>5.1} ms | {:>21.1} ms | {:>5.1} ms |",
            s.name,
            percentile(&s.first_event, 50.0),
            percentile(&s.first_event, 99.0),
            percentile(&s.first_stage, 50.0),
            percentile(&s.first_stage, 99.0)
        );
    }
    let ratio = percentile(&cluster.first_event, 50.0) / percentile(&standalone.first_event, 50.0);
    println!("\ncluster / standalone (p50 first event): {ratio:.2}");
    println!(
        "releases per worker (cluster): {}",
        cluster
            .by_worker
            .iter()
            .map(|(w, n)| format!("{w}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let p50 = percentile(&cluster.first_event, 50.0);
    println!(
        "cluster p50 {p50:.1} ms {} target <= {TARGET_P50_MS} ms",
        if p50 <= TARGET_P50_MS {
            "meets"
        } else {
            "MISSES"
        }
    );
    Ok(())
}
