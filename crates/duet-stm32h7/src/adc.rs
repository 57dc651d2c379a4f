//! A minimal polled ADC1 driver for `analogRead`: one single conversion of one channel,
//! 16-bit, scaled to Arduino's 10-bit range (0..=1023).
//!
//! Clocking: the ADC kernel clock is `per_ck` (HSI, 64 MHz; `RCC_D3CCIPR.ADCSEL` = 0b10)
//! divided by 16 in `ADC12_CCR` (4 MHz: no `BOOST` setting needed on either silicon revision).
//! The sequence (RM0399 "ADC on-off control"): leave deep power-down, enable the regulator and
//! wait 1 ms, calibrate, enable and wait `ADRDY`; per reading select the channel (`PCSEL`,
//! `SQR1`), start, wait `EOC`, read `DR`. Every wait has a deadline.

use crate::pac;

/// Why a reading failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AdcError {
    /// A flag the sequence waits for (named) did not come within its deadline.
    Timeout(&'static str),
    /// The channel is not an ADC1 input (0..=19).
    BadChannel,
}

impl core::fmt::Display for AdcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AdcError::Timeout(what) => write!(f, "ADC: no {what} within its deadline"),
            AdcError::BadChannel => f.write_str("ADC: not an ADC1 channel"),
        }
    }
}

/// A 16-bit conversion result as Arduino's default 10-bit `analogRead` value.
pub const fn to_10_bit(raw: u32) -> u16 {
    ((raw & 0xFFFF) >> 6) as u16
}

/// `SQR1` for one conversion of `channel` (L = 0, SQ1 = channel).
pub const fn sqr1_single(channel: u8) -> u32 {
    (channel as u32 & 0x1F) << 6
}

const CR_ADEN: u32 = 1 << 0;
const CR_ADSTART: u32 = 1 << 2;
const CR_ADCALLIN: u32 = 1 << 16;
const CR_ADVREGEN: u32 = 1 << 28;
const CR_ADCAL: u32 = 1 << 31;
const ISR_ADRDY: u32 = 1 << 0;
const ISR_EOC: u32 = 1 << 2;

/// ADC1, powered up and calibrated by [`Adc1::init`].
pub struct Adc1 {
    _private: (),
}

fn adc() -> &'static pac::adc3::RegisterBlock {
    // SAFETY: the PAC's fixed ADC1 address; registers are volatile cells.
    unsafe { &*pac::ADC1::ptr() }
}

impl Adc1 {
    /// Clocks, powers up, calibrates and enables ADC1 (see the module docs). Needs the clock
    /// ([`Chip::init`](crate::Chip) started it) for its deadlines.
    pub fn init() -> Result<Adc1, AdcError> {
        // SAFETY: the fixed RCC and ADC12 common addresses; only the named fields change.
        unsafe {
            let rcc = &*pac::RCC::ptr();
            // ADCSEL = per_ck (0b10).
            rcc.d3ccipr()
                .modify(|r, w| w.bits((r.bits() & !(3 << 16)) | (2 << 16)));
            // ADC12EN.
            rcc.ahb1enr().modify(|r, w| w.bits(r.bits() | (1 << 5)));
            let _ = rcc.ahb1enr().read();
            // CKMODE = 0 (kernel clock), PRESC = 0b0111 (divide by 16).
            (*pac::ADC12_COMMON::ptr())
                .ccr()
                .modify(|r, w| w.bits((r.bits() & !(0xF << 18 | 3 << 16)) | (0b0111 << 18)));
        }
        let a = adc();
        // Leave deep power-down (DEEPPWD = 0), then enable the regulator.
        // SAFETY: CR bits as documented; no conversion is running.
        a.cr().write(|w| unsafe { w.bits(0) });
        // SAFETY: as above.
        a.cr().write(|w| unsafe { w.bits(CR_ADVREGEN) });
        crate::clock::delay_ms(1);
        // Linearity + offset calibration.
        // SAFETY: as above.
        a.cr()
            .write(|w| unsafe { w.bits(CR_ADVREGEN | CR_ADCALLIN | CR_ADCAL) });
        wait(
            || a.cr().read().bits() & CR_ADCAL == 0,
            "end of calibration",
        )?;
        // SAFETY: ISR bits are write-1-to-clear.
        a.isr().write(|w| unsafe { w.bits(ISR_ADRDY) });
        // SAFETY: CR bits as documented.
        a.cr()
            .write(|w| unsafe { w.bits(CR_ADVREGEN | CR_ADCALLIN | CR_ADEN) });
        wait(|| a.isr().read().bits() & ISR_ADRDY != 0, "ADRDY")?;
        Ok(Adc1 { _private: () })
    }

    /// One conversion of `channel` (the pin must be in analog mode, its reset state),
    /// as 0..=1023.
    pub fn read(&mut self, channel: u8) -> Result<u16, AdcError> {
        if channel > 19 {
            return Err(AdcError::BadChannel);
        }
        let a = adc();
        // SAFETY: PCSEL takes one bit per channel; SQR1 as built by `sqr1_single`.
        a.pcsel()
            .modify(|r, w| unsafe { w.bits(r.bits() | 1 << channel) });
        // SAFETY: as above.
        a.sqr1().write(|w| unsafe { w.bits(sqr1_single(channel)) });
        let cr = a.cr().read().bits();
        // SAFETY: ADSTART starts the conversion; the other CR bits are kept.
        a.cr().write(|w| unsafe { w.bits(cr | CR_ADSTART) });
        wait(|| a.isr().read().bits() & ISR_EOC != 0, "EOC")?;
        Ok(to_10_bit(a.dr().read().bits()))
    }
}

/// Waits up to 10 ms for `done`.
fn wait(done: impl Fn() -> bool, what: &'static str) -> Result<(), AdcError> {
    let end = crate::clock::now().saturating_add(core::time::Duration::from_millis(10));
    loop {
        if done() {
            return Ok(());
        }
        if crate::clock::now() >= end {
            return Err(AdcError::Timeout(what));
        }
    }
}
