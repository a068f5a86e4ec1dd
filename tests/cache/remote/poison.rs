//! Attacks on what the registry serves, by whoever can write to it (or to its disk): each
//! is refused by B (which trusts A's key only), checked by [`Fleet::assert_b_refuses`]:
//! refused at the right step for the right reason, quarantined locally with
//! `"source": "remote"` and the reference, a `cache_quarantine` event, the destination
//! untouched, nothing committed to the local store; the next build runs fresh and makes
//! the right output; the registry still holds the entry (a refusal never deletes).
use hermetic::signing::SigningKey;

use super::net::{Reply, Scripted};
use super::registry::{hex_of, sha256, ARCHIVE_TYPE, OCI_MANIFEST};
use super::{
    assert_fresh_build, assert_refused, assert_registry_kept, bytes_under, push, reference,
    remote_url, repository, sign_statement, source, statement_for_manifest, statement_of, Fleet,
    Keys, Pushed, Runner, SCOPE,
};

/// (1) A byte flipped in the archive blob on the registry's disk.
#[test]
fn a_flipped_byte_in_the_archive_blob_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let data = fleet.registry.blob_data_path(&pushed.entry.archive);
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&data, &bytes).unwrap();

    let refused = fleet.assert_b_refuses(&fleet.src, &pushed, "archive", "archive_digest_mismatch");
    assert!(
        refused.holds(&bytes),
        "the fetched archive is kept for inspection"
    );
    let record = refused.record;
    let digest = |field: &str| hex_of(record[field].as_str().unwrap_or_default()).to_owned();
    assert_eq!(
        digest("expected"),
        hex_of(&pushed.entry.archive),
        "{record:#}"
    );
    assert_eq!(digest("found"), hex_of(&sha256(&bytes)), "{record:#}");
}

/// (2) The key's tag moved to the entry manifest of another key (signed, by the trusted
/// key, for that other key).
#[test]
fn a_tag_moved_to_another_keys_entry_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let other_src = source("other input\n");
    let other = fleet.push_from_a(&other_src);
    assert_ne!(other.key, pushed.key);
    fleet.registry.api().put_manifest(
        &fleet.repository(),
        &pushed.key,
        OCI_MANIFEST,
        &other.entry.manifest,
    );

    let record = fleet
        .assert_b_refuses(&fleet.src, &pushed, "key", "key_mismatch")
        .record;
    assert_eq!(record["expected"], pushed.key.as_str(), "{record:#}");
    assert_eq!(record["found"], other.key.as_str(), "{record:#}");
}

/// (3) An entry pushed and signed by another runner whose key B does not trust.
#[test]
fn an_entry_signed_by_an_untrusted_key_is_refused() {
    let fleet = Fleet::new();
    let (c, c_keys) = (Runner::new(), Keys::generate("c"));
    let pushed = push(
        c.build(&fleet.src).remote(&fleet.url()).publish(&c_keys),
        &fleet.registry,
    );
    fleet.assert_b_refuses(&fleet.src, &pushed, "signature", "untrusted_key");
}

/// (4) The trusted signature of entry X attached as the referrer of entry Y (and the
/// only one listed): the signature is good, but for another manifest.
#[test]
fn a_signature_moved_to_another_entry_is_refused() {
    let fleet = Fleet::new();
    let other_src = source("other input\n");
    let x = fleet.push_from_a(&other_src);
    let y = fleet.push_from_a(&fleet.src);
    fleet.registry.api().attach_referrer(
        &fleet.repository(),
        &y.entry.descriptor(),
        x.entry.bundle(),
        true,
    );

    fleet.assert_b_refuses(&fleet.src, &y, "statement", "subject_mismatch");
}

/// (5) The referrers index rewritten to list only a forged bundle: not a bundle at all.
#[test]
fn a_referrers_index_naming_a_garbage_bundle_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    fleet.registry.api().attach_referrer(
        &fleet.repository(),
        &pushed.entry.descriptor(),
        b"\x00\x9f not JSON, not a bundle \xff",
        true,
    );

    fleet.assert_b_refuses(&fleet.src, &pushed, "signature", "malformed");
}

/// (5) The referrers index rewritten to list only the entry's own statement, re-signed by
/// a key B does not trust.
#[test]
fn a_referrers_index_naming_a_bundle_by_an_untrusted_key_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let forged = sign_statement(
        &SigningKey::generate(),
        &statement_of(pushed.entry.bundle()),
    );
    fleet.registry.api().attach_referrer(
        &fleet.repository(),
        &pushed.entry.descriptor(),
        &forged,
        true,
    );

    fleet.assert_b_refuses(&fleet.src, &pushed, "signature", "untrusted_key");
}

/// The entry manifest with `edit` applied to its text (so every other byte stays as
/// pushed), put under the key's tag.
fn rewrite_manifest(fleet: &Fleet, pushed: &Pushed, edit: impl FnOnce(&str) -> String) -> Vec<u8> {
    let text = String::from_utf8(pushed.entry.manifest.clone()).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changed nothing");
    fleet.registry.api().put_manifest(
        &fleet.repository(),
        &pushed.key,
        OCI_MANIFEST,
        edited.as_bytes(),
    );
    edited.into_bytes()
}

/// The layer descriptor as the manifest's text has it.
fn layer_text(pushed: &Pushed) -> String {
    format!(
        "\"digest\":\"{}\",\"size\":{}",
        pushed.entry.archive, pushed.entry.archive_size
    )
}

/// Attaches a signature for `manifest` (the rewritten one): the entry's own statement
/// with its manifest subject changed, signed by the trusted key A: what a compromised or
/// buggy trusted builder could publish. Only the manifest check of step 4 stands between
/// it and a restore.
fn sign_rewritten(fleet: &Fleet, pushed: &Pushed, manifest: &[u8]) {
    let statement = statement_for_manifest(pushed.entry.bundle(), &sha256(manifest));
    let bundle = sign_statement(&fleet.keys.signing(), &statement);
    let subject = serde_json::json!({
        "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": manifest.len()
    });
    fleet
        .registry
        .api()
        .attach_referrer(&fleet.repository(), &subject, &bundle, true);
}

/// (6) A manifest whose layer lies about its size, with the entry's real signature
/// attached to it: the signature names the manifest that was pushed, not this one.
#[test]
fn a_rewritten_manifest_under_the_original_signature_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let layer = layer_text(&pushed);
    let lying = rewrite_manifest(&fleet, &pushed, |text| {
        text.replace(
            &layer,
            &format!(
                "\"digest\":\"{}\",\"size\":{}",
                pushed.entry.archive,
                pushed.entry.archive_size + 4096
            ),
        )
    });
    let subject = serde_json::json!({
        "mediaType": OCI_MANIFEST, "digest": sha256(&lying), "size": lying.len()
    });
    fleet.registry.api().attach_referrer(
        &fleet.repository(),
        &subject,
        pushed.entry.bundle(),
        true,
    );

    fleet.assert_b_refuses(&fleet.src, &pushed, "statement", "subject_mismatch");
}

/// (6) A layer descriptor that lies about the archive's size, even signed by the trusted
/// key: the blob served is the real archive, so only the manifest check catches it.
#[test]
fn a_layer_that_lies_about_its_size_is_refused_even_when_signed() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let layer = layer_text(&pushed);
    let lying = rewrite_manifest(&fleet, &pushed, |text| {
        text.replace(
            &layer,
            &format!(
                "\"digest\":\"{}\",\"size\":{}",
                pushed.entry.archive,
                pushed.entry.archive_size + 4096
            ),
        )
    });
    sign_rewritten(&fleet, &pushed, &lying);

    fleet.assert_b_refuses(&fleet.src, &pushed, "archive", "entry_manifest_mismatch");
}

/// (6) A layer descriptor that names another entry's archive, signed by the trusted key.
#[test]
fn a_layer_that_lies_about_its_digest_is_refused_even_when_signed() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let other_src = source("other input\n");
    let other = fleet.push_from_a(&other_src);
    let layer = layer_text(&pushed);
    let lying = rewrite_manifest(&fleet, &pushed, |text| {
        text.replace(&layer, &layer_text(&other))
    });
    sign_rewritten(&fleet, &pushed, &lying);

    fleet.assert_b_refuses(&fleet.src, &pushed, "archive", "entry_manifest_mismatch");
}

/// (6) A second layer (another entry's archive) after the real one, signed by the trusted
/// key.
#[test]
fn a_second_layer_is_refused_even_when_signed() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let other_src = source("other input\n");
    let other = fleet.push_from_a(&other_src);
    let layer = layer_text(&pushed);
    let lying = rewrite_manifest(&fleet, &pushed, |text| {
        text.replace(
            &format!("{layer}}}]"),
            &format!(
                "{layer}}},{{\"mediaType\":\"{ARCHIVE_TYPE}\",{}}}]",
                layer_text(&other)
            ),
        )
    });
    sign_rewritten(&fleet, &pushed, &lying);

    fleet.assert_b_refuses(&fleet.src, &pushed, "archive", "entry_manifest_mismatch");
}

/// (7) A size bomb: the blob's data file on the registry's disk replaced by one 64 MiB
/// larger, which the registry serves with its real length. Refused, and cut off: the
/// bomb never lands in B's cache dir.
#[test]
fn a_blob_far_larger_than_its_descriptor_is_cut_off_and_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let data = fleet.registry.blob_data_path(&pushed.entry.archive);
    let bomb = 64 << 20;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .unwrap();
    file.set_len(pushed.archive.len() as u64 + bomb).unwrap();
    let served = fleet.registry.api().call(
        "HEAD",
        &format!("/v2/{}/blobs/{}", fleet.repository(), pushed.entry.archive),
        &[],
        b"",
    );
    assert_eq!(
        served.header("content-length"),
        Some((pushed.archive.len() as u64 + bomb).to_string().as_str()),
        "the registry serves the bomb at its real length"
    );

    let tag_digest = pushed.entry.digest.clone();
    assert_refused(
        &fleet.b,
        fleet.b_build(&fleet.src),
        &fleet.reference(&pushed.key),
        &pushed.key,
        "archive",
        "archive_size",
    );
    let kept = bytes_under(&fleet.b.cache_dir());
    assert!(
        kept < 1 << 20,
        "the body was not cut off at the signed size: {kept} bytes in B's cache dir"
    );
    assert_fresh_build(fleet.b_build(&fleet.src), &pushed);
    assert_registry_kept(&fleet.registry, &pushed.key, &tag_digest);
}

/// (8) A truncated blob: the data file on the registry's disk cut to half, which the
/// registry serves, complete, at its new length.
#[test]
fn a_truncated_blob_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let data = fleet.registry.blob_data_path(&pushed.entry.archive);
    let file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    file.set_len(pushed.archive.len() as u64 / 2).unwrap();

    fleet.assert_b_refuses(&fleet.src, &pushed, "archive", "archive_size");
}

/// (8) The connection cut in the middle of the archive blob (a proxy in front of the
/// registry relays half of the body, then closes): the short body is refused.
#[test]
fn a_blob_cut_off_mid_transfer_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let blob_path = format!("/blobs/{}", pushed.entry.archive);
    let half = pushed.archive.len() / 2;
    let proxy = Scripted::proxy(
        Some(fleet.registry.authority().to_owned()),
        move |request| {
            if request.method == "GET" && request.path().ends_with(&blob_path) {
                Reply::CutAfter(half)
            } else {
                Reply::Forward
            }
        },
    );
    let through_proxy = || {
        fleet
            .b
            .build(&fleet.src)
            .remote(&remote_url(&proxy.authority()))
            .trust(&fleet.keys)
    };

    assert_refused(
        &fleet.b,
        through_proxy(),
        &reference(&proxy.authority(), &pushed.key),
        &pushed.key,
        "archive",
        "archive_size",
    );
    assert!(
        proxy
            .requests()
            .iter()
            .any(|line| line.starts_with("GET ") && line.contains(&pushed.entry.archive)),
        "the blob was fetched through the proxy: {:?}",
        proxy.requests()
    );
    assert_fresh_build(through_proxy(), &pushed);
    assert_registry_kept(&fleet.registry, &pushed.key, &pushed.entry.digest);
}

/// (9) A pull request's entry, signed by the PR runner's own key for its untrusted scope,
/// copied (manifest, blobs, referrer, index) into the trusted repository: B, building
/// scope `main`, refuses it at the signature.
#[test]
fn an_untrusted_scopes_entry_copied_into_a_trusted_scope_is_refused() {
    let fleet = Fleet::new();
    let (pr, pr_keys) = (Runner::new(), Keys::generate("pr"));
    let pushed = push(
        pr.build(&fleet.src)
            .scope("untrusted-pr-1")
            .remote(&fleet.url())
            .publish(&pr_keys),
        &fleet.registry,
    );
    fleet.registry.api().copy_entry(
        &repository("untrusted-pr-1"),
        &repository(SCOPE),
        &pushed.key,
    );

    fleet.assert_b_refuses(&fleet.src, &pushed, "signature", "untrusted_key");
}

/// (9) An entry the trusted key signed for an untrusted scope, copied into the trusted
/// repository: the signed scope is not the scope read.
#[test]
fn an_entry_signed_for_an_untrusted_scope_is_refused_in_a_trusted_one() {
    let fleet = Fleet::new();
    let pushed = push(
        fleet
            .a
            .build(&fleet.src)
            .scope("untrusted-pr-1")
            .remote(&fleet.url())
            .publish(&fleet.keys),
        &fleet.registry,
    );
    fleet.registry.api().copy_entry(
        &repository("untrusted-pr-1"),
        &repository(SCOPE),
        &pushed.key,
    );

    let record = fleet
        .assert_b_refuses(&fleet.src, &pushed, "key", "scope_mismatch")
        .record;
    assert_eq!(record["expected"], SCOPE, "{record:#}");
    assert_eq!(record["found"], "untrusted-pr-1", "{record:#}");
}

/// Junk listed before the real signature (a garbage bundle, one by an untrusted key)
/// does not hide it: the first that verifies is the entry's signature, and B restores.
#[test]
fn junk_referrers_listed_before_the_signature_do_not_hide_it() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let api = fleet.registry.api();
    let subject = pushed.entry.descriptor();
    let forged = sign_statement(
        &SigningKey::generate(),
        &statement_of(pushed.entry.bundle()),
    );
    api.attach_referrer(&fleet.repository(), &subject, b"\x00 junk", true);
    api.attach_referrer(&fleet.repository(), &subject, &forged, false);
    api.attach_referrer(&fleet.repository(), &subject, pushed.entry.bundle(), false);
    let listed = api.entry(&fleet.repository(), &pushed.key).unwrap();
    assert_eq!(listed.referrers.len(), 3);
    assert_eq!(listed.referrers[2].bundle, pushed.entry.bundle());

    let built = fleet.b_build(&fleet.src).run();
    built.assert_exit(0);
    assert_eq!(built.remote()["status"], "hit", "{}", built.describe());
    assert_eq!(built.remote()["signer"], fleet.keys.key_id());
    assert_eq!(built.runs(), 0);
    assert_eq!(std::fs::read(&built.artifact).unwrap(), pushed.archive);
    assert!(fleet.b.quarantined().is_empty());
}

/// An entry manifest over the 64 KiB cap (a huge annotation) is refused at the first
/// step, before anything else is fetched.
#[test]
fn an_oversized_entry_manifest_is_refused() {
    let fleet = Fleet::new();
    let pushed = fleet.push_from_a(&fleet.src);
    let padding = "x".repeat(80 * 1024);
    rewrite_manifest(&fleet, &pushed, |text| {
        text.replacen(
            "\"annotations\":{",
            &format!("\"annotations\":{{\"padding\":\"{padding}\","),
            1,
        )
    });

    assert_refused(
        &fleet.b,
        fleet.b_build(&fleet.src),
        &fleet.reference(&pushed.key),
        &pushed.key,
        "entry",
        "too_large",
    );
    assert_fresh_build(fleet.b_build(&fleet.src), &pushed);
}
