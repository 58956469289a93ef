//! A read-only picture of a running job's graph: its nodes (with kind and
//! parallelism) and the edges between them, for dashboards and job APIs.
//!
//! A node is one step of the topology as the user built it (a source, a
//! window, a sink ...); at run time it is `parallelism` actor instances named
//! `<node>#<i>`, whose counters are in [`crate::JobMetrics`]. Stateless
//! stages (map, filter, key extraction) are fused into the actor upstream of
//! them and so do not appear as nodes.

use serde::Serialize;

use crate::metrics::ActorKind;

/// The nodes and edges of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobGraph {
    /// Nodes in the order they were added to the builder.
    pub nodes: Vec<GraphNode>,
    /// Edges between nodes.
    pub edges: Vec<GraphEdge>,
}

/// One node of a job graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    /// The node's name (unique in the job).
    pub name: String,
    /// Its role.
    pub kind: ActorKind,
    /// Number of actor instances (`<name>#0` .. `<name>#{parallelism-1}`).
    pub parallelism: usize,
}

impl GraphNode {
    /// Returns an iterator over the names of this node's actor instances,
    /// `<name>#0` .. `<name>#{parallelism-1}`, as in [`crate::JobMetrics`].
    pub fn actors(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.parallelism).map(move |i| format!("{}#{}", self.name, i))
    }
}

/// An edge: every instance of `from` may send to the instances of `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphEdge {
    /// Upstream node name.
    pub from: String,
    /// Downstream node name.
    pub to: String,
    /// What travels on it: `"data"` for the main output, `"late"`/`"side"`
    /// for a side output (late data, dead letters).
    pub output: EdgeOutput,
}

/// Which output of the upstream node an edge carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOutput {
    /// The node's main output.
    Main,
    /// A side output: late records of a window, or dead letters of a source.
    Side,
}
