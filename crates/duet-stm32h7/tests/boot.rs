//! The M4 boot sequence against a register model of FLASH_OPTSR_CUR, RCC_GCR, RCC_AHB2ENR and
//! SYSCFG_UR3 that records every write in order.

use duet::{BootError, BootRemote};
use duet_stm32h7::boot::{
    boot_address_bits, boot_m4, BootRegs, M4Boot, M4BootError, AHB2ENR_D2SRAM123, GCR_BOOT_C2,
    OPTSR_BCM4,
};
use duet_stm32h7::FlashSplit;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Gcr(u32),
    Ur3(u32),
    Ahb2enr(u32),
}

#[derive(Default)]
struct Model {
    optsr: u32,
    gcr: u32,
    ur3: u32,
    ahb2enr: u32,
    writes: Vec<Write>,
}

impl BootRegs for Model {
    fn optsr_cur(&self) -> u32 {
        self.optsr
    }
    fn gcr(&self) -> u32 {
        self.gcr
    }
    fn write_gcr(&mut self, value: u32) {
        self.gcr = value;
        self.writes.push(Write::Gcr(value));
    }
    fn ur3(&self) -> u32 {
        self.ur3
    }
    fn write_ur3(&mut self, value: u32) {
        self.ur3 = value;
        self.writes.push(Write::Ur3(value));
    }
    fn ahb2enr(&self) -> u32 {
        self.ahb2enr
    }
    fn write_ahb2enr(&mut self, value: u32) {
        self.ahb2enr = value;
        self.writes.push(Write::Ahb2enr(value));
    }
}

#[test]
fn split_addresses_match_the_arduino_boards() {
    assert_eq!(FlashSplit::Half.m4_address(), 0x0810_0000);
    assert_eq!(FlashSplit::ThreeQuarters.m4_address(), 0x0818_0000);
    assert_eq!(FlashSplit::Half.m7_flash(), 1024 * 1024);
    assert_eq!(FlashSplit::Half.m4_flash(), 1024 * 1024);
    assert_eq!(FlashSplit::ThreeQuarters.m7_flash(), 1536 * 1024);
    assert_eq!(FlashSplit::ThreeQuarters.m4_flash(), 512 * 1024);
}

#[test]
fn boot_address_is_bits_31_to_16() {
    assert_eq!(boot_address_bits(0x0810_0000), Ok(0x0810));
    assert_eq!(boot_address_bits(0x0818_0000), Ok(0x0818));
    assert_eq!(boot_address_bits(0x1000_0000), Ok(0x1000));
    assert_eq!(boot_address_bits(0x6000_0000), Ok(0x6000));
    assert_eq!(boot_address_bits(0x0810_8000), Err(M4BootError::Misaligned));
    assert_eq!(boot_address_bits(0x0810_0004), Err(M4BootError::Misaligned));
    // Peripheral space, ITCM (not the M4's), past the end of flash.
    assert_eq!(
        boot_address_bits(0x4000_0000),
        Err(M4BootError::NotBootable)
    );
    assert_eq!(
        boot_address_bits(0x0000_0000),
        Err(M4BootError::NotBootable)
    );
    assert_eq!(
        boot_address_bits(0x0820_0000),
        Err(M4BootError::NotBootable)
    );
    assert_eq!(
        boot_address_bits(0xE000_0000),
        Err(M4BootError::NotBootable)
    );
}

#[test]
fn boot_writes_ur3_high_half_then_boot_c2_last() {
    let mut m = Model {
        ur3: 0x1234_0800, // BCM7_ADD1 in the low half must survive
        gcr: 0x0000_0001,
        ahb2enr: 0x0000_0010,
        ..Model::default()
    };
    boot_m4(&mut m, 0x0810_0000).unwrap();
    assert_eq!(
        m.writes,
        vec![
            Write::Ahb2enr(0x0000_0010 | AHB2ENR_D2SRAM123),
            Write::Ur3(0x0810_0800),
            Write::Gcr(0x0000_0001 | GCR_BOOT_C2),
        ]
    );
    assert_eq!(m.ur3 >> 16, 0x0810);
    assert_ne!(m.gcr & GCR_BOOT_C2, 0);
}

#[test]
fn boot_at_the_three_quarter_split() {
    let mut m = Model::default();
    boot_m4(&mut m, FlashSplit::ThreeQuarters.m4_address()).unwrap();
    assert_eq!(m.ur3, 0x0818_0000);
    assert_eq!(m.gcr, GCR_BOOT_C2);
}

#[test]
fn bcm4_option_bit_refuses_without_writing() {
    let mut m = Model {
        optsr: OPTSR_BCM4,
        ..Model::default()
    };
    assert_eq!(
        boot_m4(&mut m, 0x0810_0000),
        Err(M4BootError::AutobootEnabled)
    );
    assert!(m.writes.is_empty());
    // BCM4 explains a set BOOT_C2 too: it is reported first.
    m.gcr = GCR_BOOT_C2;
    assert_eq!(
        boot_m4(&mut m, 0x0810_0000),
        Err(M4BootError::AutobootEnabled)
    );
    assert!(m.writes.is_empty());
}

#[test]
fn already_started_m4_refuses_without_writing() {
    let mut m = Model {
        gcr: GCR_BOOT_C2,
        ..Model::default()
    };
    assert_eq!(
        boot_m4(&mut m, 0x0810_0000),
        Err(M4BootError::AlreadyStarted)
    );
    assert!(m.writes.is_empty());
    assert!(M4BootError::AlreadyStarted.message().contains("reset"));
    assert!(M4BootError::AutobootEnabled.message().contains("BCM4"));
}

#[test]
fn bad_address_refuses_before_looking_at_the_m4() {
    let mut m = Model::default();
    assert_eq!(boot_m4(&mut m, 0x0810_0100), Err(M4BootError::Misaligned));
    assert_eq!(boot_m4(&mut m, 0x5000_0000), Err(M4BootError::NotBootable));
    assert!(m.writes.is_empty());
}

#[test]
fn boot_remote_maps_errors_and_keeps_the_detail() {
    let mut b = M4Boot::with(
        Model {
            optsr: OPTSR_BCM4,
            ..Model::default()
        },
        true,
    );
    assert_eq!(b.boot(0x0810_0000), Err(BootError::AlreadyRunning));
    assert_eq!(b.last_error(), Some(M4BootError::AutobootEnabled));

    let mut b = M4Boot::with(Model::default(), true);
    assert_eq!(b.boot(0x0810_0001), Err(BootError::BadAddress));
    assert_eq!(b.last_error(), Some(M4BootError::Misaligned));
    assert_eq!(b.boot(0x0810_0000), Ok(()));
    assert_eq!(b.last_error(), None);
    assert_eq!(b.regs().gcr, GCR_BOOT_C2);
    // A second boot finds BOOT_C2 set.
    assert_eq!(b.boot(0x0810_0000), Err(BootError::AlreadyRunning));
    assert_eq!(b.last_error(), Some(M4BootError::AlreadyStarted));

    let mut on_m4 = M4Boot::with(Model::default(), false);
    assert_eq!(on_m4.boot(0x0810_0000), Err(BootError::Unsupported));
    assert_eq!(on_m4.last_error(), Some(M4BootError::NotM7));
    assert!(on_m4.regs().writes.is_empty());
}
