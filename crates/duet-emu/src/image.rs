//! Firmware images: ELF files loaded by their program headers, plus their function symbols.

use object::read::elf::{ElfFile32, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSymbol, SymbolKind};
use std::path::Path;

/// One loadable piece of an image: `data` goes to physical address `addr`.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Physical (load) address.
    pub addr: u32,
    /// The bytes stored in the file (the zero-filled rest of the segment is not included).
    pub data: Vec<u8>,
}

/// A function symbol of an image.
#[derive(Clone, Debug)]
pub struct Symbol {
    /// Name, Rust names demangled without their hash (`duet_stm32h7::clock::now`).
    pub name: String,
    /// Start address with the Thumb bit cleared.
    pub addr: u32,
    /// Size in bytes (0 when the ELF does not say).
    pub size: u32,
}

/// A parsed ELF image: its loadable segments, entry point and function symbols.
#[derive(Clone, Debug, Default)]
pub struct Image {
    /// `PT_LOAD` segments with a non-empty file part, by physical address.
    pub segments: Vec<Segment>,
    /// Function symbols sorted by address.
    pub symbols: Vec<Symbol>,
    /// ELF entry point (informational; cores boot from their vector tables).
    pub entry: u32,
    /// Data symbols (name, address), for [`Image::u32_symbol`].
    pub objects: Vec<(String, u32)>,
}

impl Image {
    /// Reads and parses the ELF file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        Self::parse(&data).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a 32-bit little-endian ELF image.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let elf = ElfFile32::<Endianness>::parse(data).map_err(|e| format!("not an ELF32: {e}"))?;
        let endian = elf.endian();
        let mut segments = Vec::new();
        for ph in elf.elf_program_headers() {
            if ph.p_type(endian) != object::elf::PT_LOAD {
                continue;
            }
            let bytes = ph
                .data(endian, data)
                .map_err(|_| "segment outside the file".to_string())?;
            if bytes.is_empty() {
                continue;
            }
            segments.push(Segment {
                addr: ph.p_paddr(endian),
                data: bytes.to_vec(),
            });
        }
        segments.sort_by_key(|s| s.addr);
        let mut symbols: Vec<Symbol> = elf
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text)
            .filter_map(|s| {
                let name = s.name().ok()?;
                if name.is_empty() || name.starts_with('$') {
                    return None;
                }
                Some(Symbol {
                    name: format!("{:#}", rustc_demangle::demangle(name)),
                    addr: (s.address() as u32) & !1,
                    size: s.size() as u32,
                })
            })
            .collect();
        let objects = elf
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Data)
            .filter_map(|s| Some((s.name().ok()?.to_string(), s.address() as u32)))
            .collect();
        // Aliases (cortex-m-rt points every unused exception at DefaultHandler) sort so that the
        // preferred name comes first at its address; `symbol_at` reports that one.
        symbols.sort_by(|a, b| {
            a.addr
                .cmp(&b.addr)
                .then(alias_rank(&a.name).cmp(&alias_rank(&b.name)))
                .then(a.name.cmp(&b.name))
        });
        symbols.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
        Ok(Image {
            segments,
            symbols,
            entry: elf.elf_header().e_entry(endian),
            objects,
        })
    }

    /// Address (Thumb bit cleared) of the function symbol `name`: an exact match, or else the
    /// only symbol whose demangled path contains `name` (e.g. `"rpc_roundtrip"`).
    pub fn symbol(&self, name: &str) -> Option<u32> {
        if let Some(s) = self.symbols.iter().find(|s| s.name == name) {
            return Some(s.addr);
        }
        let mut found = self.symbols.iter().filter(|s| s.name.contains(name));
        let first = found.next()?;
        found.next().is_none().then_some(first.addr)
    }

    /// The little-endian `u32` stored at data symbol `name` in the image's loaded bytes (for
    /// constants such as `DUET_CORE_HZ`).
    pub fn u32_symbol(&self, name: &str) -> Option<u32> {
        self.u32_array(name, 1).map(|v| v[0])
    }

    /// `n` little-endian `u32`s stored from data symbol `name` (e.g. `DUET_BENCH_SIZES`).
    pub fn u32_array(&self, name: &str, n: usize) -> Option<Vec<u32>> {
        let addr = self.objects.iter().find(|(s, _)| s == name)?.1;
        let seg = self
            .segments
            .iter()
            .find(|s| addr >= s.addr && (addr - s.addr) as usize + 4 * n <= s.data.len())?;
        let o = (addr - seg.addr) as usize;
        Some(
            seg.data[o..o + 4 * n]
                .chunks(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    /// The function symbol containing `addr`, if any (of aliases, the handler's own name).
    pub fn symbol_at(&self, addr: u32) -> Option<&Symbol> {
        let i = self.symbols.partition_point(|s| s.addr <= addr);
        let last = self.symbols.get(i.checked_sub(1)?)?;
        let first = self.symbols.partition_point(|s| s.addr < last.addr);
        let s = &self.symbols[first];
        let end = if s.size == 0 {
            self.symbols.get(i).map_or(u32::MAX, |n| n.addr)
        } else {
            s.addr.saturating_add(s.size)
        };
        (addr < end).then_some(s)
    }
}

/// Sort rank among symbols at one address: the real handler names before exception aliases.
fn alias_rank(name: &str) -> u8 {
    match name {
        "DefaultHandler" | "HardFault" | "Reset" => 0,
        "HardFault_" | "DefaultHandler_" | "__stext" => 2,
        _ => 1,
    }
}
