//! Drift: a container's filesystem against its image's. Added, modified and deleted entries,
//! each with path, type, mode, owner, size, SHA-256, times and the ELF verdict; findings for the
//! shapes of compromise (new executables, binaries in temporary or hidden folders, changed system
//! binaries, cron entries, SSH keys, account files, `ld.so.preload`); a summary people read first.
//! The JSON form (`kir drift --format json`) is documented in `docs/forensics.md`.
//!
//! Pure: two trees in, a report out.

use kir_rootfs::{ElfInfo, Entry, Kind, Tree};
use serde::Serialize;

/// One entry as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileInfo {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub sha256: Option<String>,
    pub size: u64,
    /// Octal, as `ls -l` users read it: `"0755"`.
    pub mode: String,
    pub uid: u64,
    pub gid: u64,
    /// RFC 3339 modification time.
    pub mtime: Option<String>,
    pub executable: bool,
    pub elf: Option<ElfInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl FileInfo {
    pub fn of(e: &Entry) -> FileInfo {
        FileInfo {
            path: e.path.clone(),
            kind: e.kind.as_str(),
            sha256: e.sha256.clone(),
            size: e.size,
            mode: format!("{:04o}", e.mode),
            uid: e.uid,
            gid: e.gid,
            mtime: jiff::Timestamp::from_second(e.mtime).ok().map(|t| t.to_string()),
            executable: e.executable(),
            elf: e.elf.clone(),
            link: e.link.clone().filter(|_| e.kind == Kind::Symlink),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Modified {
    #[serde(flatten)]
    pub now: FileInfo,
    /// What differs: `content`, `mode`, `owner`, `type`, `link`.
    pub changes: Vec<&'static str>,
    pub before: FileInfo,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: &'static str,
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ignored {
    pub path: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub added: Vec<FileInfo>,
    pub modified: Vec<Modified>,
    pub deleted: Vec<FileInfo>,
    pub findings: Vec<Finding>,
    /// Files every container runtime writes (hosts, resolv.conf, /dev, …), left out of the lists.
    pub ignored: Vec<Ignored>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Files (every type but folders) in each list.
    pub added: usize,
    pub modified: usize,
    pub deleted: usize,
    pub ignored: usize,
    pub new_executables: usize,
    pub directories_added: usize,
    pub directories_deleted: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep the files runtimes write in the lists.
    pub include_runtime: bool,
}

/// Files and folders a container runtime creates or mounts in every container.
fn runtime_reason(e: &Entry) -> Option<&'static str> {
    let p = e.path.as_str();
    if matches!(
        p,
        "/.dockerenv" | "/run/.containerenv" | "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf" | "/etc/mtab"
    ) {
        return Some("written by the container runtime");
    }
    if matches!(p, "/proc" | "/sys" | "/dev") || p.starts_with("/proc/") || p.starts_with("/sys/") {
        return Some("kernel filesystem mount point");
    }
    if p.starts_with("/dev/") && e.kind != Kind::File {
        return Some("device or mount point under /dev");
    }
    // Empty files under /dev are bind-mount targets (/dev/console, Kubernetes'
    // /dev/termination-log); a dropped binary there is not empty.
    if p.starts_with("/dev/") && e.kind == Kind::File && e.size == 0 {
        return Some("mount target under /dev");
    }
    if matches!(p, "/run/secrets" | "/var/run/secrets")
        || p.starts_with("/run/secrets/")
        || p.starts_with("/var/run/secrets/")
    {
        return Some("secret mount point (Kubernetes service account)");
    }
    None
}

fn changes(before: &Entry, now: &Entry) -> Vec<&'static str> {
    let mut out = Vec::new();
    if before.kind != now.kind {
        out.push("type");
    } else if before.kind == Kind::File && before.sha256 != now.sha256 {
        out.push("content");
    }
    if before.kind == Kind::Symlink && now.kind == Kind::Symlink && before.link != now.link {
        out.push("link");
    }
    if before.mode != now.mode {
        out.push("mode");
    }
    if before.uid != now.uid || before.gid != now.gid {
        out.push("owner");
    }
    out
}

pub fn compare(image: &Tree, container: &Tree, options: &Options) -> Drift {
    let mut added = Vec::new();
    let mut modified = Vec::new();
    let mut deleted = Vec::new();
    let mut ignored = Vec::new();
    let keep = |e: &Entry, ignored: &mut Vec<Ignored>| -> bool {
        match runtime_reason(e) {
            Some(reason) if !options.include_runtime => {
                ignored.push(Ignored { path: e.path.clone(), reason });
                false
            }
            _ => true,
        }
    };
    let (mut dirs_added, mut dirs_deleted) = (0, 0);
    for (path, now) in &container.entries {
        match image.get(path) {
            // Folders are where files go, not what changed: counted, not listed (a checkpoint's
            // rootfs diff does not even carry them).
            None if now.kind == Kind::Dir => dirs_added += 1,
            None => {
                if keep(now, &mut ignored) {
                    added.push(FileInfo::of(now));
                }
            }
            Some(before) => {
                let c = changes(before, now);
                if !c.is_empty() && keep(now, &mut ignored) {
                    modified.push(Modified { now: FileInfo::of(now), changes: c, before: FileInfo::of(before) });
                }
            }
        }
    }
    for (path, before) in &image.entries {
        if before.kind == Kind::Dir && !container.entries.contains_key(path) {
            dirs_deleted += 1;
            continue;
        }
        if !container.entries.contains_key(path) && keep(before, &mut ignored) {
            deleted.push(FileInfo::of(before));
        }
    }
    let findings = findings(&added, &modified);
    let mut summary = Summary {
        added: added.len(),
        modified: modified.len(),
        deleted: deleted.len(),
        ignored: ignored.len(),
        new_executables: added.iter().filter(|a| a.executable || a.elf.is_some()).count(),
        directories_added: dirs_added,
        directories_deleted: dirs_deleted,
        ..Default::default()
    };
    for f in &findings {
        match f.severity {
            "critical" => summary.critical += 1,
            "high" => summary.high += 1,
            _ => summary.medium += 1,
        }
    }
    Drift { added, modified, deleted, findings, ignored, summary }
}

fn in_temp(path: &str) -> bool {
    ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/", "/dev/mqueue/"].iter().any(|d| path.starts_with(d))
}

fn hidden(path: &str) -> bool {
    path.split('/').any(|part| part.len() > 1 && part.starts_with('.') && part != "..")
}

fn system_binary(path: &str) -> bool {
    [
        "/bin/",
        "/sbin/",
        "/usr/bin/",
        "/usr/sbin/",
        "/usr/local/bin/",
        "/usr/local/sbin/",
        "/lib/",
        "/lib64/",
        "/lib32/",
        "/usr/lib/",
        "/usr/lib64/",
        "/usr/libexec/",
    ]
    .iter()
    .any(|d| path.starts_with(d))
}

/// The shapes of compromise among the changes.
pub fn findings(added: &[FileInfo], modified: &[Modified]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |rule, severity, path: &str, message: String| {
        out.push(Finding { rule, severity, path: path.to_string(), message });
    };
    let changed = added.iter().map(|f| (f, "added")).chain(modified.iter().map(|m| (&m.now, "modified")));
    for (f, how) in changed {
        let p = f.path.as_str();
        let runnable = f.kind == "file" && (f.executable || f.elf.is_some());
        if runnable && (in_temp(p) || hidden(p)) {
            let place = if in_temp(p) { "a temporary folder" } else { "a hidden folder or file" };
            let what = if f.elf.is_some() { "ELF binary" } else { "executable" };
            push("binary-in-temp-or-hidden-path", "critical", p, format!("{what} {how} in {place}"));
        } else if runnable && how == "added" {
            let what = match &f.elf {
                Some(e) => format!("ELF {} {}", e.arch, e.elf_type),
                None => "executable file".to_string(),
            };
            push("new-executable", "high", p, format!("new {what} not in the image"));
        }
        if how == "modified" && f.kind == "file" && system_binary(p) {
            push("system-binary-changed", "high", p, "a file of the system's binaries or libraries changed".into());
        }
        if f.kind == "file"
            && (f.mode.len() >= 4 && (u32::from_str_radix(&f.mode, 8).unwrap_or(0) & 0o6000) != 0)
            && runnable
        {
            push("setuid-binary", "high", p, format!("set-id bits on a {how} executable (mode {})", f.mode));
        }
        if p == "/etc/crontab"
            || p.starts_with("/etc/cron.")
            || p.starts_with("/etc/cron.d/")
            || p.starts_with("/var/spool/cron/")
        {
            push("cron-entry", "high", p, format!("scheduled task {how}"));
        }
        if p.ends_with("/.ssh/authorized_keys") || p.ends_with("/.ssh/authorized_keys2") || p.starts_with("/etc/ssh/") {
            push("ssh-key", "high", p, format!("SSH access {how}"));
        }
        if matches!(p, "/etc/passwd" | "/etc/shadow" | "/etc/group" | "/etc/gshadow" | "/etc/sudoers")
            || p.starts_with("/etc/sudoers.d/")
        {
            push("account-file-changed", "high", p, format!("accounts or privileges {how}"));
        }
        if p == "/etc/ld.so.preload" {
            push("ld-preload", "critical", p, format!("/etc/ld.so.preload {how}: every program loads its libraries"));
        }
        if matches!(p, "/etc/profile" | "/etc/bash.bashrc" | "/root/.bashrc" | "/root/.profile")
            || p.starts_with("/etc/profile.d/")
        {
            push("shell-startup-changed", "medium", p, format!("shell start-up file {how}"));
        }
    }
    out
}
