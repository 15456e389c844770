//! `kir drift`, `kir scan`, `kir checkpoint inspect`: offline container forensics.

use std::collections::HashSet;
use std::path::Path;

use comfy_table::Cell;
use kir_detect::Level;
use kir_scan::{Match, Scanner};

use crate::cli::{DriftArgs, Format, Global, ScanArgs};
use crate::output::{csv_line, outln, table, use_color};
use crate::{UserError, exit};

fn level(s: &str) -> Level {
    s.parse().unwrap_or(Level::Informational)
}

fn severity_cell(s: &str, color: bool) -> Cell {
    crate::output::severity_cell(level(s), color)
}

/// Scan matches for people: what matched where, and the file's hash.
fn matches_table(matches: &[Match], color: bool) -> comfy_table::Table {
    let mut t = table(color, &["SEVERITY", "RULE", "PATH", "SHA-256", "MATCHED"]);
    for m in matches {
        t.add_row(vec![
            severity_cell(&m.severity, color),
            Cell::new(&m.rule),
            Cell::new(&m.path),
            Cell::new(&m.sha256),
            Cell::new(m.strings.join(", ")),
        ]);
    }
    t
}

/// Feeds a container's files to the scanner while the drift reader streams them.
struct ScanObserver<'s> {
    scanner: &'s Scanner,
    current: Option<(String, kir_scan::FileScan<'s>)>,
    matches: Vec<Match>,
    source: String,
}

impl kir_rootfs::ContentObserver for ScanObserver<'_> {
    fn begin(&mut self, path: &str) {
        self.current = Some((path.to_string(), self.scanner.file()));
    }
    fn chunk(&mut self, bytes: &[u8]) {
        if let Some((_, f)) = self.current.as_mut() {
            f.update(bytes);
        }
    }
    fn end(&mut self) {
        if let Some((p, f)) = self.current.take() {
            self.matches.extend(f.finish(&p, &self.source, true));
        }
    }
}

pub fn drift(global: &Global, args: &DriftArgs) -> Result<u8, UserError> {
    let (image, image_form) = kir_rootfs::open_image(&args.image)?;
    let scanner = if args.scan { Some(Scanner::new(&[], &[])?) } else { None };
    let mut observer = scanner.as_ref().map(|s| ScanObserver {
        scanner: s,
        current: None,
        matches: Vec::new(),
        source: args.container.display().to_string(),
    });
    let (container, container_form) = kir_rootfs::open_container(
        &args.container,
        Some(&image),
        args.upper,
        observer.as_mut().map(|o| o as &mut dyn kir_rootfs::ContentObserver),
    )?;
    let report = kir_drift::compare(&image, &container, &kir_drift::Options { include_runtime: args.all });
    let changed: HashSet<&str> = report
        .added
        .iter()
        .map(|a| a.path.as_str())
        .chain(report.modified.iter().map(|m| m.now.path.as_str()))
        .collect();
    let matches: Vec<Match> = observer
        .map(|o| o.matches.into_iter().filter(|m| changed.contains(m.path.as_str())).collect())
        .unwrap_or_default();
    let mut problems: Vec<String> =
        image.problems.iter().map(|p| format!("image {}: {} {}", p.source, p.path, p.message)).collect();
    problems.extend(container.problems.iter().map(|p| format!("container {}: {} {}", p.source, p.path, p.message)));

    let color = use_color(global);
    let mut v = serde_json::to_value(&report)?;
    v["scan"] = serde_json::to_value(&matches)?;
    v["inputs"] = serde_json::json!({
        "image": {"path": args.image, "form": format!("{image_form:?}"), "entries": image.len()},
        "container": {"path": args.container, "form": format!("{container_form:?}"), "entries": container.len()},
    });
    v["problems"] = serde_json::to_value(&problems)?;
    let subject = args.container.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(dir) = crate::evidence_cmd::write_results(
        global,
        &args.out,
        "drift",
        &subject,
        &[("drift.json", v.clone())],
        &[args.image.as_path(), args.container.as_path()],
    )? && let Some(id) = args.out.incident
    {
        crate::incident_cmd::record_evidence(global, id, &dir, "drift of the container against its image")?;
    }
    match global.format {
        Format::Json | Format::Jsonl => {
            if global.format == Format::Json {
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("{v}");
            }
        }
        Format::Csv => {
            outln!("change,path,type,mode,uid,gid,size,sha256,executable,elf");
            let rows = report
                .added
                .iter()
                .map(|f| ("added", f))
                .chain(report.modified.iter().map(|m| ("modified", &m.now)))
                .chain(report.deleted.iter().map(|f| ("deleted", f)));
            for (change, f) in rows {
                outln!(
                    "{}",
                    csv_line(&[
                        change.into(),
                        f.path.clone(),
                        f.kind.into(),
                        f.mode.clone(),
                        f.uid.to_string(),
                        f.gid.to_string(),
                        f.size.to_string(),
                        f.sha256.clone().unwrap_or_default(),
                        f.executable.to_string(),
                        f.elf.as_ref().map(|e| format!("{} {}", e.arch, e.elf_type)).unwrap_or_default(),
                    ])
                );
            }
        }
        _ => {
            let s = &report.summary;
            if !global.quiet {
                eprintln!(
                    "kir: image {} ({image_form:?}, {} entries) → container {} ({container_form:?}, {} entries)",
                    args.image.display(),
                    image.len(),
                    args.container.display(),
                    container.len()
                );
                for p in &problems {
                    eprintln!("kir: {p}");
                }
            }
            outln!(
                "Drift: {} added ({} executable), {} modified, {} deleted{}; findings: {} critical, {} high, {} medium",
                s.added,
                s.new_executables,
                s.modified,
                s.deleted,
                if s.ignored > 0 { format!(" ({} runtime files left out)", s.ignored) } else { String::new() },
                s.critical,
                s.high,
                s.medium
            );
            if !report.findings.is_empty() {
                let mut t = table(color, &["SEVERITY", "FINDING", "PATH", "WHY"]);
                for f in &report.findings {
                    t.add_row(vec![
                        severity_cell(f.severity, color),
                        Cell::new(f.rule),
                        Cell::new(&f.path),
                        Cell::new(&f.message),
                    ]);
                }
                outln!("\n{t}");
            }
            if !matches.is_empty() {
                outln!("\n{}", matches_table(&matches, color));
            }
            let mut t = table(color, &["CHANGE", "TYPE", "MODE", "OWNER", "SIZE", "WHAT", "PATH"]);
            let rows = report
                .added
                .iter()
                .map(|f| ("added", f, Vec::new()))
                .chain(report.modified.iter().map(|m| ("modified", &m.now, m.changes.clone())))
                .chain(report.deleted.iter().map(|f| ("deleted", f, Vec::new())));
            let mut any = false;
            for (change, f, what) in rows {
                any = true;
                let mut desc: Vec<String> = what.iter().map(|w| w.to_string()).collect();
                if let Some(e) = &f.elf {
                    desc.push(format!(
                        "ELF {} {}{}{}",
                        e.arch,
                        e.elf_type,
                        if e.statically_linked { ", static" } else { "" },
                        if e.stripped { ", stripped" } else { "" }
                    ));
                } else if f.executable {
                    desc.push("executable".into());
                }
                if let Some(l) = &f.link {
                    desc.push(format!("→ {l}"));
                }
                t.add_row(vec![
                    Cell::new(change),
                    Cell::new(f.kind),
                    Cell::new(&f.mode),
                    Cell::new(format!("{}:{}", f.uid, f.gid)),
                    Cell::new(f.size),
                    Cell::new(desc.join("; ")),
                    Cell::new(&f.path),
                ]);
            }
            if any {
                outln!("\n{t}");
            }
        }
    }
    let worst =
        report.findings.iter().map(|f| level(f.severity)).chain(matches.iter().map(|m| level(&m.severity))).max();
    Ok(match (args.fail_on, worst) {
        (Some(min), Some(w)) if w >= min => exit::FAIL_ON,
        _ => exit::OK,
    })
}

pub fn scan(global: &Global, args: &ScanArgs) -> Result<u8, UserError> {
    let scanner = Scanner::new(&args.rules, &args.hashes)?;
    let color = use_color(global);
    if args.list_rules {
        let mut t = table(color, &["SEVERITY", "RULE", "TARGET", "SCOPE", "TITLE"]);
        for r in scanner.rules() {
            t.add_row(vec![
                severity_cell(&r.severity, color),
                Cell::new(&r.id),
                Cell::new(format!("{:?}", r.target).to_lowercase()),
                Cell::new(format!("{:?}", r.scope).to_lowercase()),
                Cell::new(&r.title),
            ]);
        }
        outln!("{t}");
        return Ok(exit::OK);
    }
    let mut matches = Vec::new();
    let mut files = 0;
    let mut failed = false;
    for path in &args.paths {
        let result = scan_one(&scanner, path);
        match result {
            Ok((m, n, problems)) => {
                files += n;
                matches.extend(m);
                if !global.quiet {
                    for p in problems {
                        eprintln!("kir: {}: {p}", path.display());
                    }
                }
            }
            Err(e) => {
                eprintln!("kir: error: {}", e.message);
                failed = true;
            }
        }
    }
    let paths: Vec<&Path> = args.paths.iter().map(|p| p.as_path()).collect();
    let subject =
        args.paths.first().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(dir) = crate::evidence_cmd::write_results(
        global,
        &args.out,
        "scan",
        &subject,
        &[("scan.json", serde_json::json!({"files": files, "matches": matches}))],
        &paths,
    )? && let Some(id) = args.out.incident
    {
        crate::incident_cmd::record_evidence(global, id, &dir, "malware scan")?;
    }
    match global.format {
        Format::Jsonl => {
            for m in &matches {
                outln!("{}", serde_json::to_string(m)?);
            }
        }
        Format::Json => {
            outln!("{}", serde_json::to_string_pretty(&serde_json::json!({"files": files, "matches": matches}))?)
        }
        Format::Csv => {
            outln!("path,rule,severity,sha256,size,strings,source");
            for m in &matches {
                outln!(
                    "{}",
                    csv_line(&[
                        m.path.clone(),
                        m.rule.clone(),
                        m.severity.clone(),
                        m.sha256.clone(),
                        m.size.to_string(),
                        m.strings.join(" "),
                        m.source.clone()
                    ])
                );
            }
        }
        _ => {
            if !matches.is_empty() {
                outln!("{}", matches_table(&matches, color));
            }
            if !global.quiet {
                eprintln!("kir: scanned {files} files: {} matches", matches.len());
            }
        }
    }
    if failed {
        return Ok(exit::USAGE);
    }
    let worst = matches.iter().map(|m| level(&m.severity)).max();
    Ok(match (args.fail_on, worst) {
        (Some(min), Some(w)) if w >= min => exit::FAIL_ON,
        _ => exit::OK,
    })
}

/// A folder (in parallel), or a tar as it streams (image archives: each layer).
fn scan_one(scanner: &Scanner, path: &Path) -> Result<(Vec<Match>, usize, Vec<String>), UserError> {
    let meta = std::fs::metadata(path).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
    if meta.is_dir() && (path.join("index.json").is_file() || path.join("manifest.json").is_file()) {
        return Ok(kir_scan::scan_tar(scanner, path, false)?);
    }
    if meta.is_dir() {
        return Ok(scanner.scan_folder(path)?);
    }
    let mut head = [0u8; 512];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
        f.read(&mut head).unwrap_or(0)
    };
    let compressed = head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let is_tar = n >= 262 && &head[257..262] == b"ustar";
    if compressed || is_tar {
        return Ok(kir_scan::scan_tar(scanner, path, false)?);
    }
    let f = std::fs::File::open(path).map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
    let name = path.display().to_string();
    let m = scanner.scan_reader(&name, &name, f, false)?;
    Ok((m, 1, Vec::new()))
}
