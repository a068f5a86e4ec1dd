use hermetic::drill::poison::{self, DrillHost, PoisonOptions, ScratchTags};
use hermetic::signing::Password;
use hermetic_contract::build::BuildRequest;
use hermetic_contract::report::{AttackOutcome, BuildReport};

use crate::support::{hermetic, stderr};
use crate::Deployment;

/// The drill's builds through the `hermetic` binary (a build cannot run inside a test
/// process: its sandbox helper is this binary re-executed), with the request's options
/// as flags.
struct BinaryBuilds;

impl DrillHost for BinaryBuilds {
    fn build(&mut self, request: &BuildRequest) -> Result<BuildReport, String> {
        let cache = request
            .cache
            .as_ref()
            .expect("the drill's builds use the cache");
        assert!(!request.single && !request.explain && request.extract.is_none());
        assert!(request.source_date_epoch.is_none() && cache.remote.is_none());
        assert!(cache.sign_key.is_none() && !cache.require && !cache.single_run);
        let mut command = hermetic();
        command
            .args(["build", "--json", "--profile", &request.profile, "--src"])
            .arg(&request.src)
            .arg("--artifact")
            .arg(&request.artifact)
            .arg("--cache-dir")
            .arg(&cache.dir);
        for output in &request.outputs {
            command.args(["--output", output]);
        }
        if let Some(scope) = &cache.scope {
            command.args(["--cache-scope", scope]);
        }
        if let Some(state_dir) = &cache.state_dir {
            command.arg("--state-dir").arg(state_dir);
        }
        for key in &cache.trust_keys {
            command.arg("--trust-key").arg(key);
        }
        let output = command
            .arg("--")
            .args(&request.command)
            .output()
            .map_err(|error| error.to_string())?;
        serde_json::from_slice(&output.stdout)
            .map_err(|error| format!("{error}: {}", stderr(&output)))
    }
}

/// With the key check of the restore switched off (the `fault-hooks` test build), the
/// drill fails and names exactly the attack that check stops: an entry replayed under
/// another key is restored. Everything else is still refused.
#[test]
fn the_drill_fails_and_names_the_attack_when_the_key_check_is_off() {
    let deployment = Deployment::build();
    let options = PoisonOptions {
        cache_dir: deployment.cache_dir(),
        scratch_parent: None,
        trust_keys: Vec::new(),
        sign_key: None,
        state_dir: deployment.state_dir(),
        remote: None,
        payload: Vec::new(),
        profile: "default".to_owned(),
        runner: "fault-test".to_owned(),
    };
    hermetic::cache::fault::skip_key_check(true);
    let report = poison::run(
        &options,
        &Password::new(Vec::new()),
        &mut BinaryBuilds,
        &mut ScratchTags::default(),
    );
    hermetic::cache::fault::skip_key_check(false);
    let report = report.unwrap();

    assert!(!report.passed);
    assert_eq!(report.exit_code, 3);
    let accepted: Vec<_> = report
        .attacks
        .iter()
        .filter(|attack| attack.outcome == AttackOutcome::Accepted)
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    let replay = accepted[0];
    assert_eq!(replay.name, "replayed-under-another-key");
    assert_eq!(replay.expected_step, "key");
    assert_eq!(replay.refused_at, None);
    assert!(
        replay.detail.contains("the poisoned entry was restored"),
        "{}",
        replay.detail
    );
    assert!(report.attacks.len() >= 25);
    deployment.assert_no_scratch_left();
}
