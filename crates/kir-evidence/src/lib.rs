//! Evidence bundles (format `kir.evidence/v1`, documented in `docs/evidence.md`):
//!
//! ```text
//! BUNDLE/
//!   manifest.json       every file with size and SHA-256, who collected, from where, when
//!   manifest.json.sig   optional ed25519 signature over manifest.json's bytes (hex)
//!   custody.jsonl       chain of custody: one JSON object a line, each with the SHA-256 of the line before
//!   …                   the evidence files
//! ```
//!
//! Invariants: the manifest is written once, after every file (a bundle is sealed); the custody
//! log is only appended to; verification reads every byte and reports each changed, missing or
//! added file and each broken link of the chain, never stopping at the first.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const FORMAT: &str = "kir.evidence/v1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.json.sig";
pub const CUSTODY: &str = "custody.jsonl";
const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Collector {
    /// The login name and host of whoever ran kir.
    pub user: String,
    pub host: String,
    /// The kubeconfig user and context, when collected from a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cluster {
    pub server: String,
    /// The UID of the kube-system namespace: a cluster's identity that survives renames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_system_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    /// Relative to the bundle, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// RFC 3339 (UTC) when it was written into the bundle.
    pub collected: String,
    /// Where it came from: an API request, a command, an input file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub bundle_id: String,
    pub kir_version: String,
    /// What the bundle is about: `pod shop/web-7f9c`.
    pub subject: String,
    pub created: String,
    pub sealed: String,
    pub collector: Collector,
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
    pub files: Vec<FileRecord>,
    /// The signing key's public half, when the bundle is signed (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustodyEntry {
    pub seq: u64,
    pub at: String,
    pub who: String,
    /// `collected`, `sealed`, `signed`, `copied`, `verified`, `handed-over`, `received`, …
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// SHA-256 of manifest.json when the entry was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// SHA-256 of the previous line's bytes (zeros for the first).
    pub prev: String,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Who runs kir, as custody records name them: `user@host`.
pub fn local_identity() -> Collector {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    Collector { user, host, kube_user: None, context: None }
}

/// A safe relative path inside a bundle: no `..`, no absolute paths, no reserved names.
fn checked_relative(path: &str) -> Result<PathBuf, Error> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Error::Invalid(format!("{path:?} is not a plain relative path inside the bundle")));
    }
    if [MANIFEST, SIGNATURE, CUSTODY].contains(&path) {
        return Err(Error::Invalid(format!("{path:?} is reserved for the bundle's own records")));
    }
    Ok(p.to_path_buf())
}

/// Writes a bundle: files first, then the sealed manifest, then (optionally) its signature.
pub struct BundleWriter {
    dir: PathBuf,
    manifest: Manifest,
    who: String,
    prefix: Option<String>,
}

impl BundleWriter {
    /// Creates `parent/NAME` (which must not exist yet) for a bundle about `subject`.
    pub fn create(parent: &Path, name: &str, subject: &str, collector: Collector) -> Result<BundleWriter, Error> {
        checked_relative(name)?;
        let dir = parent.join(name);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let created = now();
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
        let who = format!("{}@{}", collector.user, collector.host);
        Ok(BundleWriter {
            dir,
            who,
            prefix: None,
            manifest: Manifest {
                format: FORMAT.into(),
                bundle_id: hex::encode(seed),
                kir_version: env!("CARGO_PKG_VERSION").into(),
                subject: subject.into(),
                created: created.clone(),
                sealed: String::new(),
                collector,
                clusters: Vec::new(),
                incident: None,
                files: Vec::new(),
                signed_by: None,
            },
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_incident(&mut self, id: Option<i64>) {
        self.manifest.incident = id;
    }

    pub fn add_cluster(&mut self, cluster: Cluster) {
        self.manifest.clusters.push(cluster);
    }

    /// Files added from now on go under `prefix/` (one folder per cluster when a bundle holds
    /// several).
    pub fn set_prefix(&mut self, prefix: Option<&str>) {
        self.prefix = prefix.map(str::to_string);
    }

    /// Adds a file from bytes.
    pub fn add(&mut self, path: &str, bytes: &[u8], source: Option<&str>) -> Result<(), Error> {
        self.add_reader(path, bytes, source)
    }

    /// Adds a file from a stream, hashing as it writes.
    pub fn add_reader(&mut self, path: &str, mut reader: impl Read, source: Option<&str>) -> Result<(), Error> {
        let prefixed;
        let path = match &self.prefix {
            Some(p) => {
                prefixed = format!("{p}/{path}");
                prefixed.as_str()
            }
            None => path,
        };
        let rel = checked_relative(path)?;
        if self.manifest.files.iter().any(|f| f.path == path) {
            return Err(Error::Invalid(format!("{path} is already in the bundle")));
        }
        let full = self.dir.join(&rel);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&full).map_err(io(&full))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io(&full))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(io(&full))?;
            size += n as u64;
        }
        file.sync_all().map_err(io(&full))?;
        self.manifest.files.push(FileRecord {
            path: path.to_string(),
            size,
            sha256: hex::encode(hasher.finalize()),
            collected: now(),
            source: source.map(str::to_string),
        });
        Ok(())
    }

    /// Seals the bundle: writes manifest.json, the custody log's first entries and, with a key,
    /// the signature. Returns the bundle's folder.
    pub fn finish(mut self, key: Option<&SigningKey>) -> Result<PathBuf, Error> {
        self.manifest.sealed = now();
        self.manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(k) = key {
            self.manifest.signed_by = Some(hex::encode(k.verifying_key().to_bytes()));
        }
        let bytes = serde_json::to_vec_pretty(&self.manifest).map_err(|e| Error::Invalid(e.to_string()))?;
        let manifest_path = self.dir.join(MANIFEST);
        std::fs::write(&manifest_path, &bytes).map_err(io(&manifest_path))?;
        let digest = sha256_hex(&bytes);
        let note = format!("{} files from {}", self.manifest.files.len(), self.manifest.subject);
        append_custody(&self.dir, &self.who, "collected", Some(&note), Some(&digest))?;
        if let Some(k) = key {
            let sig = k.sign(&bytes);
            let sig_path = self.dir.join(SIGNATURE);
            std::fs::write(&sig_path, hex::encode(sig.to_bytes())).map_err(io(&sig_path))?;
            append_custody(&self.dir, &self.who, "signed", Some("ed25519 over manifest.json"), Some(&digest))?;
        }
        Ok(self.dir)
    }
}

/// Appends one entry to a bundle's custody log, chained to the last one.
pub fn append_custody(
    dir: &Path,
    who: &str,
    action: &str,
    note: Option<&str>,
    manifest_sha256: Option<&str>,
) -> Result<CustodyEntry, Error> {
    let path = dir.join(CUSTODY);
    let existing = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::Io { path: path.display().to_string(), source: e }),
    };
    let lines: Vec<&[u8]> = existing.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let prev = lines.last().map(|l| sha256_hex(l)).unwrap_or_else(|| ZERO.into());
    let manifest_sha256 = match manifest_sha256 {
        Some(m) => Some(m.to_string()),
        None => std::fs::read(dir.join(MANIFEST)).ok().map(|b| sha256_hex(&b)),
    };
    let entry = CustodyEntry {
        seq: lines.len() as u64 + 1,
        at: now(),
        who: who.into(),
        action: action.into(),
        note: note.map(str::to_string),
        manifest_sha256,
        prev,
    };
    let mut line = serde_json::to_vec(&entry).map_err(|e| Error::Invalid(e.to_string()))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
    f.write_all(&line).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(entry)
}

/// What verification found; `ok()` when nothing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub bundle: String,
    pub files_checked: usize,
    pub changed: Vec<String>,
    pub missing: Vec<String>,
    pub added: Vec<String>,
    /// Custody log problems: `line 3: prev does not match line 2`.
    pub custody: Vec<String>,
    pub custody_entries: usize,
    /// `valid`, `invalid`, `absent` (never signed, no key given), `missing` (a key was given but
    /// there is no signature) or `key mismatch`.
    pub signature: String,
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.changed.is_empty()
            && self.missing.is_empty()
            && self.added.is_empty()
            && self.custody.is_empty()
            && self.problems.is_empty()
            && self.signature != "invalid"
            && self.signature != "missing"
            && self.signature != "key mismatch"
    }
}

pub fn read_manifest(dir: &Path) -> Result<(Manifest, Vec<u8>), Error> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let m: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("{}: not a kir manifest: {e}", path.display())))?;
    if m.format != FORMAT {
        return Err(Error::Invalid(format!("{}: format {:?}, this kir reads {FORMAT}", path.display(), m.format)));
    }
    Ok((m, bytes))
}

/// Checks every file, the custody chain and the signature. `trusted_key` pins the signer (hex
/// public key); without it the key named in the manifest is used, which proves integrity but
/// not who signed.
pub fn verify(dir: &Path, trusted_key: Option<&str>) -> Result<Report, Error> {
    let (manifest, bytes) = read_manifest(dir)?;
    let mut r = Report { bundle: dir.display().to_string(), ..Default::default() };
    let mut listed: BTreeMap<String, &FileRecord> = BTreeMap::new();
    for f in &manifest.files {
        if checked_relative(&f.path).is_err() {
            r.problems.push(format!("manifest names an unsafe path {:?}", f.path));
            continue;
        }
        listed.insert(f.path.clone(), f);
    }
    for (path, f) in &listed {
        let full = dir.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.is_file() => {
                let hash = std::fs::File::open(&full).and_then(|mut file| {
                    let mut h = Sha256::new();
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        let n = file.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                    }
                    Ok(hex::encode(h.finalize()))
                });
                match hash {
                    Ok(h) if h == f.sha256 && m.len() == f.size => {}
                    Ok(_) => r.changed.push(path.clone()),
                    Err(e) => r.problems.push(format!("{path}: {e}")),
                }
                r.files_checked += 1;
            }
            Ok(_) => r.changed.push(path.clone()),
            Err(_) => r.missing.push(path.clone()),
        }
    }
    // Files on disk the manifest does not know.
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, rel)) = stack.pop() {
        let Ok(listing) = std::fs::read_dir(&d) else { continue };
        for e in listing.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push((e.path(), path));
            } else if rel.is_empty() && [MANIFEST, SIGNATURE, CUSTODY].contains(&name.as_str()) {
                continue;
            } else if !listed.contains_key(&path) {
                r.added.push(path);
            }
        }
    }
    r.added.sort();
    check_custody(dir, &bytes, &mut r);
    let sig_path = dir.join(SIGNATURE);
    r.signature = match std::fs::read_to_string(&sig_path) {
        Err(_) if manifest.signed_by.is_some() => "invalid".into(),
        // A pinned key expects a signature: a bundle stripped of it is not the one signed.
        Err(_) if trusted_key.is_some() => "missing".into(),
        Err(_) => "absent".into(),
        Ok(text) => {
            let key_hex = trusted_key.map(str::to_string).or(manifest.signed_by.clone());
            match (key_hex, &manifest.signed_by) {
                (Some(k), Some(named)) if trusted_key.is_some() && &k != named => "key mismatch".into(),
                (Some(k), _) => match (parse_public(&k), parse_signature(text.trim())) {
                    (Some(key), Some(sig)) if key.verify(&bytes, &sig).is_ok() => "valid".into(),
                    _ => "invalid".into(),
                },
                (None, _) => "invalid".into(),
            }
        }
    };
    Ok(r)
}

fn check_custody(dir: &Path, manifest_bytes: &[u8], r: &mut Report) {
    let Ok(bytes) = std::fs::read(dir.join(CUSTODY)) else {
        r.custody.push("custody.jsonl is missing".into());
        return;
    };
    let mut prev = ZERO.to_string();
    let manifest_hash = sha256_hex(manifest_bytes);
    for (i, line) in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
        let n = i + 1;
        r.custody_entries = n;
        match serde_json::from_slice::<CustodyEntry>(line) {
            Ok(e) => {
                if e.prev != prev {
                    r.custody.push(format!("line {n}: the chain is broken (prev does not match line {})", n - 1));
                }
                if e.seq != n as u64 {
                    r.custody.push(format!("line {n}: sequence number {} out of order", e.seq));
                }
                if let Some(m) = &e.manifest_sha256
                    && m != &manifest_hash
                {
                    r.custody.push(format!("line {n} ({}): recorded a different manifest", e.action));
                }
            }
            Err(e) => r.custody.push(format!("line {n}: not a custody entry: {e}")),
        }
        prev = sha256_hex(line);
    }
    if r.custody_entries == 0 {
        r.custody.push("custody.jsonl is empty".into());
    }
}

fn parse_public(hex_key: &str) -> Option<VerifyingKey> {
    let b: [u8; 32] = hex::decode(hex_key.trim()).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&b).ok()
}

fn parse_signature(hex_sig: &str) -> Option<Signature> {
    let b: [u8; 64] = hex::decode(hex_sig).ok()?.try_into().ok()?;
    Some(Signature::from_bytes(&b))
}

/// A new signing key: (private key hex, public key hex).
pub fn keygen() -> Result<(String, String), Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| Error::Invalid(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&secret);
    Ok((hex::encode(secret), hex::encode(key.verifying_key().to_bytes())))
}

/// Reads a private key file written by `keygen` (hex, one line).
pub fn load_key(path: &Path) -> Result<SigningKey, Error> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let b: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::Invalid(format!("{}: not a kir evidence key (64 hex characters)", path.display())))?;
    Ok(SigningKey::from_bytes(&b))
}

/// Packs a sealed bundle into `DIR.tar.zst` beside it (the custody log first records the copy)
/// and removes the folder. Returns the archive's path.
pub fn archive(dir: &Path, who: &str) -> Result<PathBuf, Error> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("{} has no folder name", dir.display())))?
        .to_string();
    let target = dir.with_file_name(format!("{name}.tar.zst"));
    append_custody(dir, who, "copied", Some(&format!("packed into {name}.tar.zst")), None)?;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&target).map_err(io(&target))?;
    let encoder = zstd::Encoder::new(file, 9).map_err(io(&target))?;
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    builder.append_dir_all(&name, dir).map_err(io(&target))?;
    let encoder = builder.into_inner().map_err(io(&target))?;
    let file = encoder.finish().map_err(io(&target))?;
    file.sync_all().map_err(io(&target))?;
    std::fs::remove_dir_all(dir).map_err(io(dir))?;
    Ok(target)
}

/// Unpacks a `.tar.zst` bundle into a temporary folder for verification. Returns the folder
/// (kept alive by the returned guard) of the one bundle inside.
pub fn unpack(archive: &Path) -> Result<(tempfile::TempDir, PathBuf), Error> {
    let temp = tempfile::tempdir().map_err(io(archive))?;
    let file = std::fs::File::open(archive).map_err(io(archive))?;
    let decoder = zstd::Decoder::new(file).map_err(io(archive))?;
    let mut tar = tar::Archive::new(decoder);
    // `unpack` refuses members that would land outside the folder (`..`, absolute paths).
    tar.unpack(temp.path())
        .map_err(|e| Error::Invalid(format!("{}: not a readable .tar.zst: {e}", archive.display())))?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(temp.path())
        .map_err(io(archive))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    if dirs.len() != 1 {
        return Err(Error::Invalid(format!(
            "{}: expected one bundle folder inside, found {}",
            archive.display(),
            dirs.len()
        )));
    }
    let dir = dirs.remove(0);
    Ok((temp, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(dir: &Path, key: Option<&SigningKey>) -> PathBuf {
        let mut w = BundleWriter::create(
            dir,
            "b",
            "pod shop/web",
            Collector { user: "dana".into(), host: "laptop".into(), ..Default::default() },
        )
        .unwrap();
        w.add("pod.json", br#"{"kind":"Pod"}"#, Some("GET /api/v1/namespaces/shop/pods/web")).unwrap();
        w.add("logs/web/app.log", b"started\n", None).unwrap();
        w.finish(key).unwrap()
    }

    #[test]
    fn a_sealed_bundle_verifies_and_every_change_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = keygen().unwrap();
        let key = SigningKey::from_bytes(&hex::decode(&secret).unwrap().try_into().unwrap());
        let b = bundle(dir.path(), Some(&key));
        let r = verify(&b, Some(&public)).unwrap();
        assert!(r.ok(), "{r:?}");
        assert_eq!((r.files_checked, r.custody_entries, r.signature.as_str()), (2, 2, "valid"));

        append_custody(&b, "dana@laptop", "handed-over", Some("to the IR firm"), None).unwrap();
        assert!(verify(&b, Some(&public)).unwrap().ok());

        std::fs::write(b.join("logs/web/app.log"), b"started!\n").unwrap();
        std::fs::write(b.join("extra.txt"), b"planted").unwrap();
        std::fs::remove_file(b.join("pod.json")).unwrap();
        let r = verify(&b, Some(&public)).unwrap();
        assert_eq!(r.changed, ["logs/web/app.log"]);
        assert_eq!(r.missing, ["pod.json"]);
        assert_eq!(r.added, ["extra.txt"]);
        assert!(!r.ok());
    }

    #[test]
    fn a_broken_chain_or_signature_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, _) = keygen().unwrap();
        let key = SigningKey::from_bytes(&hex::decode(&secret).unwrap().try_into().unwrap());
        let b = bundle(dir.path(), Some(&key));
        let log = std::fs::read_to_string(b.join(CUSTODY)).unwrap();
        std::fs::write(b.join(CUSTODY), log.replacen("dana@laptop", "mallory@laptop", 1)).unwrap();
        let r = verify(&b, None).unwrap();
        assert!(r.custody.iter().any(|c| c.contains("line 2: the chain is broken")), "{:?}", r.custody);

        let other = dir.path().join("o");
        std::fs::create_dir(&other).unwrap();
        let b2 = bundle(&other, Some(&key));
        let manifest = std::fs::read_to_string(b2.join(MANIFEST)).unwrap();
        std::fs::write(b2.join(MANIFEST), manifest.replace("pod shop/web", "pod shop/other")).unwrap();
        let r = verify(&b2, None).unwrap();
        assert_eq!(r.signature, "invalid");
        assert!(r.custody.iter().any(|c| c.contains("recorded a different manifest")));
        let (_, stranger) = keygen().unwrap();
        assert_eq!(verify(&b, Some(&stranger)).unwrap().signature, "key mismatch");

        // An unsigned bundle passes without a key, not with one.
        let third = dir.path().join("t");
        std::fs::create_dir(&third).unwrap();
        let unsigned = bundle(&third, None);
        assert!(verify(&unsigned, None).unwrap().ok());
        let r = verify(&unsigned, Some(&stranger)).unwrap();
        assert_eq!(r.signature, "missing");
        assert!(!r.ok());
    }

    #[test]
    fn paths_stay_inside_the_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BundleWriter::create(dir.path(), "b", "x", Collector::default()).unwrap();
        for bad in ["../escape", "/etc/passwd", "a/../../b", "manifest.json", ""] {
            assert!(w.add(bad, b"x", None).is_err(), "{bad}");
        }
        assert!(BundleWriter::create(dir.path(), "../out", "x", Collector::default()).is_err());
    }
}
