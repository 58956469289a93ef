//! Tests of the `weir` binary and of services run as real processes
//! (killed, signalled), in one test binary; they need `--features cli`.

#[path = "../support/mod.rs"]
mod support;

mod bench_cli;
mod nats;
mod recovery;
#[cfg(unix)]
mod shutdown;
