//! What a build or run reports about itself: `hermetic.build/v1` (which provenance is
//! made from) and `hermetic run`'s verdict. Each type reads back what it wrote: a report
//! that crossed the daemon's socket is the same value the engine produced.
mod build;
mod cache;
mod drill;
mod layers;
mod repro;
mod run;

pub use build::{
    BuildMode, BuildReport, BuildVerdict, Digests, EpochSource, ImageReport, LogReport, OutputFlag,
    OutputReport, PinReport, ProfileReport, RunName, RunReport, BUILD_REPORT_SCHEMA,
};
pub use cache::{
    CacheReport, CacheStatus, ConflictingEntry, RemoteCacheReport, RemoteCacheStatus,
    RemoteConflict, RemotePush, RestoreStep,
};
pub use drill::{
    AttackOutcome, AttackResult, CaseResult, CaseVerdict, DriftRecord, DrillKind, DrillReport,
    Finding, ResultRow, DRILL_REPORT_SCHEMA,
};
pub use layers::{AppliedLayers, CgroupReport};
pub use repro::{Difference, DifferenceKind, Suspect, SuspectedCause, TimestampEncoding, Varied};
pub use run::RunVerdict;

/// A report with every field set, for the tests of what it is written as.
#[cfg(test)]
pub(crate) fn sample_report() -> BuildReport {
    use crate::manifest::{FileEntry, FileKind};
    let digests = |tag: &str| Digests {
        sha256: format!("sha256-{tag}"),
        blake3: format!("blake3-{tag}"),
    };
    BuildReport {
        schema: BUILD_REPORT_SCHEMA.into(),
        verdict: BuildVerdict::Nondeterministic,
        exit_code: 3,
        mode: BuildMode::Dual,
        error: Some("error".into()),
        profile: ProfileReport {
            name: "default".into(),
            origin: "builtin:default".into(),
            sha256: "profile-sha256".into(),
            rootfs_blake3: Some("rootfs-blake3".into()),
        },
        pins: Some(PinReport {
            source_date_epoch: 315_532_800,
            source_date_epoch_from: EpochSource::Fallback,
            uid: 1000,
            gid: 1000,
            user: "builder".into(),
            hostname: "hermetic".into(),
            build_dir: "/build".into(),
            cpus: 2,
            umask: "022".into(),
            env: vec![("TZ".into(), "UTC".into())],
        }),
        sandbox: Some(AppliedLayers {
            namespaces: vec!["user".into(), "pid".into()],
            landlock_abi: 4,
            kernel_landlock_abi: 6,
            seccomp_policy: "default".into(),
            seccomp_sha256: "seccomp-sha256".into(),
            cgroup: Some(CgroupReport {
                pids: Some("v2:/hermetic/1".into()),
                memory: None,
                cpu: Some("v2:/hermetic/1".into()),
                swap_limited: true,
            }),
            no_new_privs: true,
            capabilities: "none".into(),
        }),
        runs: vec![
            RunReport {
                name: RunName::A,
                exit_status: Some(0),
                signal: None,
                timed_out: false,
                duration_ms: 12,
                setup_ms: Some(1.5),
                error: None,
                output_digest: Some(digests("a")),
            },
            RunReport {
                name: RunName::B,
                exit_status: Some(137),
                signal: Some(9),
                timed_out: true,
                duration_ms: 13,
                setup_ms: None,
                error: Some("killed".into()),
                output_digest: None,
            },
        ],
        varied: Some(vec![Varied {
            what: "pids".into(),
            how: "build processes start at pid 301".into(),
        }]),
        differences: Some(vec![Difference {
            path: "out/a".into(),
            kind: DifferenceKind::Content,
            digest_a: Some("a".into()),
            digest_b: None,
        }]),
        suspected_causes: Some(vec![SuspectedCause {
            path: "out/a".into(),
            suspect: Suspect::VariationSensitive,
        }]),
        explain_report: Some("/out.tar.zst.explain.txt".into()),
        output: Some(OutputReport {
            archive: "/out.tar.zst".into(),
            digest: digests("out"),
            size: 512,
            manifest_blake3: "manifest-blake3".into(),
            flagged: Some(OutputFlag::Nondeterministic),
            extracted_to: Some("/dest".into()),
            files: vec![
                FileEntry {
                    path: "out".into(),
                    kind: FileKind::Dir,
                    mode: 0o755,
                    size: 0,
                    blake3: None,
                    target: None,
                },
                FileEntry {
                    path: "out/l".into(),
                    kind: FileKind::Symlink,
                    mode: 0o777,
                    size: 0,
                    blake3: None,
                    target: Some("a".into()),
                },
            ],
        }),
        log: Some(LogReport {
            sha256: "log-sha256".into(),
            bytes: 7,
        }),
        cache: CacheReport {
            status: CacheStatus::Quarantined,
            key: Some("key".into()),
            scope: Some("local".into()),
            stored: true,
            reason: Some("bad_signature: ...".into()),
            step: Some(RestoreStep::Signature),
            quarantine: Some("/cache/quarantine/1".into()),
            entry: Some("/cache/local/key".into()),
            signer: Some("signer".into()),
            remote: Some(RemoteCacheReport {
                repository: "registry.example/ci/cache/local".into(),
                status: RemoteCacheStatus::Quarantined,
                reason: Some("statement_malformed: ...".into()),
                manifest: Some("sha256:ours".into()),
                signer: Some("remote-signer".into()),
                push: Some(RemotePush::Conflict),
                conflict: Some(RemoteConflict {
                    ours: ConflictingEntry {
                        manifest: "sha256:ours".into(),
                        archive: Some("sha256:our-archive".into()),
                        signer: Some("signer".into()),
                        trusted: None,
                    },
                    theirs: ConflictingEntry {
                        manifest: "sha256:theirs".into(),
                        archive: Some("sha256:their-archive".into()),
                        signer: Some("their-signer".into()),
                        trusted: Some(true),
                    },
                }),
            }),
        },
        source_left_out: vec!["daemon.sock".into()],
        image: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_published_with_the_v1_names_and_sorted_keys() {
        let published = sample_report().to_published_json().unwrap().to_string();
        let expected = concat!(
            r#"{"cache":{"entry":"/cache/local/key","key":"key","quarantine":"/cache/quarantine/1","#,
            r#""reason":"bad_signature: ...","#,
            r#""remote":{"conflict":{"ours":{"archive":"sha256:our-archive","manifest":"sha256:ours","signer":"signer"},"#,
            r#""theirs":{"archive":"sha256:their-archive","manifest":"sha256:theirs","signer":"their-signer","trusted":true}},"#,
            r#""manifest":"sha256:ours","push":"conflict","reason":"statement_malformed: ...","#,
            r#""repository":"registry.example/ci/cache/local","signer":"remote-signer","status":"quarantined"},"#,
            r#""scope":"local","signer":"signer","status":"quarantined","#,
            r#""step":"signature","stored":true},"#,
            r#""differences":[{"digest_a":"a","digest_b":null,"kind":"content","path":"out/a"}],"#,
            r#""error":"error","exit_code":3,"explain_report":"/out.tar.zst.explain.txt","#,
            r#""log":{"bytes":7,"sha256":"log-sha256"},"mode":"dual","#,
            r#""output":{"archive":"/out.tar.zst","digest":{"blake3":"blake3-out","sha256":"sha256-out"},"#,
            r#""extracted_to":"/dest","files":[{"mode":493,"path":"out","size":0,"type":"dir"},"#,
            r#"{"mode":511,"path":"out/l","size":0,"target":"a","type":"symlink"}],"#,
            r#""flagged":"nondeterministic","manifest_blake3":"manifest-blake3","size":512},"#,
            r#""pins":{"build_dir":"/build","cpus":2,"env":[["TZ","UTC"]],"gid":1000,"#,
            r#""hostname":"hermetic","source_date_epoch":315532800,"source_date_epoch_from":"fallback","#,
            r#""uid":1000,"umask":"022","user":"builder"},"#,
            r#""profile":{"name":"default","origin":"builtin:default","rootfs_blake3":"rootfs-blake3","#,
            r#""sha256":"profile-sha256"},"#,
            r#""runs":[{"duration_ms":12,"exit_status":0,"name":"a","#,
            r#""output_digest":{"blake3":"blake3-a","sha256":"sha256-a"},"setup_ms":1.5,"timed_out":false},"#,
            r#"{"duration_ms":13,"error":"killed","exit_status":137,"name":"b","signal":9,"timed_out":true}],"#,
            r#""sandbox":{"capabilities":"none","cgroup":{"cpu":"v2:/hermetic/1","memory":null,"#,
            r#""pids":"v2:/hermetic/1","swap_limited":true},"kernel_landlock_abi":6,"landlock_abi":4,"#,
            r#""namespaces":["user","pid"],"no_new_privs":true,"seccomp_policy":"default","#,
            r#""seccomp_sha256":"seccomp-sha256"},"schema":"hermetic.build/v1","#,
            r#""source_left_out":["daemon.sock"],"#,
            r#""suspected_causes":[{"cause":"variation-sensitive","path":"out/a"}],"#,
            r#""varied":[{"how":"build processes start at pid 301","what":"pids"}],"#,
            r#""verdict":"nondeterministic"}"#,
        );
        assert_eq!(published, expected);
    }

    #[test]
    fn an_image_is_published_as_ref_and_digest() {
        let report = BuildReport {
            image: Some(ImageReport {
                reference: "tools@sha256:ab".into(),
                digest: "sha256:ab".into(),
            }),
            ..sample_report()
        };
        let published = report.to_published_json().unwrap();
        assert_eq!(
            published["image"].to_string(),
            r#"{"digest":"sha256:ab","ref":"tools@sha256:ab"}"#
        );
        assert_eq!(
            serde_json::from_value::<BuildReport>(published).unwrap(),
            report
        );
    }

    #[test]
    fn a_report_reads_back_as_the_same_value() {
        let report = sample_report();
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<BuildReport>(&json).unwrap(), report);
        let published = report.to_published_json().unwrap();
        assert_eq!(
            serde_json::from_value::<BuildReport>(published).unwrap(),
            report
        );
    }

    #[test]
    fn absent_fields_are_left_out_and_read_back_as_absent() {
        let report = BuildReport {
            error: None,
            pins: None,
            sandbox: None,
            varied: None,
            differences: None,
            suspected_causes: None,
            explain_report: None,
            output: None,
            log: None,
            cache: CacheReport::default(),
            source_left_out: Vec::new(),
            image: None,
            ..sample_report()
        };
        let published = report.to_published_json().unwrap();
        let keys: Vec<&String> = published.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "cache",
                "exit_code",
                "mode",
                "profile",
                "runs",
                "schema",
                "verdict"
            ]
        );
        assert_eq!(
            published["cache"].to_string(),
            r#"{"status":"disabled","stored":false}"#
        );
        assert_eq!(
            serde_json::from_value::<BuildReport>(published).unwrap(),
            report
        );
    }
}
