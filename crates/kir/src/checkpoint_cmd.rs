//! `kir checkpoint inspect`.

use comfy_table::Cell;
use kir_checkpoint::{Archive, Options, Process};

use crate::cli::{CheckpointArgs, Format, Global};
use crate::output::{outln, table, use_color};
use crate::{UserError, exit};

pub fn inspect(global: &Global, args: &CheckpointArgs) -> Result<u8, UserError> {
    let archive = Archive::open(&args.archive)?;
    let cp = archive.inspect(&Options { show_env: args.show_env });
    let hits = if args.search.is_empty() && args.search_regex.is_empty() {
        Vec::new()
    } else {
        archive.search(&args.search, &args.search_regex)?
    };
    let drift = match &args.image {
        Some(image) => {
            let (image_tree, _) = kir_rootfs::open_image(image)?;
            let (container, _) = kir_rootfs::open_container(&args.archive, Some(&image_tree), false, None)?;
            Some(kir_drift::compare(&image_tree, &container, &kir_drift::Options::default()))
        }
        None => None,
    };
    // The file list of the rootfs diff, even without the image.
    let diff_files: Vec<String> = match kir_rootfs::TarIndex::open(&args.archive) {
        Ok(index) if index.has("rootfs-diff.tar") => {
            let (layer, _) = kir_rootfs::read_layer(index.member("rootfs-diff.tar")?, "rootfs-diff.tar", None);
            layer.entries.iter().map(|e| e.path.clone()).collect()
        }
        _ => Vec::new(),
    };

    if matches!(global.format, Format::Json | Format::Jsonl) {
        let mut v = serde_json::to_value(&cp)?;
        v["memory_hits"] = serde_json::to_value(&hits)?;
        v["rootfs_diff_files"] = serde_json::to_value(&diff_files)?;
        if let Some(d) = &drift {
            v["drift"] = serde_json::to_value(d)?;
        }
        outln!("{}", if global.format == Format::Json { serde_json::to_string_pretty(&v)? } else { v.to_string() });
        return Ok(exit::OK);
    }

    let color = use_color(global);
    let c = &cp.container;
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    outln!("Checkpoint {}", archive.path());
    outln!("  container   {}", show(&c.name));
    outln!("  pod         {}/{}", show(&c.namespace), show(&c.pod));
    outln!("  image       {}", show(&c.image));
    outln!("  runtime     {} ({})", show(&c.runtime), show(&c.engine));
    outln!("  created     {}", show(&c.created));
    outln!("  checkpoint  {}", show(&c.checkpointed));
    outln!(
        "  memory      {} bytes of pages; rootfs diff {} bytes, {} files",
        cp.pages_bytes,
        cp.rootfs_diff_bytes,
        diff_files.len()
    );
    let all = !(args.ps_tree || args.files || args.sockets || args.mounts);
    if args.ps_tree || all {
        outln!("\nProcess tree:");
        let roots: Vec<&Process> =
            cp.processes.iter().filter(|p| p.ppid == 0 || !cp.processes.iter().any(|q| q.pid == p.ppid)).collect();
        let mut lines = Vec::new();
        for r in roots {
            tree_lines(&cp.processes, r, "", true, &mut lines);
        }
        for l in lines {
            outln!("{l}");
        }
        if cp.processes.iter().any(|p| p.env.is_some()) {
            outln!("\nEnvironment{}:", if args.show_env { "" } else { " (values redacted; --show-env shows them)" });
            for p in &cp.processes {
                if let Some(env) = &p.env {
                    outln!("  {} {}: {}", p.pid, p.comm.as_deref().unwrap_or("?"), env.join(" "));
                }
            }
        }
    }
    if args.files || all {
        let mut t = table(color, &["PID", "FD", "TYPE", "TARGET"]);
        for p in &cp.processes {
            if let Some(cwd) = &p.cwd {
                t.add_row(vec![Cell::new(p.pid), Cell::new("cwd"), Cell::new("DIR"), Cell::new(cwd)]);
            }
            if let Some(exe) = &p.exe {
                t.add_row(vec![Cell::new(p.pid), Cell::new("exe"), Cell::new("REG"), Cell::new(exe)]);
            }
            for f in &p.files {
                t.add_row(vec![Cell::new(p.pid), Cell::new(f.fd), Cell::new(&f.kind), Cell::new(&f.target)]);
            }
        }
        outln!("\nOpen files:\n{t}");
        if !diff_files.is_empty() {
            outln!("\nFiles the container changed (rootfs-diff.tar):");
            for f in &diff_files {
                outln!("  {f}");
            }
        }
    }
    if args.sockets || all {
        let mut t = table(color, &["PID", "FD", "PROTO", "STATE", "LOCAL", "REMOTE"]);
        for p in &cp.processes {
            for s in &p.sockets {
                let proto = if s.protocol.is_empty() { format!("{} {}", s.family, s.kind) } else { s.protocol.clone() };
                t.add_row(vec![
                    Cell::new(p.pid),
                    Cell::new(s.fd),
                    Cell::new(proto),
                    Cell::new(&s.state),
                    Cell::new(&s.local),
                    Cell::new(&s.remote),
                ]);
            }
        }
        outln!("\nSockets:\n{t}");
    }
    if args.mounts || all {
        let mut t = table(color, &["DESTINATION", "TYPE", "SOURCE"]);
        for m in &cp.mounts {
            t.add_row(vec![Cell::new(&m.destination), Cell::new(&m.kind), Cell::new(&m.source)]);
        }
        outln!("\nMounts:\n{t}");
    }
    if let Some(d) = &drift {
        outln!(
            "\nDrift against the image: {} added ({} executable), {} modified, {} deleted; {} findings",
            d.summary.added,
            d.summary.new_executables,
            d.summary.modified,
            d.summary.deleted,
            d.findings.len()
        );
        for f in &d.findings {
            outln!("  [{}] {} {}: {}", f.severity, f.rule, f.path, f.message);
        }
    }
    if !args.search.is_empty() || !args.search_regex.is_empty() {
        let mut t = table(color, &["PID", "ADDRESS", "PATTERN", "CONTEXT"]);
        for h in &hits {
            t.add_row(vec![
                Cell::new(h.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())),
                Cell::new(
                    h.vaddr.map(|v| format!("{v:#x}")).unwrap_or_else(|| format!("{}+{:#x}", h.pages_file, h.offset)),
                ),
                Cell::new(&h.pattern),
                Cell::new(&h.context),
            ]);
        }
        outln!("\nMemory matches ({}):\n{t}", hits.len());
    }
    if !global.quiet {
        for p in &cp.problems {
            eprintln!("kir: {p}");
        }
    }
    Ok(exit::OK)
}

fn tree_lines(all: &[Process], p: &Process, prefix: &str, last: bool, out: &mut Vec<String>) {
    let branch = if prefix.is_empty() {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let cmd = p
        .cmdline
        .as_ref()
        .filter(|c| !c.is_empty())
        .map(|c| c.join(" "))
        .unwrap_or_else(|| p.comm.clone().unwrap_or_default());
    let user = p.uid.map(|u| format!(" uid={u}")).unwrap_or_default();
    out.push(format!("  {prefix}{branch}{} [{}{user}] {cmd}", p.pid, p.state));
    let children: Vec<&Process> = all.iter().filter(|c| c.ppid == p.pid && c.pid != p.pid).collect();
    let next =
        if prefix.is_empty() { "  ".to_string() } else { format!("{prefix}{}", if last { "   " } else { "│  " }) };
    for (i, c) in children.iter().enumerate() {
        if out.len() > 10_000 {
            return;
        }
        tree_lines(all, c, &next, i + 1 == children.len(), out);
    }
}
