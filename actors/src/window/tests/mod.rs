//! Tests of the window core, by what they specify: exact contents on
//! hand-made streams (`hand_made.rs`, with the harness they share), early
//! firings (`early_firing.rs`), checkpoints (`snapshots.rs`,
//! `snapshot_proptests.rs`, arbitrary and edited bytes in `snapshot_decode.rs`, harness in `snapshot_harness.rs`), and property
//! tests against brute-force models (`proptests.rs`; the combining edge in
//! `combining_edge.rs`).

mod combining_edge;
mod early_firing;
mod hand_made;
mod proptests;
mod snapshot_decode;
mod snapshot_harness;
mod snapshot_proptests;
mod snapshots;
