//! `kir evidence verify / show / custody / keygen`, and writing drift and scan results as bundles.

use std::path::{Path, PathBuf};

use kir_evidence::{BundleWriter, Collector};

use crate::cli::{EvidenceCommand, EvidenceOut, Format, Global};
use crate::output::outln;
use crate::{UserError, exit};

fn who(global: &Global) -> String {
    let me = kir_evidence::local_identity();
    match &global.acting_as {
        Some(name) => format!("{name}@{}", me.host),
        None => format!("{}@{}", me.user, me.host),
    }
}

pub fn run(global: &Global, command: &EvidenceCommand) -> Result<u8, UserError> {
    match command {
        EvidenceCommand::Verify(a) => {
            let key = match &a.key {
                Some(k) if Path::new(k).is_file() => Some(std::fs::read_to_string(k)?.trim().to_string()),
                Some(k) => Some(k.trim().to_string()),
                None => None,
            };
            // An archived bundle is checked in a temporary copy; the archive is not changed.
            let is_archive = a.bundle.to_string_lossy().ends_with(".tar.zst") && a.bundle.is_file();
            let unpacked = if is_archive { Some(kir_evidence::unpack(&a.bundle)?) } else { None };
            let folder = unpacked.as_ref().map(|(_, d)| d.clone()).unwrap_or_else(|| a.bundle.clone());
            let report = kir_evidence::verify(&folder, key.as_deref())?;
            let ok = report.ok();
            // Verification is itself a custody event: recorded only when the bundle is intact
            // (and is a folder: an archive's custody log is inside it, sealed).
            if ok
                && !is_archive
                && let Err(e) = kir_evidence::append_custody(
                    &a.bundle,
                    &who(global),
                    "verified",
                    Some(&format!("signature {}", report.signature)),
                    None,
                )
                && !global.quiet
            {
                // Read-only media: the bundle is intact; only the record of this check is lost.
                eprintln!("kir: the check could not be recorded in the custody log: {e}");
            }
            if matches!(global.format, Format::Json | Format::Jsonl) {
                let mut v = serde_json::to_value(&report)?;
                v["ok"] = serde_json::Value::Bool(ok);
                outln!("{v}");
            } else {
                for (label, list) in
                    [("changed", &report.changed), ("missing", &report.missing), ("added", &report.added)]
                {
                    for p in list {
                        outln!("{label}: {p}");
                    }
                }
                for c in &report.custody {
                    outln!("custody: {c}");
                }
                for p in &report.problems {
                    outln!("problem: {p}");
                }
                outln!(
                    "{}: {} files checked, custody log {} entries, signature {} — {}",
                    report.bundle,
                    report.files_checked,
                    report.custody_entries,
                    report.signature,
                    if ok { "INTACT" } else { "NOT INTACT" }
                );
            }
            Ok(if ok { exit::OK } else { exit::FAIL_ON })
        }
        EvidenceCommand::Show { bundle } => {
            let (manifest, _) = kir_evidence::read_manifest(bundle)?;
            let custody = std::fs::read_to_string(bundle.join(kir_evidence::CUSTODY)).unwrap_or_default();
            if matches!(global.format, Format::Json | Format::Jsonl) {
                let entries: Vec<serde_json::Value> =
                    custody.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
                outln!("{}", serde_json::json!({"manifest": manifest, "custody": entries}));
                return Ok(exit::OK);
            }
            outln!("Bundle {} ({})", bundle.display(), manifest.bundle_id);
            outln!("  subject    {}", manifest.subject);
            outln!("  collector  {}@{}", manifest.collector.user, manifest.collector.host);
            outln!("  created    {} sealed {}", manifest.created, manifest.sealed);
            if let Some(i) = manifest.incident {
                outln!("  incident   #{i}");
            }
            outln!("  signed by  {}", manifest.signed_by.as_deref().unwrap_or("unsigned"));
            outln!("\nFiles:");
            for f in &manifest.files {
                outln!("  {}  {:>10}  {}", f.sha256, f.size, f.path);
            }
            outln!("\nCustody:");
            for line in custody.lines() {
                if let Ok(e) = serde_json::from_str::<kir_evidence::CustodyEntry>(line) {
                    outln!("  {} {} {} {}", e.at, e.who, e.action, e.note.unwrap_or_default());
                }
            }
            Ok(exit::OK)
        }
        EvidenceCommand::Custody(a) => {
            kir_evidence::read_manifest(&a.bundle)?;
            let e = kir_evidence::append_custody(&a.bundle, &who(global), &a.action, a.note.as_deref(), None)?;
            if !global.quiet {
                eprintln!("custody entry {} recorded: {} {}", e.seq, e.who, e.action);
            }
            Ok(exit::OK)
        }
        EvidenceCommand::Keygen { out } => {
            let (secret, public) = kir_evidence::keygen()?;
            write_private(out, &secret)?;
            let pub_path = PathBuf::from(format!("{}.pub", out.display()));
            std::fs::write(&pub_path, format!("{public}\n"))
                .map_err(|e| UserError::usage(format!("{}: {e}", pub_path.display())))?;
            outln!("{public}");
            if !global.quiet {
                eprintln!("wrote {} (private, keep it safe) and {}", out.display(), pub_path.display());
            }
            Ok(exit::OK)
        }
    }
}

fn write_private(path: &Path, secret: &str) -> Result<(), UserError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| UserError::usage(format!("{}: {e} (an existing key is never overwritten)", path.display())))?;
    writeln!(f, "{secret}").map_err(|e| UserError::usage(format!("{}: {e}", path.display())))?;
    Ok(())
}

/// Writes results (name → JSON) as a sealed bundle under `out.evidence`; returns its folder.
pub fn write_results(
    global: &Global,
    out: &EvidenceOut,
    kind: &str,
    subject: &str,
    files: &[(&str, serde_json::Value)],
    inputs: &[&Path],
) -> Result<Option<PathBuf>, UserError> {
    let Some(parent) = &out.evidence else { return Ok(None) };
    let key = out.sign_key.as_deref().map(kir_evidence::load_key).transpose()?;
    let mut collector: Collector = kir_evidence::local_identity();
    if let Some(name) = &global.acting_as {
        collector.user = name.clone();
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let safe: String =
        subject.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect();
    let name = format!("{kind}-{}-{stamp}", safe.trim_matches('-'));
    let mut w = BundleWriter::create(parent, &name, &format!("{kind} {subject}"), collector)?;
    w.set_incident(out.incident);
    for (file, value) in files {
        let bytes = serde_json::to_vec_pretty(value)?;
        let inputs_text = inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        w.add(file, &bytes, Some(&format!("kir {kind} of {inputs_text}")))?;
    }
    let dir = w.finish(key.as_ref())?;
    if !global.quiet {
        eprintln!("kir: evidence bundle {}", dir.display());
    }
    Ok(Some(dir))
}
