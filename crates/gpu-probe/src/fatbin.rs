//! The CUDA fat binary container, as found in an ELF file's `.nv_fatbin`
//! section: one or more containers, each a 16-byte header
//! (magic `0xBA55ED50`, version, header size, size of the entries) followed
//! by entries, each an entry header (kind, header size, payload size, code
//! version, architecture, flags, …) and its payload (a cubin = SASS, or PTX).
//!
//! Only headers are read: payloads are skipped by offset, so a 1 GB
//! `libtorch_cuda.so` costs a few thousand small reads, and compressed
//! payloads never need to be decompressed.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde::{Deserialize, Serialize};

use crate::arch::{SmArch, Variant};

/// First word of every container.
pub const FATBIN_MAGIC: u32 = 0xBA55_ED50;
/// Size of the container header; entries start right after it.
pub const CONTAINER_HEADER_SIZE: u64 = 16;
/// Size of the fixed part of an entry header (newer toolkits append more).
pub const ENTRY_HEADER_MIN: u64 = 64;

/// Entry kinds, as stored in the first field of an entry header.
pub const KIND_PTX: u16 = 1;
pub const KIND_ELF: u16 = 2;
pub const KIND_LTOIR: u16 = 4;

/// Entry flags (`flags` field): payload compressed (LZ4 and, since CUDA 12.8, ZSTD).
pub const FLAG_COMPRESSED_LZ4: u64 = 0x2000;
pub const FLAG_COMPRESSED_ZSTD: u64 = 0x8000;
/// Arch-specific code (`sm_90a`).
pub const FLAG_ARCH_SPECIFIC: u64 = 0x10_0000;
/// Family-specific code (`sm_100f`).
pub const FLAG_FAMILY_SPECIFIC: u64 = 0x20_0000;

/// Random access to bytes: a slice in memory or a file read in place.
pub trait ByteSource {
    fn size(&self) -> u64;
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl ByteSource for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        let src = self.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ByteSource for std::fs::File {
    fn size(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A cubin: machine code (SASS) for one architecture.
    Sass,
    /// PTX, which the driver can JIT-compile for its architecture and later ones.
    Ptx,
    /// LTO-IR for link-time optimisation; the driver cannot load it directly.
    LtoIr,
    /// A kind this parser does not know (the number is kept in `raw_kind`).
    Other,
}

impl EntryKind {
    /// The name used in JSON: `sass`, `ptx`, `ltoir`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Sass => "sass",
            EntryKind::Ptx => "ptx",
            EntryKind::LtoIr => "ltoir",
            EntryKind::Other => "other",
        }
    }
}

/// One entry of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatbinEntry {
    pub kind: EntryKind,
    pub raw_kind: u16,
    pub arch: SmArch,
    /// Code version as (major, minor): the PTX ISA version for PTX entries.
    pub version: (u16, u16),
    pub flags: u64,
    pub compressed: bool,
    /// Offset of the entry header, relative to the start of the parsed region.
    pub offset: u64,
    pub header_size: u32,
    /// Bytes of payload (padded) that follow the entry header.
    pub payload_size: u64,
}

/// One container: its place in the region and its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub offset: u64,
    /// Header plus entries, in bytes.
    pub size: u64,
    pub entries: Vec<FatbinEntry>,
}

/// A malformed fatbin region. Offsets are relative to the region's start.
#[derive(Debug, thiserror::Error)]
pub enum FatbinError {
    #[error("at offset {offset:#x}: expected fatbin magic 0xba55ed50, found {found:#010x}")]
    BadMagic { offset: u64, found: u32 },
    #[error("at offset {offset:#x}: {what} runs past the end of the fatbin region ({region:#x} bytes)")]
    Truncated {
        offset: u64,
        what: &'static str,
        region: u64,
    },
    #[error("at offset {offset:#x}: {reason}")]
    Malformed { offset: u64, reason: String },
    #[error("reading the fatbin region: {0}")]
    Io(#[from] io::Error),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Parse every container in `src[start .. start + len]` (e.g. a `.nv_fatbin` section).
///
/// Containers follow each other, separated by zero padding up to 8-byte
/// alignment. Anything else between them is an error, so a misparse can
/// never silently drop kernels.
pub fn parse_region<S: ByteSource + ?Sized>(
    src: &S,
    start: u64,
    len: u64,
) -> Result<Vec<Container>, FatbinError> {
    let mut containers = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let mut word = [0u8; 8];
        let avail = (len - pos).min(8) as usize;
        src.read_exact_at(start + pos, &mut word[..avail])?;
        let magic = u32_at(&word, 0);
        if magic != FATBIN_MAGIC {
            if word[..avail].iter().all(|&b| b == 0) {
                pos += avail as u64; // padding between containers
                continue;
            }
            return Err(FatbinError::BadMagic {
                offset: pos,
                found: magic,
            });
        }
        let container = parse_container(src, start, len, pos)?;
        pos = (container.offset + container.size).next_multiple_of(8);
        containers.push(container);
    }
    Ok(containers)
}

fn parse_container<S: ByteSource + ?Sized>(
    src: &S,
    start: u64,
    len: u64,
    pos: u64,
) -> Result<Container, FatbinError> {
    if pos + CONTAINER_HEADER_SIZE > len {
        return Err(FatbinError::Truncated {
            offset: pos,
            what: "container header",
            region: len,
        });
    }
    let mut header = [0u8; CONTAINER_HEADER_SIZE as usize];
    src.read_exact_at(start + pos, &mut header)?;
    let header_size = u64::from(u16_at(&header, 6));
    let body_size = u64_at(&header, 8);
    if header_size < CONTAINER_HEADER_SIZE {
        return Err(FatbinError::Malformed {
            offset: pos,
            reason: format!("container header size {header_size} is below {CONTAINER_HEADER_SIZE}"),
        });
    }
    let end = pos
        .checked_add(header_size)
        .and_then(|p| p.checked_add(body_size))
        .filter(|&end| end <= len)
        .ok_or(FatbinError::Truncated {
            offset: pos,
            what: "container",
            region: len,
        })?;
    let mut entries = Vec::new();
    let mut at = pos + header_size;
    while at < end {
        let entry = parse_entry(src, start, end, at, len)?;
        at += u64::from(entry.header_size) + entry.payload_size;
        entries.push(entry);
    }
    Ok(Container {
        offset: pos,
        size: end - pos,
        entries,
    })
}

fn parse_entry<S: ByteSource + ?Sized>(
    src: &S,
    start: u64,
    end: u64,
    at: u64,
    len: u64,
) -> Result<FatbinEntry, FatbinError> {
    if at + ENTRY_HEADER_MIN > end {
        return Err(FatbinError::Truncated {
            offset: at,
            what: "entry header",
            region: len,
        });
    }
    let mut h = [0u8; ENTRY_HEADER_MIN as usize];
    src.read_exact_at(start + at, &mut h)?;
    let raw_kind = u16_at(&h, 0);
    let header_size = u32_at(&h, 4);
    let payload_size = u64_at(&h, 8);
    if u64::from(header_size) < ENTRY_HEADER_MIN {
        return Err(FatbinError::Malformed {
            offset: at,
            reason: format!("entry header size {header_size} is below {ENTRY_HEADER_MIN}"),
        });
    }
    let fits = at
        .checked_add(u64::from(header_size))
        .and_then(|p| p.checked_add(payload_size))
        .is_some_and(|next| next <= end);
    if !fits {
        return Err(FatbinError::Truncated {
            offset: at,
            what: "entry payload",
            region: len,
        });
    }
    let (minor, major) = (u16_at(&h, 24), u16_at(&h, 26));
    let arch_number = u32_at(&h, 28);
    let flags = u64_at(&h, 40);
    let kind = match raw_kind {
        KIND_PTX => EntryKind::Ptx,
        KIND_ELF => EntryKind::Sass,
        KIND_LTOIR => EntryKind::LtoIr,
        _ => EntryKind::Other,
    };
    let variant = if flags & FLAG_ARCH_SPECIFIC != 0 {
        Some(Variant::Specific)
    } else if flags & FLAG_FAMILY_SPECIFIC != 0 {
        Some(Variant::Family)
    } else {
        None
    };
    Ok(FatbinEntry {
        kind,
        raw_kind,
        arch: SmArch::from_number(arch_number).with_variant(variant),
        version: (major, minor),
        flags,
        compressed: flags & (FLAG_COMPRESSED_LZ4 | FLAG_COMPRESSED_ZSTD) != 0,
        offset: at,
        header_size,
        payload_size,
    })
}

/// What a set of containers holds, counted per architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FatbinSummary {
    pub containers: usize,
    /// SASS (cubin) entries per architecture, e.g. `{"sm_90": 812}`.
    pub sass: BTreeMap<SmArch, usize>,
    /// PTX entries per architecture they target.
    pub ptx: BTreeMap<SmArch, usize>,
    /// PTX ISA versions of the PTX entries, e.g. `["8.8"]`.
    pub ptx_isa: BTreeSet<String>,
    /// Entries that are neither SASS nor PTX (LTO-IR, unknown kinds).
    pub other_entries: usize,
    pub compressed_entries: usize,
}

impl FatbinSummary {
    pub fn of(containers: &[Container]) -> Self {
        let mut s = FatbinSummary {
            containers: containers.len(),
            ..Default::default()
        };
        for e in containers.iter().flat_map(|c| &c.entries) {
            match e.kind {
                EntryKind::Sass => *s.sass.entry(e.arch).or_default() += 1,
                EntryKind::Ptx => {
                    *s.ptx.entry(e.arch).or_default() += 1;
                    s.ptx_isa.insert(format!("{}.{}", e.version.0, e.version.1));
                }
                EntryKind::LtoIr | EntryKind::Other => s.other_entries += 1,
            }
            s.compressed_entries += usize::from(e.compressed);
        }
        s
    }
}

/// Builds fatbin containers byte by byte, in the layout [`parse_region`]
/// reads; for tests and for tools that need a fatbin of known content.
#[derive(Debug, Default)]
pub struct FatbinWriter {
    entries: Vec<u8>,
}

impl FatbinWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an entry of `kind` for `arch` with the given payload (padded to 8 bytes).
    pub fn entry(
        mut self,
        kind: u16,
        arch: SmArch,
        version: (u16, u16),
        extra_flags: u64,
        payload: &[u8],
    ) -> Self {
        let padded = payload.len().next_multiple_of(8);
        let mut flags = 0x11 | extra_flags; // 64-bit, Linux host
        match arch.variant {
            Some(Variant::Specific) => flags |= FLAG_ARCH_SPECIFIC,
            Some(Variant::Family) => flags |= FLAG_FAMILY_SPECIFIC,
            None => {}
        }
        // PTX entries carry a field for the JIT options the driver applies
        // (offset at byte 20, here pointing to an empty one); cuobjdump
        // refuses PTX entries without it.
        let header_size = if kind == KIND_PTX {
            ENTRY_HEADER_MIN as usize + 8
        } else {
            ENTRY_HEADER_MIN as usize
        };
        let mut h = vec![0u8; header_size];
        h[0..2].copy_from_slice(&kind.to_le_bytes());
        h[2..4].copy_from_slice(&0x0101u16.to_le_bytes());
        h[4..8].copy_from_slice(&(header_size as u32).to_le_bytes());
        h[8..16].copy_from_slice(&(padded as u64).to_le_bytes());
        h[16..20].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        if kind == KIND_PTX {
            h[20..24].copy_from_slice(&(ENTRY_HEADER_MIN as u32).to_le_bytes());
        }
        h[24..26].copy_from_slice(&version.1.to_le_bytes());
        h[26..28].copy_from_slice(&version.0.to_le_bytes());
        h[28..32].copy_from_slice(&arch.number().to_le_bytes());
        h[40..48].copy_from_slice(&flags.to_le_bytes());
        self.entries.extend_from_slice(&h);
        self.entries.extend_from_slice(payload);
        self.entries
            .resize(self.entries.len() + padded - payload.len(), 0);
        self
    }

    /// The container: header, then the entries added so far.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() + 16);
        out.extend_from_slice(&FATBIN_MAGIC.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&(CONTAINER_HEADER_SIZE as u16).to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.entries);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(s: &str) -> SmArch {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_entries_and_padding() {
        let a = FatbinWriter::new()
            .entry(KIND_ELF, sm("sm_90"), (1, 8), 0, b"\x7fELF-fake-cubin")
            .entry(
                KIND_PTX,
                sm("sm_90"),
                (8, 5),
                FLAG_COMPRESSED_LZ4,
                b".version 8.5\0",
            )
            .finish();
        let b = FatbinWriter::new()
            .entry(KIND_ELF, sm("sm_90a"), (1, 8), 0, b"x")
            .finish();
        let mut region = a.clone();
        region.extend_from_slice(&[0u8; 8]); // padding between containers
        region.extend_from_slice(&b);
        let containers = parse_region(region.as_slice(), 0, region.len() as u64).unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0].size, a.len() as u64);
        let kinds: Vec<_> = containers[0]
            .entries
            .iter()
            .map(|e| (e.kind, e.arch.to_string()))
            .collect();
        assert_eq!(
            kinds,
            [
                (EntryKind::Sass, "sm_90".into()),
                (EntryKind::Ptx, "sm_90".into())
            ]
        );
        assert!(containers[0].entries[1].compressed);
        assert_eq!(containers[0].entries[1].version, (8, 5));
        assert_eq!(containers[1].entries[0].arch.to_string(), "sm_90a");
        let s = FatbinSummary::of(&containers);
        assert_eq!(s.sass.len(), 2);
        assert_eq!(s.ptx_isa.iter().collect::<Vec<_>>(), ["8.5"]);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let good = FatbinWriter::new()
            .entry(KIND_ELF, sm("sm_80"), (1, 8), 0, &[1; 40])
            .finish();
        let mut garbage = good.clone();
        garbage.extend_from_slice(b"not a fatbin....");
        let err = parse_region(garbage.as_slice(), 0, garbage.len() as u64).unwrap_err();
        assert!(
            matches!(err, FatbinError::BadMagic { offset, .. } if offset == good.len() as u64),
            "{err}"
        );
        let cut = &good[..good.len() - 8];
        let err = parse_region(cut, 0, cut.len() as u64).unwrap_err();
        assert!(
            matches!(
                err,
                FatbinError::Truncated {
                    what: "container",
                    ..
                }
            ),
            "{err}"
        );
        let mut bad_entry = good.clone();
        bad_entry[16 + 4] = 8; // entry header size below 64
        let err = parse_region(bad_entry.as_slice(), 0, bad_entry.len() as u64).unwrap_err();
        assert!(err.to_string().contains("entry header size 8"), "{err}");
    }
}
