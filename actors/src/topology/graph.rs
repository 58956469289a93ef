//! The job graph: plain data, built by the builder and validated by
//! `JobBuilder::build`, launched by `runtime::launch`.
//!
//! Nodes are added as the builder is used; each holds a type-erased prepare
//! function that knows its node's types (see `crate::spawn` for the two
//! phases of starting a node). Edges are recorded when a stream is
//! connected to the node that consumes it. Nodes start downstream-first
//! ([`Graph::spawn_order`]), so that every node finds the addresses of the
//! nodes it sends to.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::error::BuildError;
use crate::metrics::ActorKind;
use crate::output::OutputFactory;
use crate::source::DeadLetter;
use crate::spawn::PrepareFn;
pub(crate) use crate::spawn::{JobConfig, NodeInfo, Placement};
use crate::time::alignment::AlignmentGroup;
use crate::topology::{EdgeOutput, GraphEdge, GraphNode, JobGraph};

pub(crate) struct Node {
    pub(crate) info: NodeInfo,
    pub(crate) connected: bool,
    pub(crate) side_taken: bool,
    pub(crate) prepare: Option<PrepareFn>,
}

pub(crate) struct Graph {
    pub(crate) config: JobConfig,
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<(usize, usize)>,
    /// Whether each edge of `edges` leaves its node's main output.
    edge_main: Vec<bool>,
    pub(crate) errors: Vec<BuildError>,
    names: HashSet<String>,
    /// The consumer of dead letters, if any: (node id, factory).
    pub(crate) dead: Option<(usize, OutputFactory<DeadLetter>)>,
    dead_requested: bool,
    /// Branches of `Stream::fan_out` not connected yet.
    pub(crate) pending_branches: usize,
    /// Named watermark-alignment groups across sources.
    pub(crate) alignment_groups: Arc<Mutex<AlignmentGroups>>,
}

/// The named alignment groups of a job: members counted while it is
/// built, each group made once when its first source starts.
#[derive(Debug, Default)]
pub(crate) struct AlignmentGroups {
    groups: HashMap<&'static str, GroupPlan>,
}

#[derive(Debug)]
struct GroupPlan {
    members: usize,
    max_drift: i64,
    made: Option<Arc<AlignmentGroup>>,
}

impl AlignmentGroups {
    /// Adds `instances` members to `group`; returns the index of the first,
    /// or the drift the group was named with first if it differs.
    pub(crate) fn join(&mut self, group: &'static str, instances: usize, max_drift: i64) -> Result<usize, i64> {
        let plan = self.groups.entry(group).or_insert(GroupPlan { members: 0, max_drift, made: None });
        if plan.max_drift != max_drift {
            return Err(plan.max_drift);
        }
        plan.members += instances;
        Ok(plan.members - instances)
    }

    /// The group named `group`, made with every member counted.
    pub(crate) fn get(&mut self, group: &'static str) -> Option<Arc<AlignmentGroup>> {
        let plan = self.groups.get_mut(group)?;
        let (members, drift) = (plan.members, plan.max_drift);
        Some(Arc::clone(plan.made.get_or_insert_with(|| Arc::new(AlignmentGroup::new(members, drift)))))
    }
}

impl Graph {
    pub(crate) fn new(config: JobConfig) -> Self {
        Graph {
            config,
            nodes: Vec::new(),
            edges: Vec::new(),
            edge_main: Vec::new(),
            errors: Vec::new(),
            names: HashSet::new(),
            dead: None,
            dead_requested: false,
            pending_branches: 0,
            alignment_groups: Arc::default(),
        }
    }

    pub(crate) fn error(&mut self, e: BuildError) {
        self.errors.push(e);
    }

    pub(crate) fn invalid(&mut self, node: &str, parameter: &'static str, value: String) {
        self.error(BuildError::InvalidParameter { node: node.to_string(), parameter, value });
    }

    /// Records an invalid `parameter` of node `id`.
    pub(crate) fn invalid_at(&mut self, id: usize, parameter: &'static str, value: String) {
        let node = self.nodes[id].info.name.clone();
        self.invalid(&node, parameter, value);
    }

    /// Adds a node; its spawn function may be set later.
    pub(crate) fn add_node(&mut self, name: &str, kind: ActorKind, parallelism: usize) -> usize {
        if !self.names.insert(name.to_string()) {
            self.error(BuildError::DuplicateName(name.to_string()));
        }
        if parallelism == 0 {
            self.invalid(name, "parallelism", "0 (must be >= 1)".into());
        }
        // Actors are named `<node>#<instance>` in metrics and checkpoints.
        if name.is_empty() || name.contains('#') {
            self.invalid(name, "node name", format!("{name:?} (must be non-empty, without '#')"));
        }
        self.nodes.push(Node {
            info: NodeInfo { name: name.to_string(), kind, parallelism: parallelism.max(1), inputs: 0, dead_offset: 0 },
            connected: false,
            side_taken: false,
            prepare: None,
        });
        self.nodes.len() - 1
    }

    /// Records an edge from every instance of `from` to `to`; returns the
    /// first input index at `to` of `from`'s instances.
    /// `main`: the edge leaves `from`'s main output (not a side output).
    /// `forward`: instance `i` sends to instance `i` only (one input each).
    pub(crate) fn add_edge(&mut self, from: usize, to: usize, main: bool, forward: bool) -> usize {
        self.edges.push((from, to));
        self.edge_main.push(main);
        if main {
            self.nodes[from].connected = true;
        }
        let offset = self.nodes[to].info.inputs;
        self.nodes[to].info.inputs += if forward { 1 } else { self.nodes[from].info.parallelism };
        offset
    }

    pub(crate) fn request_dead_letters(&mut self) -> bool {
        !std::mem::replace(&mut self.dead_requested, true)
    }

    /// Final checks; wires dead letters from every source.
    pub(crate) fn validate(&mut self) -> Result<(), BuildError> {
        if self.config.batch_size == 0 {
            self.invalid("job", "batch size", "0 (must be >= 1)".into());
        }
        if self.config.mailbox_capacity == 0 {
            self.invalid("job", "mailbox capacity", "0 (must be >= 1)".into());
        }
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        crate::topology::stream::check_branches(self)?;
        if !self.nodes.iter().any(|n| n.info.kind == ActorKind::Source) {
            return Err(BuildError::NoSource);
        }
        if !self.nodes.iter().any(|n| n.info.kind == ActorKind::Sink) {
            return Err(BuildError::NoSink);
        }
        for n in &self.nodes {
            if n.info.kind != ActorKind::Sink && !n.connected {
                return Err(BuildError::Unconnected(n.info.name.clone()));
            }
        }
        if let Some(dead) = self.dead.as_ref().map(|d| d.0) {
            let sources: Vec<usize> =
                (0..self.nodes.len()).filter(|&i| self.nodes[i].info.kind == ActorKind::Source).collect();
            for s in sources {
                let offset = self.nodes[dead].info.inputs;
                self.nodes[s].info.dead_offset = offset;
                self.nodes[dead].info.inputs += self.nodes[s].info.parallelism;
                self.edges.push((s, dead));
                self.edge_main.push(false);
            }
        }
        Ok(())
    }

    /// Nodes in an order where every node comes after all its downstreams.
    pub(crate) fn spawn_order(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let mut out_degree = vec![0usize; n];
        for &(from, _) in &self.edges {
            out_degree[from] += 1;
        }
        let mut order = Vec::with_capacity(n);
        let mut ready: Vec<usize> = (0..n).filter(|&i| out_degree[i] == 0).collect();
        while let Some(i) = ready.pop() {
            order.push(i);
            for &(from, to) in &self.edges {
                if to == i {
                    out_degree[from] -= 1;
                    if out_degree[from] == 0 {
                        ready.push(from);
                    }
                }
            }
        }
        order
    }

    /// The public picture of this graph.
    pub(crate) fn describe(&self) -> JobGraph {
        JobGraph {
            nodes: self
                .nodes
                .iter()
                .map(|n| GraphNode { name: n.info.name.clone(), kind: n.info.kind, parallelism: n.info.parallelism })
                .collect(),
            edges: self
                .edges
                .iter()
                .zip(&self.edge_main)
                .map(|(&(a, b), &main)| GraphEdge {
                    from: self.nodes[a].info.name.clone(),
                    to: self.nodes[b].info.name.clone(),
                    output: if main { EdgeOutput::Main } else { EdgeOutput::Side },
                })
                .collect(),
        }
    }

    /// What identifies the topology for checkpoints: nodes (name, kind,
    /// parallelism) and edges.
    pub(crate) fn fingerprint(&self) -> String {
        let mut f = String::new();
        for n in &self.nodes {
            f.push_str(&format!("{}:{:?}:{};", n.info.name, n.info.kind, n.info.parallelism));
        }
        for (a, b) in &self.edges {
            f.push_str(&format!("{a}>{b};"));
        }
        f
    }
}
