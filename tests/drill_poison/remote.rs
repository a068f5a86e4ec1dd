use crate::registry::RegistryServer;
use crate::support::{hermetic, stderr, stdout, Source};
use crate::{assert_passed, tree, Deployment};

const REPO: &str = "hermetic/cache";
const PASSWORD: &str = "drill test password";

/// Every tag of `repository` with the manifest it names.
fn tags(registry: &RegistryServer, repository: &str) -> Vec<(String, Vec<u8>)> {
    let listed = registry
        .api()
        .call("GET", &format!("/v2/{repository}/tags/list"), &[], b"");
    if listed.status == 404 {
        return Vec::new();
    }
    assert_eq!(
        listed.status,
        200,
        "{}",
        String::from_utf8_lossy(&listed.body)
    );
    let body: serde_json::Value = serde_json::from_slice(&listed.body).unwrap();
    let mut tags: Vec<(String, Vec<u8>)> = body["tags"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|tag| {
            let tag = tag.as_str().unwrap().to_owned();
            let manifest = registry.api().manifest(repository, &tag).unwrap();
            (tag, manifest)
        })
        .collect();
    tags.sort();
    tags
}

/// A deployment with a registry (Debian's docker-registry, deletion enabled), an
/// operator key pair that published a real entry to `REPO/main`: the drill, given the
/// operator's keys, refuses every local attack on its own key's entry and on the
/// operator key's, and every registry attack in its scratch repository `REPO/drill-<id>`;
/// the real store and the real repository's tags are as they were, and the scratch
/// repository has no tags left.
#[test]
fn the_drill_passes_on_a_registry_backed_cache_and_removes_its_scratch_tags() {
    let registry = RegistryServer::start();
    let url = format!("oci://{}/{REPO}", registry.authority());
    let deployment = Deployment::build();
    let prefix = deployment.tmp.path().join("operator");
    let keygen = hermetic()
        .args(["keygen", "--output-key-prefix"])
        .arg(&prefix)
        .env("HERMETIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let (key, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));
    let src = Source::new(&[("in.txt", "published\n")]);
    let pushed = hermetic()
        .args([
            "build",
            "--json",
            "--cache-scope",
            "main",
            "--cache-push",
            "--src",
        ])
        .arg(src.path())
        .arg("--artifact")
        .arg(deployment.tmp.path().join("pushed.tar.zst"))
        .arg("--cache-dir")
        .arg(deployment.cache_dir())
        .arg("--state-dir")
        .arg(deployment.state_dir())
        .args(["--cache-remote", &url, "--sign-key"])
        .arg(&key)
        .arg("--trust-key")
        .arg(&public)
        .env("HERMETIC_PASSWORD", PASSWORD)
        .args(["--", "sh", "-c", "mkdir -p out && cat in.txt > out/f"])
        .output()
        .unwrap();
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let report: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert_eq!(report["cache"]["remote"]["push"], "pushed", "{report:#}");
    let real = format!("{REPO}/main");
    let real_tags = tags(&registry, &real);
    assert_eq!(real_tags.len(), 2, "the entry and its referrers index");
    let store = tree(&deployment.cache_dir());

    let output = hermetic()
        .args(["drill", "poison", "--cache-dir"])
        .arg(deployment.cache_dir())
        .arg("--state-dir")
        .arg(deployment.state_dir())
        .args(["--cache-remote", &url, "--trust-key"])
        .arg(&public)
        .arg("--sign-key")
        .arg(&key)
        .arg("--json")
        .arg(deployment.report_path())
        .env("HERMETIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let report = serde_json::from_slice(
        &std::fs::read(deployment.report_path())
            .unwrap_or_else(|error| panic!("{error}: {}\n{}", stdout(&output), stderr(&output))),
    )
    .unwrap();
    assert_passed(&output, &report, true, true);
    assert!(report.findings.is_empty(), "{:?}", report.findings);

    assert_eq!(
        tree(&deployment.cache_dir()),
        store,
        "the real store changed"
    );
    deployment.assert_no_scratch_left();
    assert_eq!(tags(&registry, &real), real_tags, "the real tags changed");
    let scratch = format!("{REPO}/drill-{}", report.id);
    assert!(
        tags(&registry, &scratch).is_empty(),
        "scratch tags left: {:?}",
        tags(&registry, &scratch)
            .iter()
            .map(|(tag, _)| tag)
            .collect::<Vec<_>>()
    );
    let summary = stdout(&output);
    assert!(
        summary.contains(&format!(
            "scratch repository {}/{scratch}:",
            registry.authority()
        )) && summary.contains("tag(s) deleted"),
        "{summary}"
    );
}

/// A registry that refuses deletion (distribution without `storage.delete.enabled`): the
/// attacks are refused as ever (exit 0), and every scratch tag left behind is printed and
/// reported as a `scratch-tags-left` finding naming it and the registry's answer.
#[test]
fn scratch_tags_a_registry_will_not_delete_are_reported() {
    let registry = RegistryServer::start_without_deletion();
    let url = format!("oci://{}/{REPO}", registry.authority());
    let deployment = Deployment::build();
    let (output, report) = deployment.drill(&["--cache-remote", &url]);
    assert_passed(&output, &report, false, true);

    let scratch = format!("{REPO}/drill-{}", report.id);
    let left = tags(&registry, &scratch);
    assert!(
        !left.is_empty(),
        "the registry deleted nothing, so tags are left"
    );
    let mut reported: Vec<String> = report
        .findings
        .iter()
        .filter(|finding| finding.check == "scratch-tags-left")
        .map(|finding| finding.path.clone().unwrap())
        .collect();
    reported.sort();
    let expected: Vec<String> = left
        .iter()
        .map(|(tag, _)| format!("{}/{scratch}:{tag}", registry.authority()))
        .collect();
    assert_eq!(reported, expected);
    assert_eq!(
        report.findings.len(),
        expected.len(),
        "{:?}",
        report.findings
    );
    let finding = &report.findings[0];
    assert!(
        finding.detail.contains("405")
            && finding.detail.contains("REGISTRY_STORAGE_DELETE_ENABLED"),
        "{}",
        finding.detail
    );
    assert!(
        stdout(&output).contains("left behind"),
        "{}",
        stdout(&output)
    );
    deployment.assert_no_scratch_left();
}
