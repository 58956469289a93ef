//! [`BuildError`]: what is wrong with a topology, found when it is built.

/// A topology that cannot run. Every variant names the node and the
/// parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A parameter out of range.
    #[error("invalid {parameter} for {node}: {value}")]
    InvalidParameter {
        /// The node (or "job" for job-wide settings).
        node: String,
        /// The parameter's name.
        parameter: &'static str,
        /// The value given and the rule it breaks.
        value: String,
    },
    /// Two nodes with one name.
    #[error("two nodes are named {0:?}; node names must be unique")]
    DuplicateName(String),
    /// The job has no sink: its results would go nowhere.
    #[error("the topology has no sink: add one with Stream::sink")]
    NoSink,
    /// A stream whose records go nowhere.
    #[error("the output of {0} is not connected to anything (add a sink or another stage)")]
    Unconnected(String),
    /// A side output requested twice.
    #[error("{what} of {node} was requested twice")]
    AlreadyTaken {
        /// The node.
        node: String,
        /// Which output.
        what: &'static str,
    },
    /// The job has no source.
    #[error("the topology has no source")]
    NoSource,
}
