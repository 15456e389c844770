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
and the Microsoft threat matrix for Kubernetes, plus your own), offline over archives or from stdin; runs the \
incident response plan (incidents with owners, timelines, escalation and notifications, reports and metrics); and \
examines containers offline (drift against the image, malware scans, kubelet checkpoint archives).",
    after_help = concat!("Examples:\n  kir hunt /var/log/kubernetes/audit/\n  kir hunt audit.log.3.gz --format jsonl > findings.jsonl\n  kubectl logs -n kube-system kube-apiserver-node1 | kir hunt -\n  kir hunt --rules ./our-rules/ --min-severity high --fail-on high archive/\n  kir hunt --timeline --actor system:anonymous archive/\n  kir rules list\n  kir rules check ./our-rules/\n  kir rules test\n  kir plan init > plan.yaml\n  kir hunt audit/ --plan plan.yaml --store sqlite:ir.db\n  kir incident list --open\n  kir incident tick --plan plan.yaml\n  kir drift --image nginx.tar --container web-export.tar\n  kir scan /mnt/snapshot/\n  kir checkpoint inspect checkpoint.tar\n\n", exit_codes_help!())
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
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
    /// The incident store: `sqlite:PATH` or `postgres://USER@HOST/DB` (default: kir.db in the
    /// user's data folder, e.g. ~/.local/share/kir/kir.db).
    #[arg(long, global = true, env = "KIR_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// The response plan (default: the starter plan, `kir plan init`).
    #[arg(long, global = true, env = "KIR_PLAN", value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// The kubeconfig for live-cluster commands (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: the current context). `kir collect` takes it several
    /// times to gather from several clusters into one bundle; other commands take one.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Vec<String>,
    /// Who is acting, as recorded on incident timelines (default: $USER).
    #[arg(long = "as", global = true, env = "KIR_USER", value_name = "NAME")]
    pub acting_as: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
    /// Markdown (plans, reports, metrics).
    Md,
    /// A standalone HTML page (plans, reports, metrics).
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run kir as a service: receive audit events and Falco alerts as they happen, detect live
    /// with the same rules and plan as `kir hunt`, file incidents, run the escalation timers,
    /// serve the REST API and the web UI.
    #[command(after_help = "The kube-apiserver sends its audit events to POST /v1/audit (its webhook backend: \
deploy/audit-webhook.kubeconfig, docs/serve.md), Falco to POST /v1/falco (http_output). A batch is answered 200 only once \
it is stored; a retried batch adds nothing; when kir cannot keep up it answers 429 with Retry-After. Every endpoint but \
/healthz and /readyz needs a token (kir token create); people log in to the web UI with theirs.\n\n\
Examples:\n  kir token create --role ingest --name apiserver --store sqlite:/var/lib/kir/kir.db\n  \
kir serve --listen 127.0.0.1:8080 --store sqlite:/var/lib/kir/kir.db --plan plan.yaml\n  \
curl -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:8080/api/v1/findings?format=jsonl&severity=medium'\n\n\
It prints `listening on ADDR` on stderr once ready, and stops on SIGTERM or Ctrl-C after draining detection; SIGHUP \
reloads the rules and the plan (refused, with the error, if they do not check).\n\n\
Exit codes: 0 stopped, 2 usage error, an address it cannot listen on, or a store it cannot open.")]
    Serve(ServeArgs),
    /// API tokens for `kir serve`: create one (printed once, stored hashed), list, revoke.
    #[command(
        after_help = "Roles: viewer (read), responder (incident writes), approver (approvals), admin (tokens, reload), ingest (the receivers only).\n\n\
Examples:\n  kir token create --role ingest --name apiserver --store sqlite:kir.db\n  kir token create --role responder --name alice\n  kir token list\n  kir token revoke alice"
    )]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
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
    /// The response plan as code: write a starter plan, check one, render it for people.
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
    },
    /// Work the incident record: open, list, show, acknowledge, assign, note, escalate,
    /// contain, resolve, close, report; `tick` runs the escalation timers.
    #[command(alias = "incidents")]
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// Response metrics across incidents: time to detect, acknowledge, contain and resolve, by
    /// type and severity, and the rules behind false positives.
    #[command(
        after_help = "Examples:\n  kir metrics --since 90d\n  kir metrics --since 2026-01-01 --format json\n  kir metrics --format html > metrics.html"
    )]
    Metrics(MetricsArgs),
    /// What a running container changed against its image: added, modified and deleted files,
    /// executables marked, the shapes of compromise named. Nothing is mounted or extracted.
    #[command(after_help = "Images: an OCI image layout (folder or tar), a docker/podman save archive, a layer tar \
(plain, gzip, zstd) or a root filesystem folder. Containers: an export tar (docker export), a folder (a mounted \
snapshot), an overlay upperdir (--upper, or a folder named upperdir/upper/diff) or a kubelet checkpoint archive \
(its rootfs-diff.tar and deleted.files). Files every runtime writes (/etc/hosts, /etc/resolv.conf, /.dockerenv, \
/dev, /proc, secret mounts) are left out unless --all.\n\nExamples:\n  kir drift --image nginx-1.25.tar --container web-export.tar\n  \
kir drift --image oci-layout/ --container /mnt/snap/var/lib/containerd/.../fs --upper\n  \
kir drift --image nginx.tar --container checkpoint-web.tar --format json > drift.json\n  \
kir drift --image nginx.tar --container web-export.tar --scan --fail-on high\n\nExit codes: 0 done, 1 --fail-on met, 2 unreadable input.")]
    Drift(DriftArgs),
    /// Scan folders, files and tars (layers, exports, bundles) for miners, attack tools, reverse
    /// shells and listed hashes.
    #[command(after_help = "Built-in rules (kir scan --list-rules) look for cryptominers (XMRig and its kin, stratum \
URLs, pool domains, miner configs), Kubernetes attack tools and reverse shells. --rules adds rule files in the same \
YAML form (rules/scan/*.yml shows it); --hashes adds SHA-256 lists (one hash per line, an optional name after it).\n\n\
Examples:\n  kir scan /mnt/snapshot/\n  kir scan evidence/shop-web-7f9c/ --hashes iocs.txt --format jsonl\n  \
kir scan web-export.tar --rules our-rules.yml --fail-on high\n\nExit codes: 0 done (matches or not), 1 --fail-on met, 2 unreadable input.")]
    Scan(ScanArgs),
    /// Collect evidence from a live cluster into a bundle (read-only: it changes nothing).
    Collect {
        #[command(subcommand)]
        command: CollectCommand,
    },
    /// Run the plan's playbook for an incident, step by step: evidence first, approvals where
    /// the plan asks for them, every step recorded; run it again to resume.
    #[command(
        after_help = "kir picks the playbook of the incident's type (the plan's types[].playbook) and its targets: the pods the incident's findings name (or --pod), their nodes, service accounts and workloads, and the users behind the findings. Steps already done are skipped. It stops at a step that needs a role's approval (approve it with kir incident approve ID) or a person's hands (do it, then kir respond ID --confirm STEP), and at a failed step; fix the cause and run it again.\n\nExit codes: 0 the playbook is done, 3 it waits for an approval or a confirmation, 4 a step failed, 2 usage error or a refusal before any change.\n\nExamples:\n  kir respond 7 --dry-run\n  kir respond 7 --out evidence/\n  kir incident approve 7 --as dana\n  kir respond 7 --pod shop/web-7f9c\n  kir respond 7 --confirm 8"
    )]
    Respond(RespondArgs),
    /// Pods by CPU and memory against their requests and limits; flags the shape of
    /// cryptomining (CPU pinned, connections to mining-pool ports in runtime alerts).
    #[command(after_help = "Numbers come from the metrics API (metrics-server); where none runs, from each \
kubelet's stats summary through the API server's node proxy (nodes/proxy). One sample, as kubectl top: run it \
again to see a pod stay pinned.\n\nExamples:\n  kir top -n shop\n  kir top --all-namespaces --alerts falco-events.json\n  \
kir top -A --format json | jq 'select(.flags | length > 0)'")]
    Top(TopArgs),
    /// Could we detect, investigate and contain an attack here? Readiness checks of the live
    /// cluster (read-only) or of a dump, its API server flags and audit policy, and the plan.
    #[command(after_help = "Each check says pass, fail, warn, or unknown when its input was not given. Offline, \
give a dump written by:\n  kubectl get -A -o json namespaces,pods,services,serviceaccounts,deployments,daemonsets,\
statefulsets,replicasets,jobs,cronjobs,ingresses,networkpolicies,clusterroles,clusterrolebindings,roles,rolebindings \
> cluster-dump.json\n\nExamples:\n  kir readiness\n  kir readiness --from cluster-dump.json --apiserver-manifest \
kube-apiserver.yaml --audit-policy policy.yaml --plan plan.yaml\n  kir readiness --from cluster-dump.json --format json \
--fail-on high\n  kir readiness --from cluster-dump.json --format md > readiness.md")]
    Readiness(ReadinessArgs),
    /// Practise: replay a recorded attack at today's time into incidents tagged as a drill,
    /// measure detection and the response against the plan, and report after the action.
    Drill {
        #[command(subcommand)]
        command: DrillCommand,
    },
    /// Containment on a live cluster, dry-run first, every action recorded and reversible.
    Contain {
        #[command(subcommand)]
        command: ContainCommand,
    },
    /// Evidence bundles: verify hashes, custody and signature; record custody; make signing keys.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Kubelet checkpoint archives (the kubelet checkpoint API, kubectl checkpoint).
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Print a commented starter plan that works as it is: `kir plan init > plan.yaml`.
    Init,
    /// Validate a plan (`-` reads stdin): errors with line and column (exit 2), warnings for gaps.
    #[command(after_help = "Checks every reference (roles, channels, policies, playbooks, types), durations, \
and warns about gaps: a severity nobody is paged for, a role without contacts, a playbook step that destroys \
evidence before any collect-evidence step, unused policies and channels.\n\nExamples:\n  kir plan check plan.yaml\n  kir plan init | kir plan check -")]
    Check {
        #[arg(value_name = "FILE")]
        path: PathBuf,
    },
    /// Render a plan as the document people read (`--format md` or `html`).
    #[command(
        after_help = "Examples:\n  kir plan render plan.yaml --format html > plan.html\n  kir plan render plan.yaml --format md"
    )]
    Render {
        #[arg(value_name = "FILE")]
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Report an incident by hand: what you saw, how bad, what kind. The plan routes it.
    #[command(
        after_help = "Examples:\n  kir incident open --title \"miner-like CPU on node ip-10-0-3-17\" --severity medium --type cryptomining\n  kir incident open --title \"unknown admin binding\" --severity high --assign soc\n  kir incident open --title \"odd exec into payments\" --severity medium --assign dana --seen 2026-11-27T23:50:00Z"
    )]
    Open(OpenArgs),
    /// List incidents (open and closed); filter by state, severity, type or owner.
    List(ListArgs),
    /// Show one incident: fields, findings, IOCs and the timeline.
    Show(IdArg),
    /// Acknowledge: someone is working on it (stops not-acknowledged escalations).
    #[command(alias = "acknowledge")]
    Ack(IdArg),
    /// Hand the incident to a role of the plan (`soc`) or a person (`dana`).
    Assign(AssignArgs),
    /// Add a note to the timeline. Notes starting with `lesson:` go into the report's lessons.
    Note(NoteArgs),
    /// Escalate now: fire the next level of the incident's escalation policy.
    Escalate(IdArg),
    /// Mark the incident contained (the attacker's access or spread is stopped).
    Contain(StateArgs),
    /// Mark the incident resolved.
    Resolve(StateArgs),
    /// Close the incident with a reason: true-positive, false-positive, benign or duplicate.
    Close(CloseArgs),
    /// Re-open a resolved or closed incident; its escalation policy starts again.
    Reopen(StateArgs),
    /// Add an indicator of compromise (`ip:203.0.113.7`, `image:evil/miner:1`, `sha256:…`, `domain:…`).
    Ioc(IocArgs),
    /// Fire the escalations that are due and send their notifications (run it from cron, e.g.
    /// every minute).
    #[command(after_help = "Each escalation level fires once per incident, at the plan's delay after the \
incident opened (or re-opened), when its condition still holds. Notifications use the plan given with --plan \
(channels and contacts); the levels are the ones the incident was opened with.\n\nExamples:\n  kir incident tick --plan plan.yaml\n  * * * * * kir incident tick --plan /etc/kir/plan.yaml --store sqlite:/var/lib/kir/kir.db")]
    Tick(TickArgs),
    /// Approve the playbook step that waits for your role's approval (kir respond then goes on).
    #[command(after_help = "The approval names the step's role and the person (--as or KIR_USER); a person who is \
not a contact of that role in the plan is warned and the warning is written on the timeline.\n\nExamples:\n  \
kir incident approve 7 --as dana\n  kir incident approve 7 --step 3 --note \"isolate it, the miner is still running\"")]
    Approve(ApproveArgs),
    /// The post-incident report: summary, timeline (with an SVG chart in HTML), findings,
    /// affected objects, IOCs, actions, evidence, metrics and lessons learned.
    #[command(
        after_help = "Examples:\n  kir incident report 7 --format html > incident-7.html\n  kir incident report 7 --format md --chart incident-7.svg"
    )]
    Report(ReportArgs),
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// The bundled scenarios (and with --runs, the drills run into the store).
    List {
        /// The drills run so far, from the store.
        #[arg(long)]
        runs: bool,
    },
    /// Replay a scenario or your own recording; prints what was detected and which incidents opened.
    #[command(after_help = "The recording's times are moved so that its first event happens now (KIR_NOW when set), \
in order; --speed 0 (the default) files everything at once, --speed N replays at N times real time. Incidents are the \
drill's own: titled 'DRILL: …', never merged with real incidents, and left out of kir metrics' real figures. Nobody is \
paged unless --notify is given (the timeline says what would have been sent).\n\nExamples:\n  kir drill run \
exposed-console-cryptojack --plan plan.yaml --store sqlite:kir.db\n  kir drill run --replay our-recording.audit.jsonl \
--format json\n  kir drill run stratus-dump-secrets --speed 10\n  kir incident ack 12 ; kir drill report 3")]
    Run(DrillRunArgs),
    /// The after-action report of drill ID: what was detected when, and how the response went against the plan's targets.
    Report {
        #[arg(value_name = "ID")]
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct DrillRunArgs {
    /// A bundled scenario (kir drill list).
    #[arg(value_name = "SCENARIO", required_unless_present = "replay", conflicts_with = "replay")]
    pub scenario: Option<String>,
    /// Your own recording instead: audit log files or folders, in any form kir hunt reads.
    #[arg(long, value_name = "PATH")]
    pub replay: Vec<PathBuf>,
    /// Times real time; 0 files everything at once.
    #[arg(long, default_value_t = 0.0, value_name = "N")]
    pub speed: f64,
    /// Page the plan's real channels (off by default: a drill must not wake the on-call).
    #[arg(long)]
    pub notify: bool,
    /// Tabletop: walk the team through each drill incident's playbook, step by step, asking on
    /// the terminal (stdin) who does it and what they did; every answer goes on the incident's
    /// timeline with its time, the first acknowledges the incident and a containment step done
    /// contains it. An empty answer skips the step; end of input stops.
    #[arg(long)]
    pub tabletop: bool,
    #[command(flatten)]
    pub source: RuleSource,
}

#[derive(Debug, Args)]
pub struct ReadinessArgs {
    /// A dump of the cluster (`kubectl get -A -o json …`, see below) instead of the live cluster.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The kube-apiserver's static-pod manifest, or its command line in a file.
    #[arg(long, value_name = "FILE")]
    pub apiserver_manifest: Option<PathBuf>,
    /// The audit policy file the API server runs with (audit.k8s.io/v1 Policy).
    #[arg(long, value_name = "FILE")]
    pub audit_policy: Option<PathBuf>,
    /// The evidence signing key responders use (kir evidence keygen).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Send a test notification to each severity owner's channels (opt-in: it reaches real people),
    /// and fail severities-owned when one cannot be reached.
    #[arg(long)]
    pub test_notify: bool,
    /// Audit events per second at the busiest hour, to check the webhook backend's batch settings against.
    #[arg(long, value_name = "N")]
    pub event_rate: Option<f64>,
    /// Namespaces of the platform itself (default kube-system, kube-public, kube-node-lease; repeatable).
    #[arg(long = "system-namespace", value_name = "NS")]
    pub system_namespaces: Vec<String>,
    /// Exit with code 1 when a check at this level or above fails.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Level>,
    /// The rules checked against the audit policy (the built-in pack, and yours with --rules).
    #[command(flatten)]
    pub source: RuleSource,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Only this namespace (default: all namespaces).
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Every namespace.
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Falco alerts (JSON lines, as kir hunt reads them): pods seen connecting to mining-pool ports are flagged.
    #[arg(long, value_name = "PATH")]
    pub alerts: Vec<PathBuf>,
    /// Show at most this many pods (busiest first).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Exit 1 when a pod has the shape of cryptomining.
    #[arg(long)]
    pub fail_on_mining: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Incident number.
    #[arg(value_name = "ID")]
    pub id: i64,
    /// The step to approve (default: the step kir respond is waiting at).
    #[arg(long, value_name = "N")]
    pub step: Option<usize>,
    /// Why, for the timeline.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct RespondArgs {
    /// Incident number.
    #[arg(value_name = "ID")]
    pub id: i64,
    /// Act on this pod (NAMESPACE/NAME, repeatable) instead of the pods the findings name.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub pod: Vec<String>,
    /// Where collect-evidence steps write their bundles.
    #[arg(long, value_name = "DIR", default_value = "evidence")]
    pub out: PathBuf,
    /// Sign the evidence bundles with this key (kir evidence keygen).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Show every step and let the API server validate each action (dryRun=All); change and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Audit log files or folders: collect-evidence steps add the excerpt about each pod.
    #[arg(long, value_name = "PATH")]
    pub audit: Vec<PathBuf>,
    /// Mark this manual step as done by you (it is recorded), then go on.
    #[arg(long, value_name = "STEP")]
    pub confirm: Option<usize>,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Incident number.
    #[arg(value_name = "ID")]
    pub id: i64,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// One line that says what is wrong.
    #[arg(long)]
    pub title: String,
    /// low, medium, high or critical.
    #[arg(long, value_parser = parse_level, default_value = "medium")]
    pub severity: Level,
    /// An incident type of the plan (e.g. cryptomining, credential-access).
    #[arg(long = "type", value_name = "TYPE")]
    pub incident_type: Option<String>,
    /// More words: what you saw and where.
    #[arg(long)]
    pub description: Option<String>,
    /// A role of the plan or a person's name (default: the plan decides by severity).
    #[arg(long, value_name = "ROLE_OR_PERSON")]
    pub assign: Option<String>,
    /// When the first warning sign appeared (RFC 3339 or an age such as 2h): time to detect counts from it.
    #[arg(long, value_name = "TIME")]
    pub seen: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only incidents in this state (repeatable): new, acknowledged, contained, resolved, closed.
    #[arg(long)]
    pub state: Vec<String>,
    /// Only open incidents (new, acknowledged, contained).
    #[arg(long)]
    pub open: bool,
    /// Only this severity or above.
    #[arg(long, value_parser = parse_level)]
    pub severity: Option<Level>,
    #[arg(long = "type", value_name = "TYPE")]
    pub incident_type: Option<String>,
    /// Only incidents owned by this role or person.
    #[arg(long)]
    pub owner: Option<String>,
    /// Only incidents opened since (RFC 3339 or an age such as 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only incidents with a finding from this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct AssignArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    /// A role of the plan (`soc`, `devops-oncall`) or a person (`dana`).
    #[arg(long, value_name = "ROLE_OR_PERSON")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    #[arg(value_name = "TEXT", required = true, num_args = 1..)]
    pub text: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    /// Why, in a few words (goes on the timeline).
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    /// true-positive, false-positive, benign or duplicate.
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct IocArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    /// KIND:VALUE, e.g. ip:203.0.113.7 (repeatable).
    #[arg(value_name = "KIND:VALUE", required = true, num_args = 1..)]
    pub iocs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TickArgs {
    /// The time to act at (RFC 3339), instead of the clock: for drills and tests.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Fire escalations but send nothing (the timeline says so).
    #[arg(long)]
    pub no_notify: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(value_name = "ID")]
    pub id: i64,
    /// Also write the timeline chart as an SVG file.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Incidents opened since (an age such as 90d, or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Args)]
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
    /// Only these rules (id, name or title; `*` stands for any text in an id or name:
    /// `secret-*`; repeatable).
    #[arg(long = "rule", value_name = "RULE")]
    pub rule: Vec<String>,
    /// Only this user (`*` stands for any text: `system:serviceaccount:ci:*`, `*@example.com`; repeatable).
    #[arg(long = "actor", value_name = "USER")]
    pub actor: Vec<String>,
    /// Only this namespace (`*` stands for any text: `team-*`; repeatable).
    #[arg(long = "namespace", short = 'n', value_name = "NS")]
    pub namespace: Vec<String>,
    /// A snapshot of the cluster's roles (`kubectl get -A -o json clusterroles,roles`, or the
    /// readiness dump): a binding is rated by the power of the role it grants, whatever the
    /// role is called. Roles the logs create or change are learned as they come either way.
    #[arg(long, value_name = "FILE")]
    pub cluster_state: Option<PathBuf>,
    /// The cluster these logs came from: findings carry it (`"cluster"` in JSON), bursts count
    /// within it, and `--store` files them so that one incident can follow an identity or an
    /// image across clusters.
    #[arg(long, value_name = "NAME", value_parser = parse_cluster)]
    pub cluster: Option<String>,
    /// Only events at or after this time: RFC 3339 (`2026-11-27T23:50:00Z`), a UTC date and time
    /// (`2026-11-27 23:50`), a date, or an age before now or `KIR_NOW` (`30m`, `2h`, `7d`).
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
    /// With --store or --plan: file the findings into incidents but send no notifications.
    #[arg(long)]
    pub no_notify: bool,
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

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The image the container runs.
    #[arg(long, value_name = "PATH")]
    pub image: PathBuf,
    /// The container's filesystem (export tar, folder, upperdir or checkpoint archive).
    #[arg(long, value_name = "PATH")]
    pub container: PathBuf,
    /// The container folder is an overlay upperdir (only the changes, with whiteouts).
    #[arg(long)]
    pub upper: bool,
    /// Keep files every container runtime writes (/etc/hosts, /dev, ...) in the lists.
    #[arg(long)]
    pub all: bool,
    /// Also scan the added and modified files with the built-in rules.
    #[arg(long)]
    pub scan: bool,
    /// Exit with code 1 when a finding (or scan match) at this level or above is found.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Level>,
    #[command(flatten)]
    pub out: EvidenceOut,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files, folders or tars to scan.
    #[arg(value_name = "PATH", required_unless_present = "list_rules")]
    pub paths: Vec<PathBuf>,
    /// More rules in the built-in YAML form (repeatable).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// SHA-256 indicator lists (repeatable).
    #[arg(long = "hashes", value_name = "FILE")]
    pub hashes: Vec<PathBuf>,
    /// List the rules and exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Exit with code 1 when a match at this level or above is found.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub fail_on: Option<Level>,
    #[command(flatten)]
    pub out: EvidenceOut,
}

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Show a checkpoint archive: container and pod, the process tree with command lines, open
    /// files, sockets, mounts, the filesystem drift, and strings in memory pages.
    #[command(after_help = "Environment values are redacted unless --show-env: they often hold secrets.\n\n\
Examples:\n  kir checkpoint inspect checkpoint-web_shop-nginx-2026-11-28T10:00:00Z.tar\n  kir checkpoint inspect cp.tar --ps-tree --files --sockets\n  \
kir checkpoint inspect cp.tar --search stratum+tcp:// --search-regex '4[0-9AB][1-9A-HJ-NP-Za-km-z]{93}'\n  kir checkpoint inspect cp.tar --image nginx-1.25.tar --format json")]
    Inspect(CheckpointArgs),
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    /// Show the process tree (everything is shown when no section is chosen).
    #[arg(long)]
    pub ps_tree: bool,
    /// Show open files (and the files the rootfs diff holds).
    #[arg(long)]
    pub files: bool,
    /// Show sockets.
    #[arg(long)]
    pub sockets: bool,
    /// Show mounts.
    #[arg(long)]
    pub mounts: bool,
    /// Show environment values instead of redacting them.
    #[arg(long)]
    pub show_env: bool,
    /// Search process memory for this text (repeatable).
    #[arg(long = "search", value_name = "TEXT")]
    pub search: Vec<String>,
    /// Search process memory with this regular expression (repeatable).
    #[arg(long = "search-regex", value_name = "REGEX")]
    pub search_regex: Vec<String>,
    /// The image, to show the container's filesystem drift.
    #[arg(long, value_name = "PATH")]
    pub image: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Check a bundle: every file against the manifest (changed, missing, added), the custody
    /// chain, and the signature. Exit 1 when anything is wrong.
    #[command(
        after_help = "Examples:\n  kir evidence verify evidence/drift-web-20261128T100000Z/\n  kir evidence verify bundle/ --key $(cat kir-evidence.pub)\n  kir evidence verify bundle/ --format json\n\nExit codes: 0 intact, 1 something changed, is missing or was added, the custody chain is broken or the signature fails, 2 not a bundle."
    )]
    Verify(EvidenceVerifyArgs),
    /// Show a bundle's manifest and custody log.
    Show {
        #[arg(value_name = "BUNDLE")]
        bundle: PathBuf,
    },
    /// Append a chain-of-custody entry (copied, verified, handed-over, received, …).
    #[command(
        after_help = "Examples:\n  kir evidence custody bundle/ --action handed-over --note \"to Example IR, ticket 4711\"\n  kir evidence custody bundle/ --action received --as \"ir-firm analyst\""
    )]
    Custody(EvidenceCustodyArgs),
    /// Make an ed25519 signing key: FILE (private, mode 0600) and FILE.pub.
    Keygen {
        #[arg(long, value_name = "FILE", default_value = "kir-evidence.key")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct EvidenceVerifyArgs {
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// The signer's public key (hex, or a .pub file): without it the key the manifest names is
    /// used, which proves integrity but not who signed.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvidenceCustodyArgs {
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    #[arg(long)]
    pub action: String,
    #[arg(long)]
    pub note: Option<String>,
}

/// Where `kir drift` and `kir scan` write their results as an evidence bundle.
#[derive(Debug, Args, Clone)]
pub struct EvidenceOut {
    /// Also write the results as a sealed evidence bundle in this folder.
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// Sign the bundle with this key (`kir evidence keygen`).
    #[arg(long, value_name = "FILE", requires = "evidence")]
    pub sign_key: Option<PathBuf>,
    /// Record the bundle as evidence of this incident.
    #[arg(long, value_name = "ID", requires = "evidence")]
    pub incident: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum CollectCommand {
    /// A pod and what explains it: owners, node, service account and its bindings, events,
    /// logs of every container (current and previous), mounted ConfigMaps and Secrets (values
    /// replaced by their SHA-256), NetworkPolicies and Services that select it, resolved images.
    #[command(
        after_help = "Examples:\n  kir collect pod shop/web-7f9c --out evidence/\n  kir collect pod shop/web-7f9c --out evidence/ --context prod-eu --incident 7 --sign-key kir-evidence.key\n  kir collect pod shop/web-7f9c --out evidence/ --audit /var/log/kubernetes/audit/ --archive\n  kir evidence verify evidence/pod-shop-web-7f9c-20261128T100000Z/"
    )]
    Pod(CollectPodArgs),
    /// A node: object (conditions, taints, attached volumes), its pods, VolumeAttachments,
    /// events, the kubelet's stats summary; with --node-logs its OS logs through the kubelet.
    #[command(after_help = "--node-logs reads /var/log/auth.log, secure, syslog, messages and audit/audit.log and \
the journal of kubelet, containerd, crio and sshd through the API server's node proxy (nodes/proxy, a powerful \
permission: it is in deploy/rbac.yaml's kir-collect-node role only). Nothing is run on the node.\n\nExamples:\n  \
kir collect node ip-10-0-3-17 --out evidence/\n  kir collect node ip-10-0-3-17 --out evidence/ --node-logs --incident 7")]
    Node(CollectNodeArgs),
    /// A namespace: every workload, service, account, config, role, binding, Secrets (values
    /// redacted) and events in it.
    #[command(
        after_help = "Examples:\n  kir collect namespace shop --out evidence/\n  kir collect namespace shop --out evidence/ --context prod-eu --context prod-us"
    )]
    Namespace(CollectNamespaceArgs),
    /// A service account: its bindings in every namespace, the roles they grant (what it can
    /// do), its token Secrets (values redacted), the pods running as it; with --audit every
    /// request it made.
    #[command(
        name = "serviceaccount",
        alias = "sa",
        after_help = "Examples:\n  kir collect serviceaccount ci/jenkins --out evidence/ --audit audit.log.gz"
    )]
    Serviceaccount(CollectServiceaccountArgs),
}

/// What every collection takes.
#[derive(Debug, Args, Clone)]
pub struct CollectCommon {
    /// The folder the bundle is written into (as a new folder named after the subject and time).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Keep Secret values in the bundle (by default each value is replaced by its SHA-256).
    #[arg(long)]
    pub include_secret_values: bool,
    /// Sign the bundle with this key (`kir evidence keygen`).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Record the bundle on this incident's timeline.
    #[arg(long, value_name = "ID")]
    pub incident: Option<i64>,
    /// Audit log files or folders (any form kir hunt reads): the requests about the subject go
    /// into audit/excerpt.jsonl (request and response bodies left out).
    #[arg(long, value_name = "PATH")]
    pub audit: Vec<PathBuf>,
    /// Pack the sealed bundle into one BUNDLE.tar.zst (the folder is removed).
    #[arg(long)]
    pub archive: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CollectPodArgs {
    /// NAMESPACE/NAME (or NAME with --namespace).
    #[arg(value_name = "NAMESPACE/NAME")]
    pub pod: String,
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Volatile data without logging into the node: add an ephemeral container that lists the
    /// processes, connections and recently changed files of the pod's first container through
    /// /proc. It changes the pod's spec (the container stays listed until the pod is deleted).
    #[arg(long)]
    pub debug_container: bool,
    /// The debug container's image (it needs sh, sed, tr, readlink and find: busybox has them).
    #[arg(long, value_name = "IMAGE", default_value = "busybox:1.36")]
    pub debug_image: String,
    /// How long to wait for the debug container to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub debug_wait: String,
    /// Ask the kubelet to checkpoint every container (the ContainerCheckpoint feature, a runtime
    /// that supports it, and nodes/proxy); the archives stay on the node.
    #[arg(long)]
    pub checkpoint: bool,
    /// Create a CSI VolumeSnapshot of every PersistentVolumeClaim the pod mounts.
    #[arg(long)]
    pub snapshot_volumes: bool,
    /// The VolumeSnapshotClass to use (default: the cluster's default class).
    #[arg(long, value_name = "CLASS", requires = "snapshot_volumes")]
    pub snapshot_class: Option<String>,
    #[command(flatten)]
    pub common: CollectCommon,
}

#[derive(Debug, Args, Clone)]
pub struct CollectNodeArgs {
    #[arg(value_name = "NODE")]
    pub node: String,
    /// Also read the node's OS logs through the kubelet (needs nodes/proxy).
    #[arg(long)]
    pub node_logs: bool,
    /// Snapshot the node's disks with your cloud's command. {volume} is each attached volume's
    /// id, {node} the node, {instance} the instance id from the provider ID, {provider_id} the
    /// whole provider ID. Split into words as sh would, run without a shell (each value stays in
    /// its word); values that are not plain IDs are refused. Output and exit code go into the bundle.
    #[arg(long, value_name = "TEMPLATE")]
    pub snapshot_command: Option<String>,
    #[command(flatten)]
    pub common: CollectCommon,
}

#[derive(Debug, Args, Clone)]
pub struct CollectNamespaceArgs {
    #[arg(value_name = "NAMESPACE")]
    pub namespace: String,
    #[command(flatten)]
    pub common: CollectCommon,
}

#[derive(Debug, Args, Clone)]
pub struct CollectServiceaccountArgs {
    /// NAMESPACE/NAME.
    #[arg(value_name = "NAMESPACE/NAME")]
    pub serviceaccount: String,
    #[command(flatten)]
    pub common: CollectCommon,
}

#[derive(Debug, Subcommand)]
pub enum ContainCommand {
    /// Mark a node unschedulable: running pods stay (evidence first), nothing new lands on it.
    #[command(
        after_help = "Examples:\n  kir contain cordon node ip-10-0-3-17 --dry-run\n  kir contain cordon node ip-10-0-3-17 --incident 7\n  kir contain undo act-3f9c2a1b7e\n\nIt reads the node first: a node already cordoned is left as it is (nothing changes, undo keeps it cordoned)."
    )]
    Cordon(NodeTarget),
    /// Cordon a node and taint it kir.dev/quarantine=ACTION_ID:NoSchedule (DaemonSets stay off too).
    #[command(after_help = "The cordon keeps new pods off; the taint also keeps off DaemonSet pods, which tolerate a \
plain cordon. Pods already running stay running (the taint is NoSchedule, not NoExecute): evidence first. \
kir contain undo takes off only what kir added.\n\nExamples:\n  kir contain quarantine node ip-10-0-3-17 --dry-run\n  \
kir contain quarantine node ip-10-0-3-17 --incident 7")]
    Quarantine(NodeTarget),
    /// Cordon a node and evict its pods (PodDisruptionBudgets respected, DaemonSets skipped).
    #[command(after_help = "Draining ends the node's pods: their memory and writable layers are gone. kir refuses \
while a pod it would evict has no evidence collected (kir collect pod), unless --force. Evictions a \
PodDisruptionBudget refuses are retried until --timeout, then reported as blocked. Undo uncordons; evicted pods \
are not brought back (their controllers run them elsewhere).\n\nExamples:\n  kir contain drain node ip-10-0-3-17 --dry-run\n  \
kir contain drain node ip-10-0-3-17 --timeout 10m --incident 7")]
    Drain(DrainArgs),
    /// Cut a pod off the network (deny all ingress and egress), leaving it running for forensics.
    #[command(after_help = "kir labels that pod only (kir.dev/quarantine=ACTION_ID) and creates one NetworkPolicy, \
kir-quarantine-POD-HASH (a hash of the pod's namespace, name and UID: one policy per pod), that selects the label \
and allows nothing in or out (--allow-cidr keeps the responders' network \
reachable). Running it again changes nothing; kir contain undo removes both.\n\nExamples:\n  kir contain isolate pod shop/web-7f9c --dry-run\n  \
kir contain isolate pod shop/web-7f9c --incident 7 --allow-cidr 10.10.0.0/24")]
    Isolate(IsolateArgs),
    /// Label a pod or node as under investigation (kir.dev/investigation, kir.dev/incident).
    #[command(after_help = "KIND is pod (NAMESPACE/NAME) or node (NAME).\n\nExamples:\n  \
kir contain label pod shop/web-7f9c --incident 7\n  kir contain label node ip-10-0-3-17 --incident 7\n  kubectl get pods -A -l kir.dev/investigation")]
    Label(KindTarget),
    /// Remove every RBAC grant to a service account (and its token Secrets), a user or a group.
    #[command(after_help = "KIND is serviceaccount (NAMESPACE/NAME), user or group (NAME). A binding that names only \
that subject is deleted; a binding shared with others loses only that entry. For a service account its legacy \
token Secrets are deleted too. Copies are kept in kir's store for undo (Secret values are not kept: created again, \
the token controller issues new tokens, so a stolen token stays dead). Putting a binding back (undo) needs bind \
on its role or every permission it grants; kir asks before it changes anything.\n\nExamples:\n  \
kir contain revoke serviceaccount ci/jenkins --dry-run\n  kir contain revoke user alice --incident 7\n  kir contain revoke group dev-team")]
    Revoke(KindTarget),
    /// Scale a Deployment, StatefulSet or ReplicaSet to zero replicas (undo restores the count).
    #[command(
        name = "scale-down",
        after_help = "KIND is deployment, statefulset or replicaset; the target is \
NAMESPACE/NAME. Its pods end: kir refuses while one of them has no evidence collected (kir collect pod), unless \
--force.\n\nExamples:\n  kir contain scale-down deployment shop/web --dry-run\n  kir contain scale-down deployment shop/web --incident 7"
    )]
    ScaleDown(KindTarget),
    /// Suspend a CronJob (no new Jobs; running ones stay).
    #[command(after_help = "Examples:\n  kir contain suspend cronjob shop/backup --incident 7")]
    Suspend(KindTarget),
    /// Delete a pod (gracefully). Cannot be undone: collect evidence first.
    #[command(after_help = "kir refuses while the pod has no evidence collected (kir collect pod), unless --force. \
The pod as it was is kept in the action record (kir contain list --format json).\n\nExamples:\n  \
kir contain delete pod shop/web-7f9c --incident 7")]
    Delete(KindTarget),
    /// Reverse a recorded action (the state before it was saved).
    #[command(after_help = "Undo acts on the cluster the action changed, or not at all: the kube-system UID of the \
current context must be the recorded one. It takes back only what the action did (a node cordoned before kir \
stays cordoned). A failed action was taken back when it failed: undo says so, or names what could not be taken \
back, for a person to set right.\n\nExamples:\n  kir contain list\n  kir contain undo act-3f9c2a1b7e")]
    Undo {
        #[arg(value_name = "ACTION_ID")]
        action_id: String,
    },
    /// List the recorded actions (and the evidence collections they are checked against).
    List,
}

/// What every containment action takes.
#[derive(Debug, Args, Clone)]
pub struct ActionArgs {
    /// Show the exact requests and let the API server validate them (dryRun=All); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Record the action on this incident's timeline.
    #[arg(long, value_name = "ID")]
    pub incident: Option<i64>,
    /// Go ahead even though evidence the action destroys has not been collected.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NodeTarget {
    /// Always `node`.
    #[arg(value_name = "KIND", value_parser = ["node"])]
    pub kind: String,
    #[arg(value_name = "NODE")]
    pub node: String,
    #[command(flatten)]
    pub common: ActionArgs,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    #[command(flatten)]
    pub target: NodeTarget,
    /// Give up on evictions still refused (PodDisruptionBudgets) after this long.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
    /// Wait this long between attempts of a refused eviction.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub retry_every: String,
}

#[derive(Debug, Args)]
pub struct IsolateArgs {
    /// Always `pod`.
    #[arg(value_name = "KIND", value_parser = ["pod"])]
    pub kind: String,
    /// NAMESPACE/NAME.
    #[arg(value_name = "NAMESPACE/NAME")]
    pub pod: String,
    /// Keep this network reachable in both directions (repeatable), e.g. the responders' subnet.
    #[arg(long = "allow-cidr", value_name = "CIDR")]
    pub allow_cidr: Vec<String>,
    #[command(flatten)]
    pub common: ActionArgs,
}

#[derive(Debug, Args)]
pub struct KindTarget {
    /// What kind of object (see below).
    #[arg(value_name = "KIND")]
    pub kind: String,
    /// NAMESPACE/NAME, or NAME for cluster-wide kinds.
    #[arg(value_name = "TARGET")]
    pub target: String,
    #[command(flatten)]
    pub common: ActionArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Plain HTTP only on a loopback address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// TLS certificate (PEM), for listening beyond loopback.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA whose client certificates may send events (mTLS).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Also accept Kubernetes tokens (TokenReview), with the role the cluster's RBAC grants on
    /// kir.dev (docs/serve.md): the cluster decides who may approve. Uses --kubeconfig/--context,
    /// else the in-cluster service account.
    #[arg(long)]
    pub kube_auth: bool,
    /// Choose the replica that runs live detection and the escalation ticker through this
    /// Kubernetes Lease (inside a cluster: deploy/base) instead of the store's lock (a PostgreSQL
    /// advisory lock, or a file lock beside SQLite). Uses --kubeconfig/--context, else the
    /// in-cluster service account; the holder is named by POD_NAME.
    #[arg(long, value_name = "NAME")]
    pub leader_lease: Option<String>,
    /// The Lease's namespace (default: POD_NAMESPACE, else the service account's namespace).
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    pub leader_lease_namespace: Option<String>,
    #[command(flatten)]
    pub source: RuleSource,
    /// Report requests still waiting for their last stage once the stream was quiet this long.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub flush_after: String,
    /// Warn (log and /metrics) when no event came for this long.
    #[arg(long, value_name = "DURATION")]
    pub silence_after: Option<String>,
    /// How often the escalation timers are checked.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub tick: String,
    /// Batches stored at once at most; one more is answered 429.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_in_flight: usize,
    /// Events stored but not yet through detection at most; beyond, receivers answer 429.
    #[arg(long, value_name = "N", default_value_t = 500_000)]
    pub max_lag: i64,
    /// Largest request body, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub body_limit_mib: usize,
    /// Log format: text for people, json for log pipelines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token; only the token is printed (on stdout), once.
    Create {
        /// viewer, responder, approver, admin or ingest.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// Who or what holds it: it names every timeline entry the token writes.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The cluster an ingest token sends for: every event it delivers is labelled with it
        /// (findings and incidents then say which cluster), and a receiver URL's `?cluster=`
        /// naming another is refused. One token per cluster: `--cluster prod-eu-1`.
        #[arg(long, value_name = "NAME", value_parser = parse_cluster)]
        cluster: Option<String>,
    },
    /// Every token (names, roles, when made and revoked; never a secret).
    List,
    /// Revoke the live token named NAME.
    Revoke {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// `--cluster NAME`, checked where it is typed.
pub fn parse_cluster(text: &str) -> Result<String, String> {
    kir_core::cluster_name(text).map(str::to_string)
}
