//! Register values computed off-chip: SysTick reload and time, MPU attributes, UART divider,
//! the semihosting exit request, cpu_id decoding, and SRAM4 bounds.

use duet::CpuId;
use duet_rpmsg::{OutOfBounds, SharedMemory};
use duet_stm32h7::board::{brr, Pin, BOARD, CORE_HZ};
use duet_stm32h7::clock::{micros, reload_for, scale_for, ClockError};
use duet_stm32h7::exit::{exit_request, ADP_STOPPED_APPLICATION_EXIT, SYS_EXIT, SYS_EXIT_EXTENDED};
use duet_stm32h7::mpu::{rasr, NON_CACHEABLE, SRAM4_RASR};
use duet_stm32h7::Sram4;

#[test]
fn systick_reload_and_time() {
    assert_eq!(reload_for(CORE_HZ), Ok(63_999));
    assert_eq!(reload_for(480_000_000), Ok(479_999));
    assert_eq!(reload_for(999), Err(ClockError::BadFrequency));
    assert_eq!(reload_for(u32::MAX), Ok(4_294_966));
    // At the start of millisecond 5 (counter at the reload value), half-way, and just before 6.
    let s = scale_for(63_999);
    assert_eq!(micros(5, 63_999, 63_999, s), 5_000);
    assert_eq!(micros(5, 32_000, 63_999, s), 5_499);
    assert_eq!(micros(5, 0, 63_999, s), 5_999);
    // A counter value above the reload (not yet reloaded) counts as the start.
    assert_eq!(micros(5, 70_000, 63_999, s), 5_000);
    // Past 2^32 milliseconds.
    assert_eq!(micros(1 << 32, 0, 63_999, s), (1u64 << 32) * 1000 + 999);
}

#[test]
fn systick_time_without_division_is_within_a_microsecond_and_monotonic() {
    // The multiply-and-shift is at most 1 µs below the exact quotient (1 + reload / 2^22 at
    // SysTick's limit), never above it (so it stays below 1000 and does not overlap the next
    // millisecond), and never goes backwards.
    for hz in [
        1_000,
        999_999,
        3_000_000,
        64_000_000,
        240_000_000,
        480_000_000,
        u32::MAX,
    ] {
        let reload = reload_for(hz).unwrap();
        let s = scale_for(reload);
        let mut last = 0;
        let step = (reload / 5_000).max(1);
        let mut cvr = reload;
        let mut end = false;
        loop {
            let exact = u64::from(reload - cvr) * 1000 / (u64::from(reload) + 1);
            let got = micros(0, cvr, reload, s);
            let slack = 1 + u64::from(reload >> 22);
            assert!(
                got <= exact && exact - got <= slack,
                "{hz} Hz, cvr {cvr}: {got} vs {exact}"
            );
            assert!(got >= last && got < 1000);
            last = got;
            if end {
                break;
            }
            // The last step lands on 0 (just before the wrap).
            cvr = cvr.saturating_sub(step);
            end = cvr == 0;
        }
        assert_eq!(micros(7, 0, reload, s), 7_000 + last);
    }
}

#[test]
fn mpu_region_for_sram4_is_normal_non_cacheable_64k() {
    // XN, AP=011, TEX=001, S=1, C=0, B=0, SIZE=15 (64 KiB), ENABLE.
    assert_eq!(
        SRAM4_RASR,
        1 << 28 | 3 << 24 | 1 << 19 | 1 << 18 | 15 << 1 | 1
    );
    assert_eq!(rasr(32, NON_CACHEABLE).map(|v| (v >> 1) & 0x1F), Some(4));
    assert_eq!(rasr(48, NON_CACHEABLE), None);
    assert_eq!(rasr(16, NON_CACHEABLE), None);
}

#[test]
fn console_divider() {
    assert_eq!(brr(64_000_000, 115_200), 556);
    assert_eq!(BOARD.console.base, 0x4001_1000);
    assert_eq!(Pin::new(b'K', 7), Pin { port: 10, pin: 7 });
}

#[test]
fn semihosting_exit_request() {
    assert_eq!(
        exit_request(0, 0x2000_1000),
        (SYS_EXIT, ADP_STOPPED_APPLICATION_EXIT)
    );
    assert_eq!(
        exit_request(3, 0x2000_1000),
        (SYS_EXIT_EXTENDED, 0x2000_1000)
    );
    assert_eq!(
        (SYS_EXIT, SYS_EXIT_EXTENDED, ADP_STOPPED_APPLICATION_EXIT),
        (0x18, 0x20, 0x20026)
    );
}

#[test]
fn cpu_id_from_scb_cpuid() {
    assert_eq!(CpuId::from_scb_cpuid(0x411F_C271), CpuId::Cm7);
    assert_eq!(CpuId::from_scb_cpuid(0x410F_C241), CpuId::Cm4);
}

#[test]
fn sram4_refuses_out_of_bounds_and_misaligned_without_touching_memory() {
    // Every case below fails its check before any access (SRAM4 is not mapped on the host).
    let m = Sram4;
    assert_eq!(m.size(), 0x1_0000);
    let mut b = [0u8; 4];
    assert_eq!(
        m.read(0xFFFE, &mut b),
        Err(OutOfBounds {
            offset: 0xFFFE,
            len: 4
        })
    );
    assert_eq!(
        m.write(usize::MAX, &b),
        Err(OutOfBounds {
            offset: usize::MAX,
            len: 4
        })
    );
    assert_eq!(m.read_u16(1), Err(OutOfBounds { offset: 1, len: 2 }));
    assert_eq!(m.read_u32(2), Err(OutOfBounds { offset: 2, len: 4 }));
    assert_eq!(
        m.write_u32(0x1_0000, 1),
        Err(OutOfBounds {
            offset: 0x1_0000,
            len: 4
        })
    );
    assert_eq!(
        m.write_u16(0xFFFF, 1),
        Err(OutOfBounds {
            offset: 0xFFFF,
            len: 2
        })
    );
}

#[test]
fn rtc_calendar_encoding() {
    use duet_stm32h7::rtc::{decode, encode, RtcError};
    // 2025-01-01 00:00:00 UTC, a Wednesday (3).
    let (tr, dr) = encode(1_735_689_600).unwrap();
    assert_eq!(tr, 0);
    assert_eq!(dr, 0x25 << 16 | 3 << 13 | 0x01 << 8 | 0x01);
    // 2024-02-29 23:59:58, a Thursday (4).
    let (tr, dr) = encode(1_709_251_198).unwrap();
    assert_eq!(tr, 0x23 << 16 | 0x59 << 8 | 0x58);
    assert_eq!(dr, 0x24 << 16 | 4 << 13 | 0x02 << 8 | 0x29);
    for t in [946_684_800, 1_735_689_603, 1_709_251_198, 4_102_444_799] {
        let (tr, dr) = encode(t).unwrap();
        assert_eq!(decode(tr, dr), Ok(t));
    }
    assert_eq!(encode(946_684_799), Err(RtcError::OutOfRange));
    assert_eq!(encode(4_102_444_800), Err(RtcError::OutOfRange));
    assert_eq!(
        decode(0x24 << 16, 0x25 << 16 | 0x0101),
        Err(RtcError::Invalid)
    );
    assert_eq!(decode(0, 0x25 << 16 | 0x1301), Err(RtcError::Invalid));
}

#[test]
fn adc_values() {
    use duet_stm32h7::adc::{sqr1_single, to_10_bit};
    assert_eq!(to_10_bit(0), 0);
    assert_eq!(to_10_bit(0xFFFF), 1023);
    assert_eq!(to_10_bit(0x8000), 512);
    assert_eq!(to_10_bit(0x1_FFFF), 1023);
    assert_eq!(sqr1_single(4), 4 << 6);
    assert_eq!(sqr1_single(19), 19 << 6);
}

#[test]
fn ctime_matches_c() {
    use duet_stm32h7::rtc::Ctime;
    assert_eq!(Ctime(1_735_689_600).to_string(), "Wed Jan  1 00:00:00 2025");
    assert_eq!(Ctime(1_709_251_198).to_string(), "Thu Feb 29 23:59:58 2024");
    assert_eq!(Ctime(0).to_string(), "Thu Jan  1 00:00:00 1970");
}

#[test]
fn servo_pulses_and_timer_fields() {
    use duet_stm32h7::servo::{ccer_enable, ccmr_bits, prescaler_for, pulse_us, TIMER_CLOCK_HZ};
    // Arduino's Servo: 544 µs at 0 degrees, 2 400 µs at 180, linear; out-of-range clamps.
    assert_eq!(pulse_us(0), 544);
    assert_eq!(pulse_us(90), 1_472);
    assert_eq!(pulse_us(180), 2_400);
    assert_eq!(pulse_us(-5), 544);
    assert_eq!(pulse_us(270), 2_400);
    // 64 MHz / 64 = 1 MHz; clocks that do not divide to 1 MHz are refused.
    assert_eq!(prescaler_for(TIMER_CLOCK_HZ), Some(63));
    assert_eq!(prescaler_for(240_000_000), Some(239));
    assert_eq!(prescaler_for(999_999), None);
    assert_eq!(prescaler_for(64_500_000), None);
    // OC1M = 0b110 at bits 6:4 with OC1PE (bit 3); channel 2 the same 8 bits up; 3 and 4 in
    // CCMR2. The masks cover CCxS, OCxFE/PE/M/CE and OCxM[3].
    assert_eq!(ccmr_bits(1), (false, 0x0001_00FF, 0x68));
    assert_eq!(ccmr_bits(2), (false, 0x0100_FF00, 0x6800));
    assert_eq!(ccmr_bits(3), (true, 0x0001_00FF, 0x68));
    assert_eq!(ccmr_bits(4), (true, 0x0100_FF00, 0x6800));
    assert_eq!(ccer_enable(1), 1);
    assert_eq!(ccer_enable(4), 1 << 12);
    // Every board's servo pin is a TIM3 channel on alternate function 2.
    for b in [
        duet_stm32h7::board::GIGA,
        duet_stm32h7::board::PORTENTA,
        duet_stm32h7::board::DISCO,
    ] {
        assert_eq!(b.servo.af, 2, "{}", b.name);
        assert!((1..=4).contains(&b.servo.channel), "{}", b.name);
    }
}
