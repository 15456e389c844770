//! Kubelet checkpoint archives, read offline and in place: the container and pod they come from,
//! the process tree (CRIU's `pstree`, `core`, `mm` images) with command lines and environment
//! read from the dumped memory pages, open files and sockets (`fdinfo`, `files`), mounts
//! (`spec.dump`), and searches of the memory pages for strings and regular expressions.
//!
//! CRIU's image format is read directly (`proto`): a magic, then size-prefixed protobuf
//! entries. Field numbers follow CRIU's published `images/*.proto`; the tests build their images
//! with CRIU's own encoder (`crit encode`). Environment values are redacted unless asked.

pub mod proto;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use kir_rootfs::TarIndex;
use serde::Serialize;

use crate::proto::{Message, image};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Input(#[from] kir_rootfs::Error),
    #[error("{path}: {message}")]
    NotCheckpoint { path: String, message: String },
    #[error("bad regular expression {0:?}: {1}")]
    Regex(String, String),
}

pub const MAGIC_PSTREE: u32 = 0x5027_3030;
pub const MAGIC_CORE: u32 = 0x5505_3847;
pub const MAGIC_IDS: u32 = 0x5443_2030;
pub const MAGIC_MM: u32 = 0x5749_2820;
pub const MAGIC_PAGEMAP: u32 = 0x5608_4025;
pub const MAGIC_FDINFO: u32 = 0x5621_3732;
pub const MAGIC_FILES: u32 = 0x5630_3138;
pub const MAGIC_FS: u32 = 0x5140_3912;

const PAGE: u64 = 4096;
/// Metadata images are small; anything larger than this is refused rather than read.
const IMAGE_LIMIT: u64 = 64 << 20;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerInfo {
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub image_ref: Option<String>,
    pub runtime: Option<String>,
    pub engine: Option<String>,
    pub created: Option<String>,
    pub checkpointed: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenFile {
    pub fd: u32,
    /// `REG`, `PIPE`, `INETSK`, `UNIXSK`, …
    pub kind: String,
    /// A path, a socket's addresses, `pipe[ID]`.
    pub target: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Socket {
    pub fd: u32,
    pub family: String,
    pub kind: String,
    pub protocol: String,
    pub state: String,
    pub local: String,
    pub remote: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub threads: Vec<u32>,
    pub comm: Option<String>,
    pub state: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub exe: Option<String>,
    pub cwd: Option<String>,
    pub cmdline: Option<Vec<String>>,
    /// `NAME=VALUE`, or `NAME=<redacted>`.
    pub env: Option<Vec<String>>,
    pub files: Vec<OpenFile>,
    pub sockets: Vec<Socket>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub container: ContainerInfo,
    pub processes: Vec<Process>,
    pub mounts: Vec<Mount>,
    /// Bytes of memory pages and of the rootfs diff.
    pub pages_bytes: u64,
    pub rootfs_diff_bytes: u64,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub show_env: bool,
}

/// Where one pid's memory lives: present page runs in a pages file.
#[derive(Debug, Clone)]
struct MemoryMap {
    pages_file: String,
    /// (vaddr, bytes, offset in the pages file)
    runs: Vec<(u64, u64, u64)>,
}

pub struct Archive {
    index: TarIndex,
    path: String,
}

impl Archive {
    pub fn open(path: &Path) -> Result<Archive, Error> {
        let index = TarIndex::open(path)?;
        let has_images = index.names().any(|n| n.starts_with("checkpoint/") && n.ends_with(".img"));
        if !has_images {
            return Err(Error::NotCheckpoint {
                path: path.display().to_string(),
                message: "not a checkpoint archive: no checkpoint/*.img (kubelet checkpoints hold CRIU images there)"
                    .into(),
            });
        }
        Ok(Archive { index, path: path.display().to_string() })
    }

    fn read(&self, name: &str, problems: &mut Vec<String>) -> Option<Vec<u8>> {
        if !self.index.has(name) {
            return None;
        }
        match self.index.small(name, IMAGE_LIMIT) {
            Ok(b) => Some(b),
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                None
            }
        }
    }

    fn entries(&self, name: &str, magic: u32, problems: &mut Vec<String>) -> Vec<Vec<u8>> {
        let Some(bytes) = self.read(name, problems) else { return Vec::new() };
        match image(&bytes) {
            Some(img) if img.magic == magic => {
                if img.truncated {
                    problems.push(format!("{name}: cut short after {} entries; those are shown", img.entries.len()));
                }
                img.entries.into_iter().map(<[u8]>::to_vec).collect()
            }
            Some(img) => {
                problems.push(format!("{name}: magic {:#x}, expected {magic:#x}", img.magic));
                Vec::new()
            }
            None => {
                problems.push(format!("{name}: not a CRIU image (no magic)"));
                Vec::new()
            }
        }
    }

    fn json(&self, name: &str, problems: &mut Vec<String>) -> Option<serde_json::Value> {
        let b = self.read(name, problems)?;
        match serde_json::from_slice(&b) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!("{name}: not JSON: {e}"));
                None
            }
        }
    }

    fn memory_map(&self, pid: u32, problems: &mut Vec<String>) -> Option<MemoryMap> {
        let entries = self.entries(&format!("checkpoint/pagemap-{pid}.img"), MAGIC_PAGEMAP, problems);
        let (head, rest) = entries.split_first()?;
        let pages_id = Message::parse(head)?.u32(1)?;
        let mut runs = Vec::new();
        let mut offset = 0u64;
        for e in rest {
            let Some(m) = Message::parse(e) else {
                problems.push(format!("pagemap-{pid}.img: a damaged entry"));
                break;
            };
            let vaddr = m.u64(1).unwrap_or(0);
            let nr = if m.has(5) { m.u64(5).unwrap_or(0) } else { m.u64(2).unwrap_or(0) };
            let flags = match m.u32(4) {
                Some(f) => f,
                None if m.u64(3) == Some(1) => 1,
                None => 4,
            };
            if flags & 4 != 0 {
                let bytes = nr.saturating_mul(PAGE);
                runs.push((vaddr, bytes, offset));
                offset = offset.saturating_add(bytes);
            }
        }
        Some(MemoryMap { pages_file: format!("checkpoint/pages-{pages_id}.img"), runs })
    }

    /// Bytes of the process's memory in [start, end), from the dumped pages; unmapped parts are
    /// zeros (CRIU does not dump untouched pages). At most 1 MiB.
    fn read_memory(&self, map: &MemoryMap, start: u64, end: u64) -> Option<Vec<u8>> {
        if end <= start || end - start > 1 << 20 {
            return None;
        }
        let mut out = vec![0u8; (end - start) as usize];
        for (vaddr, len, offset) in &map.runs {
            let (a, b) = (start.max(*vaddr), end.min(vaddr.saturating_add(*len)));
            if a >= b {
                continue;
            }
            let mut member = self.index.member(&map.pages_file).ok()?;
            let skip = offset + (a - vaddr);
            std::io::copy(&mut (&mut member).take(skip), &mut std::io::sink()).ok()?;
            member.read_exact(&mut out[(a - start) as usize..(b - start) as usize]).ok()?;
        }
        Some(out)
    }

    pub fn inspect(&self, options: &Options) -> Checkpoint {
        let mut problems = Vec::new();
        let config = self.json("config.dump", &mut problems).unwrap_or_default();
        let spec = self.json("spec.dump", &mut problems).unwrap_or_default();
        let container = container_info(&config, &spec);
        let mounts = spec
            .get("mounts")
            .and_then(|m| m.as_array())
            .map(|list| {
                list.iter()
                    .map(|m| Mount {
                        destination: m.get("destination").and_then(|v| v.as_str()).unwrap_or_default().into(),
                        kind: m.get("type").and_then(|v| v.as_str()).unwrap_or_default().into(),
                        source: m.get("source").and_then(|v| v.as_str()).unwrap_or_default().into(),
                    })
                    .collect()
            })
            .unwrap_or_default();

        // Every file object, by id.
        let mut files: HashMap<u32, Message> = HashMap::new();
        let file_entries = self.entries("checkpoint/files.img", MAGIC_FILES, &mut problems);
        for e in &file_entries {
            if let Some(m) = Message::parse(e)
                && let Some(id) = m.u32(2)
            {
                files.insert(id, m);
            }
        }
        let reg_name = |id: u32| files.get(&id).and_then(|f| f.message(3)).and_then(|r| r.string(6));

        let mut processes = Vec::new();
        for e in self.entries("checkpoint/pstree.img", MAGIC_PSTREE, &mut problems) {
            let Some(m) = Message::parse(&e) else {
                problems.push("pstree.img: a damaged entry".into());
                continue;
            };
            let pid = m.u32(1).unwrap_or(0);
            let mut p = Process {
                pid,
                ppid: m.u32(2).unwrap_or(0),
                pgid: m.u32(3).unwrap_or(0),
                sid: m.u32(4).unwrap_or(0),
                threads: m.repeated_u64(5).into_iter().map(|t| t as u32).collect(),
                comm: None,
                state: "unknown".into(),
                uid: None,
                gid: None,
                exe: None,
                cwd: None,
                cmdline: None,
                env: None,
                files: Vec::new(),
                sockets: Vec::new(),
            };
            let core = self.entries(&format!("checkpoint/core-{pid}.img"), MAGIC_CORE, &mut problems);
            if let Some(core) = core.first().and_then(|c| Message::parse(c)) {
                if let Some(tc) = core.message(3) {
                    p.comm = tc.string(6);
                    p.state = match tc.u32(1) {
                        Some(1) => "alive",
                        Some(2) => "dead",
                        Some(3) => "stopped",
                        Some(6) => "zombie",
                        _ => "unknown",
                    }
                    .into();
                }
                if let Some(creds) = core.message(5).and_then(|t| t.message(10)) {
                    p.uid = creds.u32(1);
                    p.gid = creds.u32(2);
                }
            }
            let mm = self.entries(&format!("checkpoint/mm-{pid}.img"), MAGIC_MM, &mut problems);
            if let Some(mm) = mm.first().and_then(|m| Message::parse(m)) {
                p.exe = mm.u32(12).and_then(reg_name);
                if let Some(map) = self.memory_map(pid, &mut problems) {
                    let split = |b: Vec<u8>| -> Vec<String> {
                        b.split(|c| *c == 0)
                            .filter(|s| !s.is_empty())
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect()
                    };
                    if let (Some(a), Some(b)) = (mm.u64(8), mm.u64(9)) {
                        p.cmdline = self.read_memory(&map, a, b).map(split);
                    }
                    if let (Some(a), Some(b)) = (mm.u64(10), mm.u64(11)) {
                        p.env = self.read_memory(&map, a, b).map(split).map(|vars| {
                            vars.into_iter()
                                .map(|v| match v.split_once('=') {
                                    Some((k, _)) if !options.show_env => format!("{k}=<redacted>"),
                                    _ => v,
                                })
                                .collect()
                        });
                    }
                }
            }
            if let Some(fs) = self
                .entries(&format!("checkpoint/fs-{pid}.img"), MAGIC_FS, &mut problems)
                .first()
                .and_then(|f| Message::parse(f))
            {
                p.cwd = fs.u32(1).and_then(reg_name);
            }
            let files_id = self
                .entries(&format!("checkpoint/ids-{pid}.img"), MAGIC_IDS, &mut problems)
                .first()
                .and_then(|i| Message::parse(i))
                .and_then(|i| i.u32(2));
            if let Some(files_id) = files_id {
                for fd in self.entries(&format!("checkpoint/fdinfo-{files_id}.img"), MAGIC_FDINFO, &mut problems) {
                    let Some(fd) = Message::parse(&fd) else { continue };
                    let (id, kind, number) = (fd.u32(1).unwrap_or(0), fd.u32(3).unwrap_or(0), fd.u32(4).unwrap_or(0));
                    let object = files.get(&id);
                    let kind_name = fd_type(kind);
                    let target = match (kind, object) {
                        (1, Some(f)) => f.message(3).and_then(|r| r.string(6)).unwrap_or_default(),
                        (2, Some(f)) => format!("pipe[{}]", f.message(18).and_then(|x| x.u32(2)).unwrap_or(0)),
                        (4, Some(f)) => {
                            if let Some(s) = f.message(4).map(|isk| inet_socket(number, &isk)) {
                                let t = format!("{} {} {} → {}", s.protocol, s.state, s.local, s.remote);
                                p.sockets.push(s);
                                t
                            } else {
                                String::new()
                            }
                        }
                        (5, Some(f)) => {
                            let usk = f.message(16);
                            let name = usk
                                .as_ref()
                                .and_then(|u| u.bytes(11))
                                .map(|n| String::from_utf8_lossy(n).replace('\0', "@"))
                                .unwrap_or_default();
                            let state = usk.as_ref().and_then(|u| u.u32(4)).map(tcp_state).unwrap_or_default();
                            p.sockets.push(Socket {
                                fd: number,
                                family: "unix".into(),
                                kind: usk.as_ref().and_then(|u| u.u32(3)).map(sock_type).unwrap_or_default(),
                                protocol: String::new(),
                                state,
                                local: name.clone(),
                                remote: usk
                                    .as_ref()
                                    .and_then(|u| u.u32(8))
                                    .filter(|p| *p != 0)
                                    .map(|p| format!("peer ino {p}"))
                                    .unwrap_or_default(),
                            });
                            format!("unix:{name}")
                        }
                        _ => format!("{kind_name}.{id}"),
                    };
                    p.files.push(OpenFile { fd: number, kind: kind_name, target });
                }
                p.files.sort_by_key(|f| f.fd);
            }
            processes.push(p);
        }
        processes.sort_by_key(|p| p.pid);
        let pages_bytes =
            self.index.names().filter(|n| n.starts_with("checkpoint/pages-")).filter_map(|n| self.index.size(n)).sum();
        let rootfs_diff_bytes = self.index.size("rootfs-diff.tar").unwrap_or(0);
        Checkpoint { container, processes, mounts, pages_bytes, rootfs_diff_bytes, problems }
    }

    /// Searches every memory page dump for the literals and regular expressions.
    pub fn search(&self, literals: &[String], regexes: &[String]) -> Result<Vec<MemoryHit>, Error> {
        let ac =
            aho_corasick::AhoCorasick::new(literals).map_err(|e| Error::Regex(literals.join(","), e.to_string()))?;
        let res: Vec<regex::bytes::Regex> = regexes
            .iter()
            .map(|r| regex::bytes::Regex::new(r).map_err(|e| Error::Regex(r.clone(), e.to_string())))
            .collect::<Result<_, _>>()?;
        // Which pid each pages file belongs to, and how its offsets map to addresses.
        let mut maps: BTreeMap<String, (u32, MemoryMap)> = BTreeMap::new();
        let mut ignore = Vec::new();
        for e in self.entries("checkpoint/pstree.img", MAGIC_PSTREE, &mut ignore) {
            if let Some(pid) = Message::parse(&e).and_then(|m| m.u32(1))
                && let Some(map) = self.memory_map(pid, &mut ignore)
            {
                maps.insert(map.pages_file.clone(), (pid, map));
            }
        }
        let mut names: Vec<String> =
            self.index.names().filter(|n| n.starts_with("checkpoint/pages-")).map(str::to_string).collect();
        names.sort();
        let mut hits = Vec::new();
        const CHUNK: usize = 1 << 20;
        const OVERLAP: usize = 4096;
        for name in names {
            let mut member = self.index.member(&name)?;
            let mut window: Vec<u8> = Vec::new();
            let mut window_start = 0u64;
            let mut buf = vec![0u8; CHUNK];
            let mut seen = std::collections::HashSet::new();
            loop {
                let n = member.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                window.extend_from_slice(&buf[..n]);
                let mut record = |at: usize, len: usize, pattern: &str| {
                    let offset = window_start + at as u64;
                    if !seen.insert((offset, pattern.to_string())) {
                        return;
                    }
                    let (pid, vaddr) = match maps.get(&name) {
                        Some((pid, map)) => (
                            Some(*pid),
                            map.runs
                                .iter()
                                .find(|(_, l, o)| offset >= *o && offset < o + l)
                                .map(|(v, _, o)| v + (offset - o)),
                        ),
                        None => (None, None),
                    };
                    let from = at.saturating_sub(32);
                    let to = (at + len + 32).min(window.len());
                    let context: String = window[from..to]
                        .iter()
                        .map(|b| if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '.' })
                        .collect();
                    hits.push(MemoryHit {
                        pages_file: name.clone(),
                        offset,
                        pid,
                        vaddr,
                        pattern: pattern.to_string(),
                        context,
                    });
                };
                for m in ac.find_iter(&window) {
                    record(m.start(), m.len(), &literals[m.pattern().as_usize()]);
                }
                for (r, re) in res.iter().enumerate() {
                    for m in re.find_iter(&window) {
                        record(m.start(), m.len(), &regexes[r]);
                    }
                }
                if window.len() > OVERLAP {
                    let drop = window.len() - OVERLAP;
                    window.drain(..drop);
                    window_start += drop as u64;
                }
            }
        }
        hits.sort_by(|a, b| a.pages_file.cmp(&b.pages_file).then(a.offset.cmp(&b.offset)));
        Ok(hits)
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemoryHit {
    pub pages_file: String,
    pub offset: u64,
    pub pid: Option<u32>,
    /// The address in the process, when the pagemap places it.
    pub vaddr: Option<u64>,
    pub pattern: String,
    /// Printable bytes around the hit.
    pub context: String,
}

fn container_info(config: &serde_json::Value, spec: &serde_json::Value) -> ContainerInfo {
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k).and_then(|x| x.as_str()).filter(|x| !x.is_empty()).map(str::to_string)
    };
    let ann = spec.get("annotations").cloned().unwrap_or_default();
    let engine = s(&ann, "io.container.manager");
    let (name, pod, namespace) = match engine.as_deref() {
        Some("cri-o") => (
            s(&ann, "io.kubernetes.container.name").or_else(|| {
                s(&ann, "io.kubernetes.cri-o.Metadata")
                    .and_then(|m| serde_json::from_str::<serde_json::Value>(&m).ok())
                    .and_then(|m| s(&m, "name"))
            }),
            s(&ann, "io.kubernetes.pod.name"),
            s(&ann, "io.kubernetes.pod.namespace"),
        ),
        Some("libpod") => (s(config, "name"), None, None),
        _ => (
            s(&ann, "io.kubernetes.cri.container-name").or_else(|| s(&ann, "io.kubernetes.container.name")),
            s(&ann, "io.kubernetes.cri.sandbox-name").or_else(|| s(&ann, "io.kubernetes.pod.name")),
            s(&ann, "io.kubernetes.cri.sandbox-namespace").or_else(|| s(&ann, "io.kubernetes.pod.namespace")),
        ),
    };
    ContainerInfo {
        name: name.or_else(|| s(config, "name")),
        pod,
        namespace,
        image: s(config, "rootfsImageName").or_else(|| s(config, "rootfsImage")),
        image_ref: s(config, "rootfsImageRef"),
        runtime: s(config, "runtime"),
        engine,
        created: s(config, "createdTime"),
        checkpointed: s(config, "checkpointedTime"),
        id: s(config, "id"),
    }
}

fn fd_type(t: u32) -> String {
    match t {
        1 => "REG",
        2 => "PIPE",
        3 => "FIFO",
        4 => "INETSK",
        5 => "UNIXSK",
        6 => "EVENTFD",
        7 => "EVENTPOLL",
        8 => "INOTIFY",
        9 => "SIGNALFD",
        10 => "PACKETSK",
        11 => "TTY",
        12 => "FANOTIFY",
        13 => "NETLINKSK",
        14 => "NS",
        15 => "TUNF",
        16 => "EXT",
        17 => "TIMERFD",
        18 => "MEMFD",
        19 => "BPFMAP",
        20 => "PIDFD",
        _ => return format!("TYPE{t}"),
    }
    .into()
}

fn tcp_state(s: u32) -> String {
    match s {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        _ => return format!("state-{s}"),
    }
    .into()
}

fn sock_type(t: u32) -> String {
    match t {
        1 => "stream",
        2 => "dgram",
        3 => "raw",
        5 => "seqpacket",
        _ => return format!("type-{t}"),
    }
    .into()
}

/// An address from CRIU's u32 words (network byte order kept in memory order).
fn address(words: &[u64], port: u32) -> String {
    match words.len() {
        1 => {
            let b = (words[0] as u32).to_le_bytes();
            format!("{}.{}.{}.{}:{port}", b[0], b[1], b[2], b[3])
        }
        4 => {
            let mut bytes = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&(*w as u32).to_le_bytes());
            }
            format!("[{}]:{port}", std::net::Ipv6Addr::from(bytes))
        }
        _ => format!("*:{port}"),
    }
}

fn inet_socket(fd: u32, isk: &Message) -> Socket {
    let family = match isk.u32(3) {
        Some(2) => "inet",
        Some(10) => "inet6",
        _ => "inet?",
    };
    Socket {
        fd,
        family: family.into(),
        kind: isk.u32(4).map(sock_type).unwrap_or_default(),
        protocol: match isk.u32(5) {
            Some(6) => "tcp".into(),
            Some(17) => "udp".into(),
            Some(p) => format!("proto-{p}"),
            None => String::new(),
        },
        state: isk.u32(6).map(tcp_state).unwrap_or_default(),
        local: address(&isk.repeated_u64(11), isk.u32(7).unwrap_or(0)),
        remote: address(&isk.repeated_u64(12), isk.u32(8).unwrap_or(0)),
    }
}
