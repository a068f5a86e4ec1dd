//! The poisoning suite: each row of the restore attack catalog (docs/restore-threats.md §7) that
//! applies, as an attack on a real entry. Every refusal is checked by `assert_refused`:
//! right reason and step, quarantined with reason.json, event logged, entry gone (the
//! next lookup misses, so the build runs fresh), work dir untouched.
//!
//! Attacks on the archive come twice: with the bytes swapped only (refused at the
//! archive digests), and re-signed by the trusted key, as a compromised builder could,
//! which reaches the entry-by-entry checks.
use hermetic::cache::entry::{EntryManifest, ENTRY_SCHEMA};
use hermetic::cache::{Lookup, Scope, Trust};
use hermetic::signing::dsse::{Envelope, Signature};
use hermetic::signing::{sign_blob, Bundle, Content, SigningKey};

use crate::fixture::{
    assert_refused, assert_refused_with, honest_members, zstd, Fixture, RawTar, PREVIOUS_ARTIFACT,
};

/// The honest entry restores, the archive lands at the artifact path and the tree at the
/// destination; and a re-signed archive built member by member restores the same (the
/// control for every re-signed attack below).
#[test]
fn honest_entries_restore() {
    let fx = Fixture::new();
    let Lookup::Hit(restored) = fx.restore() else {
        panic!("expected a hit")
    };
    assert_eq!(restored.files, 5);
    assert_eq!(std::fs::read(fx.artifact()).unwrap(), fx.honest_archive);
    assert_eq!(
        std::fs::read(fx.dest().join("out/a.txt")).unwrap(),
        b"alpha\n"
    );
    assert_eq!(
        std::fs::read_link(fx.dest().join("out/sub/link")).unwrap(),
        std::path::Path::new("../a.txt")
    );

    let fx = Fixture::new();
    fx.resign_archive(&zstd(&honest_members().end()));
    assert!(matches!(fx.restore(), Lookup::Hit(_)));
}

// --- the signed manifest (rows 20-26) ---

#[test]
fn tampered_manifest_is_a_bad_signature() {
    let fx = Fixture::new();
    let mut statement = fx.statement();
    statement["predicate"]["manifest"]["files"][1]["blake3"] = "ab".repeat(32).into();
    let mut bundle = fx.entry.sign(&fx.signer);
    if let Content::Dsse(envelope) = &mut bundle.content {
        envelope.payload = serde_json::to_vec(&statement).unwrap();
    }
    fx.write_bundle(&bundle);
    assert_refused(&fx, "bad_signature", "signature");
}

#[test]
fn entry_resigned_with_an_untrusted_key_is_refused() {
    let fx = Fixture::new();
    let attacker = SigningKey::generate();
    fx.write_bundle(&fx.entry.sign(&attacker));
    assert_refused(&fx, "untrusted_key", "signature");
}

#[test]
fn a_forged_hint_naming_the_trusted_key_does_not_help() {
    let fx = Fixture::new();
    let mut bundle = fx.entry.sign(&SigningKey::generate());
    bundle.hint = Some(fx.trusted[0].hint());
    fx.write_bundle(&bundle);
    assert_refused(&fx, "bad_signature", "signature");
}

#[test]
fn a_revoked_key_no_longer_restores() {
    let fx = Fixture::new();
    let other = SigningKey::generate().verifying_key();
    assert_refused_with(&fx, &[other], "untrusted_key", "signature");
}

#[test]
fn two_signatures_are_refused() {
    let fx = Fixture::new();
    let mut bundle = fx.entry.sign(&fx.signer);
    if let Content::Dsse(envelope) = &mut bundle.content {
        let extra = envelope.signatures[0].clone();
        envelope.signatures.push(extra);
    }
    fx.write_bundle(&bundle);
    assert_refused(&fx, "signature_count", "signature");
}

#[test]
fn no_signature_is_refused() {
    let fx = Fixture::new();
    let mut bundle = fx.entry.sign(&fx.signer);
    if let Content::Dsse(envelope) = &mut bundle.content {
        envelope.signatures.clear();
    }
    fx.write_bundle(&bundle);
    assert_refused(&fx, "signature_count", "signature");
}

#[test]
fn wrong_payload_type_is_refused_even_when_signed() {
    let fx = Fixture::new();
    let payload = serde_json::to_vec(&fx.statement()).unwrap();
    fx.write_bundle(&hermetic::signing::sign_dsse(
        &fx.signer,
        "application/json",
        &payload,
    ));
    assert_refused(&fx, "payload_type", "signature");
}

#[test]
fn a_message_signature_is_not_an_entry() {
    let fx = Fixture::new();
    fx.write_bundle(&sign_blob(&fx.signer, &fx.honest_archive));
    assert_refused(&fx, "content_kind", "signature");
}

#[test]
fn an_unsigned_envelope_with_a_garbage_signature_is_refused() {
    let fx = Fixture::new();
    let bundle = Bundle {
        hint: Some(fx.trusted[0].hint()),
        content: Content::Dsse(Envelope {
            payload: serde_json::to_vec(&fx.statement()).unwrap(),
            payload_type: "application/vnd.in-toto+json".to_owned(),
            signatures: vec![Signature {
                keyid: None,
                sig: vec![0x30, 0x03, 0x02, 0x01, 0x01],
            }],
        }),
    };
    fx.write_bundle(&bundle);
    assert_refused(&fx, "bad_signature", "signature");
}

/// Row 21: a valid entry for another key, replayed under this one.
#[test]
fn entry_replayed_under_another_key_is_refused() {
    let fx = Fixture::new();
    let mut other = fx.entry.clone();
    other.key_inputs = crate::fixture::inputs("make other");
    other.cache_key = other.key_inputs.key();
    fx.resign(&other, &fx.honest_archive);
    let record = assert_refused(&fx, "key_mismatch", "key");
    assert_eq!(record["expected"], fx.key.as_str());
    assert_eq!(record["found"], other.cache_key.as_str());
}

/// Row 20: the signature of one entry with the archive of another.
#[test]
fn archive_swapped_between_entries_is_refused() {
    let fx = Fixture::new();
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let other = zstd(&honest_members().file("out/zz", 0o644, &noise).end());
    assert_ne!(other.len(), fx.honest_archive.len());
    std::fs::write(fx.archive_path(), &other).unwrap();
    assert_refused(&fx, "archive_size", "archive");
}

#[test]
fn entry_moved_between_scopes_is_refused() {
    let fx = Fixture::new();
    let mut moved = fx.entry.clone();
    moved.scope = "main".to_owned();
    fx.resign(&moved, &fx.honest_archive);
    assert_refused(&fx, "scope_mismatch", "key");
}

/// Row 22: an entry in another format version.
#[test]
fn other_format_versions_are_refused() {
    let fx = Fixture::new();
    let mut old = fx.entry.clone();
    old.schema = "hermetic.cache-entry/v0".to_owned();
    fx.resign(&old, &fx.honest_archive);
    assert_refused(&fx, "format_version", "key");
}

#[test]
fn other_predicate_types_are_refused() {
    let fx = Fixture::new();
    let mut statement = fx.statement();
    statement["predicateType"] = "https://slsa.dev/provenance/v1".into();
    fx.write_bundle(&fx.sign_payload(&fx.signer, &serde_json::to_vec(&statement).unwrap()));
    assert_refused(&fx, "predicate_type", "statement");
}

/// Row 26: JSON differentials, even under a valid signature.
#[test]
fn duplicate_keys_and_unknown_fields_are_refused() {
    let fx = Fixture::new();
    let statement = serde_json::to_string(&fx.statement()).unwrap();
    let duplicated = statement.replacen(
        "\"cacheKey\":",
        &format!("\"cacheKey\":\"{}\",\"cacheKey\":", "0".repeat(64)),
        1,
    );
    assert_ne!(duplicated, statement);
    fx.write_bundle(&fx.sign_payload(&fx.signer, duplicated.as_bytes()));
    assert_refused(&fx, "statement_malformed", "statement");

    let fx = Fixture::new();
    let mut statement = fx.statement();
    statement["predicate"]["trustMe"] = true.into();
    fx.write_bundle(&fx.sign_payload(&fx.signer, &serde_json::to_vec(&statement).unwrap()));
    assert_refused(&fx, "statement_malformed", "statement");
}

#[test]
fn subject_and_predicate_digests_must_agree() {
    let fx = Fixture::new();
    let mut statement = fx.statement();
    statement["subject"][0]["digest"]["sha256"] = "cd".repeat(32).into();
    fx.write_bundle(&fx.sign_payload(&fx.signer, &serde_json::to_vec(&statement).unwrap()));
    assert_refused(&fx, "subject_mismatch", "statement");
}

#[test]
fn oversized_and_malformed_bundles_are_refused() {
    let fx = Fixture::new();
    let mut huge = fx.entry.sign(&fx.signer).to_json().into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 64 << 20));
    std::fs::write(fx.bundle_path(), huge).unwrap();
    assert_refused(&fx, "too_large", "signature");

    let fx = Fixture::new();
    std::fs::write(fx.bundle_path(), b"{not json").unwrap();
    assert_refused(&fx, "malformed", "signature");
}

#[test]
fn missing_files_and_symlinked_entries_are_refused() {
    let fx = Fixture::new();
    std::fs::remove_file(fx.bundle_path()).unwrap();
    assert_refused(&fx, "bundle_missing", "signature");

    let fx = Fixture::new();
    std::fs::remove_file(fx.archive_path()).unwrap();
    assert_refused(&fx, "archive_missing", "archive");

    let fx = Fixture::new();
    let elsewhere = fx.tmp.path().join("elsewhere.tar.zst");
    std::fs::write(&elsewhere, &fx.honest_archive).unwrap();
    std::fs::remove_file(fx.archive_path()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fx.archive_path()).unwrap();
    assert_refused(&fx, "archive_not_regular", "archive");

    // The whole entry directory swapped for a symlink to a copy elsewhere.
    let fx = Fixture::new();
    let copy = fx.tmp.path().join("copy");
    std::fs::rename(fx.entry_dir(), &copy).unwrap();
    std::os::unix::fs::symlink(&copy, fx.entry_dir()).unwrap();
    assert_refused(&fx, "entry_not_directory", "entry");
}

/// Row 27: what an untrusted build wrote, copied into a trusted scope.
#[test]
fn untrusted_scope_entries_never_reach_a_trusted_scope() {
    let local = SigningKey::generate();
    let operator = SigningKey::generate();
    // The untrusted build signs with the machine's local key, which its own scope trusts
    // and a trusted scope does not once operator keys are configured.
    let trust = Trust {
        operator: vec![operator.verifying_key()],
        local: local.verifying_key(),
    };
    let untrusted = Scope::parse("untrusted-pr-7").unwrap();
    let main = Scope::parse("main").unwrap();
    let trusts_local = |scope: &Scope| {
        trust
            .keys_for(scope)
            .iter()
            .any(|k| k.hint() == local.verifying_key().hint())
    };
    assert!(trusts_local(&untrusted));
    assert!(!trusts_local(&main));

    // Copied as is into `main`: refused by the signed scope even with the local key trusted.
    let mut fx = Fixture::in_scope(untrusted.as_str());
    let entry = fx.entry.clone();
    move_to_scope(&mut fx, &local, &main, &entry);
    assert_refused_with(&fx, &[local.verifying_key()], "scope_mismatch", "key");

    // Re-signed for `main` with the local key: refused once operator keys are configured.
    let mut fx = Fixture::in_scope(untrusted.as_str());
    let mut forged = fx.entry.clone();
    forged.scope = main.as_str().to_owned();
    move_to_scope(&mut fx, &local, &main, &forged);
    assert_refused_with(&fx, &trust.keys_for(&main), "untrusted_key", "signature");
}

/// Signs `entry` with `key` as the fixture's entry and moves it into `scope`, which the
/// fixture then reads.
fn move_to_scope(fx: &mut Fixture, key: &SigningKey, scope: &Scope, entry: &EntryManifest) {
    fx.write_bundle(&entry.sign(key));
    let dest = fx.store.entry_dir(scope, &fx.key);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::rename(fx.entry_dir(), &dest).unwrap();
    fx.scope = scope.clone();
}

// --- the archive bytes (rows 17, 19, 20) ---

#[test]
fn tampered_archive_bytes_are_a_digest_mismatch() {
    let fx = Fixture::new();
    let mut archive = fx.honest_archive.clone();
    let middle = archive.len() / 2;
    archive[middle] ^= 0x40;
    std::fs::write(fx.archive_path(), &archive).unwrap();
    let record = assert_refused(&fx, "archive_digest_mismatch", "archive");
    assert_eq!(record["file"], "archive.tar.zst");
    assert!(record["expected"].as_str().unwrap().len() == 64);
}

#[test]
fn archive_of_another_size_is_refused_before_reading() {
    let fx = Fixture::new();
    let mut archive = fx.honest_archive.clone();
    archive.extend_from_slice(b"trailing");
    std::fs::write(fx.archive_path(), &archive).unwrap();
    let record = assert_refused(&fx, "archive_size", "archive");
    assert_eq!(
        record["expected"],
        fx.honest_archive.len().to_string().as_str()
    );
}

/// A malicious archive of the same length as the honest one: only the digests catch it,
/// and they win over whatever the extractor tripped on first.
#[test]
fn same_size_malicious_archive_is_a_digest_mismatch() {
    let fx = Fixture::new();
    let mut evil = zstd(&RawTar::new().file("../../evil", 0o644, b"pwned\n").end());
    evil.resize(fx.honest_archive.len(), 0);
    std::fs::write(fx.archive_path(), &evil).unwrap();
    assert_refused(&fx, "archive_digest_mismatch", "archive");
}

// --- the archive's entries, re-signed by the trusted key (rows 1-18) ---

fn resigned(tar: Vec<u8>, reason: &str, step: &str) -> serde_json::Value {
    let fx = Fixture::new();
    fx.resign_archive(&zstd(&tar));
    assert_refused(&fx, reason, step)
}

#[test]
fn dot_dot_paths_are_refused() {
    let tar = RawTar::new()
        .dir("out")
        .file("out/../../evil", 0o644, b"x")
        .end();
    let record = resigned(tar, "path_escape", "entries");
    assert_eq!(record["file"], "archive.tar.zst:out/../../evil");
}

#[test]
fn absolute_paths_are_refused() {
    resigned(
        RawTar::new().file("/tmp/hermetic-evil", 0o644, b"x").end(),
        "path_escape",
        "entries",
    );
}

/// Row 3: a symlink, then a write through it. The archive form meets the honest manifest
/// (the symlink is not the directory it lists); the manifest form is not a valid manifest.
#[test]
fn symlink_then_write_through_is_refused() {
    let fx = Fixture::new();
    let outside = fx.work().join("outside");
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"alpha\n")
        .file("out/run.sh", 0o755, b"#!/bin/sh\necho hi\n")
        .symlink("out/sub", outside.to_str().unwrap())
        .file("out/sub/link", 0o644, b"pwned")
        .end();
    fx.resign_archive(&zstd(&tar));
    assert_refused(&fx, "entry_mismatch", "entries");

    let fx = Fixture::new();
    let mut entry = fx.entry.clone();
    entry.manifest.files[3].kind = hermetic::archive::manifest::FileKind::Symlink;
    entry.manifest.files[3].mode = 0o777;
    entry.manifest.files[3].target = Some("..".to_owned());
    fx.resign(&entry, &fx.honest_archive);
    assert_refused(&fx, "manifest_invalid", "entries");
}

/// Row 4: a symlink left pointing outside the tree, even when signed.
#[test]
fn symlinks_out_of_the_tree_are_refused() {
    let fx = Fixture::new();
    let mut entry = fx.entry.clone();
    entry.manifest.files[4].target = Some("/etc/shadow".to_owned());
    fx.resign(&entry, &fx.honest_archive);
    assert_refused(&fx, "symlink_escapes", "entries");

    let fx = Fixture::new();
    let mut entry = fx.entry.clone();
    entry.manifest.files[4].target = Some("../../../etc".to_owned());
    fx.resign(&entry, &fx.honest_archive);
    assert_refused(&fx, "symlink_escapes", "entries");
}

/// Row 5: a directory where the manifest has a symlink of the same name (or the same name
/// twice, see `duplicate_entries_are_refused`).
#[test]
fn a_directory_in_place_of_a_symlink_is_refused() {
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"alpha\n")
        .file("out/run.sh", 0o755, b"#!/bin/sh\necho hi\n")
        .dir("out/sub")
        .dir("out/sub/link")
        .end();
    let record = resigned(tar, "entry_mismatch", "entries");
    assert_eq!(record["expected"], "symlink");
    assert_eq!(record["found"], "dir");
}

#[test]
fn hardlinks_are_refused() {
    let tar = RawTar::new()
        .dir("out")
        .member(b'1', b"out/a.txt", 0o644, b"", b"/etc/passwd")
        .end();
    let record = resigned(tar, "entry_type_refused", "entries");
    assert_eq!(record["found"], "hardlink");
}

#[test]
fn devices_and_fifos_are_refused() {
    for (typeflag, found) in [
        (b'3', "character device"),
        (b'4', "block device"),
        (b'6', "fifo"),
    ] {
        let tar = RawTar::new()
            .dir("out")
            .member(typeflag, b"out/a.txt", 0o644, b"", b"")
            .end();
        let record = resigned(tar, "entry_type_refused", "entries");
        assert_eq!(record["found"], found);
    }
}

#[test]
fn setuid_setgid_and_sticky_bits_are_refused() {
    for mode in [0o4755, 0o2755, 0o1755] {
        let tar = RawTar::new()
            .dir("out")
            .file("out/a.txt", 0o644, b"alpha\n")
            .file("out/run.sh", mode, b"#!/bin/sh\necho hi\n")
            .end();
        resigned(tar, "setuid_bit", "entries");
    }
}

/// Row 8: modes other than the manifest's (a world-writable directory).
#[test]
fn modes_must_be_the_manifests() {
    let tar = RawTar::new().member(b'5', b"out", 0o777, b"", b"").end();
    let record = resigned(tar, "entry_mismatch", "entries");
    assert_eq!(record["expected"], "755");
    assert_eq!(record["found"], "777");
}

/// Row 9: ownership in the archive is ignored; restored files belong to the restorer.
#[test]
fn ownership_is_never_restored() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::new();
    let tar = RawTar::new()
        .dir("out")
        .owned_by(4242, b"out/a.txt", b"alpha\n")
        .file("out/run.sh", 0o755, b"#!/bin/sh\necho hi\n")
        .dir("out/sub")
        .symlink("out/sub/link", "../a.txt")
        .end();
    fx.resign_archive(&zstd(&tar));
    assert!(matches!(fx.restore(), Lookup::Hit(_)));
    let meta = std::fs::metadata(fx.dest().join("out/a.txt")).unwrap();
    assert_eq!(meta.uid(), nix_uid());
}

fn nix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}

/// Row 10: xattrs (file capabilities) through PAX records.
#[test]
fn xattrs_are_refused() {
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"alpha\n")
        .pax(&[("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02")])
        .file("out/run.sh", 0o755, b"#!/bin/sh\necho hi\n")
        .end();
    resigned(tar, "extension_refused", "entries");
}

#[test]
fn duplicate_entries_are_refused() {
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"alpha\n")
        .file("out/a.txt", 0o644, b"alpha\n")
        .end();
    resigned(tar, "duplicate_entry", "entries");
}

#[test]
fn non_canonical_names_are_refused() {
    for name in ["out//a.txt", "./out", "out/./a.txt", "out/"] {
        let tar = RawTar::new().dir("out").file(name, 0o644, b"alpha\n").end();
        let fx = Fixture::new();
        fx.resign_archive(&zstd(&tar));
        let record = assert_refused(&fx, "non_canonical_path", "entries");
        assert!(
            record["message"]
                .as_str()
                .unwrap()
                .contains(name.trim_end_matches('/')),
            "{name}: {record}"
        );
    }
}

#[test]
fn huge_names_are_refused() {
    let long = vec![b'a'; 5000];
    let tar = RawTar::new()
        .dir("out")
        .member(
            b'L',
            b"././@LongLink",
            0o644,
            &[long.as_slice(), b"\0"].concat(),
            b"",
        )
        .file("out/a.txt", 0o644, b"alpha\n")
        .end();
    resigned(tar, "limit_exceeded", "entries");
}

/// Row 14: PAX size desync, global headers, unknown typeflags.
#[test]
fn pax_tricks_and_unknown_types_are_refused() {
    let tar = RawTar::new()
        .dir("out")
        .pax(&[("size", b"999")])
        .file("out/a.txt", 0o644, b"alpha\n")
        .end();
    resigned(tar, "extension_refused", "entries");

    let tar = RawTar::new()
        .member(b'g', b"pax_global_header", 0o644, b"9 a=bcd\n", b"")
        .dir("out")
        .end();
    resigned(tar, "entry_type_refused", "entries");

    let tar = RawTar::new()
        .dir("out")
        .member(b'Z', b"out/a.txt", 0o644, b"alpha\n", b"")
        .end();
    resigned(tar, "entry_type_refused", "entries");
}

#[test]
fn sparse_files_are_refused() {
    let tar = RawTar::new()
        .dir("out")
        .member(b'S', b"out/a.txt", 0o644, b"alpha\n", b"")
        .end();
    let record = resigned(tar, "entry_type_refused", "entries");
    assert_eq!(record["found"], "GNU sparse file");
}

/// Row 16: a decompression bomb is refused at its header by the limits the signed
/// manifest sets (the largest signed file is 18 bytes), before any of it is inflated.
#[test]
fn zstd_bombs_are_refused_at_the_first_oversized_header() {
    let bomb = vec![0u8; 64 << 20];
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, &bomb)
        .end();
    let compressed = zstd(&tar);
    assert!(compressed.len() < 64 << 10, "a bomb compresses well");
    let record = resigned(tar, "limit_exceeded", "entries");
    assert_eq!(record["expected"], "18");

    // Endless zero padding after the last entry.
    let mut padded = honest_members().end();
    padded.extend(std::iter::repeat_n(0u8, 64 << 20));
    resigned(padded, "trailing_data", "entries");
}

#[test]
fn truncated_streams_are_refused() {
    let fx = Fixture::new();
    let archive = &fx.honest_archive[..fx.honest_archive.len() - 9];
    fx.resign_archive(archive);
    assert_refused(&fx, "truncated", "entries");

    // A tar stream without its end-of-archive marker, in a complete zstd frame.
    resigned(honest_members().into_bytes(), "truncated", "entries");
}

#[test]
fn trailing_garbage_and_concatenated_archives_are_refused() {
    let fx = Fixture::new();
    let mut archive = fx.honest_archive.clone();
    archive.extend_from_slice(b"garbage");
    fx.resign_archive(&archive);
    assert_refused(&fx, "trailing_data", "entries");

    let fx = Fixture::new();
    let mut archive = fx.honest_archive.clone();
    archive.extend_from_slice(&fx.honest_archive);
    fx.resign_archive(&archive);
    assert_refused(&fx, "trailing_data", "entries");
}

#[test]
fn extra_and_missing_entries_are_refused() {
    resigned(
        honest_members().file("out/zzz", 0o644, b"extra").end(),
        "extra_entry",
        "entries",
    );
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"alpha\n")
        .dir("out/sub")
        .symlink("out/sub/link", "../a.txt")
        .end();
    let record = resigned(tar, "missing_entry", "entries");
    assert_eq!(record["expected"], "out/run.sh");
}

#[test]
fn file_content_must_match_the_manifest() {
    let tar = RawTar::new()
        .dir("out")
        .file("out/a.txt", 0o644, b"ALPHA\n")
        .end();
    let record = resigned(tar, "content_digest_mismatch", "entries");
    assert_eq!(record["file"], "archive.tar.zst:out/a.txt");
    assert_eq!(
        record["expected"],
        blake3::hash(b"alpha\n").to_hex().as_str()
    );
    assert_eq!(record["found"], blake3::hash(b"ALPHA\n").to_hex().as_str());
}

/// Row 18: a refusal halfway through leaves no partial tree and no staging directory.
#[test]
fn a_refusal_halfway_leaves_nothing_behind() {
    let tar = honest_members().file("out/zzz", 0o644, b"late").end();
    let fx = Fixture::new();
    fx.resign_archive(&zstd(&tar));
    assert_refused(&fx, "extra_entry", "entries");
    let names: Vec<_> = std::fs::read_dir(fx.work())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["artifact.tar.zst", "outside"]);
    assert_eq!(std::fs::read(fx.artifact()).unwrap(), PREVIOUS_ARTIFACT);
}

/// A single-run entry is not used by a build that asks for a reproducible result (a miss,
/// not a quarantine: nothing is wrong with it).
#[test]
fn single_run_entries_are_only_for_single_builds() {
    let fx = Fixture::new();
    let mut single = fx.entry.clone();
    single.single_run = true;
    single.verdict = "built".to_owned();
    assert_eq!(single.schema, ENTRY_SCHEMA);
    fx.resign(&single, &fx.honest_archive);
    assert!(matches!(fx.restore(), Lookup::Miss { reason: Some(_) }));
    assert!(fx.entry_dir().exists());
    let accepted = hermetic::cache::restore(
        &fx.store,
        &fx.scope,
        &fx.key,
        &fx.trusted,
        true,
        Default::default(),
    );
    let Lookup::Hit(restored) = accepted else {
        panic!("a single build uses it")
    };
    let entry: &EntryManifest = &restored.entry;
    assert!(entry.single_run);
}
