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

/// Microseconds since start from milliseconds counted, the counter's value and the reload
/// value (SysTick counts down from `reload` to 0 once per millisecond).
pub const fn micros(millis: u64, cvr: u32, reload: u32) -> u64 {
    let elapsed = reload.saturating_sub(cvr);
    millis * 1000 + (elapsed as u64 * 1000) / (reload as u64 + 1)
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

/// Milliseconds counted by [`on_systick`] since start.
pub fn millis() -> u64 {
    loop {
        let hi = MILLIS_HI.load(Ordering::SeqCst);
        let lo = MILLIS_LO.load(Ordering::SeqCst);
        if hi == MILLIS_HI.load(Ordering::SeqCst) {
            return (u64::from(hi) << 32) | u64::from(lo);
        }
    }
}

/// The current time in microseconds since [`start`] (0 before it). Monotonic, also inside a
/// handler that masks SysTick for less than a millisecond (a pending tick is counted).
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn now() -> Instant {
    use cortex_m::peripheral::{SCB, SYST};
    let reload = RELOAD.load(Ordering::Relaxed);
    if reload == 0 {
        return Instant::from_micros(0);
    }
    loop {
        let ms = millis();
        let mut cvr = SYST::get_current();
        let mut extra = 0;
        if SCB::is_pendst_pending() {
            // The counter wrapped but the tick is not counted yet (SysTick masked): the value
            // read after seeing the pending bit is past the wrap.
            cvr = SYST::get_current();
            extra = 1;
        }
        if ms == millis() {
            return Instant::from_micros(micros(ms + extra, cvr, reload));
        }
    }
}

/// Host builds (tests, docs): the milliseconds counted by [`on_systick`].
#[cfg(not(all(target_arch = "arm", target_os = "none")))]
pub fn now() -> Instant {
    Instant::from_micros(millis() * 1000)
}

/// Busy-waits (sleeping in `WFE` between ticks) for `ms` milliseconds.
pub fn delay_ms(ms: u32) {
    let end = now().saturating_add(core::time::Duration::from_millis(u64::from(ms)));
    while now() < end {
        crate::sleep();
    }
}
