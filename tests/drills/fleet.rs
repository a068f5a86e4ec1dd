use std::path::Path;

use crate::fixture::Env;
use crate::plan::{case, Drill};
use crate::registry::RegistryServer;
use crate::support::{assert_status, require_cgroups, stderr, stdout};

const HELLO: &str = "mkdir -p out && echo hello > out/hello";

fn keygen(env: &Env, dir: &Path, prefix: &str) {
    let output = env.output(
        env.hermetic()
            .current_dir(dir)
            .env("HERMETIC_PASSWORD", "test password")
            .args(["keygen", "--output-key-prefix", prefix]),
    );
    assert_status(&output, 0);
}

/// `drill run` on `env` as `runner`, publishing with `runner`'s key and trusting `trust`.
fn publish(
    env: &Env,
    drill: &Drill,
    url: &str,
    runner: &str,
    trust: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let report = drill.path(&format!("{runner}.json"));
    let mut command = env.hermetic();
    command
        .current_dir(drill.dir.path())
        .env("HERMETIC_PASSWORD", "test password")
        .args([
            "drill",
            "run",
            "plan.toml",
            "--runner",
            runner,
            "--publish",
            url,
        ])
        .args(["--sign-key", &format!("{runner}.key"), "--json"])
        .arg(&report);
    for key in trust {
        command.args(["--trust-key", &format!("{key}.pub")]);
    }
    let output = env.output(&mut command);
    let text = std::fs::read_to_string(&report).unwrap_or_else(|err| {
        panic!(
            "{err}\n--- stdout\n{}\n--- stderr\n{}",
            stdout(&output),
            stderr(&output)
        )
    });
    (output, serde_json::from_str(&text).unwrap())
}

fn remote_history(env: &Env, drill: &Drill, url: &str, trust: &[&str]) -> serde_json::Value {
    let mut command = env.hermetic();
    command
        .current_dir(drill.dir.path())
        .args(["drill", "history", "--json", "--remote", url]);
    for key in trust {
        command.args(["--trust-key", &format!("{key}.pub")]);
    }
    let output = env.output(&mut command);
    assert_status(&output, 0);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Runners with their own state (their own daemon and history) share one registry: the
/// second, whose toolchain differs, sees the first's digest for the same inputs and
/// reports the drift naming it; an untrusted signer's results count for nothing.
#[test]
fn a_fleet_drifts_against_another_runner_and_ignores_untrusted_results() {
    require_cgroups();
    let registry = RegistryServer::start();
    let url = format!("oci://{}/fleet", registry.authority());
    let (attacker, runner_a, runner_b) = (Env::new(), Env::new(), Env::new());
    let drill = Drill::new();
    for name in ["runner-a", "runner-b", "mallory"] {
        keygen(&runner_a, drill.dir.path(), name);
    }
    drill.plan(&[&Drill::case("hello", HELLO), &drill.tool_case()]);

    // An untrusted signer publishes first, with another toolchain.
    drill.set_tool("evil tool\n");
    let (output, _) = publish(&attacker, &drill, &url, "mallory", &[]);
    assert_status(&output, 0);

    // Runner a, trusting only b, is not moved by mallory's digest.
    drill.set_tool("tool version 1\n");
    let (output, first) = publish(&runner_a, &drill, &url, "runner-a", &["runner-b"]);
    assert_status(&output, 0);
    assert_eq!(case(&first, "tool")["verdict"], "reproducible", "{first:#}");
    assert!(
        stderr(&output).contains("published 2 case result(s)"),
        "{}",
        stderr(&output)
    );

    // Runner b's toolchain differs: same inputs, another digest than runner a's.
    drill.set_tool("tool version 2\n");
    let (output, second) = publish(&runner_b, &drill, &url, "runner-b", &["runner-a"]);
    assert_status(&output, 3);
    assert_eq!(
        case(&second, "hello")["verdict"],
        "reproducible",
        "{second:#}"
    );
    let tool = case(&second, "tool");
    assert_eq!(tool["verdict"], "drifted", "{second:#}");
    assert_eq!(tool["cache_key"], case(&first, "tool")["cache_key"]);
    assert_eq!(tool["drifted_from"]["runner"], "runner-a", "{tool:#}");
    assert_eq!(
        tool["drifted_from"]["digest"],
        case(&first, "tool")["digest"]
    );
    assert!(
        tool["reason"].as_str().unwrap().contains("on the fleet"),
        "{tool:#}"
    );

    // The fleet's history shows the trusted runners' results only.
    let history = remote_history(&runner_a, &drill, &url, &["runner-a", "runner-b"]);
    let mut runners: Vec<&str> = history["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|result| result["runner"].as_str().unwrap())
        .collect();
    runners.sort();
    assert_eq!(
        runners,
        ["runner-a", "runner-a", "runner-b", "runner-b"],
        "{history:#}"
    );
    assert_eq!(history["ignored"], 2, "{history:#}");
    let only_a = remote_history(&runner_a, &drill, &url, &["runner-a"]);
    assert!(
        only_a["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|result| result["runner"] == "runner-a"),
        "{only_a:#}"
    );
    assert_eq!(only_a["ignored"], 4, "{only_a:#}");
}

/// A registry that does not answer leaves the verdicts to this runner's history: the
/// drill passes, says once that it was not compared, and that nothing was published.
#[test]
fn a_fleet_registry_that_is_down_does_not_fail_the_drill() {
    require_cgroups();
    let env = Env::new();
    let drill = Drill::new();
    keygen(&env, drill.dir.path(), "runner-a");
    drill.plan(&[
        &Drill::case("hello", HELLO),
        &Drill::case("other", "mkdir -p out && echo other > out/o"),
    ]);
    let url = format!("oci://127.0.0.1:{}/fleet", crate::registry::free_port());
    let (output, report) = publish(&env, &drill, &url, "runner-a", &[]);
    assert_status(&output, 0);
    assert_eq!(
        case(&report, "hello")["verdict"],
        "reproducible",
        "{report:#}"
    );
    let messages = stderr(&output);
    assert_eq!(
        messages.matches("not compared with the fleet").count(),
        1,
        "{messages}"
    );
    assert!(messages.contains("not published"), "{messages}");
}
