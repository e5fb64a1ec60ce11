//! The container: a ZIP (APPNOTE 6.3) whose members are all *stored*, written and read here
//! (about 250 lines; the `zip` crate's dependencies changed the workspace's shared features and
//! so its whole build). Zip64 records are written when a size or offset needs them, and read.
//! Every size and offset read is checked against the file's length before anything is
//! allocated or read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use flate2::Crc;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const EOCD: u32 = 0x0605_4b50;
const EOCD64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
const UTF8_FLAG: u16 = 0x0800;
/// 1980-01-01 00:00 in DOS form: bundles carry no file times.
const DOS_DATE: u16 = 0x21;
const MAX_CENTRAL_DIRECTORY: u64 = 64 << 20;

/// One member as the central directory lists it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub name: String,
    pub method: u16,
    pub crc: u32,
    pub size: u64,
    pub compressed_size: u64,
    pub local_offset: u64,
}

/// Writes members one after another, then the central directory.
pub(crate) struct Writer<W: Write> {
    out: W,
    offset: u64,
    entries: Vec<Entry>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            offset: 0,
            entries: Vec::new(),
        }
    }

    pub fn add(&mut self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let mut crc = Crc::new();
        crc.update(data);
        let size = data.len() as u64;
        let zip64 = size >= 0xFFFF_FFFF || self.offset >= 0xFFFF_FFFF;
        let mut h = Vec::with_capacity(30 + name.len() + 20);
        h.extend_from_slice(&LOCAL.to_le_bytes());
        h.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
        h.extend_from_slice(&UTF8_FLAG.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes()); // stored
        h.extend_from_slice(&0u16.to_le_bytes()); // time
        h.extend_from_slice(&DOS_DATE.to_le_bytes());
        h.extend_from_slice(&crc.sum().to_le_bytes());
        let small = if zip64 { 0xFFFF_FFFF } else { size as u32 };
        h.extend_from_slice(&small.to_le_bytes());
        h.extend_from_slice(&small.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        if zip64 {
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&16u16.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
        }
        self.out.write_all(&h)?;
        self.out.write_all(data)?;
        self.entries.push(Entry {
            name: name.to_owned(),
            method: 0,
            crc: crc.sum(),
            size,
            compressed_size: size,
            local_offset: self.offset,
        });
        self.offset += h.len() as u64 + size;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        let cd_offset = self.offset;
        let mut cd = Vec::new();
        for e in &self.entries {
            let zip64 = e.size >= 0xFFFF_FFFF || e.local_offset >= 0xFFFF_FFFF;
            cd.extend_from_slice(&CENTRAL.to_le_bytes());
            cd.extend_from_slice(&0x031Eu16.to_le_bytes()); // made by: Unix, 3.0
            cd.extend_from_slice(&(if zip64 { 45u16 } else { 20 }).to_le_bytes());
            cd.extend_from_slice(&UTF8_FLAG.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes());
            cd.extend_from_slice(&DOS_DATE.to_le_bytes());
            cd.extend_from_slice(&e.crc.to_le_bytes());
            let (small_size, small_offset) = if zip64 {
                (0xFFFF_FFFF, 0xFFFF_FFFF)
            } else {
                (e.size as u32, e.local_offset as u32)
            };
            cd.extend_from_slice(&small_size.to_le_bytes());
            cd.extend_from_slice(&small_size.to_le_bytes());
            cd.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&(if zip64 { 28u16 } else { 0 }).to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes()); // comment
            cd.extend_from_slice(&0u16.to_le_bytes()); // disk
            cd.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            cd.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes());
            cd.extend_from_slice(&small_offset.to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
            if zip64 {
                cd.extend_from_slice(&1u16.to_le_bytes());
                cd.extend_from_slice(&24u16.to_le_bytes());
                cd.extend_from_slice(&e.size.to_le_bytes());
                cd.extend_from_slice(&e.size.to_le_bytes());
                cd.extend_from_slice(&e.local_offset.to_le_bytes());
            }
        }
        let count = self.entries.len() as u64;
        let cd_size = cd.len() as u64;
        let needs64 = count >= 0xFFFF || cd_offset >= 0xFFFF_FFFF || cd_size >= 0xFFFF_FFFF;
        if needs64 {
            let eocd64_offset = cd_offset + cd_size;
            cd.extend_from_slice(&EOCD64.to_le_bytes());
            cd.extend_from_slice(&44u64.to_le_bytes());
            cd.extend_from_slice(&0x031Eu16.to_le_bytes());
            cd.extend_from_slice(&45u16.to_le_bytes());
            cd.extend_from_slice(&0u32.to_le_bytes());
            cd.extend_from_slice(&0u32.to_le_bytes());
            cd.extend_from_slice(&count.to_le_bytes());
            cd.extend_from_slice(&count.to_le_bytes());
            cd.extend_from_slice(&cd_size.to_le_bytes());
            cd.extend_from_slice(&cd_offset.to_le_bytes());
            cd.extend_from_slice(&LOCATOR64.to_le_bytes());
            cd.extend_from_slice(&0u32.to_le_bytes());
            cd.extend_from_slice(&eocd64_offset.to_le_bytes());
            cd.extend_from_slice(&1u32.to_le_bytes());
        }
        cd.extend_from_slice(&EOCD.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        let small_count = if needs64 { 0xFFFF } else { count as u16 };
        cd.extend_from_slice(&small_count.to_le_bytes());
        cd.extend_from_slice(&small_count.to_le_bytes());
        let (s, o) = if needs64 {
            (0xFFFF_FFFF, 0xFFFF_FFFF)
        } else {
            (cd_size as u32, cd_offset as u32)
        };
        cd.extend_from_slice(&s.to_le_bytes());
        cd.extend_from_slice(&o.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        self.out.write_all(&cd)?;
        Ok(self.out)
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fn read_at(file: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads the central directory: the members, or why this is not a complete ZIP.
pub(crate) fn read_directory(file: &mut File, file_len: u64) -> Result<Vec<Entry>, String> {
    let io = |e: std::io::Error| format!("reading: {e}");
    let tail_len = file_len.min(22 + 65_535);
    let tail = read_at(file, file_len - tail_len, tail_len as usize).map_err(io)?;
    let Some(pos) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&p| u32_at(&tail, p) == EOCD)
    else {
        return Err("no ZIP end-of-directory record (truncated, or not a ZIP at all)".to_owned());
    };
    let eocd_offset = file_len - tail_len + pos as u64;
    let e = &tail[pos..];
    let mut count = u64::from(u16_at(e, 10));
    let mut cd_size = u64::from(u32_at(e, 12));
    let mut cd_offset = u64::from(u32_at(e, 16));
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        if eocd_offset < 20 {
            return Err("zip64 locator missing".to_owned());
        }
        let loc = read_at(file, eocd_offset - 20, 20).map_err(io)?;
        if u32_at(&loc, 0) != LOCATOR64 {
            return Err("zip64 locator missing".to_owned());
        }
        let rec_offset = u64_at(&loc, 8);
        if rec_offset
            .checked_add(56)
            .is_none_or(|end| end > eocd_offset)
        {
            return Err("zip64 end record outside the file".to_owned());
        }
        let rec = read_at(file, rec_offset, 56).map_err(io)?;
        if u32_at(&rec, 0) != EOCD64 {
            return Err("zip64 end record missing".to_owned());
        }
        count = u64_at(&rec, 32);
        cd_size = u64_at(&rec, 40);
        cd_offset = u64_at(&rec, 48);
    }
    if cd_offset
        .checked_add(cd_size)
        .is_none_or(|end| end > eocd_offset)
        || cd_size > MAX_CENTRAL_DIRECTORY
        || count > cd_size / 46
    {
        return Err(format!(
            "the central directory ({cd_size} bytes at {cd_offset}, {count} members) does not fit the file (truncated?)"
        ));
    }
    let cd = read_at(file, cd_offset, cd_size as usize).map_err(io)?;
    let mut entries = Vec::with_capacity(count as usize);
    let mut p = 0usize;
    for _ in 0..count {
        if p + 46 > cd.len() || u32_at(&cd, p) != CENTRAL {
            return Err("damaged central directory".to_owned());
        }
        let method = u16_at(&cd, p + 10);
        let crc = u32_at(&cd, p + 16);
        let mut compressed_size = u64::from(u32_at(&cd, p + 20));
        let mut size = u64::from(u32_at(&cd, p + 24));
        let name_len = usize::from(u16_at(&cd, p + 28));
        let extra_len = usize::from(u16_at(&cd, p + 30));
        let comment_len = usize::from(u16_at(&cd, p + 32));
        let mut local_offset = u64::from(u32_at(&cd, p + 42));
        let end = p + 46 + name_len + extra_len + comment_len;
        if end > cd.len() {
            return Err("damaged central directory".to_owned());
        }
        let name = String::from_utf8_lossy(&cd[p + 46..p + 46 + name_len]).into_owned();
        // The zip64 extra field holds, in order, the fields whose 32-bit form is saturated.
        let mut x = p + 46 + name_len;
        let x_end = x + extra_len;
        while x + 4 <= x_end {
            let id = u16_at(&cd, x);
            let len = usize::from(u16_at(&cd, x + 2));
            let mut f = x + 4;
            if x + 4 + len > x_end {
                break;
            }
            if id == 1 {
                for field in [&mut size, &mut compressed_size, &mut local_offset] {
                    if *field == 0xFFFF_FFFF && f + 8 <= x + 4 + len {
                        *field = u64_at(&cd, f);
                        f += 8;
                    }
                }
            }
            x += 4 + len;
        }
        entries.push(Entry {
            name,
            method,
            crc,
            size,
            compressed_size,
            local_offset,
        });
        p = end;
    }
    for e in &entries {
        if e.local_offset
            .checked_add(30 + e.compressed_size)
            .is_none_or(|end| end > cd_offset)
        {
            return Err(format!("member {} reaches past the file's data", e.name));
        }
    }
    Ok(entries)
}

/// Where a member's bytes start (after its local header), checked to lie inside the file.
pub(crate) fn data_start(file: &mut File, e: &Entry, data_end: u64) -> Result<u64, String> {
    let h = read_at(file, e.local_offset, 30).map_err(|err| format!("reading: {err}"))?;
    if u32_at(&h, 0) != LOCAL {
        return Err("its local header is damaged".to_owned());
    }
    let start = e.local_offset + 30 + u64::from(u16_at(&h, 26)) + u64::from(u16_at(&h, 28));
    if start
        .checked_add(e.compressed_size)
        .is_none_or(|end| end > data_end)
    {
        return Err("its data reaches past the file's data".to_owned());
    }
    Ok(start)
}

/// Streams a member's bytes to `sink` in blocks, checking the ZIP's CRC-32.
pub(crate) fn stream(
    file: &mut File,
    e: &Entry,
    data_end: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<(), String> {
    if e.method != 0 {
        return Err("is compressed; bundles store members uncompressed".to_owned());
    }
    let start = data_start(file, e, data_end)?;
    file.seek(SeekFrom::Start(start))
        .map_err(|err| format!("reading: {err}"))?;
    let mut left = e.size;
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = Crc::new();
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n])
            .map_err(|err| format!("reading: {err}"))?;
        crc.update(&buf[..n]);
        sink(&buf[..n]);
        left -= n as u64;
    }
    if crc.sum() != e.crc {
        return Err("its bytes changed (the ZIP's CRC-32 differs)".to_owned());
    }
    Ok(())
}
