//! A minimal RTC driver: set and read the calendar as Unix seconds (UTC, 24-hour format,
//! years 2000..=2099), for the rtc example (mbed's `set_time` / `time`).
//!
//! Set-up (RM0399 "RTC initialization"): backup-domain write access (`PWR_CR1.DBP`; no
//! supply configuration is touched), the LSI oscillator as the RTC clock unless the backup
//! domain already selected one (`RCC_BDCR.RTCSEL` can only be written once), `RTCEN`, the
//! RTC's APB clock, then the write-protection keys, `INIT` mode, the prescalers for 1 Hz,
//! `TR`/`DR` in BCD and out of `INIT`. Reading waits for `RSF`, then reads `TR` before `DR`
//! (the pair is consistent). Every wait has a deadline.

use crate::pac;

/// Why the RTC failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RtcError {
    /// A flag the sequence waits for (named) did not come within its deadline.
    Timeout(&'static str),
    /// The time is outside the calendar's range (2000-01-01 .. 2099-12-31).
    OutOfRange,
    /// The calendar registers hold an invalid date or time.
    Invalid,
}

impl core::fmt::Display for RtcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RtcError::Timeout(what) => write!(f, "RTC: no {what} within its deadline"),
            RtcError::OutOfRange => f.write_str("RTC: time outside 2000..2099"),
            RtcError::Invalid => f.write_str("RTC: invalid calendar value"),
        }
    }
}

const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

const fn bcd(v: u32) -> u32 {
    (v / 10) << 4 | (v % 10)
}

const fn from_bcd(v: u32) -> u32 {
    (v >> 4) * 10 + (v & 0xF)
}

/// `(TR, DR)` register values for `unix` seconds: BCD time (24 h) and date with the weekday
/// (1 = Monday .. 7 = Sunday).
pub const fn encode(unix: i64) -> Result<(u32, u32), RtcError> {
    // 2000-01-01 .. 2100-01-01 (exclusive).
    if unix < 946_684_800 || unix >= 4_102_444_800 {
        return Err(RtcError::OutOfRange);
    }
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    // 1970-01-01 was a Thursday (4).
    let weekday = ((days + 3).rem_euclid(7) + 1) as u32;
    let tr = bcd(secs / 3600) << 16 | bcd(secs / 60 % 60) << 8 | bcd(secs % 60);
    let dr = bcd((y - 2000) as u32) << 16 | weekday << 13 | bcd(m as u32) << 8 | bcd(d as u32);
    Ok((tr, dr))
}

/// Unix seconds from `TR` and `DR` values.
pub const fn decode(tr: u32, dr: u32) -> Result<i64, RtcError> {
    let h = from_bcd(tr >> 16 & 0x3F);
    let min = from_bcd(tr >> 8 & 0x7F);
    let s = from_bcd(tr & 0x7F);
    let y = from_bcd(dr >> 16 & 0xFF);
    let m = from_bcd(dr >> 8 & 0x1F);
    let d = from_bcd(dr & 0x3F);
    if h > 23 || min > 59 || s > 59 || y > 99 || m == 0 || m > 12 || d == 0 || d > 31 {
        return Err(RtcError::Invalid);
    }
    let days = days_from_civil(2000 + y as i64, m as i64, d as i64);
    Ok(days * 86_400 + (h * 3600 + min * 60 + s) as i64)
}

const ISR_RSF: u32 = 1 << 5;
const ISR_INITF: u32 = 1 << 6;
const ISR_INIT: u32 = 1 << 7;

/// The RTC, clocked and running (made by [`Rtc::init`]).
pub struct Rtc {
    _private: (),
}

fn rtc() -> &'static pac::rtc::RegisterBlock {
    // SAFETY: the PAC's fixed RTC address; registers are volatile cells.
    unsafe { &*pac::RTC::ptr() }
}

impl Rtc {
    /// Enables backup-domain access, the RTC clock (LSI unless one is selected already) and the
    /// RTC's bus clock. Needs the clock ([`Chip::init`](crate::Chip)) for its deadlines.
    pub fn init() -> Result<Rtc, RtcError> {
        // SAFETY: the fixed PWR and RCC addresses; only the named bits change.
        unsafe {
            let pwr = &*pac::PWR::ptr();
            pwr.cr1().modify(|r, w| w.bits(r.bits() | 1 << 8)); // DBP
            wait(|| pwr.cr1().read().bits() & 1 << 8 != 0, "PWR_CR1.DBP")?;
            let rcc = &*pac::RCC::ptr();
            rcc.apb4enr().modify(|r, w| w.bits(r.bits() | 1 << 16)); // RTCAPBEN
            let _ = rcc.apb4enr().read();
            let bdcr = rcc.bdcr().read().bits();
            if bdcr >> 8 & 3 == 0 {
                rcc.csr().modify(|r, w| w.bits(r.bits() | 1)); // LSION
                wait(|| rcc.csr().read().bits() & 2 != 0, "LSIRDY")?;
                rcc.bdcr().modify(|r, w| w.bits(r.bits() | 2 << 8)); // RTCSEL = LSI
            }
            rcc.bdcr().modify(|r, w| w.bits(r.bits() | 1 << 15)); // RTCEN
        }
        Ok(Rtc { _private: () })
    }

    /// Sets the calendar to `unix` seconds (UTC).
    pub fn set(&mut self, unix: i64) -> Result<(), RtcError> {
        let (tr, dr) = encode(unix)?;
        // SAFETY: the fixed RCC address; a read.
        let lse = unsafe { (*pac::RCC::ptr()).bdcr().read().bits() } >> 8 & 3 == 1;
        // 1 Hz: LSE 32 768 Hz / 128 / 256, LSI 32 kHz / 128 / 250.
        let prer = if lse {
            127 << 16 | 255
        } else {
            127 << 16 | 249
        };
        let r = rtc();
        // SAFETY: the unlock keys, then INIT; all values as RM0399 documents them.
        unsafe {
            r.wpr().write(|w| w.bits(0xCA));
            r.wpr().write(|w| w.bits(0x53));
            r.isr().modify(|v, w| w.bits(v.bits() | ISR_INIT));
        }
        let done = wait(|| r.isr().read().bits() & ISR_INITF != 0, "INITF").map(|()| {
            // SAFETY: in INIT mode, the prescalers and calendar may be written; RSF is cleared
            // (write 0) so the next read waits for a fresh copy.
            unsafe {
                r.prer().write(|w| w.bits(prer));
                r.tr().write(|w| w.bits(tr));
                r.dr().write(|w| w.bits(dr));
                r.cr().modify(|v, w| w.bits(v.bits() & !(1 << 6))); // FMT = 24 h
                r.isr()
                    .modify(|v, w| w.bits(v.bits() & !(ISR_INIT | ISR_RSF)));
            }
        });
        // SAFETY: any value re-locks the write protection.
        unsafe { r.wpr().write(|w| w.bits(0xFF)) };
        done
    }

    /// The calendar as Unix seconds (UTC).
    pub fn now(&mut self) -> Result<i64, RtcError> {
        let r = rtc();
        wait(|| r.isr().read().bits() & ISR_RSF != 0, "RSF")?;
        let tr = r.tr().read().bits();
        let dr = r.dr().read().bits();
        decode(tr, dr)
    }
}

/// Waits up to 100 ms for `done` (LSI start-up takes about 1 ms at most).
fn wait(done: impl Fn() -> bool, what: &'static str) -> Result<(), RtcError> {
    let end = crate::clock::now().saturating_add(core::time::Duration::from_millis(100));
    loop {
        if done() {
            return Ok(());
        }
        if crate::clock::now() >= end {
            return Err(RtcError::Timeout(what));
        }
    }
}

/// Unix seconds formatted as C's `ctime` (without the newline): `"Wed Jan  1 00:00:00 2025"`.
#[derive(Clone, Copy, Debug)]
pub struct Ctime(pub i64);

impl core::fmt::Display for Ctime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{} {} {:>2} {:02}:{:02}:{:02} {}",
            DAYS[days.rem_euclid(7) as usize],
            MONTHS[(m - 1) as usize],
            d,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            y
        )
    }
}
