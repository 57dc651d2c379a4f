//! The clock for deadlines: SysTick, one interrupt per millisecond, counting from the core
//! clock; sub-millisecond time from the counter. The interrupt also wakes a core sleeping in
//! `WFE`, so a wait with a deadline never sleeps past it by more than a millisecond.
//!
//! The firmware's `SysTick` exception handler must call [`on_systick`].

use core::sync::atomic::{AtomicU32, Ordering};

use duet_rpmsg::Instant;

static MILLIS_LO: AtomicU32 = AtomicU32::new(0);
static MILLIS_HI: AtomicU32 = AtomicU32::new(0);
/// SysTick reload value (cycles per millisecond minus one); 0 until [`start`].
#[cfg(all(target_arch = "arm", target_os = "none"))]
static RELOAD: AtomicU32 = AtomicU32::new(0);
/// [`scale_for`] of the reload value, set by [`start`].
#[cfg(all(target_arch = "arm", target_os = "none"))]
static SCALE: AtomicU32 = AtomicU32::new(0);

/// Largest SysTick reload value (24 bits).
pub const MAX_RELOAD: u32 = 0x00FF_FFFF;

/// Why the clock could not start.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClockError {
    /// The core clock is below 1 kHz or above 16.7 GHz: one millisecond does not fit SysTick.
    BadFrequency,
}

/// The SysTick reload value for a 1 ms period at `core_hz`.
pub const fn reload_for(core_hz: u32) -> Result<u32, ClockError> {
    let per_ms = core_hz / 1000;
    if per_ms == 0 || per_ms - 1 > MAX_RELOAD {
        return Err(ClockError::BadFrequency);
    }
    Ok(per_ms - 1)
}

/// The multiplier that turns counted cycles into microseconds without a division:
/// `floor(1000 * 2^22 / (reload + 1))`, computed once by `start` (on the chip). At most
/// `1000 * 2^22`, so it fits a `u32`, and so does its product with a counted value (below
/// `reload + 1`).
pub const fn scale_for(reload: u32) -> u32 {
    ((1000u64 << SCALE_SHIFT) / (reload as u64 + 1)) as u32
}

/// The fixed-point shift of [`scale_for`].
const SCALE_SHIFT: u32 = 22;

/// Microseconds since start from milliseconds counted, the counter's value, the reload value
/// (SysTick counts down from `reload` to 0 once per millisecond) and its [`scale_for`].
///
/// The sub-millisecond part is `elapsed * scale >> 22`: one 32-bit multiply, no division. It
/// is never above the exact `elapsed * 1000 / (reload + 1)` (so it stays below 1000 and the
/// time is monotonic) and at most `1 + reload / 2^22` µs below it: 1 µs for any core clock up
/// to 4 GHz.
pub const fn micros(millis: u64, cvr: u32, reload: u32, scale: u32) -> u64 {
    let elapsed = reload.saturating_sub(cvr);
    millis * 1000 + (elapsed.wrapping_mul(scale) >> SCALE_SHIFT) as u64
}

/// Starts SysTick from the processor clock (`core_hz`) with a 1 ms interrupt.
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn start(core_hz: u32) -> Result<(), ClockError> {
    use cortex_m::peripheral::{syst::SystClkSource, SYST};
    let reload = reload_for(core_hz)?;
    // SAFETY: the clock owns SysTick; nothing else in duet configures it.
    let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(reload);
    syst.clear_current();
    SCALE.store(scale_for(reload), Ordering::SeqCst);
    RELOAD.store(reload, Ordering::SeqCst);
    syst.enable_interrupt();
    syst.enable_counter();
    let _ = SYST::get_current();
    Ok(())
}

/// Counts one millisecond; call it from the `SysTick` exception handler.
pub fn on_systick() {
    let lo = MILLIS_LO.load(Ordering::Relaxed).wrapping_add(1);
    if lo == 0 {
        MILLIS_HI.fetch_add(1, Ordering::Relaxed);
    }
    MILLIS_LO.store(lo, Ordering::SeqCst);
}

/// The millisecond count as its two halves, read consistently: `lo`, then `hi`, then `lo`
/// again (the tick interrupt runs on this core, so an unchanged `lo` means no tick in between).
/// Compiler fences only: the writer is an interrupt on this core, no barrier is needed.
#[inline(always)]
fn millis_halves() -> (u32, u32) {
    use core::sync::atomic::compiler_fence;
    loop {
        let lo = MILLIS_LO.load(Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        let hi = MILLIS_HI.load(Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if lo == MILLIS_LO.load(Ordering::Relaxed) {
            return (lo, hi);
        }
    }
}

/// Milliseconds counted by [`on_systick`] since start.
pub fn millis() -> u64 {
    let (lo, hi) = millis_halves();
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The current time in microseconds since `start` (0 before it). Monotonic, also inside a
/// handler that masks SysTick for less than a millisecond (a pending tick is counted). No
/// division and no barrier: a few loads and one multiply ([`micros`]).
pub fn now() -> Instant {
    now_ticked().0
}

/// The current time ([`now`]), the tick count [`ticks`] it was read with and when the next
/// tick is due: while [`ticks`] still gives that count, the time is below the third value.
#[cfg(all(target_arch = "arm", target_os = "none"))]
#[inline(always)]
pub fn now_ticked() -> (Instant, u32, Instant) {
    use core::sync::atomic::compiler_fence;
    use cortex_m::peripheral::{SCB, SYST};
    let reload = RELOAD.load(Ordering::Relaxed);
    if reload == 0 {
        // Not started: no tick will come; the time stays 0.
        return (Instant::from_micros(0), 0, Instant::MAX);
    }
    let scale = SCALE.load(Ordering::Relaxed);
    loop {
        let lo = MILLIS_LO.load(Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        let hi = MILLIS_HI.load(Ordering::Relaxed);
        let mut cvr = SYST::get_current();
        let mut extra = 0;
        if SCB::is_pendst_pending() {
            // The counter wrapped but the tick is not counted yet (SysTick masked): the value
            // read after seeing the pending bit is past the wrap.
            cvr = SYST::get_current();
            extra = 1;
        }
        compiler_fence(Ordering::SeqCst);
        if lo == MILLIS_LO.load(Ordering::Relaxed) {
            let ms = ((u64::from(hi) << 32) | u64::from(lo)) + extra;
            let next = Instant::from_micros((ms + 1) * 1000);
            return (
                Instant::from_micros(micros(ms, cvr, reload, scale)),
                lo,
                next,
            );
        }
    }
}

/// Host builds (tests, docs): the milliseconds counted by [`on_systick`], as [`now_ticked`].
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
pub fn now_ticked() -> (Instant, u32, Instant) {
    let (lo, hi) = millis_halves();
    let ms = (u64::from(hi) << 32) | u64::from(lo);
    (
        Instant::from_micros(ms * 1000),
        lo,
        Instant::from_micros((ms + 1) * 1000),
    )
}

/// The tick count [`ticks`] and a time the clock is below until that count changes: when the
/// tick after it is due. Cheaper than [`now`] (no counter read, no multiply by the scale); the
/// far future if that cannot be told (a tick is pending but not counted, or the clock is not
/// started), so a caller comparing a deadline with it reads [`now_ticked`] then.
#[cfg(all(target_arch = "arm", target_os = "none"))]
#[inline(always)]
pub fn tick_due() -> (u32, Instant) {
    let (lo, hi) = millis_halves();
    if RELOAD.load(Ordering::Relaxed) == 0 || cortex_m::peripheral::SCB::is_pendst_pending() {
        return (lo, Instant::MAX);
    }
    let ms = (u64::from(hi) << 32) | u64::from(lo);
    (lo, Instant::from_micros((ms + 1) * 1000))
}

/// Host builds: [`now_ticked`] without the time.
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
pub fn tick_due() -> (u32, Instant) {
    let (_, lo, next) = now_ticked();
    (lo, next)
}

/// The low 32 bits of the millisecond count (one load): a cheap test whether a tick came.
#[inline(always)]
pub fn ticks() -> u32 {
    MILLIS_LO.load(Ordering::Relaxed)
}

/// Busy-waits (sleeping in `WFE` between ticks) for `ms` milliseconds.
pub fn delay_ms(ms: u32) {
    let end = now().saturating_add(core::time::Duration::from_millis(u64::from(ms)));
    while now() < end {
        crate::sleep();
    }
}
