use crate::fixture::Env;
use crate::plan::{case, Drill};
use crate::support::{assert_status, require_cgroups, stdout};

const HELLO: &str = "mkdir -p out && echo hello > out/hello";
const NOISE: &str = "mkdir -p out && head -c 16 /dev/urandom | od -x > out/noise";
const BROKEN: &str = "echo failing on purpose >&2; exit 3";

/// Two drills of one plan, the toolchain changed in between: every verdict, both exit
/// codes, both drills in the history, and their builds among the daemon's jobs.
#[test]
fn a_plan_of_real_builds_gives_each_verdict_and_the_history_keeps_both_drills() {
    require_cgroups();
    let env = Env::new();
    let drill = Drill::new();
    let tool = drill.tool_case();
    let hello = format!("{}\nextra_runs = 1", Drill::case("hello", HELLO));
    drill.plan(&[
        &hello,
        &Drill::case("noise", NOISE),
        &Drill::case("broken", BROKEN),
        &tool,
    ]);

    let (output, first) = drill.run(&env, "runner-a", "first");
    // A case that failed to build outranks the nondeterministic one.
    assert_status(&output, 1);
    assert_eq!(first["schema"], "hermetic.drill/v1");
    assert_eq!(first["kind"], "determinism");
    assert_eq!(first["passed"], false);
    assert_eq!(
        case(&first, "hello")["verdict"],
        "reproducible",
        "{first:#}"
    );
    // extra_runs = 1: two dual builds, a job each.
    assert_eq!(case(&first, "hello")["jobs"].as_array().unwrap().len(), 2);
    let noise = case(&first, "noise");
    assert_eq!(noise["verdict"], "nondeterministic", "{first:#}");
    assert!(
        noise["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|difference| difference["path"] == "out/noise"),
        "{noise:#}"
    );
    let broken = case(&first, "broken");
    assert_eq!(broken["verdict"], "failed", "{first:#}");
    assert!(
        broken["reason"].as_str().unwrap().contains("status 3"),
        "{broken:#}"
    );
    let tool_v1 = case(&first, "tool");
    assert_eq!(tool_v1["verdict"], "reproducible", "{first:#}");
    assert!(tool_v1["digest"].as_str().unwrap().starts_with("sha256:"));

    // The toolchain changes under the same key; the failing case leaves the plan, so
    // what is left is a drift and a nondeterministic case: exit 3.
    drill.set_tool("tool version 2\n");
    drill.plan(&[&hello, &Drill::case("noise", NOISE), &tool]);
    let (output, second) = drill.run(&env, "runner-b", "second");
    assert_status(&output, 3);
    assert_eq!(
        case(&second, "hello")["verdict"],
        "reproducible",
        "{second:#}"
    );
    assert_eq!(
        case(&second, "hello")["digest"],
        case(&first, "hello")["digest"]
    );
    let tool_v2 = case(&second, "tool");
    assert_eq!(tool_v2["verdict"], "drifted", "{second:#}");
    assert_eq!(tool_v2["cache_key"], tool_v1["cache_key"]);
    assert_ne!(tool_v2["digest"], tool_v1["digest"]);
    assert_eq!(tool_v2["drifted_from"]["digest"], tool_v1["digest"]);
    assert_eq!(tool_v2["drifted_from"]["runner"], "runner-a");
    assert_eq!(tool_v2["drifted_from"]["recorded"], first["finished"]);
    let reason = tool_v2["reason"].as_str().unwrap();
    assert!(
        reason.contains(tool_v1["digest"].as_str().unwrap()) && reason.contains("runner-a"),
        "{reason}"
    );

    let history = env.output(env.hermetic().args(["drill", "history", "--json"]));
    assert_status(&history, 0);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let ids: Vec<&serde_json::Value> = history["drills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|drill| &drill["id"])
        .collect();
    assert_eq!(ids, [&second["id"], &first["id"]]);

    let tool_history = env.output(env.hermetic().args(["drill", "history", "--case", "tool"]));
    assert_status(&tool_history, 0);
    let text = stdout(&tool_history);
    for digest in [&tool_v1["digest"], &tool_v2["digest"]] {
        assert!(text.contains(digest.as_str().unwrap()), "{text}");
    }
    assert!(!text.contains("noise"), "{text}");

    // Every build ran as a daemon job, never from the cache.
    let jobs = env.output(env.hermetic().args(["jobs", "--limit", "100", "--json"]));
    assert_status(&jobs, 0);
    let jobs: serde_json::Value = serde_json::from_slice(&jobs.stdout).unwrap();
    let drill_jobs: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|report| report["cases"].as_array().unwrap())
        .flat_map(|case| case["jobs"].as_array().unwrap())
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(drill_jobs.len(), 9);
    for id in &drill_jobs {
        let job = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|job| job["id"].as_u64().map(|n| n.to_string()).as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("job {id} not in {jobs:#}"));
        assert_eq!(job["kind"], "build");
        assert!(job["request"]["cache"].is_null(), "{job:#}");
    }
}

#[test]
fn a_bad_plan_is_a_usage_error_that_names_the_case() {
    let env = Env::new();
    let drill = Drill::new();
    drill.plan(&["name = \"c\"\ncommand = [\"true\"]\ngit = \"repo\""]);
    let output = env.output(
        env.hermetic()
            .args(["drill", "run"])
            .arg(drill.path("plan.toml")),
    );
    assert_status(&output, 2);
    let message = crate::support::stderr(&output);
    assert!(message.contains("case \"c\": git needs rev"), "{message}");
}

/// A case from a git commit builds the commit's tree (not the working tree), with the
/// commit's time as SOURCE_DATE_EPOCH, and the clone's own files stay out of the key.
#[test]
fn a_git_case_builds_the_named_commit_with_the_same_key_each_drill() {
    require_cgroups();
    let env = Env::new();
    let drill = Drill::new();
    let repo = drill.path("repo");
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_DATE", "2020-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2020-01-01T00:00:00Z")
            .output()
            .unwrap();
        assert_status(&output, 0);
        stdout(&output)
    };
    std::fs::create_dir(&repo).unwrap();
    git(&["init", "-q"]);
    std::fs::write(repo.join("build.sh"), "mkdir -p out && echo one > out/v\n").unwrap();
    git(&["add", "build.sh"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-qm",
        "one",
    ]);
    let commit = git(&["rev-parse", "HEAD"]);
    std::fs::write(
        repo.join("build.sh"),
        "mkdir -p out && echo uncommitted > out/v\n",
    )
    .unwrap();
    drill.plan(&[&format!(
        "name = \"git\"\ngit = \"repo\"\nrev = \"{}\"\ncommand = [\"sh\", \"build.sh\"]",
        commit.trim()
    )]);
    let (output, first) = drill.run(&env, "runner-a", "first");
    assert_status(&output, 0);
    let (output, second) = drill.run(&env, "runner-a", "second");
    assert_status(&output, 0);
    assert_eq!(
        case(&first, "git")["cache_key"],
        case(&second, "git")["cache_key"]
    );
    assert_eq!(
        case(&second, "git")["verdict"],
        "reproducible",
        "{second:#}"
    );
}

/// A case pinned by the plan to another digest drifts from the pin, even with no history;
/// pinned to its own digest, it is reproducible.
#[test]
fn expect_sha256_pins_a_case() {
    require_cgroups();
    let env = Env::new();
    let drill = Drill::new();
    let zeros = "0".repeat(64);
    drill.plan(&[&format!(
        "{}\nexpect_sha256 = \"{zeros}\"",
        Drill::case("pinned", HELLO)
    )]);
    let (output, first) = drill.run(&env, "runner-a", "first");
    assert_status(&output, 3);
    let pinned = case(&first, "pinned");
    assert_eq!(pinned["verdict"], "drifted", "{first:#}");
    assert_eq!(pinned["drifted_from"]["digest"], format!("sha256:{zeros}"));
    assert_eq!(pinned["drifted_from"]["recorded"], "expect_sha256");

    let digest = pinned["digest"].as_str().unwrap().to_owned();
    drill.plan(&[&format!(
        "{}\nexpect_sha256 = \"{digest}\"",
        Drill::case("pinned", HELLO)
    )]);
    let (output, second) = drill.run(&env, "runner-a", "second");
    assert_status(&output, 0);
    assert_eq!(
        case(&second, "pinned")["verdict"],
        "reproducible",
        "{second:#}"
    );
}
