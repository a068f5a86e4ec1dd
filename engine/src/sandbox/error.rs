//! Errors of the sandbox engine. A setup failure always names the layer that could not be
//! applied, the step, the call and (where there is one) the path, because "fail closed"
//! is only useful when the operator can see what to fix.
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The isolation layers, in the words the docs and error messages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Namespaces,
    Filesystem,
    Network,
    Landlock,
    Seccomp,
    Capabilities,
    Limits,
    Cgroup,
    Pins,
    Exec,
    Outputs,
    Helper,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Layer::Namespaces => "namespaces",
            Layer::Filesystem => "filesystem",
            Layer::Network => "network",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
            Layer::Capabilities => "capabilities",
            Layer::Limits => "limits",
            Layer::Cgroup => "cgroup",
            Layer::Pins => "pins",
            Layer::Exec => "exec",
            Layer::Outputs => "outputs",
            Layer::Helper => "helper",
        };
        f.write_str(name)
    }
}

/// One failed setup step. Built in the helper, sent to the launcher as text.
#[derive(Debug, thiserror::Error)]
pub struct StepError {
    pub layer: Layer,
    pub step: &'static str,
    pub call: String,
    pub path: Option<PathBuf>,
    #[source]
    pub source: std::io::Error,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.layer, self.step, self.call)?;
        if let Some(path) = &self.path {
            write!(f, " on {}", path.display())?;
        }
        Ok(())
    }
}

impl StepError {
    pub fn new(
        layer: Layer,
        step: &'static str,
        call: impl Into<String>,
        path: Option<PathBuf>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        StepError {
            layer,
            step,
            call: call.into(),
            path,
            source: source.into(),
        }
    }

    /// A failure that is not an OS error (a policy check, a missing feature).
    pub fn refused(layer: Layer, step: &'static str, why: impl Into<String>) -> Self {
        StepError {
            layer,
            step,
            call: "check".into(),
            path: None,
            source: std::io::Error::other(why.into()),
        }
    }
}

/// Shorthand used by the setup code: `mount(...).map_err(step(Layer::Filesystem, "bind /usr", "mount", path))`.
pub(crate) fn step<E: Into<std::io::Error>>(
    layer: Layer,
    step: &'static str,
    call: &'static str,
    path: impl Into<Option<PathBuf>>,
) -> impl FnOnce(E) -> StepError {
    let path = path.into();
    move |source| StepError::new(layer, step, call, path, source)
}

/// Everything the launcher can report.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A layer could not be applied; nothing of the build ran.
    #[error("sandbox setup failed at the {layer} layer: {message}")]
    Setup { layer: Layer, message: String },
    #[error("failed to start the sandbox helper {program}")]
    SpawnHelper {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to talk to the sandbox helper: {step}")]
    Protocol {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox helper ended without reporting the build's status ({status})")]
    HelperDied { status: String },
    #[error("failed to collect outputs: {0}")]
    Outputs(String),
}

impl SandboxError {
    pub fn setup(err: &StepError) -> Self {
        SandboxError::Setup {
            layer: err.layer,
            message: crate::errors::error_chain(err),
        }
    }
}
