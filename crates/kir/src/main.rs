//! `kir`: arguments in, printing out. The work is done by the library crates.

// The hunt allocates a string per field of every event: the allocator is a large part of its
// speed, and mimalloc is about a third faster than the system's on it (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod checkpoint_cmd;
mod cli;
mod collect_cmd;
mod contain_cmd;
mod evidence_cmd;
mod forensics_cmd;
mod hunt_cmd;
mod incident_cmd;
mod output;
mod plan_cmd;
mod respond_cmd;
mod rules_cmd;
mod top_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, RulesCommand};

/// Exit codes scripts can rely on (`PRODUCT.md`, "Exit codes").
pub mod exit {
    /// The command did its work, findings or not.
    pub const OK: u8 = 0;
    /// `--fail-on LEVEL` was met (or, for `kir rules test`, an example failed).
    pub const FAIL_ON: u8 = 1;
    /// Usage error, or input that could not be read at all.
    pub const USAGE: u8 = 2;
}

/// An error for the user: printed once, at the edge, with exit code 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl<E: std::fmt::Display> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Hunt(args) => hunt_cmd::run(&cli.global, args),
        Command::Rules { command } => match command {
            RulesCommand::List(args) => rules_cmd::list(&cli.global, args),
            RulesCommand::Check(args) => rules_cmd::check(&cli.global, args),
            RulesCommand::Test(args) => rules_cmd::test(&cli.global, args),
        },
        Command::Plan { command } => plan_cmd::run(&cli.global, command),
        Command::Incident { command } => incident_cmd::run(&cli.global, command),
        Command::Metrics(args) => incident_cmd::metrics(&cli.global, args),
        Command::Drift(args) => forensics_cmd::drift(&cli.global, args),
        Command::Scan(args) => forensics_cmd::scan(&cli.global, args),
        Command::Evidence { command } => evidence_cmd::run(&cli.global, command),
        Command::Collect { command } => collect_cmd::run(&cli.global, command),
        Command::Contain { command } => contain_cmd::run(&cli.global, command),
        Command::Respond(args) => respond_cmd::run(&cli.global, args),
        Command::Top(args) => top_cmd::run(&cli.global, args),
        Command::Checkpoint { command } => match command {
            cli::CheckpointCommand::Inspect(args) => checkpoint_cmd::inspect(&cli.global, args),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(UserError(message)) => {
            eprintln!("kir: error: {message}");
            ExitCode::from(exit::USAGE)
        }
    }
}
