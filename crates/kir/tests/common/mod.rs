//! What the integration tests share: where the data is, and running `kir hunt` for its JSON.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// A path relative to the repository root.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// The incident recorded on a real cluster.
pub fn example() -> PathBuf {
    repo("examples/exposed-console-cryptojack.audit.jsonl.gz")
}

pub fn kir() -> Command {
    Command::cargo_bin("kir").expect("the kir binary is built")
}

/// Runs a prepared command, expects success, and returns its standard output.
pub fn stdout_of(command: &mut Command) -> String {
    String::from_utf8(command.assert().success().get_output().stdout.clone()).expect("UTF-8 output")
}

/// Runs `kir hunt --format jsonl ARGS PATH`, expects success, and returns one value per line.
pub fn hunt_jsonl(args: &[&str], path: &Path) -> Vec<Value> {
    let out =
        kir().args(["hunt", "--format", "jsonl"]).args(args).arg(path).assert().success().get_output().stdout.clone();
    String::from_utf8(out)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
