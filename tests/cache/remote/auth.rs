//! A registry behind htpasswd: credentials from a Docker config file
//! (`$DOCKER_CONFIG/config.json`) or Podman's auth file
//! (`$XDG_RUNTIME_DIR/containers/auth.json`) let runners push and pull; wrong or missing
//! ones are `denied`, with a reason that says so, and the build runs uncached.
use serde_json::json;

use super::registry::RegistryServer;
use super::{remote_url, repository, source, Built, Keys, Runner, SCOPE};

const USER: &str = "ci";
const PASSWORD: &str = "registry password";

fn assert_denied(built: &Built) {
    built.assert_exit(0);
    assert_eq!(built.cache()["status"], "miss", "{}", built.describe());
    assert_eq!(built.remote()["status"], "denied", "{}", built.describe());
    let reason = built.remote()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        [
            "401",
            "unauthorized",
            "credential",
            "authentication",
            "denied"
        ]
        .iter()
        .any(|word| reason.contains(word)),
        "the reason says the credentials were refused: {reason:?}\n{}",
        built.describe()
    );
    assert_eq!(built.runs(), 2, "the build ran uncached");
    assert_eq!(built.report["verdict"], "reproducible");
}

#[test]
fn credentials_from_auth_files_push_and_pull() {
    let registry = RegistryServer::start_with_htpasswd(USER, PASSWORD);
    let url = remote_url(registry.authority());
    let keys = Keys::generate("ci");
    let src = source("input\n");

    let a = Runner::new();
    a.docker_login(registry.authority(), USER, PASSWORD);
    let pushed = a.build(&src).remote(&url).publish(&keys).run();
    pushed.assert_exit(0);
    assert_eq!(pushed.remote()["push"], "pushed", "{}", pushed.describe());
    let key = pushed.key();
    let entry = registry
        .api()
        .entry(&repository(SCOPE), &key)
        .expect("the entry is in the registry");
    assert_eq!(entry.referrers.len(), 1);

    // Docker's file.
    let b = Runner::new();
    b.docker_login(registry.authority(), USER, PASSWORD);
    let hit = b.build(&src).remote(&url).trust(&keys).run();
    hit.assert_exit(0);
    assert_eq!(hit.remote()["status"], "hit", "{}", hit.describe());
    assert_eq!(hit.runs(), 0);
    assert_eq!(hit.digest(), pushed.digest());

    // Podman's file.
    let c = Runner::new();
    let containers = c.path("runtime/containers");
    std::fs::create_dir_all(&containers).unwrap();
    let auth = json!({"auths": {registry.authority(): {
        "auth": super::registry::basic_auth(USER, PASSWORD)
    }}});
    std::fs::write(containers.join("auth.json"), auth.to_string()).unwrap();
    let hit = c.build(&src).remote(&url).trust(&keys).run();
    hit.assert_exit(0);
    assert_eq!(hit.remote()["status"], "hit", "{}", hit.describe());
    assert_eq!(hit.digest(), pushed.digest());
}

#[test]
fn wrong_or_missing_credentials_are_denied_and_the_build_runs_uncached() {
    let registry = RegistryServer::start_with_htpasswd(USER, PASSWORD);
    let url = remote_url(registry.authority());
    let keys = Keys::generate("ci");
    let src = source("input\n");

    let wrong = Runner::new();
    wrong.docker_login(registry.authority(), USER, "not the password");
    assert_denied(&wrong.build(&src).remote(&url).trust(&keys).run());

    let anonymous = Runner::new();
    assert_denied(&anonymous.build(&src).remote(&url).trust(&keys).run());

    // A publishing runner with wrong credentials: denied, the push fails, the build
    // still succeeds, and nothing reached the registry.
    let pusher = Runner::new();
    pusher.docker_login(registry.authority(), USER, "not the password");
    let built = pusher.build(&src).remote(&url).publish(&keys).run();
    assert_denied(&built);
    assert_ne!(built.remote()["push"], "pushed", "{}", built.describe());
    assert!(registry.api().tags(&repository(SCOPE)).is_empty());
}
