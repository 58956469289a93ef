//! The `weir` command-line tool: runs the reference workloads.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
