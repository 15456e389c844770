//! Deterministic fixtures for the forensics tests: ELF files, layers with whiteouts, hard links,
//! links out of the root, devices and hostile names; OCI layouts, docker save archives, exports,
//! upperdirs and checkpoint archives, all built here.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

/// A minimal ELF64 x86_64 executable: header, one PT_LOAD, and with `interp` a PT_INTERP;
/// `payload` follows (strings a scanner may look for).
pub fn elf(interp: Option<&str>, payload: &[u8]) -> Vec<u8> {
    let phnum: u16 = if interp.is_some() { 2 } else { 1 };
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // 64-bit
    b[5] = 1; // little endian
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86_64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&0x401000u64.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    b[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    b[56..58].copy_from_slice(&phnum.to_le_bytes());
    let interp_off = 64 + 56 * phnum as u64;
    if let Some(i) = interp {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        ph[8..16].copy_from_slice(&interp_off.to_le_bytes());
        ph[32..40].copy_from_slice(&(i.len() as u64 + 1).to_le_bytes());
        b.extend_from_slice(&ph);
    }
    let mut load = vec![0u8; 56];
    load[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b.extend_from_slice(&load);
    if let Some(i) = interp {
        b.extend_from_slice(i.as_bytes());
        b.push(0);
    }
    b.extend_from_slice(payload);
    b
}

pub fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// What goes into a layer tar.
pub enum Item<'a> {
    File(&'a str, u32, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
    /// A raw header name, for hostile paths.
    RawName(&'a [u8], &'a [u8]),
}

pub fn layer(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match item {
            Item::File(path, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, path, *data).unwrap();
            }
            Item::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                builder.append_data(&mut h, path, &[][..]).unwrap();
            }
            Item::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, path, target).unwrap();
            }
            Item::Hardlink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o755);
                h.set_size(0);
                builder.append_link(&mut h, path, target).unwrap();
            }
            Item::Char(path, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                builder.append_data(&mut h, path, &[][..]).unwrap();
            }
            Item::Fifo(path) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                h.set_size(0);
                builder.append_data(&mut h, path, &[][..]).unwrap();
            }
            Item::RawName(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                let raw = h.as_old_mut();
                let n = name.len().min(99);
                raw.name[..n].copy_from_slice(&name[..n]);
                h.set_cksum();
                builder.append(&h, *data).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// An OCI image layout folder with these layers (gzip-compressed blobs).
pub fn oci_layout(dir: &Path, layers: &[Vec<u8>]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descs = Vec::new();
    for l in layers {
        let gz = gzip(l);
        let d = sha256(&gz);
        std::fs::write(blobs.join(&d), &gz).unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{d}"), "size": gz.len()}));
    }
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = sha256(config);
    std::fs::write(blobs.join(&cd), config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = sha256(&manifest);
    std::fs::write(blobs.join(&md), &manifest).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{md}"), "size": manifest.len(),
         "platform": {"architecture": "amd64", "os": "linux"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A `docker save` archive (the layout before Docker 25: manifest.json and <id>/layer.tar).
pub fn docker_save(path: &Path, layers: &[Vec<u8>]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", i + 1);
        let mut h = tar::Header::new_gnu();
        h.set_size(l.len() as u64);
        h.set_mode(0o644);
        builder.append_data(&mut h, &name, &l[..]).unwrap();
        names.push(name);
    }
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": "config.json", "RepoTags": ["shop/web:1.0"], "Layers": names}]),
    )
    .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    builder.append_data(&mut h, "manifest.json", &manifest[..]).unwrap();
    builder.finish().unwrap();
}

/// Files of a tar (name → bytes) as one archive.
pub fn archive(path: &Path, files: &[(&str, Vec<u8>)]) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        builder.append_data(&mut h, name, &data[..]).unwrap();
    }
    builder.finish().unwrap();
}
