//! Embeds the built-in rule pack (`rules/` at the workspace root) into the crate. `rules/scan/`
//! holds the file-scanning rules of `kir scan` (another format, embedded by kir-scan): not Sigma.

use std::path::{Path, PathBuf};

#[path = "src/documents.rs"]
mod documents;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let rules = manifest.join("../../rules");
    println!("cargo:rerun-if-changed={}", rules.display());
    let mut files = Vec::new();
    collect(&rules, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    // Each file's documents parsed here, as JSON: YAML was most of every command's start-up,
    // and the hunt's (serde_json reads the same values many times faster). A file whose YAML
    // does not parse gets none, and is parsed (and its problem reported) at run time.
    let mut values = String::from("&[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&rules).expect("under rules/").to_string_lossy().replace('\\', "/");
        let abs = f.canonicalize().expect("rule file exists");
        out.push_str(&format!("    ({rel:?}, include_str!({:?})),\n", abs.display().to_string()));
        let text = std::fs::read_to_string(f).expect("rule file is UTF-8");
        let parsed: Option<Vec<String>> = documents::documents(&text)
            .iter()
            .map(|(_, doc)| serde_saphyr::from_str::<serde_json::Value>(doc).ok().map(|v| v.to_string()))
            .collect();
        values.push_str(&format!("    &{:?},\n", parsed.unwrap_or_default()));
    }
    out.push_str("]\n");
    values.push_str("]\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("builtin_rules.rs"), out).expect("OUT_DIR is writable");
    std::fs::write(out_dir.join("builtin_values.rs"), values).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir()
            && p.file_name().is_some_and(|n| n == "scan")
            && p.parent() == Some(Path::new(&dir))
            && dir.ends_with("rules")
        {
            continue;
        }
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}
