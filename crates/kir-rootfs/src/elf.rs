//! What an ELF file is, read while its bytes stream past: architecture, type, whether it is
//! statically linked (no program interpreter, no dynamic section) and whether it is stripped (no
//! symbol table). The section header table sits near the end of the file; its offset is known
//! from the header, so the bytes are caught on their way without seeking or buffering the file.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// 32 or 64.
    pub bits: u8,
    /// `x86_64`, `aarch64`, `arm`, `i386`, `riscv64`, `ppc64le`, `s390x`, `mips`, … or `machine-N`.
    pub arch: String,
    /// `executable`, `shared-object` (also position-independent executables), `relocatable`, `core`.
    #[serde(rename = "type")]
    pub elf_type: String,
    pub statically_linked: bool,
    pub stripped: bool,
    /// The program interpreter (`/lib64/ld-linux-x86-64.so.2`), when dynamically linked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<String>,
}

/// Collects the bytes an ELF verdict needs from a stream.
pub struct ElfSniffer {
    /// The first bytes of the file (header and, usually, program headers).
    head: Vec<u8>,
    /// Section header table bytes, captured as they pass.
    sections: Vec<u8>,
    section_range: Option<(u64, u64)>,
    seen: u64,
    not_elf: bool,
}

/// How much of the start is kept: enough for the header, program headers and the interpreter path.
const HEAD: usize = 64 * 1024;
/// Section header tables larger than this are not captured (the verdict on stripping is then "no").
const MAX_SECTIONS: u64 = 1 << 20;

impl Default for ElfSniffer {
    fn default() -> Self {
        Self::new()
    }
}

impl ElfSniffer {
    pub fn new() -> Self {
        ElfSniffer { head: Vec::new(), sections: Vec::new(), section_range: None, seen: 0, not_elf: false }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        if self.not_elf {
            return;
        }
        let start = self.seen;
        self.seen += chunk.len() as u64;
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            if self.head.len() >= 4 && &self.head[..4] != b"\x7fELF" {
                self.not_elf = true;
                return;
            }
            if self.section_range.is_none() && self.head.len() >= 64 {
                self.section_range = section_table_range(&self.head);
            }
        }
        if let Some((from, to)) = self.section_range {
            let end = start + chunk.len() as u64;
            if end > from && start < to {
                let a = from.max(start) - start;
                let b = to.min(end) - start;
                self.sections.extend_from_slice(&chunk[a as usize..b as usize]);
            }
        }
    }

    /// The verdict: `None` for anything that is not a well-formed ELF header.
    pub fn finish(self) -> Option<ElfInfo> {
        if self.not_elf {
            return None;
        }
        let h = Header::parse(&self.head)?;
        let mut interpreter = None;
        let mut dynamic = false;
        for i in 0..h.phnum {
            let off = h.phoff.checked_add(i.checked_mul(h.phentsize)?)?;
            let Some(ph) = self.head.get(off as usize..off.saturating_add(h.phentsize) as usize) else { break };
            let p_type = h.u32(ph, 0)?;
            match p_type {
                3 => {
                    // PT_INTERP: the path sits in the file at p_offset.
                    let (o, s) = if h.bits == 64 {
                        (h.u64(ph, 8)?, h.u64(ph, 32)?)
                    } else {
                        (h.u32(ph, 4)? as u64, h.u32(ph, 16)? as u64)
                    };
                    interpreter = self
                        .head
                        .get(o as usize..(o.saturating_add(s)) as usize)
                        .map(|b| String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or(b)).into_owned())
                        .or(Some(String::new()));
                }
                2 => dynamic = true,
                _ => {}
            }
        }
        let mut symtab = false;
        let captured = self.section_range.is_some_and(|(a, b)| self.sections.len() as u64 == b - a);
        if captured && h.shentsize > 0 {
            for i in 0..h.shnum {
                let off = (i * h.shentsize) as usize;
                let Some(sh) = self.sections.get(off..off + h.shentsize as usize) else { break };
                if h.u32(sh, 4) == Some(2) {
                    symtab = true;
                }
            }
        }
        let static_linked = interpreter.is_none() && !dynamic;
        Some(ElfInfo {
            bits: h.bits,
            arch: arch_name(h.machine),
            elf_type: match h.etype {
                1 => "relocatable",
                2 => "executable",
                3 => "shared-object",
                4 => "core",
                _ => "other",
            }
            .into(),
            statically_linked: static_linked,
            stripped: !symtab,
            interpreter: interpreter.filter(|i| !i.is_empty()),
        })
    }
}

struct Header {
    bits: u8,
    little: bool,
    etype: u16,
    machine: u16,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    shentsize: u64,
    shnum: u64,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < 52 || &b[..4] != b"\x7fELF" {
            return None;
        }
        let bits = match b[4] {
            1 => 32,
            2 => 64,
            _ => return None,
        };
        let little = match b[5] {
            1 => true,
            2 => false,
            _ => return None,
        };
        let mut h =
            Header { bits, little, etype: 0, machine: 0, phoff: 0, phentsize: 0, phnum: 0, shentsize: 0, shnum: 0 };
        h.etype = h.u16(b, 16)?;
        h.machine = h.u16(b, 18)?;
        if bits == 64 {
            if b.len() < 64 {
                return None;
            }
            h.phoff = h.u64(b, 32)?;
            h.phentsize = h.u16(b, 54)? as u64;
            h.phnum = h.u16(b, 56)? as u64;
            h.shentsize = h.u16(b, 58)? as u64;
            h.shnum = h.u16(b, 60)? as u64;
        } else {
            h.phoff = h.u32(b, 28)? as u64;
            h.phentsize = h.u16(b, 42)? as u64;
            h.phnum = h.u16(b, 44)? as u64;
            h.shentsize = h.u16(b, 46)? as u64;
            h.shnum = h.u16(b, 48)? as u64;
        }
        Some(h)
    }

    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    }

    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    }

    fn u64(&self, b: &[u8], at: usize) -> Option<u64> {
        let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.little { u64::from_le_bytes(s) } else { u64::from_be_bytes(s) })
    }
}

/// Where the section header table lies in the file, from the ELF header.
fn section_table_range(head: &[u8]) -> Option<(u64, u64)> {
    let h = Header::parse(head)?;
    let shoff = if h.bits == 64 { h.u64(head, 40)? } else { h.u32(head, 32)? as u64 };
    let len = h.shentsize.checked_mul(h.shnum)?;
    if shoff == 0 || len == 0 || len > MAX_SECTIONS {
        return None;
    }
    Some((shoff, shoff.checked_add(len)?))
}

fn arch_name(machine: u16) -> String {
    match machine {
        3 => "i386",
        8 => "mips",
        20 => "ppc",
        21 => "ppc64",
        22 => "s390x",
        40 => "arm",
        62 => "x86_64",
        183 => "aarch64",
        243 => "riscv64",
        258 => "loongarch64",
        other => return format!("machine-{other}"),
    }
    .into()
}

/// Sniffs a whole byte slice (tests, small files).
pub fn sniff(bytes: &[u8]) -> Option<ElfInfo> {
    let mut s = ElfSniffer::new();
    for chunk in bytes.chunks(4096) {
        s.update(chunk);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_itself() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = sniff(&exe).expect("an ELF");
        assert_eq!(info.bits, 64);
        assert_eq!(info.arch, std::env::consts::ARCH);
        assert!(!info.stripped, "test binaries keep their symbols");
    }

    #[test]
    fn not_elf() {
        assert_eq!(sniff(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(sniff(b"\x7fELF"), None);
        assert_eq!(sniff(b""), None);
    }
}
