//! Custom variables reach every hook however large they are (up to the API's limit, about a
//! megabyte), on the release server and on the hosts, and a host's process list never shows
//! their values: they travel on the hook's stdin, not on a command line.
use hippo_e2e::lab::Lab;
use hippo_e2e::proc::{processes, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn a_megabyte_of_variables_reaches_every_hook_and_no_value_shows_in_the_hosts_process_list() {
    let lab = Lab::new(2, &[]);
    let mark = format!("marker-{}", std::process::id());
    // Ten values of 99,000 bytes (each under the 100,000-byte limit) and a marker: ~990 kB.
    let mut variables = String::new();
    for i in 0..10 {
        variables.push_str(&format!("BIG_{i}={}\n", i.to_string().repeat(99_000)));
    }
    variables.push_str(&format!("MARK={mark}\n"));
    assert!(variables.len() > 990_000 && variables.len() <= 1_000_000);
    let nap = format!("5.{}", std::process::id());
    let config_id = lab.config(json!({
        "variables": variables,
        "hooks": {
            "after_checkout": "echo \"server sees ${#BIG_0} ${#BIG_9} ${BIG_9:0:3} $MARK\"\n",
            "before_release": format!(
                "echo \"host sees ${{#BIG_0}} ${{#BIG_9}} ${{BIG_9:0:3}} $MARK\"\nsleep {nap}\n"
            ),
        },
    }));
    let r = lab.request(config_id, "big variables", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r}/run"), &Value::Null, 200);
    // While the hosts' hooks sleep, no process shows a value.
    wait_until(
        "before-release sleeping on both hosts",
        Duration::from_secs(90),
        || lab.hippo.log(),
        || (processes(&format!("sleep {nap}")).len() == 2).then_some(()),
    );
    let shown: Vec<String> = processes(&mark)
        .into_iter()
        .chain(processes(&"7".repeat(1000)))
        .map(|p| {
            format!(
                "{}: {}",
                p.pid,
                p.cmdline.chars().take(200).collect::<String>()
            )
        })
        .collect();
    assert!(shown.is_empty(), "values on command lines: {shown:#?}");

    let events = lab
        .hippo
        .events(r, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, release) = lab.hippo.get(&format!("/api/releases/{r}"));
    assert_eq!(
        release["status"],
        "succeeded",
        "{release}\n{}",
        lab.hippo.log()
    );
    let said = |text: &str| {
        events
            .iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(text)))
            .count()
    };
    assert_eq!(
        said(&format!("server sees 99000 99000 999 {mark}")),
        1,
        "{events:#?}"
    );
    assert_eq!(
        said(&format!("host sees 99000 99000 999 {mark}")),
        2,
        "{events:#?}"
    );

    // Over the limits: the API says which field, before anything is stored.
    let body = lab.config_body(json!({"variables": format!("A={}\n", "x".repeat(100_001))}));
    let (s, b) = lab.hippo.post("/api/release-configs", &body);
    assert_eq!((s, b["field"].as_str()), (422, Some("variables")), "{b}");
    assert!(
        b["message"].as_str().is_some_and(|m| m.contains("100000")),
        "{b}"
    );
}
