//! Engine-level checks on hand-assembled Thumb code: exact instruction counts whatever the
//! scheduling quantum, semihosting exit, unmodelled registers and determinism.

use duet_emu::{Config, CoreId, Emulator, Image, RunError, Segment};

/// An M7 image: vector table at 0x0800_0000 (SP 0x2000_1000, reset 0x0800_0008) and `code`
/// at 0x0800_0008.
fn image(code: &[u16], literals: &[u32]) -> Image {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x2000_1000u32.to_le_bytes());
    bytes.extend_from_slice(&0x0800_0009u32.to_le_bytes());
    for hw in code {
        bytes.extend_from_slice(&hw.to_le_bytes());
    }
    while bytes.len() % 4 != 0 {
        bytes.push(0);
    }
    for l in literals {
        bytes.extend_from_slice(&l.to_le_bytes());
    }
    Image {
        segments: vec![Segment {
            addr: 0x0800_0000,
            data: bytes,
        }],
        symbols: Vec::new(),
        entry: 0x0800_0008,
        objects: Vec::new(),
    }
}

/// `movs r0,#0; loop: adds r0,#1; cmp r0,#100; bne loop; movs r0,#0x18; ldr r1,=0x20026;
/// bkpt 0xab` — 1 + 3 * 100 + 3 instructions, then SYS_EXIT(success).
fn counting_loop() -> Image {
    image(
        &[
            0x2000, 0x3001, 0x2864, 0xD1FC, 0x2018, 0x4901, 0xBEAB, 0xBF00,
        ],
        &[0x0002_0026],
    )
}

fn run(img: &Image, quantum: u64) -> (Result<duet_emu::Outcome, RunError>, u64) {
    let config = Config {
        quantum_ns: quantum,
        ..Config::default()
    };
    let mut emu = Emulator::new(img, None, config).expect("emulator");
    let r = emu.run();
    (r, emu.counters(CoreId::M7).instructions)
}

#[test]
fn instruction_counts_are_exact_for_any_quantum() {
    let img = counting_loop();
    for q in [30, 200, 4_000, 2_000_000] {
        let (r, n) = run(&img, q);
        let o = r.expect("exits");
        assert_eq!(o.m7_exit, 0, "quantum {q}");
        assert_eq!(n, 304, "quantum {q}");
    }
}

#[test]
fn probe_counts_instructions_between_points() {
    let img = counting_loop();
    let mut emu = Emulator::new(&img, None, Config::default()).expect("emulator");
    // 0x0800_000A is the loop head (a block start), 0x0800_000C the cmp inside that block.
    let head = emu.probe(CoreId::M7, 0x0800_000A).expect("probe");
    let mid = emu.probe(CoreId::M7, 0x0800_000C).expect("probe");
    emu.run().expect("exits");
    let h = emu.probe_hits(head);
    let m = emu.probe_hits(mid);
    assert_eq!(h.len(), 100);
    assert_eq!(m.len(), 100);
    // One movs before the first iteration; three instructions per iteration.
    assert_eq!(h[0], 1);
    assert!(h.windows(2).all(|w| w[1] - w[0] == 3), "{h:?}");
    assert!(h.iter().zip(&m).all(|(a, b)| b - a == 1));
}

#[test]
fn unmodelled_register_is_reported_with_core_and_address() {
    // ldr r1, =0x5000_0000 (an unmodelled peripheral); ldr r0, [r1]; b .
    let img = image(&[0x4901, 0x6808, 0xE7FE, 0xBF00], &[0x5000_0000]);
    let (r, _) = run(&img, 2_000);
    match r {
        Err(RunError::Unmodelled {
            core,
            address,
            write,
            ..
        }) => {
            assert_eq!(core, CoreId::M7);
            assert_eq!(address, 0x5000_0000);
            assert!(!write);
        }
        other => panic!("expected an unmodelled access, got {other:?}"),
    }
}

#[test]
fn undefined_instruction_is_a_fault_at_its_pc() {
    // nop; udf #7
    let img = image(&[0xBF00, 0xDE07], &[]);
    match run(&img, 2_000).0 {
        Err(RunError::Fault { core, pc, .. }) => {
            assert_eq!(core, CoreId::M7);
            assert_eq!(pc, 0x0800_000A);
        }
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn endless_loop_stalls_at_the_budget() {
    // b .
    let img = image(&[0xE7FE, 0xBF00], &[]);
    let config = Config {
        max_time_ns: 1_000_000,
        ..Config::default()
    };
    let mut emu = Emulator::new(&img, None, config).expect("emulator");
    match emu.run() {
        Err(RunError::Stall { time_ns, reason }) => {
            assert!(time_ns >= 1_000_000, "{time_ns}");
            assert!(reason.contains("budget"), "{reason}");
        }
        other => panic!("expected a stall, got {other:?}"),
    }
    // 1 ms at 480 MHz, one instruction per cycle (plus at most one block of overshoot).
    let n = emu.counters(CoreId::M7).instructions;
    assert!((480_000..480_000 + 4_000).contains(&n), "{n}");
}

#[test]
fn wfi_without_wakeup_source_is_a_stall() {
    // wfi; b .
    let img = image(&[0xBF30, 0xE7FE], &[]);
    match run(&img, 2_000).0 {
        Err(RunError::Stall { reason, .. }) => assert!(reason.contains("wake"), "{reason}"),
        other => panic!("expected a stall, got {other:?}"),
    }
}
