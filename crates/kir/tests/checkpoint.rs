//! `kir checkpoint inspect` on a kubelet checkpoint archive whose CRIU images were written by
//! CRIU's own encoder (`crit encode`, from Debian's criu package), so the parser is checked
//! against CRIU's writer rather than against ours.
//!
//! The encoded images are committed in `tests/data/checkpoint/` beside the JSON they were made
//! from, so these tests need no `crit`. `scripts/regenerate-checkpoint-fixtures.sh` writes them
//! again after a change here; where `crit` is installed (CI installs it), every test also checks
//! that CRIU still encodes the committed JSON to the committed bytes.

mod common;
mod forensics_fixtures;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{kir, stdout_of};
use forensics_fixtures::{Item, archive, layer};
use serde_json::{Value, json};

const MINER_ARGS: &[u8] = b"/tmp/.cache/xmrig\0--url\0stratum+tcp://pool.example.net:3333\0--threads\x004\0";
const MINER_ENV: &[u8] = b"PATH=/usr/bin\0WALLET=4AbcSECRETWALLET\0";
const MARKER: &[u8] = b"planted: stratum+tcp://evil.example.org:4444 in memory";

fn fown() -> Value {
    json!({"uid": 0, "euid": 0, "signum": 0, "pid_type": 0, "pid": 0})
}

fn reg(id: u32, name: &str) -> Value {
    json!({"type": "REG", "id": id, "reg": {"id": id, "flags": 0, "pos": 0, "fown": fown(), "name": name}})
}

fn core(comm: &str, uid: u32) -> Value {
    json!({"magic": "CORE", "entries": [{
        "mtype": "X86_64",
        "tc": {"task_state": 1, "exit_code": 0, "personality": 0, "flags": 4194560, "blk_sigset": 0, "comm": comm},
        "thread_core": {"futex_rla": 0, "futex_rla_len": 0, "creds": {
            "uid": uid, "gid": uid, "euid": uid, "egid": uid, "suid": uid, "sgid": uid, "fsuid": uid, "fsgid": uid, "secbits": 0}}
    }]})
}

fn mm(base: u64, args_len: u64, env_len: u64, exe: u32) -> Value {
    let env_start = base + 1024;
    json!({"magic": "MM", "entries": [{
        "mm_start_code": 0x400000, "mm_end_code": 0x401000, "mm_start_data": 0x402000, "mm_end_data": 0x403000,
        "mm_start_stack": base + 8192, "mm_start_brk": 0x500000, "mm_brk": 0x501000,
        "mm_arg_start": base, "mm_arg_end": base + args_len,
        "mm_env_start": env_start, "mm_env_end": env_start + env_len,
        "exe_file_id": exe
    }]})
}

/// Two pages: arguments at the start, environment at 1 KiB, the marker on the second page.
fn pages(args: &[u8], env: &[u8], marker: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 8192];
    p[..args.len()].copy_from_slice(args);
    p[1024..1024 + env.len()].copy_from_slice(env);
    p[4096 + 100..4096 + 100 + marker.len()].copy_from_slice(marker);
    p
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoint")
}

fn crit_available() -> bool {
    Command::new("crit").arg("--help").output().is_ok_and(|o| o.status.success())
}

/// Runs `crit encode` on `json` in `dir`.
fn run_crit(dir: &Path, name: &str, json: &[u8]) -> Vec<u8> {
    let json_path = dir.join(format!("{name}.json"));
    let img_path = dir.join(name);
    std::fs::write(&json_path, json).unwrap();
    let status = Command::new("crit")
        .arg("encode")
        .arg("-i")
        .arg(&json_path)
        .arg("-o")
        .arg(&img_path)
        .status()
        .expect("crit, CRIU's image tool (apt-get install -y criu)");
    assert!(status.success(), "crit encode {name}");
    std::fs::read(img_path).unwrap()
}

/// The CRIU image of `value`: the committed encoding, checked against the JSON it was made from
/// (and against `crit` itself where it is installed); `KIR_REGENERATE_CHECKPOINT_FIXTURES=1`
/// writes both files anew with `crit`.
fn crit_encode(dir: &Path, name: &str, value: &Value) -> Vec<u8> {
    let json = serde_json::to_vec_pretty(value).unwrap();
    let (json_fixture, image_fixture) = (fixtures().join(format!("{name}.json")), fixtures().join(name));
    if std::env::var_os("KIR_REGENERATE_CHECKPOINT_FIXTURES").is_some() {
        let image = run_crit(dir, name, &json);
        std::fs::create_dir_all(fixtures()).unwrap();
        std::fs::write(&json_fixture, &json).unwrap();
        std::fs::write(&image_fixture, &image).unwrap();
    }
    let committed_json = std::fs::read(&json_fixture).unwrap_or_default();
    assert!(
        committed_json == json,
        "{}: the test's JSON differs from the committed fixture; run scripts/regenerate-checkpoint-fixtures.sh",
        json_fixture.display()
    );
    let image = std::fs::read(&image_fixture).unwrap();
    if crit_available() {
        assert_eq!(run_crit(dir, name, &json), image, "crit no longer encodes {name} to the committed bytes");
    }
    image
}

fn build_checkpoint(dir: &Path) -> std::path::PathBuf {
    let work = dir.join("images");
    std::fs::create_dir_all(&work).unwrap();
    let base = 0x7fff_0000_0000u64;
    let sh_args = b"/bin/sh\0-c\0sleep infinity\0";
    let images: Vec<(String, Vec<u8>)> = vec![
        (
            "inventory.img".into(),
            crit_encode(&work, "inventory.img", &json!({"magic": "INVENTORY", "entries": [{"img_version": 2}]})),
        ),
        (
            "pstree.img".into(),
            crit_encode(
                &work,
                "pstree.img",
                &json!({"magic": "PSTREE", "entries": [
                    {"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "threads": [1]},
                    {"pid": 7, "ppid": 1, "pgid": 1, "sid": 1, "threads": [7, 8]}
                ]}),
            ),
        ),
        ("core-1.img".into(), crit_encode(&work, "core-1.img", &core("sh", 0))),
        ("core-7.img".into(), crit_encode(&work, "core-7.img", &core("xmrig", 1000))),
        (
            "ids-1.img".into(),
            crit_encode(
                &work,
                "ids-1.img",
                &json!({"magic": "IDS", "entries": [{"vm_id": 1, "files_id": 1, "fs_id": 1, "sighand_id": 1}]}),
            ),
        ),
        (
            "ids-7.img".into(),
            crit_encode(
                &work,
                "ids-7.img",
                &json!({"magic": "IDS", "entries": [{"vm_id": 2, "files_id": 2, "fs_id": 2, "sighand_id": 2}]}),
            ),
        ),
        ("mm-1.img".into(), crit_encode(&work, "mm-1.img", &mm(base, sh_args.len() as u64, 0, 12))),
        // The miner's exe is file 16.
        (
            "mm-7.img".into(),
            crit_encode(&work, "mm-7.img", &mm(base, MINER_ARGS.len() as u64, MINER_ENV.len() as u64, 16)),
        ),
        (
            "pagemap-1.img".into(),
            crit_encode(
                &work,
                "pagemap-1.img",
                &json!({"magic": "PAGEMAP", "entries": [
                {"pages_id": 2}, {"vaddr": base, "compat_nr_pages": 2, "nr_pages": 2, "flags": 4}]}),
            ),
        ),
        (
            "pagemap-7.img".into(),
            crit_encode(
                &work,
                "pagemap-7.img",
                &json!({"magic": "PAGEMAP", "entries": [
                {"pages_id": 1},
                {"vaddr": base - 0x10000, "compat_nr_pages": 1, "nr_pages": 1, "flags": 1},
                {"vaddr": base, "compat_nr_pages": 2, "nr_pages": 2, "flags": 4}]}),
            ),
        ),
        ("pages-1.img".into(), pages(MINER_ARGS, MINER_ENV, MARKER)),
        ("pages-2.img".into(), pages(sh_args, b"", b"")),
        (
            "fs-7.img".into(),
            crit_encode(&work, "fs-7.img", &json!({"magic": "FS", "entries": [{"cwd_id": 13, "root_id": 14}]})),
        ),
        (
            "fdinfo-2.img".into(),
            crit_encode(
                &work,
                "fdinfo-2.img",
                &json!({"magic": "FDINFO", "entries": [
                {"id": 10, "flags": 0, "type": "REG", "fd": 3},
                {"id": 11, "flags": 0, "type": "INETSK", "fd": 4},
                {"id": 15, "flags": 0, "type": "UNIXSK", "fd": 5}]}),
            ),
        ),
        (
            "files.img".into(),
            crit_encode(
                &work,
                "files.img",
                &json!({"magic": "FILES", "entries": [
                reg(10, "/tmp/.cache/xmrig.log"),
                {"type": "INETSK", "id": 11, "isk": {
                    "id": 11, "ino": 1234, "family": 2, "type": 1, "proto": 6, "state": 1,
                    "src_port": 41234, "dst_port": 3333, "flags": 0, "backlog": 0,
                    "src_addr": [117440522u32], "dst_addr": [124007366u32],
                    "fown": fown(), "opts": {"so_sndbuf": 0, "so_rcvbuf": 0, "so_snd_tmo_sec": 0, "so_snd_tmo_usec": 0, "so_rcv_tmo_sec": 0, "so_rcv_tmo_usec": 0}}},
                reg(12, "/bin/sh"),
                reg(13, "/tmp/.cache"),
                reg(14, "/"),
                {"type": "UNIXSK", "id": 15, "usk": {
                    "id": 15, "ino": 99, "type": 1, "state": 10, "flags": 0, "uflags": 0, "backlog": 5, "peer": 0,
                    "fown": fown(), "opts": {"so_sndbuf": 0, "so_rcvbuf": 0, "so_snd_tmo_sec": 0, "so_snd_tmo_usec": 0, "so_rcv_tmo_sec": 0, "so_rcv_tmo_usec": 0},
                    "name": "/run/miner.sock"}},
                reg(16, "/tmp/.cache/xmrig")]}),
            ),
        ),
    ];

    let diff = layer(&[Item::File("tmp/.cache/xmrig", 0o755, &forensics_fixtures::elf(None, b"xmrig --donate-level"))]);
    let config = json!({"id": "3f1c0a", "name": "k8s_web_web-7f9c_shop_0", "rootfsImageName": "registry.example.com/shop/web:1.0",
        "rootfsImageRef": "sha256:abcd", "runtime": "runc", "createdTime": "2026-11-28T09:00:00Z", "checkpointedTime": "2026-11-28T10:00:00Z"});
    let spec = json!({"annotations": {"io.container.manager": "cri-o", "io.kubernetes.container.name": "web",
        "io.kubernetes.pod.name": "web-7f9c", "io.kubernetes.pod.namespace": "shop"},
        "mounts": [{"destination": "/var/run/secrets/kubernetes.io/serviceaccount", "type": "bind", "source": "/var/lib/kubelet/pods/x/volumes/token"}]});
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("config.dump".into(), serde_json::to_vec(&config).unwrap()),
        ("spec.dump".into(), serde_json::to_vec(&spec).unwrap()),
        ("rootfs-diff.tar".into(), diff),
        ("deleted.files".into(), br#"["/etc/motd"]"#.to_vec()),
    ];
    files.extend(images.into_iter().map(|(n, b)| (format!("checkpoint/{n}"), b)));
    let path = dir.join("checkpoint-web-7f9c_shop-web-2026-11-28T10:00:00Z.tar");
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    archive(&path, &refs);
    path
}

#[test]
fn inspect_shows_the_process_tree_files_sockets_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let cp = build_checkpoint(dir.path());
    let out = stdout_of(
        kir()
            .args([
                "checkpoint",
                "inspect",
                "--format",
                "json",
                "--search",
                "stratum+tcp://evil",
                "--search-regex",
                r"4Abc[A-Z]+",
            ])
            .arg(&cp),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["container"]["name"], "web");
    assert_eq!(v["container"]["pod"], "web-7f9c");
    assert_eq!(v["container"]["namespace"], "shop");
    assert_eq!(v["container"]["image"], "registry.example.com/shop/web:1.0");
    let procs = v["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2);
    let sh = &procs[0];
    assert_eq!((sh["pid"].as_u64(), sh["ppid"].as_u64(), sh["comm"].as_str()), (Some(1), Some(0), Some("sh")));
    assert_eq!(sh["cmdline"], json!(["/bin/sh", "-c", "sleep infinity"]));
    let miner = &procs[1];
    assert_eq!(
        (miner["pid"].as_u64(), miner["ppid"].as_u64(), miner["comm"].as_str()),
        (Some(7), Some(1), Some("xmrig"))
    );
    assert_eq!(miner["threads"], json!([7, 8]));
    assert_eq!(miner["uid"], 1000);
    assert_eq!(miner["state"], "alive");
    assert_eq!(
        miner["cmdline"],
        json!(["/tmp/.cache/xmrig", "--url", "stratum+tcp://pool.example.net:3333", "--threads", "4"])
    );
    assert_eq!(
        miner["env"],
        json!(["PATH=<redacted>", "WALLET=<redacted>"]),
        "environment values are redacted by default"
    );
    assert_eq!(miner["exe"], "/tmp/.cache/xmrig");
    assert_eq!(miner["cwd"], "/tmp/.cache");
    let files = miner["files"].as_array().unwrap();
    assert_eq!(files[0]["fd"], 3);
    assert_eq!(files[0]["target"], "/tmp/.cache/xmrig.log");
    let sockets = miner["sockets"].as_array().unwrap();
    let tcp = sockets.iter().find(|s| s["protocol"] == "tcp").unwrap();
    assert_eq!(
        (tcp["local"].as_str(), tcp["remote"].as_str(), tcp["state"].as_str()),
        (Some("10.0.0.7:41234"), Some("198.51.100.7:3333"), Some("ESTABLISHED"))
    );
    let unix = sockets.iter().find(|s| s["family"] == "unix").unwrap();
    assert_eq!((unix["local"].as_str(), unix["state"].as_str()), (Some("/run/miner.sock"), Some("LISTEN")));
    assert_eq!(v["mounts"][0]["destination"], "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(v["rootfs_diff_files"], json!(["/tmp/.cache/xmrig"]));

    let hits = v["memory_hits"].as_array().unwrap();
    let marker = hits.iter().find(|h| h["pattern"] == "stratum+tcp://evil").expect("the planted string is found");
    assert_eq!(marker["pid"], 7);
    assert_eq!(marker["vaddr"].as_u64(), Some(0x7fff_0000_0000 + 4096 + 100 + 9));
    assert!(marker["context"].as_str().unwrap().contains("evil.example.org:4444"));
    assert!(hits.iter().any(|h| h["pattern"] == r"4Abc[A-Z]+" && h["pid"] == 7), "regex search");
    assert!(
        !out.contains("SECRETWALLET") || hits.iter().any(|h| h["context"].as_str().unwrap().contains("SECRETWALLET")),
        "only a search shows memory"
    );

    // The table for people, with --show-env.
    let table = stdout_of(kir().args(["checkpoint", "inspect", "--ps-tree", "--show-env"]).arg(&cp));
    assert!(table.contains("1 [alive uid=0] /bin/sh -c sleep infinity"), "{table}");
    assert!(
        table.contains("└─ 7 [alive uid=1000] /tmp/.cache/xmrig --url stratum+tcp://pool.example.net:3333"),
        "{table}"
    );
    assert!(table.contains("WALLET=4AbcSECRETWALLET"), "{table}");
}

#[test]
fn inspect_with_the_image_shows_the_drift() {
    let dir = tempfile::tempdir().unwrap();
    let cp = build_checkpoint(dir.path());
    let image = dir.path().join("image");
    forensics_fixtures::oci_layout(&image, &[layer(&[Item::File("etc/motd", 0o644, b"hi"), Item::Dir("tmp")])]);
    let out = stdout_of(kir().args(["checkpoint", "inspect", "--format", "json", "--image"]).arg(&image).arg(&cp));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["drift"]["added"][0]["path"], "/tmp/.cache/xmrig");
    assert_eq!(v["drift"]["added"][0]["elf"]["arch"], "x86_64");
    assert_eq!(v["drift"]["deleted"][0]["path"], "/etc/motd");
}

#[test]
fn damaged_archives_are_refused_or_read_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let not_cp = dir.path().join("plain.tar");
    archive(&not_cp, &[("hello.txt", b"hi".to_vec())]);
    kir()
        .args(["checkpoint", "inspect"])
        .arg(&not_cp)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("not a checkpoint archive"));
    // A pstree image cut in the middle: what can be read is shown, the damage is named.
    let cp = build_checkpoint(dir.path());
    let work = dir.path().join("cut");
    std::fs::create_dir_all(&work).unwrap();
    let index = kir_rootfs::TarIndex::open(&cp).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for name in index.names().map(str::to_string).collect::<Vec<_>>() {
        let mut b = index.small(&name, 1 << 20).unwrap();
        if name.ends_with("pstree.img") {
            b.truncate(b.len() - 3);
        }
        files.push((name, b));
    }
    let cut = dir.path().join("cut.tar");
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    archive(&cut, &refs);
    let assert = kir().args(["checkpoint", "inspect", "--ps-tree"]).arg(&cut).assert().success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("pstree.img: cut short after 1 entries"), "{stderr}");
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("1 [alive uid=0] /bin/sh"), "the entry before the cut is kept: {stdout}");
}
