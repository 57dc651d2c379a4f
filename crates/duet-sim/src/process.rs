//! The process-mode file: the 64 KiB region followed by a 4 KiB control page with the doorbells.
//!
//! The format is specified in `PROCESS-MODE.md` next to this crate's `Cargo.toml`; the
//! constants below are the numbers of that document. All fields are little-endian `u32`s.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use crate::memory::{Mapping, SHM_BASE, SHM_SIZE};

/// File offset of the control page (right after the 64 KiB region).
pub const CONTROL_OFFSET: usize = SHM_SIZE;
/// Size of the control page in bytes.
pub const CONTROL_SIZE: usize = 0x1000;
/// Total file size: region plus control page (0x11000 = 69 632 bytes).
pub const FILE_SIZE: usize = CONTROL_OFFSET + CONTROL_SIZE;

/// Control-page offset of `magic`; holds [`MAGIC`] once the file is initialised.
pub const MAGIC_OFFSET: usize = 0x00;
/// Control-page offset of `version` ([`VERSION`]).
pub const VERSION_OFFSET: usize = 0x04;
/// Control-page offset of `region_size` (0x10000).
pub const REGION_SIZE_OFFSET: usize = 0x08;
/// Control-page offset of `region_base`, the firmware address of file offset 0 (0x3800_0000).
pub const REGION_BASE_OFFSET: usize = 0x0C;
/// Control-page offsets of the doorbell counters: `[HSEM 0 (M7 -> M4), HSEM 1 (M4 -> M7)]`.
pub const DOORBELL_OFFSETS: [usize; 2] = [0x10, 0x14];
/// Control-page offsets of the attached process ids: `[M7 side, M4 side]` (0 = none).
pub const PID_OFFSETS: [usize; 2] = [0x18, 0x1C];

/// `magic`: the bytes `"DUET"` read as a little-endian `u32`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"DUET");
/// Format version described by `PROCESS-MODE.md`.
pub const VERSION: u32 = 1;

/// Why a process-mode file could not be opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The operating system refused to open, size or map the file.
    Io(std::io::Error),
    /// The file is shorter than [`FILE_SIZE`] (not created yet, or not a duet-sim file).
    TooSmall {
        /// Its length in bytes.
        len: u64,
    },
    /// `magic` is not [`MAGIC`]: not initialised (yet), or not a duet-sim file.
    BadMagic {
        /// The value found.
        found: u32,
    },
    /// The format version is not [`VERSION`].
    BadVersion {
        /// The value found.
        found: u32,
    },
    /// `region_size` or `region_base` do not match this simulator's SRAM4 layout.
    BadGeometry {
        /// `region_size` found.
        size: u32,
        /// `region_base` found.
        base: u32,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "I/O error: {e}"),
            OpenError::TooSmall { len } => {
                write!(f, "file is {len} bytes, a duet-sim file has {FILE_SIZE}")
            }
            OpenError::BadMagic { found } => {
                write!(
                    f,
                    "bad magic {found:#010x} (expected {MAGIC:#010x}, \"DUET\")"
                )
            }
            OpenError::BadVersion { found } => {
                write!(
                    f,
                    "format version {found}, this simulator supports {VERSION}"
                )
            }
            OpenError::BadGeometry { size, base } => write!(
                f,
                "region {size:#x} bytes at {base:#010x}, expected {SHM_SIZE:#x} at {SHM_BASE:#010x}"
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for OpenError {
    fn from(e: std::io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// Reads control-page field `field` (cannot fail: the mapping covers the control page).
pub(crate) fn control_read(map: &Mapping, field: usize) -> u32 {
    map.u32_at(CONTROL_OFFSET + field)
        .map(|a| u32::from_le(a.load(std::sync::atomic::Ordering::Acquire)))
        .unwrap_or(0)
}

/// Writes control-page field `field` with one aligned 32-bit store.
pub(crate) fn control_write(map: &Mapping, field: usize, value: u32) {
    if let Ok(a) = map.u32_at(CONTROL_OFFSET + field) {
        a.store(value.to_le(), std::sync::atomic::Ordering::Release);
    }
}

/// Maps `path`; with `create`, (re)initialises it first: `magic` cleared, length set, region
/// and control page zeroed, header written, `magic` written last.
pub(crate) fn map_file(path: &Path, create: bool) -> Result<Arc<Mapping>, OpenError> {
    let file = if create {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?
    } else {
        OpenOptions::new().read(true).write(true).open(path)?
    };
    if create {
        init_file(&file)?;
    }
    let len = file.metadata()?.len();
    if len < FILE_SIZE as u64 {
        return Err(OpenError::TooSmall { len });
    }
    let map = Mapping::file(&file, FILE_SIZE)?;
    check_header(&map)?;
    Ok(Arc::new(map))
}

/// Initialises an open file as an empty duet-sim file (see `PROCESS-MODE.md`, "Creating").
/// A side that attached to the file before this (a leftover from an earlier run) saw the old
/// contents until now; see "Leftover files" there.
fn init_file(file: &File) -> Result<(), OpenError> {
    // Never shrink below FILE_SIZE while a peer may have it mapped: only grow or keep.
    if file.metadata()?.len() < FILE_SIZE as u64 {
        file.set_len(FILE_SIZE as u64)?;
    }
    let map = Mapping::file(file, FILE_SIZE)?;
    control_write(&map, MAGIC_OFFSET, 0);
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    let zeros = vec![0u8; FILE_SIZE];
    map.write(0, &zeros, true)
        .map_err(|_| OpenError::TooSmall {
            len: FILE_SIZE as u64,
        })?;
    control_write(&map, VERSION_OFFSET, VERSION);
    control_write(&map, REGION_SIZE_OFFSET, SHM_SIZE as u32);
    control_write(&map, REGION_BASE_OFFSET, SHM_BASE);
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    control_write(&map, MAGIC_OFFSET, MAGIC);
    Ok(())
}

/// Validates the header of a mapped file.
fn check_header(map: &Mapping) -> Result<(), OpenError> {
    let magic = control_read(map, MAGIC_OFFSET);
    if magic != MAGIC {
        return Err(OpenError::BadMagic { found: magic });
    }
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    let version = control_read(map, VERSION_OFFSET);
    if version != VERSION {
        return Err(OpenError::BadVersion { found: version });
    }
    let size = control_read(map, REGION_SIZE_OFFSET);
    let base = control_read(map, REGION_BASE_OFFSET);
    if size as usize != SHM_SIZE || base != SHM_BASE {
        return Err(OpenError::BadGeometry { size, base });
    }
    Ok(())
}
