//! `kir`: arguments in, printing out. The work is done by the library crates.

// The hunt allocates a string per field of every event: the allocator is a large part of its
// speed, and mimalloc is about a third faster than the system's on it (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every exit code of kir ([`exit`]), in words: the end of `kir --help`.
macro_rules! exit_codes_help {
    () => {
        "Exit codes: 0 done (findings or not) · 1 --fail-on met (rules test: an example failed; evidence verify: \
a change; top --fail-on-mining: a miner) · 2 usage error, unreadable input, or refused before any change · 3 kir \
respond waits for an approval or a confirmation · 4 an action failed or was left half-done"
    };
}

mod checkpoint_cmd;
mod cli;
mod collect_cmd;
mod contain_cmd;
mod drill_cmd;
mod evidence_cmd;
mod forensics_cmd;
mod hunt_cmd;
mod incident_cmd;
mod output;
mod plan_cmd;
mod readiness_cmd;
mod respond_cmd;
mod rules_cmd;
mod serve_cmd;
mod top_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, RulesCommand};

/// Exit codes scripts can rely on (`PRODUCT.md`, "Exit codes"): every code kir exits with is
/// here, and `exit_codes_help!` says them at the end of `kir --help`.
pub mod exit {
    /// The command did its work, findings or not.
    pub const OK: u8 = 0;
    /// `--fail-on LEVEL` was met (for `kir rules test`: an example failed; for `kir evidence
    /// verify`: something changed; for `kir top --fail-on-mining`: a pod looks like a miner).
    pub const FAIL_ON: u8 = 1;
    /// Usage error, input that could not be read, or a refusal before anything was changed (a
    /// missing permission, evidence not yet collected, another cluster).
    pub const USAGE: u8 = 2;
    /// `kir respond` waits for an approval or a person's confirmation.
    pub const WAITING: u8 = 3;
    /// An action was attempted and failed, or was left half-done (the message names what).
    pub const ACTION_FAILED: u8 = 4;
}

/// An error for the user: printed once, at the edge, and exiting with its code.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    /// One of [`exit`]'s codes.
    pub code: u8,
}

impl UserError {
    /// Usage, unreadable input, or a refusal before anything changed: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        UserError { message: message.into(), code: exit::USAGE }
    }

    /// An action that was attempted and failed or was left half-done: exit 4.
    pub fn action_failed(message: impl Into<String>) -> Self {
        UserError { message: message.into(), code: exit::ACTION_FAILED }
    }

    /// A cluster error from applying an action: a refusal before any write (missing
    /// permissions, kir's own refusals) is 2; anything that failed once writing began is 4.
    pub fn from_action(e: kir_cluster::Error) -> Self {
        match e {
            kir_cluster::Error::MissingPermissions(_)
            | kir_cluster::Error::Refused(_)
            | kir_cluster::Error::Config(_)
            | kir_cluster::Error::NotFound { .. } => UserError::usage(e.to_string()),
            other => UserError::action_failed(other.to_string()),
        }
    }
}

impl<E: std::fmt::Display> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError::usage(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve(args) => serve_cmd::serve(&cli.global, args),
        Command::Token { command } => serve_cmd::token(&cli.global, command),
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
        Command::Readiness(args) => readiness_cmd::run(&cli.global, args),
        Command::Drill { command } => drill_cmd::run(&cli.global, command),
        Command::Checkpoint { command } => match command {
            cli::CheckpointCommand::Inspect(args) => checkpoint_cmd::inspect(&cli.global, args),
        },
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(UserError { message, code }) => {
            eprintln!("kir: error: {message}");
            ExitCode::from(code)
        }
    }
}
