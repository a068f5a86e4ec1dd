//! What the helper, init and the build child reported, and the layers in force for the
//! build that follow from it.
use std::time::Instant;

use super::{AppliedLayers, PackedOutputs};
use crate::sandbox::cgroup::CgroupReport;
use crate::sandbox::error::Layer;
use crate::sandbox::keep_failed::PackedTree;
use crate::sandbox::message::{Confinement, HelperMessage};

#[derive(Default)]
pub(super) struct Reported {
    pub(super) setup_failure: Option<(Layer, String)>,
    pub(super) exited: Option<(Option<i32>, Option<i32>)>,
    pub(super) timed_out: bool,
    pub(super) exec_failure: Option<(String, i32)>,
    /// What the build child found in force just before it exec'd.
    confinement: Option<Confinement>,
    /// When the build child reported that it is about to exec.
    pub(super) started_at: Option<Instant>,
    pub(super) outputs: Option<Result<PackedOutputs, String>>,
    /// The failed build's dir, archived, or why it is not.
    pub(super) failed_tree: Option<Result<PackedTree, String>>,
}

impl Reported {
    pub(super) fn absorb(&mut self, message: HelperMessage) {
        match message {
            HelperMessage::SetupFailed { layer, message } => {
                self.setup_failure.get_or_insert((layer, message));
            }
            HelperMessage::Started(confinement) => {
                self.confinement = Some(confinement);
                self.started_at = Some(Instant::now());
            }
            HelperMessage::ExecFailed { program, errno } => {
                self.exec_failure = Some((program, errno))
            }
            HelperMessage::Exited { code, signal } => self.exited = Some((code, signal)),
            HelperMessage::TimedOut { .. } => self.timed_out = true,
            HelperMessage::Packed {
                manifest,
                sha256,
                blake3,
                size,
            } => {
                self.outputs = Some(Ok(PackedOutputs {
                    manifest,
                    sha256,
                    blake3,
                    size,
                }))
            }
            HelperMessage::PackFailed { message } => self.outputs = Some(Err(message)),
            HelperMessage::FailedTreePacked { manifest, left_out } => {
                self.failed_tree = Some(Ok(PackedTree { manifest, left_out }))
            }
            HelperMessage::FailedTreePackFailed { message } => {
                self.failed_tree = Some(Err(message))
            }
            HelperMessage::Finished => {}
        }
    }

    /// The layers in force for the build: what the build child reported (none when it
    /// never got as far as its exec), and the cgroup this launcher made for it.
    pub(super) fn applied_layers(&mut self, cgroup: Option<CgroupReport>) -> AppliedLayers {
        let Confinement {
            mut namespaces,
            capabilities,
            no_new_privs,
            landlock_abi,
            kernel_landlock_abi,
            seccomp_policy,
            seccomp_sha256,
        } = self.confinement.take().unwrap_or_default();
        // One order, whichever process created each.
        namespaces.sort();
        AppliedLayers {
            namespaces: namespaces
                .iter()
                .map(|namespace| namespace.name().to_owned())
                .collect(),
            landlock_abi,
            kernel_landlock_abi,
            seccomp_policy,
            seccomp_sha256,
            cgroup,
            no_new_privs,
            capabilities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::message::Namespace;

    /// Provenance signs the list: the helper's namespaces and the build child's come out in
    /// one fixed order, not in the order they were created.
    #[test]
    fn namespaces_are_listed_in_one_order_whoever_created_them() {
        let mut reported = Reported::default();
        reported.absorb(HelperMessage::Started(Confinement {
            namespaces: vec![
                Namespace::User,
                Namespace::Mount,
                Namespace::Pid,
                Namespace::Net,
                Namespace::Uts,
                Namespace::Ipc,
                Namespace::Time,
                Namespace::Cgroup,
            ],
            ..Confinement::default()
        }));
        assert_eq!(
            reported.applied_layers(None).namespaces,
            ["user", "mount", "pid", "net", "uts", "ipc", "cgroup", "time"]
        );
    }
}
