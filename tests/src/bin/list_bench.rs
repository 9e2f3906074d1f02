//! Benchmark: the releases list (`GET /api/releases`) with 10,000 releases in the store, next to
//! `GET /api/environments` (a trivial read) measured in the same run. Target: < 100 ms per page
//! at the API, for an admin and for a user whose permissions filter the list in SQL.
//!
//! Run it with `bash bench/list.sh` (release build); see `bench/README.md`.
use anyhow::{Context, ensure};
use hippo_e2e::lab::Lab;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RELEASES: i64 = 10_000;
const SAMPLES: usize = 30;
const TARGET_MS: f64 = 100.0;
const PASSWORD: &str = "correct horse battery";

/// Copies release `template` `n` times, spread over the statuses and days (one SQL statement;
/// the same on SQLite and PostgreSQL).
async fn clone_releases(
    pool: &sqlx::AnyPool,
    template: i64,
    n: i64,
    offset: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO releases (config_id, app_id, environment_id, name, kind, ref_kind, ref_name, commit_id,
             commit_message, status, snapshot, requested_by, created_at, updated_at)
         WITH RECURSIVE n(i) AS (SELECT CAST($1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < CAST($2 AS BIGINT))
         SELECT t.config_id, t.app_id, t.environment_id, 'bench release ' || CAST(n.i AS TEXT), t.kind, t.ref_kind,
             t.ref_name, t.commit_id, t.commit_message,
             CASE n.i % 4 WHEN 0 THEN 'succeeded' WHEN 1 THEN 'failed' WHEN 2 THEN 'pending_review' ELSE 'approved' END,
             t.snapshot, t.requested_by, t.created_at, t.updated_at
         FROM n, releases t WHERE t.id = $3",
    )
    .bind(offset + 1)
    .bind(offset + n)
    .bind(template)
    .execute(pool)
    .await?;
    Ok(())
}

/// Median and worst of `SAMPLES` timed GETs.
fn time_get(lab: &Lab, token: &str, path: &str) -> anyhow::Result<(f64, f64, Value)> {
    let mut ms = Vec::new();
    let mut last = Value::Null;
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let (s, body) = lab.hippo.call(token, "GET", path, &Value::Null);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(s == 200, "GET {path}: {s} {body}");
        last = body;
    }
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[ms.len() - 1], last))
}

fn main() -> anyhow::Result<()> {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let id = |v: Value| v["id"].as_i64().context("id");
    let test = id(h.ok(
        "/api/environments",
        &json!({"name": "Test", "tag": "test"}),
        201,
    ))?;
    let test_host = id(h.ok(
        "/api/hosts",
        &json!({"environment_id": test, "name": "t-1", "addr": "127.0.0.1", "port": 22}),
        201,
    ))?;
    let prod_config = lab.config(json!({}));
    let test_config = lab.config(json!({"environment_id": test, "host_ids": [test_host]}));
    let prod_release = lab.request(prod_config, "template", json!({"branch": "main"}));
    let test_release = lab.request(test_config, "template", json!({"branch": "main"}));

    let url = h.database_url();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await?;
        let t = Instant::now();
        clone_releases(&pool, prod_release, RELEASES / 2 - 1, 0).await?;
        clone_releases(&pool, test_release, RELEASES / 2 - 1, RELEASES).await?;
        println!(
            "stored {RELEASES} releases in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    })?;

    let dev = id(h.ok(
        "/api/roles",
        &json!({"name": "developer", "permissions": ["request"]}),
        201,
    ))?;
    h.ok(
        "/api/users",
        &json!({"username": "dana", "password": PASSWORD, "roles": [{"role_id": dev, "environment_id": test}]}),
        201,
    );
    let dana = h.login("dana", PASSWORD);
    let admin = h.token.clone();

    let (base, _, _) = time_get(&lab, &admin, "/api/environments")?;
    println!("baseline GET /api/environments: median {base:.1} ms\n");
    println!(
        "{:<58} {:>9} {:>9} {:>7} {:>6}",
        "GET", "median", "worst", "x base", "total"
    );
    let cases: Vec<(&str, &String, String)> = vec![
        ("admin", &admin, "/api/releases".into()),
        ("admin", &admin, "/api/releases?page=100&per_page=50".into()),
        ("admin", &admin, "/api/releases?status=failed".into()),
        (
            "admin",
            &admin,
            "/api/releases?status=succeeded&status=failed&page=10".into(),
        ),
        (
            "admin",
            &admin,
            format!("/api/releases?environment_id={test}&status=approved"),
        ),
        ("admin", &admin, "/api/releases?q=release%204999".into()),
        (
            "admin",
            &admin,
            "/api/releases?since=2000-01-01T00:00:00Z&requested_by=1".into(),
        ),
        ("dana (test only)", &dana, "/api/releases".into()),
        (
            "dana (test only)",
            &dana,
            "/api/releases?status=pending_review&page=20".into(),
        ),
    ];
    let mut worst_median: f64 = 0.0;
    for (who, token, path) in &cases {
        let (median, worst, body) = time_get(&lab, token, path)?;
        worst_median = worst_median.max(median);
        println!(
            "{:<58} {:>6.1} ms {:>6.1} ms {:>6.1}x {:>6}",
            format!("{path} [{who}]"),
            median,
            worst,
            median / base,
            body["total"]
        );
    }
    println!(
        "\nslowest median {worst_median:.1} ms; target < {TARGET_MS} ms: {}",
        if worst_median < TARGET_MS {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}
