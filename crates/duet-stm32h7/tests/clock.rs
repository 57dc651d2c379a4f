//! The tick-count helpers that let `Chip::wait` skip clock reads (host build: the time is the
//! counted milliseconds). Its own test binary: the only one that counts ticks.

use duet_rpmsg::{Instant, Platform};
use duet_stm32h7::clock::{now, now_ticked, on_systick, tick_due, ticks};
use duet_stm32h7::Chip;

#[test]
fn tick_helpers_agree_with_the_clock_and_bound_it() {
    let (t0, lo0, next0) = now_ticked();
    assert_eq!(t0, now());
    assert_eq!(ticks(), lo0);
    assert_eq!(next0.as_micros(), t0.as_micros() + 1000);
    assert_eq!(tick_due(), (lo0, next0));

    on_systick();
    on_systick();
    let (t1, lo1, next1) = now_ticked();
    assert_eq!(lo1, lo0.wrapping_add(2));
    assert_eq!(ticks(), lo1);
    assert_eq!(t1.as_micros(), t0.as_micros() + 2000);
    assert!(t1 < next1);
    assert_eq!(tick_due(), (lo1, next1));

    // A deadline that has passed (also one inside the current millisecond) ends the wait
    // without a doorbell.
    let chip = Chip::assume(duet::CpuId::Cm7);
    assert!(!chip.wait(t1));
    assert!(!chip.wait(Instant::from_micros(0)));
}
