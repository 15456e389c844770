//! Inputs: what a responder has on disk, read as trees without extracting anything.
//!
//! Images: an OCI image layout (folder or tar), a `docker save` / `podman save` archive (old
//! layout with `manifest.json`, or the OCI layout Docker 25+ writes), a single layer tar
//! (plain, gzip or zstd), or a root filesystem folder. Containers: an export tar (`docker
//! export`, `ctr snapshot export`), a folder (a mounted snapshot), an overlayfs upperdir (a diff:
//! whiteouts are character devices 0:0, opaque folders carry `trusted.overlay.opaque`), or a
//! kubelet checkpoint archive (its `rootfs-diff.tar` and `deleted.files` are the diff).
//!
//! Nothing is written and no link is followed: symbolic links are recorded with their target;
//! only regular files are opened.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::tree::{Entry, Kind, Layer, Problem, Tree, Whiteout, digest, normalize, whiteout_of};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn input_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Input { path: path.display().to_string(), message: message.into() }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

/// Sees the content of every regular file as it streams (for the scanner): called with the
/// file's path, then with its bytes in chunks, then with an empty slice at its end.
pub trait ContentObserver {
    fn begin(&mut self, path: &str);
    fn chunk(&mut self, bytes: &[u8]);
    fn end(&mut self);
}

/// Digests a file's content, showing it to the observer between `begin` and `end`.
fn observed_digest(
    reader: impl Read,
    path: &str,
    observer: Option<&mut (dyn ContentObserver + '_)>,
) -> std::io::Result<(u64, String, Option<crate::ElfInfo>)> {
    match observer {
        Some(o) => {
            o.begin(path);
            let r = digest(reader, Some(&mut |b: &[u8]| o.chunk(b)));
            o.end();
            r
        }
        None => digest(reader, None),
    }
}

/// Wraps a stream in the right decompressor, by its first bytes.
pub fn decompress<'a>(reader: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(buf)?))
    } else {
        Ok(Box::new(buf))
    }
}

/// Reads one layer (or export, or diff) tar into the changes it brings.
pub fn read_layer<'o>(
    reader: impl Read,
    source: &str,
    mut observer: Option<&mut (dyn ContentObserver + 'o)>,
) -> (Layer, Vec<Problem>) {
    let mut layer = Layer::default();
    let mut problems = Vec::new();
    let reader = match decompress(reader) {
        Ok(r) => r,
        Err(e) => {
            problems.push(Problem { source: source.into(), path: String::new(), message: format!("cannot read: {e}") });
            return (layer, problems);
        }
    };
    let mut archive = tar::Archive::new(reader);
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                source: source.into(),
                path: String::new(),
                message: format!("not a tar archive: {e}"),
            });
            return (layer, problems);
        }
    };
    for (count, item) in entries.enumerate() {
        let mut member = match item {
            Ok(m) => m,
            Err(e) => {
                problems.push(Problem {
                    source: source.into(),
                    path: String::new(),
                    message: format!("archive ends early or is damaged after {count} entries: {e}"),
                });
                break;
            }
        };
        let raw = String::from_utf8_lossy(&member.path_bytes()).into_owned();
        let Some(path) = normalize(&raw) else {
            problems.push(Problem {
                source: source.into(),
                path: raw,
                message: "path leaves the root (..): skipped".into(),
            });
            continue;
        };
        if path == "/" {
            continue;
        }
        match whiteout_of(&path) {
            Whiteout::Remove(p) => {
                layer.whiteouts.push(p);
                continue;
            }
            Whiteout::Opaque(d) => {
                layer.opaque.push(d);
                continue;
            }
            Whiteout::None => {}
        }
        let header = member.header();
        let mode = header.mode().unwrap_or(0) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let entry_type = header.entry_type();
        let link = member.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut entry = Entry {
            path: path.clone(),
            kind: Kind::File,
            mode,
            uid,
            gid,
            size: 0,
            mtime,
            sha256: None,
            link: None,
            elf: None,
        };
        use tar::EntryType as T;
        match entry_type {
            T::Regular | T::Continuous | T::GNUSparse => {
                match observed_digest(&mut member, &path, observer.as_deref_mut()) {
                    Ok((size, sha, elf)) => {
                        entry.size = size;
                        entry.sha256 = Some(sha);
                        entry.elf = elf;
                    }
                    Err(e) => {
                        problems.push(Problem {
                            source: source.into(),
                            path: path.clone(),
                            message: format!("content cut short: {e}"),
                        });
                        break;
                    }
                }
            }
            T::Directory => entry.kind = Kind::Dir,
            T::Symlink => {
                entry.kind = Kind::Symlink;
                entry.link = link;
            }
            T::Link => {
                let target = link.as_deref().and_then(normalize);
                match target {
                    Some(t) => layer.hardlinks.push((path, t, entry)),
                    None => problems.push(Problem {
                        source: source.into(),
                        path,
                        message: "hard link leaves the root: skipped".into(),
                    }),
                }
                continue;
            }
            T::Char => {
                let (major, minor) = (header.device_major().ok().flatten(), header.device_minor().ok().flatten());
                if major == Some(0) && minor == Some(0) {
                    // overlayfs's whiteout, as found in tars of upperdirs.
                    layer.whiteouts.push(path);
                    continue;
                }
                entry.kind = Kind::Char;
            }
            T::Block => entry.kind = Kind::Block,
            T::Fifo => entry.kind = Kind::Fifo,
            other => {
                problems.push(Problem {
                    source: source.into(),
                    path,
                    message: format!("member of type {other:?} ignored"),
                });
                continue;
            }
        }
        layer.entries.push(entry);
    }
    (layer, problems)
}

/// An input of which nothing could be read is an error, not an empty filesystem.
fn nothing_read(path: &Path, layer: &Layer, problems: &[Problem]) -> Result<(), Error> {
    if layer.entries.is_empty()
        && layer.whiteouts.is_empty()
        && layer.hardlinks.is_empty()
        && let Some(p) = problems.first()
    {
        return Err(input_err(path, format!("not an image or filesystem archive ({})", p.message)));
    }
    Ok(())
}

/// Members of an uncompressed tar file, by name, for reading one without reading the others.
pub struct TarIndex {
    path: PathBuf,
    file: File,
    members: HashMap<String, (u64, u64)>,
    _spool: Option<tempfile::NamedTempFile>,
}

impl TarIndex {
    /// Indexes `path`; a compressed archive is first decompressed to a temporary file.
    pub fn open(path: &Path) -> Result<TarIndex, Error> {
        let mut file = File::open(path).map_err(io_err(path))?;
        let mut magic = [0u8; 4];
        let n = file.read(&mut magic).map_err(io_err(path))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        let mut spool = None;
        if n >= 2 && (magic.starts_with(&[0x1f, 0x8b]) || magic == [0x28, 0xb5, 0x2f, 0xfd]) {
            let mut tmp = tempfile::NamedTempFile::new().map_err(io_err(path))?;
            {
                let mut reader = decompress(&mut file).map_err(io_err(path))?;
                std::io::copy(&mut reader, &mut tmp).map_err(io_err(path))?;
            }
            file = tmp.reopen().map_err(io_err(path))?;
            spool = Some(tmp);
        }
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(&mut file);
            let entries = archive.entries().map_err(|e| input_err(path, format!("not a tar archive: {e}")))?;
            for item in entries {
                let Ok(member) = item else { break };
                if member.header().entry_type().is_file() {
                    let name = String::from_utf8_lossy(&member.path_bytes()).into_owned();
                    let name = name.trim_start_matches("./").to_string();
                    members.insert(name, (member.raw_file_position(), member.size()));
                }
            }
        }
        Ok(TarIndex { path: path.to_path_buf(), file, members, _spool: spool })
    }

    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// A member's size in bytes.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.members.get(name.trim_start_matches("./")).map(|m| m.1)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// One member's bytes, streamed.
    pub fn member(&self, name: &str) -> Result<impl Read + use<>, Error> {
        let (offset, size) = *self
            .members
            .get(name.trim_start_matches("./"))
            .ok_or_else(|| input_err(&self.path, format!("has no member {name}")))?;
        let mut f = self.file.try_clone().map_err(io_err(&self.path))?;
        f.seek(SeekFrom::Start(offset)).map_err(io_err(&self.path))?;
        Ok(f.take(size))
    }

    /// A small member read whole (manifests, configs), at most `limit` bytes.
    pub fn small(&self, name: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.member(name)?.take(limit).read_to_end(&mut out).map_err(io_err(&self.path))?;
        Ok(out)
    }
}

/// Where an image's layers live.
enum Blobs<'a> {
    Dir(&'a Path),
    Tar(&'a TarIndex),
}

impl Blobs<'_> {
    fn read_small(&self, name: &str, origin: &Path) -> Result<Vec<u8>, Error> {
        const LIMIT: u64 = 16 << 20;
        match self {
            Blobs::Dir(d) => {
                let p = d.join(name);
                let f = File::open(&p).map_err(io_err(&p))?;
                let mut out = Vec::new();
                f.take(LIMIT).read_to_end(&mut out).map_err(io_err(&p))?;
                Ok(out)
            }
            Blobs::Tar(t) => t.small(name, LIMIT).map_err(|_| input_err(origin, format!("has no {name}"))),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read>, Error> {
        match self {
            Blobs::Dir(d) => {
                let p = d.join(name);
                Ok(Box::new(File::open(&p).map_err(io_err(&p))?))
            }
            Blobs::Tar(t) => Ok(Box::new(t.member(name)?)),
        }
    }

    fn exists(&self, name: &str) -> bool {
        match self {
            Blobs::Dir(d) => d.join(name).is_file(),
            Blobs::Tar(t) => t.has(name),
        }
    }
}

fn blob_path(digest: &str) -> Option<String> {
    let (algo, hex) = digest.split_once(':')?;
    if hex.is_empty()
        || !hex.chars().all(|c| c.is_ascii_alphanumeric())
        || !algo.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(format!("blobs/{algo}/{hex}"))
}

/// The layer member names of the image, bottom first, from `manifest.json` (docker save) or
/// `index.json` (OCI).
fn layer_names(blobs: &Blobs, origin: &Path) -> Result<Vec<String>, Error> {
    let json = |bytes: Vec<u8>, what: &str| -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&bytes).map_err(|e| input_err(origin, format!("{what} is not valid JSON: {e}")))
    };
    if blobs.exists("manifest.json") {
        let m = json(blobs.read_small("manifest.json", origin)?, "manifest.json")?;
        let layers = m
            .get(0)
            .and_then(|i| i.get("Layers"))
            .and_then(|l| l.as_array())
            .ok_or_else(|| input_err(origin, "manifest.json lists no Layers"))?;
        return Ok(layers.iter().filter_map(|l| l.as_str()).map(|s| s.trim_start_matches("./").to_string()).collect());
    }
    if blobs.exists("index.json") {
        let mut doc = json(blobs.read_small("index.json", origin)?, "index.json")?;
        for _ in 0..4 {
            if let Some(layers) = doc.get("layers").and_then(|l| l.as_array()) {
                return layers
                    .iter()
                    .map(|l| {
                        l.get("digest")
                            .and_then(|d| d.as_str())
                            .and_then(blob_path)
                            .ok_or_else(|| input_err(origin, "a layer without a valid digest"))
                    })
                    .collect();
            }
            let manifests = doc
                .get("manifests")
                .and_then(|m| m.as_array())
                .filter(|m| !m.is_empty())
                .ok_or_else(|| input_err(origin, "index.json lists no manifests"))?;
            let wanted = match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            };
            let pick = manifests
                .iter()
                .find(|m| {
                    m.pointer("/platform/architecture").and_then(|a| a.as_str()) == Some(wanted)
                        && m.pointer("/platform/os").and_then(|a| a.as_str()).is_none_or(|o| o == "linux")
                })
                .unwrap_or(&manifests[0]);
            let digest = pick.get("digest").and_then(|d| d.as_str()).and_then(blob_path);
            let digest = digest.ok_or_else(|| input_err(origin, "a manifest without a valid digest"))?;
            doc = json(blobs.read_small(&digest, origin)?, &digest)?;
        }
        return Err(input_err(origin, "index.json nests too deep"));
    }
    Err(input_err(origin, "neither manifest.json (docker save) nor index.json (OCI layout)"))
}

fn apply_layers<'o>(
    blobs: &Blobs,
    origin: &Path,
    tree: &mut Tree,
    mut observer: Option<&mut (dyn ContentObserver + 'o)>,
) -> Result<usize, Error> {
    let names = layer_names(blobs, origin)?;
    for name in &names {
        let reader = blobs.open(name)?;
        let (layer, problems) = read_layer(reader, &format!("{}:{name}", origin.display()), observer.as_deref_mut());
        tree.apply(layer);
        tree.problems.extend(problems);
    }
    Ok(names.len())
}

/// What an image input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageForm {
    OciLayout,
    ImageArchive,
    LayerTar,
    Folder,
}

/// Reads an image as the merged filesystem its layers make.
pub fn open_image(path: &Path) -> Result<(Tree, ImageForm), Error> {
    open_image_observed(path, None)
}

/// Reads an image, showing every file of every layer (in layer order) to `observer`.
pub fn open_image_observed<'o>(
    path: &Path,
    mut observer: Option<&mut (dyn ContentObserver + 'o)>,
) -> Result<(Tree, ImageForm), Error> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let mut tree = Tree::new();
    if meta.is_dir() {
        if path.join("index.json").is_file() || path.join("manifest.json").is_file() {
            apply_layers(&Blobs::Dir(path), path, &mut tree, observer)?;
            return Ok((tree, ImageForm::OciLayout));
        }
        read_folder(path, false, &mut tree, observer)?;
        return Ok((tree, ImageForm::Folder));
    }
    let index = TarIndex::open(path)?;
    if index.has("manifest.json") || index.has("index.json") {
        apply_layers(&Blobs::Tar(&index), path, &mut tree, observer.as_deref_mut())?;
        return Ok((tree, ImageForm::ImageArchive));
    }
    let file = File::open(path).map_err(io_err(path))?;
    let (layer, problems) = read_layer(file, &path.display().to_string(), observer);
    nothing_read(path, &layer, &problems)?;
    tree.apply(layer);
    tree.problems.extend(problems);
    Ok((tree, ImageForm::LayerTar))
}

/// What a container input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerForm {
    /// The whole filesystem (export tar, mounted snapshot).
    Full,
    /// Only what changed (overlay upperdir), applied on the image.
    UpperDir,
    /// A kubelet checkpoint archive's rootfs-diff.tar and deleted.files, applied on the image.
    Checkpoint,
}

/// Reads a container's filesystem. Diff forms (`upper`, or a checkpoint archive) apply on
/// `image`. `observer` sees the content of every file the container input holds.
pub fn open_container<'o>(
    path: &Path,
    image: Option<&Tree>,
    upper: bool,
    observer: Option<&mut (dyn ContentObserver + 'o)>,
) -> Result<(Tree, ContainerForm), Error> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let need_image =
        |form: &str| input_err(path, format!("is {form}: a diff, give the image it applies to with --image"));
    if meta.is_dir() {
        let looks_upper = matches!(path.file_name().and_then(|n| n.to_str()), Some("upperdir" | "upper" | "diff"));
        if upper || looks_upper {
            let mut diff = Tree::new();
            let (whiteouts, opaque) = read_folder(path, true, &mut diff, observer)?;
            let mut tree = image.cloned().ok_or_else(|| need_image("an overlay upperdir"))?;
            let layer =
                Layer { entries: diff.entries.into_values().collect(), whiteouts, opaque, hardlinks: Vec::new() };
            tree.apply(layer);
            tree.problems.extend(diff.problems);
            return Ok((tree, ContainerForm::UpperDir));
        }
        let mut tree = Tree::new();
        read_folder(path, false, &mut tree, observer)?;
        return Ok((tree, ContainerForm::Full));
    }
    let index = TarIndex::open(path)?;
    if index.has("rootfs-diff.tar") || (index.has("config.dump") && index.names().any(|n| n.starts_with("checkpoint/")))
    {
        let mut tree = image.cloned().ok_or_else(|| need_image("a checkpoint archive"))?;
        if index.has("rootfs-diff.tar") {
            let (layer, problems) =
                read_layer(index.member("rootfs-diff.tar")?, &format!("{}:rootfs-diff.tar", path.display()), observer);
            tree.apply(layer);
            tree.problems.extend(problems);
        }
        if index.has("deleted.files") {
            let bytes = index.small("deleted.files", 64 << 20)?;
            match serde_json::from_slice::<Vec<String>>(&bytes) {
                Ok(list) => {
                    for p in list.iter().filter_map(|p| normalize(p)) {
                        tree.remove_subtree(&p);
                    }
                }
                Err(e) => tree.problems.push(Problem {
                    source: path.display().to_string(),
                    path: "deleted.files".into(),
                    message: format!("not a JSON list of paths: {e}"),
                }),
            }
        }
        return Ok((tree, ContainerForm::Checkpoint));
    }
    drop(index);
    let file = File::open(path).map_err(io_err(path))?;
    let (layer, problems) = read_layer(file, &path.display().to_string(), observer);
    nothing_read(path, &layer, &problems)?;
    let mut tree = Tree::new();
    tree.apply(layer);
    tree.problems.extend(problems);
    Ok((tree, ContainerForm::Full))
}

/// Walks a folder without following links. In `upper` mode, overlay whiteouts (character
/// devices 0:0) and opaque folders are returned instead of recorded as entries.
pub fn read_folder<'o>(
    root: &Path,
    upper: bool,
    tree: &mut Tree,
    mut observer: Option<&mut (dyn ContentObserver + 'o)>,
) -> Result<(Vec<String>, Vec<String>), Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut whiteouts = Vec::new();
    let mut opaque = Vec::new();
    let mut stack = vec![(root.to_path_buf(), "/".to_string())];
    let source = root.display().to_string();
    std::fs::symlink_metadata(root).map_err(io_err(root))?;
    while let Some((dir, rel)) = stack.pop() {
        if upper && rel != "/" && is_opaque(&dir) {
            opaque.push(rel.clone());
        }
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) => {
                tree.problems.push(Problem {
                    source: source.clone(),
                    path: rel.clone(),
                    message: format!("cannot list: {e}"),
                });
                continue;
            }
        };
        let mut children: Vec<_> = listing.flatten().collect();
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            let path = if rel == "/" { format!("/{name}") } else { format!("{rel}/{name}") };
            let full = child.path();
            let meta = match std::fs::symlink_metadata(&full) {
                Ok(m) => m,
                Err(e) => {
                    tree.problems.push(Problem { source: source.clone(), path, message: format!("cannot stat: {e}") });
                    continue;
                }
            };
            let ft = meta.file_type();
            if upper && ft.is_char_device() && meta.rdev() == 0 {
                whiteouts.push(path);
                continue;
            }
            if upper {
                match whiteout_of(&path) {
                    Whiteout::Remove(p) => {
                        whiteouts.push(p);
                        continue;
                    }
                    Whiteout::Opaque(d) => {
                        opaque.push(d);
                        continue;
                    }
                    Whiteout::None => {}
                }
            }
            let mut entry = Entry {
                path: path.clone(),
                kind: Kind::File,
                mode: meta.mode() & 0o7777,
                uid: meta.uid() as u64,
                gid: meta.gid() as u64,
                size: 0,
                mtime: meta.mtime(),
                sha256: None,
                link: None,
                elf: None,
            };
            if ft.is_dir() {
                entry.kind = Kind::Dir;
                stack.push((full, path.clone()));
            } else if ft.is_symlink() {
                entry.kind = Kind::Symlink;
                entry.link = std::fs::read_link(&full).ok().map(|t| t.to_string_lossy().into_owned());
            } else if ft.is_file() {
                let result = File::open(&full).and_then(|f| observed_digest(f, &path, observer.as_deref_mut()));
                match result {
                    Ok((size, sha, elf)) => {
                        entry.size = size;
                        entry.sha256 = Some(sha);
                        entry.elf = elf;
                    }
                    Err(e) => {
                        tree.problems.push(Problem {
                            source: source.clone(),
                            path: path.clone(),
                            message: format!("cannot read: {e}"),
                        });
                        entry.size = meta.size();
                    }
                }
            } else if ft.is_char_device() {
                entry.kind = Kind::Char;
            } else if ft.is_block_device() {
                entry.kind = Kind::Block;
            } else if ft.is_fifo() {
                entry.kind = Kind::Fifo;
            } else if ft.is_socket() {
                entry.kind = Kind::Socket;
            }
            tree.entries.insert(path, entry);
        }
    }
    Ok((whiteouts, opaque))
}

fn is_opaque(dir: &Path) -> bool {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if let Ok(Some(v)) = xattr::get(dir, name)
            && v.first() == Some(&b'y')
        {
            return true;
        }
    }
    false
}
