//! The command line: every option, with help that teaches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kir_detect::Level;

#[derive(Debug, Parser)]
#[command(
    name = "kir",
    version,
    about = "Kubernetes incident response: find attacks in audit logs, run the response plan, keep the evidence",
    long_about = "kir finds attacks in Kubernetes audit logs with Sigma rules (a built-in pack tagged with MITRE ATT&CK \
and the Microsoft threat matrix for Kubernetes, plus your own), offline over archives or from stdin.",
    after_help = "Examples:\n  kir hunt /var/log/kubernetes/audit/\n  kir hunt audit.log.3.gz --format jsonl > findings.jsonl\n  kubectl logs -n kube-system kube-apiserver-node1 | kir hunt -\n  kir hunt --rules ./our-rules/ --min-severity high --fail-on high archive/\n  kir hunt --timeline --actor system:anonymous archive/\n  kir rules list\n  kir rules check ./our-rules/\n  kir rules test\n\nExit codes: 0 done (findings or not), 1 --fail-on met, 2 usage error or unreadable input."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Output format: `table` for people, `json`/`jsonl` for machines, `csv` for spreadsheets.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// When to use colours: `auto` uses them on a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only the results: no summary, statistics or progress on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more about what was skipped and why.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find attacks in audit logs (files, folders, `-` for stdin).
    #[command(
        after_help = "Inputs are recognized by themselves, per file and per line: audit.k8s.io/v1 and v1beta1 events \
(JSON lines or one document), EventList batches, .gz and .zst, folders (recursively, rotated files oldest first), EKS \
records exported from CloudWatch Logs, AKS kube-audit diagnostic records, GKE Cloud Audit Log entries and Falco JSON \
alerts. The stages of one request (RequestReceived, ResponseStarted, ResponseComplete) become one event.\n\n\
Examples:\n  kir hunt examples/exposed-console-cryptojack.audit.jsonl.gz\n  kir hunt audit/ --format jsonl --min-severity medium > findings.jsonl\n  kir hunt audit/ --rules ./our-rules/ --fail-on high\n  kir hunt audit/ --timeline --actor 'system:serviceaccount:tools:*'\n  kir hunt audit/ --since 2026-11-27T23:50:00Z --until 2026-11-28T00:00:00Z --namespace kube-system"
    )]
    Hunt(HuntArgs),
    /// Show, lint and self-test rules (the built-in pack and your own).
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Args)]
pub struct RuleSource {
    /// Sigma rule files or folders to load (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Leave the built-in pack out: only the rules given with --rules run.
    #[arg(long)]
    pub no_builtin: bool,
    /// A YAML file with a `placeholders:` map (name → list) for rules that use `|expand`,
    /// e.g. `workloads_allowed_registries: [registry.k8s.io/, ghcr.io/acme/]`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    /// Audit log files or folders; `-` reads stdin.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub source: RuleSource,
    /// Only report findings at this level or above.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub min_severity: Option<Level>,
    /// Exit with code 1 when a finding at this level or above is reported.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Level>,
    /// Only these rules (id, name or title; repeatable).
    #[arg(long = "rule", value_name = "RULE")]
    pub rule: Vec<String>,
    /// Only this user (exact, or a prefix ending in `*`; repeatable).
    #[arg(long = "actor", value_name = "USER")]
    pub actor: Vec<String>,
    /// Only this namespace (repeatable).
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespace: Vec<String>,
    /// Only events at or after this time: RFC 3339 (`2026-11-27T23:50:00Z`) or an age (`30m`, `2h`, `7d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Tell the story in time order: every request of the selected actor or namespace (or every
    /// request with a finding), with the rules that fired on it.
    #[arg(long)]
    pub timeline: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Skip lines longer than this many bytes (they are counted and reported).
    #[arg(long, value_name = "BYTES", default_value_t = kir_audit::source::DEFAULT_MAX_LINE)]
    pub max_line: usize,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, level, title, ATT&CK and threat-matrix tags.
    List(RulesListArgs),
    /// Parse and lint rule files; exit 2 when a rule has errors.
    #[command(after_help = "The linter names fields that audit events never carry (e.g. `hostPath`), type mismatches \
(a response code compared to a word), unknown modifiers, bad regular expressions, broken conditions and correlation \
rules that name rules that are not loaded.\n\nExamples:\n  kir rules check ./our-rules/\n  kir rules check            # the built-in pack")]
    Check(RulesCheckArgs),
    /// Run the rules' embedded examples (must-match and must-not-match events); exit 1 on failure.
    Test(RulesCheckArgs),
}

#[derive(Debug, Args)]
pub struct RulesListArgs {
    #[command(flatten)]
    pub source: RuleSource,
}

#[derive(Debug, Args)]
pub struct RulesCheckArgs {
    /// Rule files or folders (default: the built-in pack).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A YAML file with a `placeholders:` map.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn parse_level(s: &str) -> Result<Level, String> {
    s.parse()
}
