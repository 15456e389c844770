//! A filesystem as a map from absolute path to entry: metadata and content hash, never content.
//! Layers apply to it as the OCI image spec says: whiteouts (`.wh.NAME`) and opaque directories
//! (`.wh..wh..opq`) remove what lower layers had, never what the same layer adds.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::elf::{ElfInfo, ElfSniffer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::Char => "char",
            Kind::Block => "block",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Absolute, normalized: `/usr/bin/env`.
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Permission bits and set-id/sticky bits (`0o4755`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Lower-case hex SHA-256 of the content (regular files).
    pub sha256: Option<String>,
    /// Where a symbolic link points (never followed), or the path a hard link shares content with.
    pub link: Option<String>,
    pub elf: Option<ElfInfo>,
}

impl Entry {
    pub fn executable(&self) -> bool {
        self.kind == Kind::File && self.mode & 0o111 != 0
    }
}

/// Something in the input kir could not use, with where it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub source: String,
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: BTreeMap<String, Entry>,
    pub problems: Vec<Problem>,
}

/// A path from an archive or a folder, made absolute and clean. `None` for paths that would
/// leave the root (`..` above it) or name nothing.
pub fn normalize(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Some("/".into());
    }
    Some(format!("/{}", parts.join("/")))
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The changes one layer (or diff) brings, collected before they apply.
#[derive(Debug, Default)]
pub struct Layer {
    pub entries: Vec<Entry>,
    /// Paths removed from lower layers.
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer contents are hidden.
    pub opaque: Vec<String>,
    /// Hard links: (link path, target path), resolved when the layer applies.
    pub hardlinks: Vec<(String, String, Entry)>,
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// Applies a layer: whiteouts and opaque directories first (they only hide lower layers),
    /// then the layer's own entries, then its hard links.
    pub fn apply(&mut self, layer: Layer) {
        for dir in &layer.opaque {
            self.remove_below(dir);
        }
        for path in &layer.whiteouts {
            self.remove_subtree(path);
        }
        for e in layer.entries {
            if e.kind != Kind::Dir {
                // A file replacing a directory of a lower layer replaces its contents too.
                if self.entries.get(&e.path).is_some_and(|old| old.kind == Kind::Dir) {
                    self.remove_subtree(&e.path);
                }
            } else if self.entries.get(&e.path).is_some_and(|old| old.kind != Kind::Dir) {
                self.entries.remove(&e.path);
            }
            self.entries.insert(e.path.clone(), e);
        }
        for (path, target, mut meta) in layer.hardlinks {
            match self.entries.get(&target) {
                Some(t) if t.kind == Kind::File => {
                    meta.kind = Kind::File;
                    meta.size = t.size;
                    meta.sha256.clone_from(&t.sha256);
                    meta.elf.clone_from(&t.elf);
                    meta.mode = t.mode;
                    meta.uid = t.uid;
                    meta.gid = t.gid;
                    meta.link = Some(target.clone());
                    self.entries.insert(path, meta);
                }
                _ => self.problems.push(Problem {
                    source: String::new(),
                    path: path.clone(),
                    message: format!("hard link to {target}, which is not a file of this image"),
                }),
            }
        }
    }

    /// Removes a path and everything below it.
    pub fn remove_subtree(&mut self, path: &str) {
        self.entries.remove(path);
        self.remove_below(path);
    }

    /// Removes everything below a folder, keeping the folder.
    fn remove_below(&mut self, dir: &str) {
        let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whiteout forms of a layer member's name.
pub enum Whiteout {
    None,
    /// `.wh.NAME`: NAME is deleted.
    Remove(String),
    /// `.wh..wh..opq`: the directory is opaque.
    Opaque(String),
}

pub fn whiteout_of(path: &str) -> Whiteout {
    let dir = parent(path);
    let name = &path[path.rfind('/').map(|i| i + 1).unwrap_or(0)..];
    if name == ".wh..wh..opq" {
        return Whiteout::Opaque(dir.to_string());
    }
    match name.strip_prefix(".wh.") {
        Some(n) if !n.is_empty() => Whiteout::Remove(if dir == "/" { format!("/{n}") } else { format!("{dir}/{n}") }),
        _ => Whiteout::None,
    }
}

/// Sees each chunk of a file's bytes.
pub type ChunkObserver<'a> = &'a mut dyn FnMut(&[u8]);

/// Reads a file's content once: size, SHA-256 and the ELF verdict, with an optional observer of
/// the bytes (the scanner).
pub fn digest(
    reader: impl Read,
    mut observe: Option<ChunkObserver<'_>>,
) -> std::io::Result<(u64, String, Option<ElfInfo>)> {
    let mut hasher = Sha256::new();
    let mut elf = ElfSniffer::new();
    let total = stream(reader, |chunk| {
        hasher.update(chunk);
        elf.update(chunk);
        if let Some(o) = observe.as_mut() {
            o(chunk);
        }
    })?;
    Ok((total, hex::encode(hasher.finalize()), elf.finish()))
}

/// Feeds a reader to `each` in 256 KiB chunks, to its end; returns the byte count.
pub fn stream(mut reader: impl Read, mut each: impl FnMut(&[u8])) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        each(&buf[..n]);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(normalize("./etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(normalize("/a//b/./c/").as_deref(), Some("/a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("/b"));
        assert_eq!(normalize("../../etc/shadow"), None);
        assert_eq!(normalize("a/../../x"), None);
        assert_eq!(normalize("./").as_deref(), Some("/"));
    }

    #[test]
    fn whiteout_names() {
        assert!(matches!(whiteout_of("/etc/.wh.passwd"), Whiteout::Remove(p) if p == "/etc/passwd"));
        assert!(matches!(whiteout_of("/var/.wh..wh..opq"), Whiteout::Opaque(p) if p == "/var"));
        assert!(matches!(whiteout_of("/.wh.x"), Whiteout::Remove(p) if p == "/x"));
        assert!(matches!(whiteout_of("/etc/passwd"), Whiteout::None));
    }
}
