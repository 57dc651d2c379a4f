//! Hobby-servo PWM on TIM3, the way Arduino's `Servo` drives one: a pulse every 20 ms whose
//! width gives the angle, 544 µs for 0 degrees to 2 400 µs for 180 degrees (Arduino's
//! `MIN_PULSE_WIDTH` / `MAX_PULSE_WIDTH`), 1 500 µs after [`Servo::attach`].
//!
//! The timer counts at 1 MHz: its kernel clock is the reset APB1 timer clock
//! ([`TIMER_CLOCK_HZ`], HSI 64 MHz, prescalers 1) divided by 64 (`PSC` = 63); `ARR` = 19 999
//! gives the 20 ms period, `CCRx` the pulse in µs. Output compare in PWM mode 1 with preload,
//! so a new width starts with the next period and never cuts one short.
//!
//! Limits: one timer (TIM3) for every board, the channel and pin from [`ServoPin`]; a clock
//! tree changed by the application (other APB1 prescaler or PLL) needs [`prescaler_for`] with
//! the new timer clock, which [`Servo::attach`] does not know.

use crate::board::{enable_alternate, Pin};
use crate::pac;

/// The timer's kernel clock at reset: APB1 timer clock = HSI 64 MHz (D2PPRE1 = 1).
pub const TIMER_CLOCK_HZ: u32 = 64_000_000;
/// The pulse period (µs).
pub const PERIOD_US: u32 = 20_000;
/// The pulse for 0 degrees (µs), Arduino's `MIN_PULSE_WIDTH`.
pub const MIN_PULSE_US: u32 = 544;
/// The pulse for 180 degrees (µs), Arduino's `MAX_PULSE_WIDTH`.
pub const MAX_PULSE_US: u32 = 2_400;
/// The pulse after [`Servo::attach`] (µs), Arduino's `DEFAULT_PULSE_WIDTH`.
pub const DEFAULT_PULSE_US: u32 = 1_500;

/// A servo output: a TIM3 channel and the pin it reaches through an alternate function.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ServoPin {
    /// The pin.
    pub pin: Pin,
    /// Its alternate function number for TIM3 (2 on the STM32H747).
    pub af: u8,
    /// The TIM3 channel, 1..=4.
    pub channel: u8,
    /// The board's name for the pin, for messages.
    pub label: &'static str,
}

/// The pulse width (µs) for `angle` degrees, clamped to 0..=180 as Arduino's `Servo::write`.
pub const fn pulse_us(angle: i32) -> u32 {
    let a = if angle < 0 {
        0
    } else if angle > 180 {
        180
    } else {
        angle as u32
    };
    MIN_PULSE_US + (MAX_PULSE_US - MIN_PULSE_US) * a / 180
}

/// `PSC` for a 1 MHz count from a `timer_hz` kernel clock (`None` below 1 MHz or when the
/// division is not exact: the pulse widths would be off).
pub const fn prescaler_for(timer_hz: u32) -> Option<u32> {
    if timer_hz < 1_000_000
        || !timer_hz.is_multiple_of(1_000_000)
        || timer_hz / 1_000_000 > 0x1_0000
    {
        None
    } else {
        Some(timer_hz / 1_000_000 - 1)
    }
}

/// For `channel` (1..=4): whether it lives in `CCMR2` (channels 3, 4), and the mask and value
/// of its output-compare bits there (OCxM = 0b0110, PWM mode 1; OCxPE = 1, preload).
pub const fn ccmr_bits(channel: u8) -> (bool, u32, u32) {
    let shift = if channel % 2 == 1 { 0 } else { 8 };
    // CCxS (1:0), OCxFE (2), OCxPE (3), OCxM[2:0] (6:4), OCxCE (7), OCxM[3] (16).
    let mask = (0xFF << shift) | (1 << (16 + shift));
    let value = (0b110 << (4 + shift)) | (1 << (3 + shift));
    (channel >= 3, mask, value)
}

/// `CCER`'s enable bit (CCxE) for `channel` (1..=4).
pub const fn ccer_enable(channel: u8) -> u32 {
    1 << ((channel as u32 - 1) * 4)
}

const CR1_CEN: u32 = 1 << 0;
const CR1_ARPE: u32 = 1 << 7;
const EGR_UG: u32 = 1 << 0;
/// `RCC_APB1LENR` bit 1: TIM3EN.
const APB1LENR_TIM3EN: u32 = 1 << 1;

/// Why a servo cannot be attached.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServoError {
    /// The channel is not 1..=4.
    BadChannel,
}

impl core::fmt::Display for ServoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("servo: TIM3 has channels 1 to 4 only")
    }
}

/// A servo on a TIM3 channel, pulsing from [`Servo::attach`] on.
#[derive(Debug)]
pub struct Servo {
    channel: u8,
}

fn tim3() -> &'static pac::tim3::RegisterBlock {
    // SAFETY: the PAC's fixed TIM3 address; registers are volatile cells.
    unsafe { &*pac::TIM3::ptr() }
}

impl Servo {
    /// Clocks TIM3, routes the pin, starts the 50 Hz pulse at [`DEFAULT_PULSE_US`]. TIM3 is
    /// this servo's alone: attach once, from one core.
    pub fn attach(pin: ServoPin) -> Result<Servo, ServoError> {
        if !(1..=4).contains(&pin.channel) {
            return Err(ServoError::BadChannel);
        }
        // SAFETY: the fixed RCC address; only TIM3EN is set, the other bits are kept.
        unsafe {
            let rcc = &*pac::RCC::ptr();
            rcc.apb1lenr()
                .modify(|r, w| w.bits(r.bits() | APB1LENR_TIM3EN));
            let _ = rcc.apb1lenr().read();
        }
        let t = tim3();
        // SAFETY: CR1 = 0 stops the timer while it is configured; any value is valid.
        t.cr1().write(|w| unsafe { w.bits(0) });
        // The reset clock divides exactly: `prescaler_for` cannot fail for it.
        let psc = prescaler_for(TIMER_CLOCK_HZ).unwrap_or(63);
        // SAFETY: PSC and ARR take 16-bit values; both fit.
        t.psc().write(|w| unsafe { w.bits(psc) });
        // SAFETY: as above.
        t.arr().write(|w| unsafe { w.bits(PERIOD_US - 1) });
        let (second, mask, value) = ccmr_bits(pin.channel);
        if second {
            // SAFETY: only this channel's output-compare bits change (see `ccmr_bits`).
            t.ccmr2_output()
                .modify(|r, w| unsafe { w.bits((r.bits() & !mask) | value) });
        } else {
            // SAFETY: as above.
            t.ccmr1_output()
                .modify(|r, w| unsafe { w.bits((r.bits() & !mask) | value) });
        }
        let s = Servo {
            channel: pin.channel,
        };
        s.write_us(DEFAULT_PULSE_US);
        let enable = ccer_enable(pin.channel);
        // SAFETY: sets this channel's output enable, keeps the others.
        t.ccer().modify(|r, w| unsafe { w.bits(r.bits() | enable) });
        // SAFETY: UG loads PSC, ARR and CCR now rather than at the first overflow.
        t.egr().write(|w| unsafe { w.bits(EGR_UG) });
        // SAFETY: auto-reload preload and counter enable.
        t.cr1().write(|w| unsafe { w.bits(CR1_ARPE | CR1_CEN) });
        enable_alternate(pin.pin, pin.af);
        Ok(s)
    }

    /// Arduino's `Servo::write`: moves to `angle` degrees (clamped to 0..=180) from the next
    /// period on; returns the angle it went to.
    pub fn write(&self, angle: i32) -> u8 {
        self.write_us(pulse_us(angle));
        angle.clamp(0, 180) as u8
    }

    /// Sets the pulse width in µs, clamped to [`MIN_PULSE_US`]..=[`MAX_PULSE_US`].
    pub fn write_us(&self, us: u32) {
        let us = us.clamp(MIN_PULSE_US, MAX_PULSE_US);
        // SAFETY: CCRx takes the compare value; `channel` is 1..=4 (checked by `attach`).
        tim3()
            .ccr(usize::from(self.channel - 1))
            .write(|w| unsafe { w.bits(us) });
    }
}
