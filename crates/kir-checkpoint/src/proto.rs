//! Just enough of the protobuf wire format to read CRIU images: fields by number, unknown ones
//! skipped by wire type, repeated scalars packed or not. Malformed input gives `None`, never a
//! panic.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

#[derive(Debug, Clone, Default)]
pub struct Message<'a> {
    pub fields: Vec<(u32, Value<'a>)>,
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        out |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

impl<'a> Message<'a> {
    pub fn parse(b: &'a [u8]) -> Option<Message<'a>> {
        let mut pos = 0;
        let mut fields = Vec::new();
        while pos < b.len() {
            let key = varint(b, &mut pos)?;
            let number = u32::try_from(key >> 3).ok()?;
            if number == 0 {
                return None;
            }
            let value = match key & 7 {
                0 => Value::Varint(varint(b, &mut pos)?),
                1 => {
                    let s: [u8; 8] = b.get(pos..pos + 8)?.try_into().ok()?;
                    pos += 8;
                    Value::Fixed64(u64::from_le_bytes(s))
                }
                2 => {
                    let len = usize::try_from(varint(b, &mut pos)?).ok()?;
                    let end = pos.checked_add(len)?;
                    let bytes = b.get(pos..end)?;
                    pos = end;
                    Value::Bytes(bytes)
                }
                5 => {
                    let s: [u8; 4] = b.get(pos..pos + 4)?.try_into().ok()?;
                    pos += 4;
                    Value::Fixed32(u32::from_le_bytes(s))
                }
                _ => return None,
            };
            fields.push((number, value));
        }
        Some(Message { fields })
    }

    pub fn u64(&self, n: u32) -> Option<u64> {
        self.fields.iter().rev().find(|f| f.0 == n).and_then(|f| match f.1 {
            Value::Varint(v) | Value::Fixed64(v) => Some(v),
            Value::Fixed32(v) => Some(u64::from(v)),
            Value::Bytes(_) => None,
        })
    }

    pub fn u32(&self, n: u32) -> Option<u32> {
        self.u64(n).map(|v| v as u32)
    }

    pub fn has(&self, n: u32) -> bool {
        self.fields.iter().any(|f| f.0 == n)
    }

    pub fn bytes(&self, n: u32) -> Option<&'a [u8]> {
        self.fields.iter().rev().find(|f| f.0 == n).and_then(|f| match f.1 {
            Value::Bytes(b) => Some(b),
            _ => None,
        })
    }

    pub fn string(&self, n: u32) -> Option<String> {
        self.bytes(n).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn message(&self, n: u32) -> Option<Message<'a>> {
        self.bytes(n).and_then(Message::parse)
    }

    pub fn messages(&self, n: u32) -> Vec<Message<'a>> {
        self.fields
            .iter()
            .filter(|f| f.0 == n)
            .filter_map(|f| match f.1 {
                Value::Bytes(b) => Message::parse(b),
                _ => None,
            })
            .collect()
    }

    /// A repeated scalar, written packed or one field per value.
    pub fn repeated_u64(&self, n: u32) -> Vec<u64> {
        let mut out = Vec::new();
        for f in self.fields.iter().filter(|f| f.0 == n) {
            match f.1 {
                Value::Varint(v) | Value::Fixed64(v) => out.push(v),
                Value::Fixed32(v) => out.push(u64::from(v)),
                Value::Bytes(b) => {
                    let mut pos = 0;
                    while pos < b.len() {
                        match varint(b, &mut pos) {
                            Some(v) => out.push(v),
                            None => break,
                        }
                    }
                }
            }
        }
        out
    }
}

/// IMG_COMMON and IMG_SERVICE head magics.
pub const COMMON_MAGIC: u32 = 0x5456_4319;
pub const SERVICE_MAGIC: u32 = 0x5510_5940;

/// An image file: its magic and its entries (raw protobuf payloads).
#[derive(Debug, Clone)]
pub struct Image<'a> {
    pub magic: u32,
    pub entries: Vec<&'a [u8]>,
    /// The file ends inside an entry: the entries before it are kept.
    pub truncated: bool,
}

/// Splits a CRIU image into its entries. `None` when it has no magic.
pub fn image(b: &[u8]) -> Option<Image<'_>> {
    let word = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?)) };
    let mut pos = 4;
    let mut magic = word(0)?;
    if magic == COMMON_MAGIC || magic == SERVICE_MAGIC {
        magic = word(4)?;
        pos = 8;
    }
    let mut entries = Vec::new();
    let mut truncated = false;
    while pos < b.len() {
        let entry = word(pos).and_then(|size| b.get(pos + 4..(pos + 4).checked_add(size as usize)?));
        match entry {
            Some(e) => {
                pos += 4 + e.len();
                entries.push(e);
            }
            None => {
                truncated = true;
                break;
            }
        }
    }
    Some(Image { magic, entries, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_packed_repeats() {
        // field 1 varint 150, field 5 packed [1, 2, 300], field 6 string "sh"
        let b = [0x08, 0x96, 0x01, 0x2a, 0x04, 0x01, 0x02, 0xac, 0x02, 0x32, 0x02, b's', b'h'];
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.u64(1), Some(150));
        assert_eq!(m.repeated_u64(5), vec![1, 2, 300]);
        assert_eq!(m.string(6).as_deref(), Some("sh"));
        assert!(Message::parse(&[0x08]).is_none(), "cut varint");
        assert!(Message::parse(&[0x12, 0x05, 0x01]).is_none(), "cut bytes");
    }
}
