//! Scanning for malware and attack tools: string rules (the built-in set in `rules/scan/`, and
//! the user's in the same YAML form), SHA-256 indicator lists, and YARA rules through yara-x when
//! built with the `yara` feature. Folders are scanned in parallel; tars and container diffs as
//! they stream. Every match names the path, the rule and the file's SHA-256.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Rules { path: String, message: String },
    #[error("{0}")]
    Input(#[from] kir_rootfs::Error),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// What kind of file a rule looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    #[default]
    Any,
    /// ELF binaries only.
    Elf,
    /// Text only (no NUL byte in the first 8 KiB): scripts, configs.
    Text,
}

/// When a rule applies: always, or only to files a container added or changed (tools that are
/// normal in a base image but not dropped into a running one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Always,
    Drift,
}

/// A string rule: every `all` string, and at least `min_any` of the `any` strings (ASCII case
/// ignored).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub target: Target,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub all: Vec<String>,
    #[serde(default)]
    pub any: Vec<String>,
    #[serde(default = "one")]
    pub min_any: usize,
    /// Path prefixes where the rule does not look (documentation, man pages).
    #[serde(default)]
    pub skip_paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Match {
    pub path: String,
    pub rule: String,
    pub title: String,
    pub severity: String,
    pub sha256: String,
    pub size: u64,
    /// The strings that matched (or `sha256` for an indicator list).
    pub strings: Vec<String>,
    /// The input the file came from.
    pub source: String,
}

pub const BUILTIN: &[(&str, &str)] = &[
    ("miners.yml", include_str!("../../../rules/scan/miners.yml")),
    ("kubernetes-tools.yml", include_str!("../../../rules/scan/kubernetes-tools.yml")),
    ("reverse-shells.yml", include_str!("../../../rules/scan/reverse-shells.yml")),
];

pub struct Scanner {
    #[cfg(feature = "yara")]
    yara: Option<yara_x::Rules>,
    rules: Vec<Rule>,
    automaton: AhoCorasick,
    /// Pattern index → (rule index, `true` for an `all` string, string index).
    patterns: Vec<(usize, bool, usize)>,
    longest: usize,
    hashes: HashMap<String, String>,
}

impl Scanner {
    /// The built-in rules plus `extra` rule files (YAML) and SHA-256 lists.
    pub fn new(extra_rules: &[PathBuf], hash_lists: &[PathBuf]) -> Result<Scanner, Error> {
        let mut rules = Vec::new();
        for (name, text) in BUILTIN {
            rules.extend(parse_rules(text, name)?);
        }
        #[cfg(feature = "yara")]
        let mut yara_sources: Vec<(String, String)> = Vec::new();
        for path in extra_rules {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "yar" | "yara") {
                #[cfg(feature = "yara")]
                {
                    let text = std::fs::read_to_string(path)
                        .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
                    yara_sources.push((path.display().to_string(), text));
                    continue;
                }
                #[cfg(not(feature = "yara"))]
                return Err(Error::Rules {
                    path: path.display().to_string(),
                    message: "YARA rules need kir built with the `yara` feature (cargo install --features yara); the built-in string rules and hash lists work without it".into(),
                });
            }
            let text = std::fs::read_to_string(path)
                .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
            rules.extend(parse_rules(&text, &path.display().to_string())?);
        }
        let mut hashes = HashMap::new();
        for path in hash_lists {
            let text = std::fs::read_to_string(path)
                .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut parts = line.splitn(2, |c: char| c.is_whitespace() || c == ',');
                let hash = parts.next().unwrap_or_default().to_ascii_lowercase();
                if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Error::Rules {
                        path: format!("{}:{}", path.display(), n + 1),
                        message: format!("not a SHA-256: {hash:?}"),
                    });
                }
                let name = parts.next().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("listed hash").to_string();
                hashes.insert(hash, name);
            }
        }
        #[allow(unused_mut)]
        let mut scanner = Self::build(rules, hashes)?;
        #[cfg(feature = "yara")]
        if !yara_sources.is_empty() {
            let mut compiler = yara_x::Compiler::new();
            for (path, text) in &yara_sources {
                compiler.add_source(text.as_str()).map_err(|e| Error::Rules {
                    path: path.clone(),
                    message: e.to_string().lines().next().unwrap_or_default().to_string(),
                })?;
            }
            scanner.yara = Some(compiler.build());
        }
        Ok(scanner)
    }

    fn build(rules: Vec<Rule>, hashes: HashMap<String, String>) -> Result<Scanner, Error> {
        let mut texts: Vec<&str> = Vec::new();
        let mut patterns = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            for (i, s) in rule.all.iter().enumerate() {
                texts.push(s);
                patterns.push((r, true, i));
            }
            for (i, s) in rule.any.iter().enumerate() {
                texts.push(s);
                patterns.push((r, false, i));
            }
        }
        let longest = texts.iter().map(|t| t.len()).max().unwrap_or(1);
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&texts)
            .map_err(|e| Error::Rules { path: "rules".into(), message: e.to_string() })?;
        Ok(Scanner {
            #[cfg(feature = "yara")]
            yara: None,
            rules,
            automaton,
            patterns,
            longest,
            hashes,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A fresh per-file state.
    pub fn file(&self) -> FileScan<'_> {
        FileScan::new(self)
    }

    /// Scans one reader (a file's content).
    pub fn scan_reader(
        &self,
        path: &str,
        source: &str,
        mut reader: impl Read,
        drift: bool,
    ) -> std::io::Result<Vec<Match>> {
        let mut f = self.file();
        kir_rootfs::tree::stream(&mut reader, |chunk| f.update(chunk))?;
        Ok(f.finish(path, source, drift))
    }

    /// Scans a folder, its files in parallel, links never followed.
    pub fn scan_folder(&self, root: &Path) -> Result<(Vec<Match>, usize, Vec<String>), Error> {
        let mut tree = kir_rootfs::Tree::new();
        // The walk only lists; contents are read in parallel below.
        let files = list_files(root, &mut tree)?;
        let source = root.display().to_string();
        let base = source.trim_end_matches('/').to_string();
        let results: Vec<Result<Vec<Match>, String>> = files
            .par_iter()
            .map(|(rel, full)| {
                // Folder scans name files by their real path: several folders may be scanned at once.
                let shown = if rel.starts_with('/') { format!("{base}{rel}") } else { rel.clone() };
                let f = std::fs::File::open(full).map_err(|e| format!("{shown}: {e}"))?;
                self.scan_reader(&shown, &source, f, false).map_err(|e| format!("{shown}: {e}"))
            })
            .collect();
        let mut matches = Vec::new();
        let mut problems: Vec<String> = tree.problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
        for r in results {
            match r {
                Ok(m) => matches.extend(m),
                Err(e) => problems.push(e),
            }
        }
        matches.sort_by(|a, b| a.path.cmp(&b.path).then(a.rule.cmp(&b.rule)));
        Ok((matches, files.len(), problems))
    }
}

fn list_files(root: &Path, tree: &mut kir_rootfs::Tree) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut out = Vec::new();
    let meta =
        std::fs::symlink_metadata(root).map_err(|source| Error::Io { path: root.display().to_string(), source })?;
    if meta.is_file() {
        out.push((root.display().to_string(), root.to_path_buf()));
        return Ok(out);
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) => {
                tree.problems.push(kir_rootfs::Problem {
                    source: String::new(),
                    path: format!("{rel}/"),
                    message: e.to_string(),
                });
                continue;
            }
        };
        for child in listing.flatten() {
            let name = child.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            let Ok(ft) = child.file_type() else { continue };
            if ft.is_dir() {
                stack.push((child.path(), path));
            } else if ft.is_file() {
                out.push((path, child.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn parse_rules(text: &str, origin: &str) -> Result<Vec<Rule>, Error> {
    let rules: Vec<Rule> = serde_saphyr::from_str(text).map_err(|e| Error::Rules {
        path: origin.to_string(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    })?;
    for r in &rules {
        if r.all.is_empty() && r.any.is_empty() {
            return Err(Error::Rules { path: origin.into(), message: format!("rule {} has no strings", r.id) });
        }
        if r.all.iter().chain(&r.any).any(|s| s.len() < 4) {
            return Err(Error::Rules {
                path: origin.into(),
                message: format!("rule {}: strings need 4 bytes or more", r.id),
            });
        }
        if !["critical", "high", "medium", "low", "informational"].contains(&r.severity.as_str()) {
            return Err(Error::Rules {
                path: origin.into(),
                message: format!("rule {}: unknown severity {:?}", r.id, r.severity),
            });
        }
    }
    Ok(rules)
}

/// The scan of one file, fed chunk by chunk.
pub struct FileScan<'s> {
    scanner: &'s Scanner,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    carry: Vec<u8>,
    /// Per rule: which `all` and `any` strings were seen.
    seen_all: Vec<Vec<bool>>,
    seen_any: Vec<Vec<bool>>,
    /// The content, kept for YARA (which needs it whole) up to `YARA_LIMIT`.
    #[cfg(feature = "yara")]
    content: Option<Vec<u8>>,
}

/// Files larger than this are not given to YARA (the string rules and hashes still run).
#[cfg(feature = "yara")]
pub const YARA_LIMIT: usize = 64 << 20;

impl<'s> FileScan<'s> {
    fn new(scanner: &'s Scanner) -> Self {
        FileScan {
            scanner,
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            carry: Vec::new(),
            seen_all: scanner.rules.iter().map(|r| vec![false; r.all.len()]).collect(),
            seen_any: scanner.rules.iter().map(|r| vec![false; r.any.len()]).collect(),
            #[cfg(feature = "yara")]
            content: scanner.yara.as_ref().map(|_| Vec::new()),
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        #[cfg(feature = "yara")]
        if let Some(c) = self.content.as_mut() {
            if c.len() + chunk.len() <= YARA_LIMIT {
                c.extend_from_slice(chunk);
            } else {
                self.content = None;
            }
        }
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if self.head.len() < 8192 {
            let take = (8192 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        // Strings that straddle two chunks: search the tail of the last chunk with this one.
        let mut window = std::mem::take(&mut self.carry);
        let carried = window.len();
        window.extend_from_slice(chunk);
        for m in self.scanner.automaton.find_overlapping_iter(&window) {
            if m.end() <= carried {
                continue;
            }
            let (rule, is_all, index) = self.scanner.patterns[m.pattern().as_usize()];
            if is_all {
                self.seen_all[rule][index] = true;
            } else {
                self.seen_any[rule][index] = true;
            }
        }
        let keep = self.scanner.longest.saturating_sub(1).min(window.len());
        self.carry = window[window.len() - keep..].to_vec();
    }

    /// The matches for the file at `path`; `drift` when it was added or changed in a container.
    pub fn finish(self, path: &str, source: &str, drift: bool) -> Vec<Match> {
        let sha256 = hex::encode(self.hasher.finalize());
        let is_elf = self.head.starts_with(b"\x7fELF");
        let is_text = !self.head.contains(&0);
        let mut out = Vec::new();
        #[cfg(feature = "yara")]
        if let (Some(rules), Some(content)) = (self.scanner.yara.as_ref(), self.content.as_ref()) {
            let mut scanner = yara_x::Scanner::new(rules);
            if let Ok(results) = scanner.scan(content) {
                for rule in results.matching_rules() {
                    let severity = rule
                        .metadata()
                        .find_map(|(k, v)| match (k, v) {
                            ("severity", yara_x::MetaValue::String(s)) => Some(s.to_string()),
                            _ => None,
                        })
                        .unwrap_or_else(|| "high".into());
                    out.push(Match {
                        path: path.to_string(),
                        rule: format!("yara:{}", rule.identifier()),
                        title: rule.identifier().to_string(),
                        severity,
                        sha256: sha256.clone(),
                        size: self.size,
                        strings: rule
                            .patterns()
                            .filter(|p| p.matches().len() > 0)
                            .map(|p| p.identifier().to_string())
                            .collect(),
                        source: source.to_string(),
                    });
                }
            }
        }
        if let Some(name) = self.scanner.hashes.get(&sha256) {
            out.push(Match {
                path: path.to_string(),
                rule: "sha256-ioc".into(),
                title: format!("Listed hash: {name}"),
                severity: "critical".into(),
                sha256: sha256.clone(),
                size: self.size,
                strings: vec!["sha256".into()],
                source: source.to_string(),
            });
        }
        for (r, rule) in self.scanner.rules.iter().enumerate() {
            let target_ok = match rule.target {
                Target::Any => true,
                Target::Elf => is_elf,
                Target::Text => is_text,
            };
            if !target_ok || (rule.scope == Scope::Drift && !drift) {
                continue;
            }
            if rule.skip_paths.iter().any(|p| path.starts_with(p.as_str())) {
                continue;
            }
            let all_ok = self.seen_all[r].iter().all(|s| *s);
            let any_count = self.seen_any[r].iter().filter(|s| **s).count();
            let any_ok = rule.any.is_empty() || any_count >= rule.min_any.max(1);
            if all_ok && any_ok {
                let strings = rule
                    .all
                    .iter()
                    .chain(rule.any.iter().enumerate().filter(|(i, _)| self.seen_any[r][*i]).map(|(_, s)| s))
                    .cloned()
                    .collect();
                out.push(Match {
                    path: path.to_string(),
                    rule: rule.id.clone(),
                    title: rule.title.clone(),
                    severity: rule.severity.clone(),
                    sha256: sha256.clone(),
                    size: self.size,
                    strings,
                    source: source.to_string(),
                });
            }
        }
        out
    }
}

/// Scans every file of a tar (a layer, an export, a diff) as it streams; an image (OCI layout,
/// image archive) layer by layer.
pub fn scan_tar(scanner: &Scanner, path: &Path, drift: bool) -> Result<(Vec<Match>, usize, Vec<String>), Error> {
    struct Observer<'a, 's> {
        scanner: &'s Scanner,
        current: Option<(String, FileScan<'s>)>,
        matches: &'a mut Vec<Match>,
        files: usize,
        source: String,
        drift: bool,
    }
    impl kir_rootfs::ContentObserver for Observer<'_, '_> {
        fn begin(&mut self, path: &str) {
            self.current = Some((path.to_string(), self.scanner.file()));
            self.files += 1;
        }
        fn chunk(&mut self, bytes: &[u8]) {
            if let Some((_, f)) = self.current.as_mut() {
                f.update(bytes);
            }
        }
        fn end(&mut self) {
            if let Some((p, f)) = self.current.take() {
                self.matches.extend(f.finish(&p, &self.source, self.drift));
            }
        }
    }
    let mut matches = Vec::new();
    let mut observer =
        Observer { scanner, current: None, matches: &mut matches, files: 0, source: path.display().to_string(), drift };
    let (tree, _) = kir_rootfs::open_image_observed(path, Some(&mut observer))?;
    let files = observer.files;
    Ok((matches, files, tree.problems.into_iter().map(|p| format!("{}: {}", p.path, p.message)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_load() {
        let s = Scanner::new(&[], &[]).unwrap();
        assert!(s.rules().len() >= 8);
    }

    #[cfg(feature = "yara")]
    #[test]
    fn yara_rules_match_with_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        let rule = dir.path().join("miners.yar");
        std::fs::write(
            &rule,
            "rule planted_miner { meta: severity = \"critical\" strings: $a = \"stratum+tcp://\" condition: $a }",
        )
        .unwrap();
        let s = Scanner::new(&[rule], &[]).unwrap();
        let m = s.scan_reader("/x", "t", &b"connect stratum+tcp://pool:3333"[..], false).unwrap();
        assert!(m.iter().any(|m| m.rule == "yara:planted_miner" && m.severity == "critical"), "{m:?}");
    }

    #[test]
    fn strings_across_chunk_boundaries_match() {
        let s = Scanner::new(&[], &[]).unwrap();
        let text =
            b"{\"pools\": [{\"url\": \"stratum+tcp://pool.example.net:3333\", \"user\": \"x\"}], \"donate-level\": 1}";
        for split in 1..text.len() {
            let mut f = s.file();
            f.update(&text[..split]);
            f.update(&text[split..]);
            let m = f.finish("/tmp/config.json", "t", false);
            assert!(m.iter().any(|m| m.rule == "miner-config"), "split at {split}: {m:?}");
        }
    }
}
