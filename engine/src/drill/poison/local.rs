//! The local attack catalog: each attack of docs/restore-threats.md §7 that applies to a
//! stored entry, crafted against the honest [`Subject`] in the scratch store. The drill
//! runs each as a real restore (`cache::restore`) and judges what it did.
//!
//! Attacks on the archive's entries come re-signed by the subject's signer (what a
//! compromised trusted builder could publish), since bytes swapped under the honest
//! signature are caught earlier, by the archive digests (the `archive-*` attacks).
use std::io::{self, Read, Seek, SeekFrom, Write};

use hermetic_contract::report::RestoreStep;

use super::rawtar::{zstd, RawTar};
use super::subject::Subject;
use crate::archive::manifest::FileKind;
use crate::signing::dsse::{Envelope, Signature, IN_TOTO_PAYLOAD_TYPE};
use crate::signing::{sign_blob, sign_dsse, Bundle, Content, SigningKey, VerifyingKey};

/// The drill's build: its outputs hold a directory, an executable, a file and a symlink,
/// in this order, so hostile archives can be written member by member against them.
pub(super) const BUILD_SCRIPT: &str = "mkdir -p out/sub && printf '#!/bin/sh\\necho drill\\n' \
     > out/run.sh && chmod 755 out/run.sh && cat in.txt > out/sub/copy && ln -s ../run.sh \
     out/sub/link";
/// `out/run.sh` as [`BUILD_SCRIPT`] writes it.
const RUN_SH: &[u8] = b"#!/bin/sh\necho drill\n";

/// Which keys the restore trusts.
pub(super) enum Readers {
    /// The keys trusted for the subject.
    Trusted,
    /// Others: the subject's signer was removed from the trusted keys.
    Only(Vec<VerifyingKey>),
}

type Craft = fn(&Subject) -> io::Result<Readers>;

/// One attack: its name, the catalog rows it plays, where a restore must refuse it and
/// why, and how it is made.
pub(super) struct LocalAttack {
    pub name: &'static str,
    pub rows: &'static str,
    pub step: RestoreStep,
    pub reason: &'static str,
    pub craft: Craft,
}

macro_rules! attack {
    ($name:literal, $rows:literal, $step:ident, $reason:literal, $craft:expr) => {
        LocalAttack {
            name: $name,
            rows: $rows,
            step: RestoreStep::$step,
            reason: $reason,
            craft: $craft,
        }
    };
}

/// The catalog, in the order the restore checks (the first is also the attack planted
/// for the drill's fresh build).
pub(super) const CATALOG: &[LocalAttack] = &[
    attack!(
        "archive-byte-flipped",
        "17, 20",
        Archive,
        "archive_digest_mismatch",
        archive_byte_flipped
    ),
    attack!(
        "archive-grown",
        "17, 20",
        Archive,
        "archive_size",
        archive_grown
    ),
    attack!(
        "archive-swapped-same-size",
        "20",
        Archive,
        "archive_digest_mismatch",
        archive_swapped_same_size
    ),
    attack!(
        "archive-missing",
        "20",
        Archive,
        "archive_missing",
        archive_missing
    ),
    attack!(
        "archive-symlinked",
        "20",
        Archive,
        "archive_not_regular",
        archive_symlinked
    ),
    attack!(
        "entry-dir-symlinked",
        "20",
        Entry,
        "entry_not_directory",
        entry_dir_symlinked
    ),
    attack!(
        "bundle-missing",
        "20",
        Signature,
        "bundle_missing",
        bundle_missing
    ),
    attack!(
        "manifest-tampered",
        "20",
        Signature,
        "bad_signature",
        manifest_tampered
    ),
    attack!(
        "untrusted-key",
        "23",
        Signature,
        "untrusted_key",
        untrusted_key
    ),
    attack!(
        "forged-key-hint",
        "23",
        Signature,
        "bad_signature",
        forged_key_hint
    ),
    attack!("revoked-key", "22", Signature, "untrusted_key", revoked_key),
    attack!(
        "garbage-signature",
        "23",
        Signature,
        "bad_signature",
        garbage_signature
    ),
    attack!(
        "two-signatures",
        "25",
        Signature,
        "signature_count",
        two_signatures
    ),
    attack!(
        "no-signature",
        "25",
        Signature,
        "signature_count",
        no_signature
    ),
    attack!(
        "wrong-payload-type",
        "25",
        Signature,
        "payload_type",
        wrong_payload_type
    ),
    attack!(
        "message-signature",
        "24",
        Signature,
        "content_kind",
        message_signature
    ),
    attack!(
        "oversized-bundle",
        "26",
        Signature,
        "too_large",
        oversized_bundle
    ),
    attack!(
        "malformed-bundle",
        "26",
        Signature,
        "malformed",
        malformed_bundle
    ),
    attack!(
        "other-predicate-type",
        "24",
        Statement,
        "predicate_type",
        other_predicate_type
    ),
    attack!(
        "duplicate-json-keys",
        "26",
        Statement,
        "statement_malformed",
        duplicate_json_keys
    ),
    attack!(
        "unknown-json-field",
        "26",
        Statement,
        "statement_malformed",
        unknown_json_field
    ),
    attack!(
        "subject-digest-mismatch",
        "20",
        Statement,
        "subject_mismatch",
        subject_digest_mismatch
    ),
    attack!(
        "old-format-version",
        "22",
        Key,
        "format_version",
        old_format_version
    ),
    attack!(
        "replayed-under-another-key",
        "21",
        Key,
        "key_mismatch",
        replayed_under_another_key
    ),
    attack!(
        "moved-between-scopes",
        "27",
        Key,
        "scope_mismatch",
        moved_between_scopes
    ),
    attack!("dot-dot-path", "1", Entries, "path_escape", dot_dot_path),
    attack!("absolute-path", "2", Entries, "path_escape", absolute_path),
    attack!(
        "symlink-then-write-through",
        "3",
        Entries,
        "entry_mismatch",
        symlink_then_write_through
    ),
    attack!(
        "symlink-out-of-tree",
        "4",
        Entries,
        "symlink_escapes",
        symlink_out_of_tree
    ),
    attack!("hardlink", "6", Entries, "entry_type_refused", hardlink),
    attack!(
        "device-node",
        "7",
        Entries,
        "entry_type_refused",
        device_node
    ),
    attack!("fifo", "7", Entries, "entry_type_refused", fifo),
    attack!("setuid-bit", "8", Entries, "setuid_bit", setuid_bit),
    attack!(
        "world-writable-directory",
        "8",
        Entries,
        "entry_mismatch",
        world_writable_directory
    ),
    attack!(
        "xattr-capability",
        "10",
        Entries,
        "extension_refused",
        xattr_capability
    ),
    attack!(
        "duplicate-entry",
        "5, 11",
        Entries,
        "duplicate_entry",
        duplicate_entry
    ),
    attack!(
        "non-canonical-name",
        "12",
        Entries,
        "non_canonical_path",
        non_canonical_name
    ),
    attack!("huge-name", "13", Entries, "limit_exceeded", huge_name),
    attack!(
        "pax-size-desync",
        "14",
        Entries,
        "extension_refused",
        pax_size_desync
    ),
    attack!(
        "pax-global-header",
        "14",
        Entries,
        "entry_type_refused",
        pax_global_header
    ),
    attack!(
        "unknown-typeflag",
        "14",
        Entries,
        "entry_type_refused",
        unknown_typeflag
    ),
    attack!(
        "sparse-file",
        "15",
        Entries,
        "entry_type_refused",
        sparse_file
    ),
    attack!("zstd-bomb", "16", Entries, "limit_exceeded", zstd_bomb),
    attack!(
        "endless-padding",
        "16",
        Entries,
        "trailing_data",
        endless_padding
    ),
    attack!(
        "truncated-stream",
        "17",
        Entries,
        "truncated",
        truncated_stream
    ),
    attack!(
        "missing-end-marker",
        "17",
        Entries,
        "truncated",
        missing_end_marker
    ),
    attack!(
        "trailing-garbage",
        "17",
        Entries,
        "trailing_data",
        trailing_garbage
    ),
    attack!(
        "concatenated-archives",
        "17",
        Entries,
        "trailing_data",
        concatenated_archives
    ),
    attack!("extra-entry", "18", Entries, "extra_entry", extra_entry),
    attack!(
        "missing-entry",
        "18",
        Entries,
        "missing_entry",
        missing_entry
    ),
    attack!(
        "content-changed",
        "18",
        Entries,
        "content_digest_mismatch",
        content_changed
    ),
];

fn trusted() -> io::Result<Readers> {
    Ok(Readers::Trusted)
}

// --- the archive's bytes under the honest signature ---

fn archive_byte_flipped(s: &Subject) -> io::Result<Readers> {
    let middle = s.entry.archive.size / 2;
    s.edit_archive(|file| {
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(middle))?;
        file.read_exact(&mut byte)?;
        file.seek(SeekFrom::Start(middle))?;
        file.write_all(&[byte[0] ^ 0x40])
    })?;
    trusted()
}

fn archive_grown(s: &Subject) -> io::Result<Readers> {
    s.edit_archive(|file| {
        file.seek(SeekFrom::End(0))?;
        file.write_all(b"trailing")
    })?;
    trusted()
}

/// A hostile archive padded with zeros to the honest one's size: only the digests catch it.
fn archive_swapped_same_size(s: &Subject) -> io::Result<Readers> {
    let evil = zstd(&RawTar::new().file("../../evil", 0o644, b"pwned\n").end())?;
    s.write_archive(&evil)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(s.archive_path())?
        .set_len(s.entry.archive.size)?;
    trusted()
}

fn archive_missing(s: &Subject) -> io::Result<Readers> {
    std::fs::remove_file(s.archive_path())?;
    trusted()
}

/// The archive replaced by a symlink to an honest-looking copy elsewhere.
fn archive_symlinked(s: &Subject) -> io::Result<Readers> {
    let elsewhere = s.spare.join("elsewhere.tar.zst");
    if !elsewhere.exists() {
        std::fs::hard_link(&s.honest_archive, &elsewhere)?;
    }
    std::fs::remove_file(s.archive_path())?;
    std::os::unix::fs::symlink(&elsewhere, s.archive_path())?;
    trusted()
}

/// The whole entry directory replaced by a symlink to a copy of it elsewhere.
fn entry_dir_symlinked(s: &Subject) -> io::Result<Readers> {
    let copy = s.spare.join("entry-copy");
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    std::fs::rename(s.entry_dir(), &copy)?;
    std::os::unix::fs::symlink(&copy, s.entry_dir())?;
    trusted()
}

// --- the signed manifest ---

fn bundle_missing(s: &Subject) -> io::Result<Readers> {
    std::fs::remove_file(s.bundle_path())?;
    trusted()
}

fn dsse(bundle: &mut Bundle) -> io::Result<&mut Envelope> {
    match &mut bundle.content {
        Content::Dsse(envelope) => Ok(envelope),
        Content::MessageSignature(_) => Err(io::Error::other("entries are DSSE")),
    }
}

fn manifest_tampered(s: &Subject) -> io::Result<Readers> {
    let mut statement = s.statement()?;
    statement["predicate"]["manifest"]["files"][1]["blake3"] = "ab".repeat(32).into();
    let mut bundle = s.bundle.clone();
    dsse(&mut bundle)?.payload = serde_json::to_vec(&statement)?;
    s.write_bundle(&bundle)?;
    trusted()
}

fn untrusted_key(s: &Subject) -> io::Result<Readers> {
    s.write_bundle(&s.entry.sign(&SigningKey::generate()))?;
    trusted()
}

/// Signed by another key, with the hint naming the trusted one: the hint is not trust.
fn forged_key_hint(s: &Subject) -> io::Result<Readers> {
    let mut bundle = s.entry.sign(&SigningKey::generate());
    bundle.hint = Some(s.signer.verifying_key().hint());
    s.write_bundle(&bundle)?;
    trusted()
}

/// The honest entry, read by a restore that no longer trusts its signer.
fn revoked_key(_: &Subject) -> io::Result<Readers> {
    Ok(Readers::Only(vec![SigningKey::generate().verifying_key()]))
}

fn garbage_signature(s: &Subject) -> io::Result<Readers> {
    let mut bundle = s.bundle.clone();
    dsse(&mut bundle)?.signatures = vec![Signature {
        keyid: None,
        sig: vec![0x30, 0x03, 0x02, 0x01, 0x01],
    }];
    s.write_bundle(&bundle)?;
    trusted()
}

fn two_signatures(s: &Subject) -> io::Result<Readers> {
    let mut bundle = s.bundle.clone();
    let envelope = dsse(&mut bundle)?;
    let extra = envelope.signatures[0].clone();
    envelope.signatures.push(extra);
    s.write_bundle(&bundle)?;
    trusted()
}

fn no_signature(s: &Subject) -> io::Result<Readers> {
    let mut bundle = s.bundle.clone();
    dsse(&mut bundle)?.signatures.clear();
    s.write_bundle(&bundle)?;
    trusted()
}

fn wrong_payload_type(s: &Subject) -> io::Result<Readers> {
    let payload = serde_json::to_vec(&s.statement()?)?;
    s.write_bundle(&sign_dsse(&s.signer, "application/json", &payload))?;
    trusted()
}

/// A message signature over the archive, by the trusted key: not an entry.
fn message_signature(s: &Subject) -> io::Result<Readers> {
    s.write_bundle(&sign_blob(&s.signer, &s.archive_bytes()?))?;
    trusted()
}

fn oversized_bundle(s: &Subject) -> io::Result<Readers> {
    let mut huge = s.bundle.to_json().into_bytes();
    huge.extend(std::iter::repeat_n(
        b' ',
        crate::cache::restore::MAX_ENTRY_BUNDLE_BYTES,
    ));
    std::fs::write(s.bundle_path(), huge)?;
    trusted()
}

fn malformed_bundle(s: &Subject) -> io::Result<Readers> {
    std::fs::write(s.bundle_path(), b"{not json")?;
    trusted()
}

fn sign_statement(s: &Subject, statement: &serde_json::Value) -> io::Result<Readers> {
    let payload = serde_json::to_vec(statement)?;
    s.write_bundle(&sign_dsse(&s.signer, IN_TOTO_PAYLOAD_TYPE, &payload))?;
    trusted()
}

fn other_predicate_type(s: &Subject) -> io::Result<Readers> {
    let mut statement = s.statement()?;
    statement["predicateType"] = "https://slsa.dev/provenance/v1".into();
    sign_statement(s, &statement)
}

/// A second `cacheKey` before the real one: parsers that keep the first and those that
/// keep the last would disagree.
fn duplicate_json_keys(s: &Subject) -> io::Result<Readers> {
    let statement = serde_json::to_string(&s.statement()?)?;
    let duplicated = statement.replacen(
        "\"cacheKey\":",
        &format!("\"cacheKey\":\"{}\",\"cacheKey\":", "0".repeat(64)),
        1,
    );
    let payload = duplicated.into_bytes();
    s.write_bundle(&sign_dsse(&s.signer, IN_TOTO_PAYLOAD_TYPE, &payload))?;
    trusted()
}

fn unknown_json_field(s: &Subject) -> io::Result<Readers> {
    let mut statement = s.statement()?;
    statement["predicate"]["trustMe"] = true.into();
    sign_statement(s, &statement)
}

fn subject_digest_mismatch(s: &Subject) -> io::Result<Readers> {
    let mut statement = s.statement()?;
    statement["subject"][0]["digest"]["sha256"] = "cd".repeat(32).into();
    sign_statement(s, &statement)
}

// --- the signed claims ---

fn old_format_version(s: &Subject) -> io::Result<Readers> {
    let mut old = s.entry.clone();
    old.schema = "hermetic.cache-entry/v0".to_owned();
    s.write_bundle(&old.sign(&s.signer))?;
    trusted()
}

/// A valid entry for another cache key (other inputs), under this one.
fn replayed_under_another_key(s: &Subject) -> io::Result<Readers> {
    let mut other = s.entry.clone();
    other.key_inputs.command.push("--replayed".to_owned());
    other.cache_key = other.key_inputs.key();
    s.write_bundle(&other.sign(&s.signer))?;
    trusted()
}

/// An entry signed for an untrusted scope, copied into the scope read.
fn moved_between_scopes(s: &Subject) -> io::Result<Readers> {
    let mut moved = s.entry.clone();
    moved.scope = format!("untrusted-{}", s.scope.as_str());
    s.write_bundle(&moved.sign(&s.signer))?;
    trusted()
}

// --- the archive's entries, re-signed ---

fn resigned(s: &Subject, tar: Vec<u8>) -> io::Result<Readers> {
    s.resign_archive(&zstd(&tar)?)?;
    trusted()
}

fn dot_dot_path(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new().dir("out").file("out/../../evil", 0o644, b"x");
    resigned(s, tar.end())
}

fn absolute_path(s: &Subject) -> io::Result<Readers> {
    resigned(
        s,
        RawTar::new()
            .file("/tmp/hermetic-drill-evil", 0o644, b"x")
            .end(),
    )
}

/// `out/sub` as a symlink out of the tree, then a file written through it.
fn symlink_then_write_through(s: &Subject) -> io::Result<Readers> {
    let outside = s.spare.join("outside");
    let tar = RawTar::new()
        .dir("out")
        .file("out/run.sh", 0o755, RUN_SH)
        .member(
            b'2',
            b"out/sub",
            0o777,
            b"",
            outside.to_string_lossy().as_bytes(),
        )
        .file("out/sub/copy", 0o644, b"pwned");
    resigned(s, tar.end())
}

/// The manifest's symlink re-signed to point at /etc/shadow.
fn symlink_out_of_tree(s: &Subject) -> io::Result<Readers> {
    let mut entry = s.entry.clone();
    let link = entry
        .manifest
        .files
        .iter_mut()
        .find(|file| file.kind == FileKind::Symlink)
        .ok_or_else(|| io::Error::other("the drill's entry has no symlink"))?;
    link.target = Some("/etc/shadow".to_owned());
    s.write_bundle(&entry.sign(&s.signer))?;
    trusted()
}

fn special(s: &Subject, typeflag: u8, link: &[u8]) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .member(typeflag, b"out/run.sh", 0o755, b"", link);
    resigned(s, tar.end())
}

fn hardlink(s: &Subject) -> io::Result<Readers> {
    special(s, b'1', b"/etc/passwd")
}

fn device_node(s: &Subject) -> io::Result<Readers> {
    special(s, b'3', b"")
}

fn fifo(s: &Subject) -> io::Result<Readers> {
    special(s, b'6', b"")
}

fn setuid_bit(s: &Subject) -> io::Result<Readers> {
    resigned(
        s,
        RawTar::new()
            .dir("out")
            .file("out/run.sh", 0o4755, RUN_SH)
            .end(),
    )
}

fn world_writable_directory(s: &Subject) -> io::Result<Readers> {
    resigned(s, RawTar::new().member(b'5', b"out", 0o777, b"", b"").end())
}

fn xattr_capability(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .pax(&[("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02")])
        .file("out/run.sh", 0o755, RUN_SH);
    resigned(s, tar.end())
}

fn duplicate_entry(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .file("out/run.sh", 0o755, RUN_SH)
        .file("out/run.sh", 0o755, RUN_SH);
    resigned(s, tar.end())
}

fn non_canonical_name(s: &Subject) -> io::Result<Readers> {
    resigned(
        s,
        RawTar::new()
            .dir("out")
            .file("out//run.sh", 0o755, RUN_SH)
            .end(),
    )
}

fn huge_name(s: &Subject) -> io::Result<Readers> {
    let long = [vec![b'a'; 5000], vec![0]].concat();
    let tar = RawTar::new()
        .dir("out")
        .member(b'L', b"././@LongLink", 0o644, &long, b"")
        .file("out/run.sh", 0o755, RUN_SH);
    resigned(s, tar.end())
}

fn pax_size_desync(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .pax(&[("size", b"999")])
        .file("out/run.sh", 0o755, RUN_SH);
    resigned(s, tar.end())
}

fn pax_global_header(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .member(b'g', b"pax_global_header", 0o644, b"9 a=bcd\n", b"")
        .dir("out");
    resigned(s, tar.end())
}

fn unknown_typeflag(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .member(b'Z', b"out/run.sh", 0o755, RUN_SH, b"");
    resigned(s, tar.end())
}

fn sparse_file(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .member(b'S', b"out/run.sh", 0o755, RUN_SH, b"");
    resigned(s, tar.end())
}

/// 64 MiB of zeros (a few KiB compressed) where the manifest signs a small file:
/// refused at its header, before it is inflated.
fn zstd_bomb(s: &Subject) -> io::Result<Readers> {
    let bomb = vec![0u8; 64 << 20];
    resigned(
        s,
        RawTar::new()
            .dir("out")
            .file("out/run.sh", 0o755, &bomb)
            .end(),
    )
}

fn endless_padding(s: &Subject) -> io::Result<Readers> {
    let mut padded = RawTar::members_of(&s.honest_tar()?)?.end();
    padded.extend(std::iter::repeat_n(0u8, 64 << 20));
    resigned(s, padded)
}

fn truncated_stream(s: &Subject) -> io::Result<Readers> {
    let archive = s.archive_bytes()?;
    s.resign_archive(&archive[..archive.len().saturating_sub(9)])?;
    trusted()
}

fn missing_end_marker(s: &Subject) -> io::Result<Readers> {
    let members = RawTar::members_of(&s.honest_tar()?)?;
    s.resign_archive(&zstd(&members.into_bytes())?)?;
    trusted()
}

fn trailing_garbage(s: &Subject) -> io::Result<Readers> {
    let mut archive = s.archive_bytes()?;
    archive.extend_from_slice(b"garbage");
    s.resign_archive(&archive)?;
    trusted()
}

fn concatenated_archives(s: &Subject) -> io::Result<Readers> {
    let archive = s.archive_bytes()?;
    s.resign_archive(&[archive.as_slice(), archive.as_slice()].concat())?;
    trusted()
}

fn extra_entry(s: &Subject) -> io::Result<Readers> {
    let members = RawTar::members_of(&s.honest_tar()?)?;
    resigned(s, members.file("out/zzz", 0o644, b"extra").end())
}

fn missing_entry(s: &Subject) -> io::Result<Readers> {
    resigned(
        s,
        RawTar::new()
            .dir("out")
            .file("out/run.sh", 0o755, RUN_SH)
            .end(),
    )
}

fn content_changed(s: &Subject) -> io::Result<Readers> {
    let tar = RawTar::new()
        .dir("out")
        .file("out/run.sh", 0o755, b"#!/bin/sh\necho pwned\n");
    resigned(s, tar.end())
}
