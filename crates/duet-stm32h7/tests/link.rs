//! The linker layouts in `link/` agree with `FlashSplit` and the chip's memory map: each image
//! starts where the split says, ends at the other image or the end of flash, and no RAM region
//! touches SRAM4 (the link memory).

use duet_stm32h7::{FlashSplit, SRAM4_BASE, SRAM4_SIZE};

/// (origin, length) of the region `name` in the layout file `file`.
fn region(file: &str, name: &str) -> (u64, u64) {
    let path = format!("{}/link/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(name) && l.contains("ORIGIN"))
        .unwrap_or_else(|| panic!("{file}: no region {name}"));
    let field = |key: &str| -> u64 {
        let rest = &line[line.find(key).expect(key) + key.len()..];
        let rest = rest.trim_start_matches([' ', '=']);
        let value: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(hex) = value.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).expect("hex")
        } else if let Some(k) = value.strip_suffix('K') {
            k.parse::<u64>().expect("KiB") * 1024
        } else {
            value.parse().expect("number")
        }
    };
    (field("ORIGIN"), field("LENGTH"))
}

const FLASH_END: u64 = 0x0820_0000;
const BOOTLOADER_END: u64 = 0x0804_0000;

#[test]
fn m4_layouts_start_at_the_split_and_end_with_flash() {
    for (file, split) in [
        ("m4_half.x", FlashSplit::Half),
        ("m4_three_quarters.x", FlashSplit::ThreeQuarters),
    ] {
        let (origin, len) = region(file, "FLASH");
        assert_eq!(origin, u64::from(split.m4_address()), "{file}");
        assert_eq!(len, u64::from(split.m4_flash()), "{file}");
        assert_eq!(origin + len, FLASH_END, "{file}");
        // The M4's RAM: D2 SRAM1-3 through its alias, 288 KiB.
        assert_eq!(region(file, "RAM"), (0x1000_0000, 288 * 1024), "{file}");
    }
}

#[test]
fn m7_layouts_end_where_the_m4_image_starts() {
    for (file, split, start) in [
        ("m7_half.x", FlashSplit::Half, 0x0800_0000),
        (
            "m7_three_quarters.x",
            FlashSplit::ThreeQuarters,
            0x0800_0000,
        ),
        ("m7_half_bootloader.x", FlashSplit::Half, BOOTLOADER_END),
        (
            "m7_three_quarters_bootloader.x",
            FlashSplit::ThreeQuarters,
            BOOTLOADER_END,
        ),
    ] {
        let (origin, len) = region(file, "FLASH");
        assert_eq!(origin, start, "{file}");
        assert_eq!(origin + len, u64::from(split.m4_address()), "{file}");
        if start == 0x0800_0000 {
            assert_eq!(len, u64::from(split.m7_flash()), "{file}");
        }
        // The M7's RAM: DTCM, 128 KiB.
        assert_eq!(region(file, "RAM"), (0x2000_0000, 128 * 1024), "{file}");
    }
}

#[test]
fn no_ram_region_overlaps_sram4() {
    let (base, size) = (SRAM4_BASE as u64, SRAM4_SIZE as u64);
    for file in [
        "m4_half.x",
        "m4_three_quarters.x",
        "m7_half.x",
        "m7_three_quarters.x",
        "m7_half_bootloader.x",
        "m7_three_quarters_bootloader.x",
    ] {
        let (origin, len) = region(file, "RAM");
        assert!(origin + len <= base || origin >= base + size, "{file}");
    }
}
