//! Simulated peripherals of an Arduino GIGA R1 (what the dual-core guide's sketches touch):
//! the RGB LED, a potentiometer on A0, a servo, the RTC, the "Serial Monitor", and time.
//!
//! # Time
//! Each core has its own virtual millisecond clock ([`Board::millis`]) that advances only in
//! [`Board::delay`], as if the code between delays took no time; a delay also sleeps
//! `ms / speed` of real time so the two cores keep roughly the right pace. Peripherals that
//! tick (the RTC, the A0 waveform) run on the chip clock: the later of the two core clocks.
//! The output is deterministic as long as at most one core delays while the other reads the
//! ticking peripherals (true of every bundled example). duet's own deadlines (call timeouts)
//! stay in real time.
//!
//! # Output
//! The [`Console`] is the Serial Monitor (the M7's USB serial port) plus the simulator's notes
//! about the hardware (LED and servo changes). It prints to stdout (unless quiet) and records
//! every line, so tests can check the output.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::machine::Power;
use duet::CpuId;

/// One of the GIGA's RGB LED pins (active-low: [`LOW`] switches the colour on).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Pin {
    /// The red LED (`LEDR`).
    LedR = 0,
    /// The green LED (`LEDG`).
    LedG = 1,
    /// The blue LED (`LEDB`).
    LedB = 2,
}

/// The red LED pin.
pub const LEDR: Pin = Pin::LedR;
/// The green LED pin.
pub const LEDG: Pin = Pin::LedG;
/// The blue LED pin.
pub const LEDB: Pin = Pin::LedB;

impl Pin {
    /// `"red"`, `"green"` or `"blue"`.
    pub const fn colour(self) -> &'static str {
        match self {
            Pin::LedR => "red",
            Pin::LedG => "green",
            Pin::LedB => "blue",
        }
    }

    /// `"LEDR"`, `"LEDG"` or `"LEDB"`.
    pub const fn name(self) -> &'static str {
        match self {
            Pin::LedR => "LEDR",
            Pin::LedG => "LEDG",
            Pin::LedB => "LEDB",
        }
    }
}

/// A digital level.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Level {
    /// 0 V (switches an LED on: they are active-low).
    Low,
    /// 3.3 V (switches an LED off).
    High,
}

/// [`Level::Low`].
pub const LOW: Level = Level::Low;
/// [`Level::High`].
pub const HIGH: Level = Level::High;

/// An analog input pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Analog(pub u8);

/// Analog input 0, where the simulated potentiometer is wired.
pub const A0: Analog = Analog(0);

/// Period of the potentiometer waveform on A0 (a triangle 0 -> 1023 -> 0), in chip ms.
pub const POT_PERIOD_MS: u64 = 8000;

/// What the simulated hardware did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Change {
    /// An LED colour switched on or off.
    Led {
        /// Which colour.
        pin: Pin,
        /// Whether it is lit now.
        on: bool,
    },
    /// The servo moved to this angle (degrees, 0..=180).
    Servo(u8),
    /// The RTC was set to this Unix time (seconds).
    RtcSet(i64),
}

/// One hardware change: which core made it, when (that core's clock) and what.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Event {
    /// The core whose code made the change.
    pub core: CpuId,
    /// Its clock at the time, in ms.
    pub at_ms: u64,
    /// The change.
    pub change: Change,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} {:>5} ms] ", self.core.name(), self.at_ms)?;
        match self.change {
            Change::Led { pin, on } => write!(
                f,
                "LED {} ({}) {}",
                pin.colour(),
                pin.name(),
                if on { "on" } else { "off" }
            ),
            Change::Servo(a) => write!(f, "servo at {a} degrees"),
            Change::RtcSet(t) => write!(f, "RTC set to {}", ctime(t)),
        }
    }
}

/// Where a console line came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    /// The Serial Monitor: what the M7 printed on its USB serial port.
    Monitor,
    /// A note of the simulator about the hardware (an [`Event`]).
    Hardware,
    /// A heading or remark of the demo itself.
    Demo,
    /// A core's duet counters at the end of an example (`duet::Rpc::stats`).
    Stats,
}

/// One recorded console line (without its line end).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Line {
    /// Where it came from.
    pub source: Source,
    /// The text.
    pub text: String,
}

#[derive(Default)]
struct ConsoleState {
    lines: Vec<Line>,
    /// Monitor text after the last line end.
    partial: Vec<u8>,
}

/// The Serial Monitor plus the simulator's hardware notes: prints to stdout (unless quiet) and
/// records every line. Cheap to clone (shared).
///
/// Monitor output is split into lines at `\n` (a `\r` before it is dropped); text without a
/// line end is held until one comes or [`Console::finish`]. Hardware notes are indented by two
/// spaces on stdout.
#[derive(Clone)]
pub struct Console {
    state: Arc<Mutex<ConsoleState>>,
    echo: bool,
}

impl Console {
    /// A console that prints to stdout (`echo`) and records.
    pub fn new(echo: bool) -> Console {
        Console {
            state: Arc::default(),
            echo,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ConsoleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, st: &mut ConsoleState, source: Source, text: String) {
        if self.echo {
            match source {
                Source::Hardware | Source::Stats => println!("  {text}"),
                _ => println!("{text}"),
            }
        }
        st.lines.push(Line { source, text });
    }

    /// Writes bytes to the Serial Monitor (invalid UTF-8 is shown as U+FFFD).
    pub fn write(&self, bytes: &[u8]) {
        let mut st = self.state();
        for &b in bytes {
            if b == b'\n' {
                let mut raw = std::mem::take(&mut st.partial);
                if raw.last() == Some(&b'\r') {
                    raw.pop();
                }
                let text = String::from_utf8_lossy(&raw).into_owned();
                self.emit(&mut st, Source::Monitor, text);
            } else {
                st.partial.push(b);
            }
        }
    }

    /// Prints `text` to the Serial Monitor (Arduino's `Serial.print`).
    pub fn print(&self, text: &str) {
        self.write(text.as_bytes());
    }

    /// Prints `text` and a line end (Arduino's `Serial.println`).
    pub fn println(&self, text: &str) {
        self.write(text.as_bytes());
        self.write(b"\n");
    }

    /// Records a line of the given source (not the Serial Monitor's partial line).
    pub fn note(&self, source: Source, text: impl Into<String>) {
        let mut st = self.state();
        self.emit(&mut st, source, text.into());
    }

    /// Ends a pending partial Serial Monitor line (if any) as a line of its own.
    pub fn finish(&self) {
        let has_partial = !self.state().partial.is_empty();
        if has_partial {
            self.write(b"\n");
        }
    }

    /// Every line recorded so far.
    pub fn lines(&self) -> Vec<Line> {
        self.state().lines.clone()
    }

    /// The texts of the recorded lines of one source.
    pub fn texts(&self, source: Source) -> Vec<String> {
        self.state()
            .lines
            .iter()
            .filter(|l| l.source == source)
            .map(|l| l.text.clone())
            .collect()
    }

    /// The Serial Monitor lines recorded so far.
    pub fn monitor(&self) -> Vec<String> {
        self.texts(Source::Monitor)
    }
}

impl fmt::Write for &Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.print(s);
        Ok(())
    }
}

/// The hardware state both cores share.
struct Hardware {
    /// Pin levels of LEDR, LEDG, LEDB (`true` = high = off).
    leds: Mutex<[bool; 3]>,
    servo: Mutex<Option<u8>>,
    /// The RTC: the Unix time it was set to and the chip clock (ms) at that moment.
    rtc: Mutex<Option<(i64, u64)>>,
    /// Core clocks in ms: `[M7, M4]`.
    clocks: [AtomicU64; 2],
    events: Mutex<Vec<Event>>,
    console: Console,
    speed: u32,
    /// Where `delay`s and idle sleeps are recorded while tracing.
    recorder: std::sync::OnceLock<Arc<duet_trace::Recorder>>,
    /// Process mode: the chip clock also follows real time (times the speed) from here.
    real_time: std::sync::OnceLock<std::time::Instant>,
}

/// The simulated hardware of one chip, shared by both cores: hand each core a [`Board`] with
/// [`Peripherals::board`]; tests inspect the state through this.
#[derive(Clone)]
pub struct Peripherals {
    hw: Arc<Hardware>,
}

/// How much faster than real time the examples run by default (1 s of `delay` = 10 ms).
pub const DEFAULT_SPEED: u32 = 100;

impl Peripherals {
    /// Fresh hardware: LEDs off (pins high), servo detached, RTC unset, clocks at 0.
    /// `speed`: virtual ms per real ms in [`Board::delay`] (at least 1).
    pub fn new(console: Console, speed: u32) -> Peripherals {
        Peripherals {
            hw: Arc::new(Hardware {
                leds: Mutex::new([true; 3]),
                servo: Mutex::new(None),
                rtc: Mutex::new(None),
                clocks: [AtomicU64::new(0), AtomicU64::new(0)],
                events: Mutex::new(Vec::new()),
                console,
                speed: speed.max(1),
                recorder: std::sync::OnceLock::new(),
                real_time: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The view of the hardware from `core`.
    pub fn board(&self, core: CpuId) -> Board {
        Board {
            core,
            hw: self.hw.clone(),
            power: None,
        }
    }

    /// The console (Serial Monitor and hardware notes).
    pub fn console(&self) -> &Console {
        &self.hw.console
    }

    /// Process mode: the chip clock (what an idle core catches up with) also follows real
    /// time times the speed from now on, standing in for the other core's clock, which runs
    /// in another process.
    pub(crate) fn follow_real_time(&self) {
        let _ = self.hw.real_time.set(std::time::Instant::now());
    }

    /// Records every board's `delay` (as busy time) and `idle` (as a sleep) into `recorder`
    /// from now on. Once per chip: a second call is ignored (returns `false`).
    pub fn set_recorder(&self, recorder: Arc<duet_trace::Recorder>) -> bool {
        self.hw.recorder.set(recorder).is_ok()
    }

    /// Every hardware change so far, in the order they happened.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.hw.events).clone()
    }

    /// Whether each LED colour is lit now: `[red, green, blue]`.
    pub fn leds_lit(&self) -> [bool; 3] {
        lock(&self.hw.leds).map(|high| !high)
    }

    /// The servo's angle (`None` before the first move).
    pub fn servo_angle(&self) -> Option<u8> {
        *lock(&self.hw.servo)
    }

    /// The chip clock in ms (the later of the two core clocks).
    pub fn chip_ms(&self) -> u64 {
        chip_ms(&self.hw)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn chip_ms(hw: &Hardware) -> u64 {
    let cores = hw
        .clocks
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .max()
        .unwrap_or(0);
    // Process mode: the other core's clock is in another process; real time stands in.
    let real = hw.real_time.get().map_or(0, |start| {
        let ms = start
            .elapsed()
            .as_millis()
            .saturating_mul(u128::from(hw.speed));
        u64::try_from(ms).unwrap_or(u64::MAX)
    });
    cores.max(real)
}

fn slot(core: CpuId) -> usize {
    match core {
        CpuId::Cm7 => 0,
        CpuId::Cm4 => 1,
    }
}

/// One core's view of the board: pins, A0, the servo, the RTC and its clock. `Send` and
/// `Sync`; all methods take `&self`, so handlers can borrow it.
#[derive(Clone)]
pub struct Board {
    core: CpuId,
    hw: Arc<Hardware>,
    power: Option<Power>,
}

/// The longest [`Board::idle`] sleeps without a doorbell ring: short, because some progress
/// (a buffer returned by the peer) rings no doorbell.
pub const IDLE_SLICE: Duration = Duration::from_millis(2);

impl Board {
    pub(crate) fn set_power(mut self, power: Power) -> Board {
        self.power = Some(power);
        self
    }

    /// Whether the chip is still powered: `false` once the M7 program of a
    /// [`Machine`](crate::machine::Machine) has returned. An M4 program that serves forever on
    /// the chip loops on this in the simulator. Always `true` for boards made directly by
    /// [`Peripherals::board`].
    pub fn powered(&self) -> bool {
        self.power.as_ref().is_none_or(Power::powered)
    }

    /// Sleeps until the peer core rings this core's doorbell, at most [`IDLE_SLICE`] (no
    /// virtual time passes): what a firmware's main loop does with `WFE` between `poll`s.
    ///
    /// Time passes while a core idles: its clock catches up with the chip clock (so a core
    /// that only serves calls sees the caller's time).
    pub fn idle(&self) {
        self.traced(
            || match &self.power {
                Some(p) => p.idle(IDLE_SLICE),
                None => {
                    std::thread::sleep(IDLE_SLICE);
                    false
                }
            },
            |dur_ns, &woken| duet_trace::EventKind::Slept { dur_ns, woken },
        );
        let chip = chip_ms(&self.hw);
        self.hw.clocks[slot(self.core)].fetch_max(chip, Ordering::SeqCst);
    }

    /// The console (Serial Monitor and the simulator's notes) of the chip.
    pub fn console(&self) -> &Console {
        &self.hw.console
    }

    /// Records `f` as a span of this core (`Busy` or `Slept`) if the board is traced.
    fn traced<R>(
        &self,
        f: impl FnOnce() -> R,
        kind: impl FnOnce(u64, &R) -> duet_trace::EventKind,
    ) -> R {
        let Some(rec) = self.hw.recorder.get() else {
            return f();
        };
        let t0 = rec.now_ns();
        let r = f();
        let dur = rec.now_ns().saturating_sub(t0);
        rec.record_at(t0, self.core, kind(dur, &r));
        r
    }

    /// The core this view belongs to.
    pub fn core(&self) -> CpuId {
        self.core
    }

    /// Sets a pin (Arduino's `digitalWrite`). The LEDs are active-low; a change of state is
    /// recorded as an [`Event`] and noted on the console.
    pub fn digital_write(&self, pin: Pin, level: Level) {
        let high = level == Level::High;
        let changed = {
            let mut leds = lock(&self.hw.leds);
            let old = std::mem::replace(&mut leds[pin as usize], high);
            old != high
        };
        if changed {
            self.record(Change::Led { pin, on: !high });
        }
    }

    /// Reads an analog pin (Arduino's `analogRead`, 10 bits: 0..=1023). A0 is a potentiometer
    /// turned back and forth: a triangle wave over [`POT_PERIOD_MS`] of chip time (0 at 0 ms,
    /// 1023 at half the period). Other pins read 0.
    pub fn analog_read(&self, pin: Analog) -> u16 {
        if pin != A0 {
            return 0;
        }
        let half = POT_PERIOD_MS / 2;
        let t = chip_ms(&self.hw) % POT_PERIOD_MS;
        let up = if t <= half { t } else { POT_PERIOD_MS - t };
        (up * 1023 / half) as u16
    }

    /// Moves the servo to `angle` degrees, clamped to 0..=180 (Arduino's `Servo::write`).
    pub fn servo_write(&self, angle: i32) -> u8 {
        let a = angle.clamp(0, 180) as u8;
        *lock(&self.hw.servo) = Some(a);
        self.record(Change::Servo(a));
        a
    }

    /// The servo's last angle (`Servo::read`; 90 before the first move, as Arduino reports).
    pub fn servo_read(&self) -> u8 {
        lock(&self.hw.servo).unwrap_or(90)
    }

    /// Sets the RTC to `unix` seconds (mbed's `set_time`). It then runs on the chip clock.
    pub fn set_time(&self, unix: i64) {
        *lock(&self.hw.rtc) = Some((unix, chip_ms(&self.hw)));
        self.record(Change::RtcSet(unix));
    }

    /// The RTC's time in Unix seconds (mbed's `time(NULL)`); 0 plus the chip time if never set.
    pub fn time(&self) -> i64 {
        let (base, at) = lock(&self.hw.rtc).unwrap_or((0, 0));
        let elapsed = chip_ms(&self.hw).saturating_sub(at) / 1000;
        base.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX))
    }

    /// Waits `ms` milliseconds of this core's clock (Arduino's `delay`); sleeps `ms / speed`
    /// of real time.
    pub fn delay(&self, ms: u64) {
        self.hw.clocks[slot(self.core)].fetch_add(ms, Ordering::SeqCst);
        let real_us = ms.saturating_mul(1000) / u64::from(self.hw.speed);
        self.traced(
            || std::thread::sleep(Duration::from_micros(real_us)),
            |dur_ns, _| duet_trace::EventKind::Busy {
                what: format!("delay({ms})"),
                dur_ns,
            },
        );
    }

    /// This core's clock in ms (Arduino's `millis`).
    pub fn millis(&self) -> u64 {
        self.hw.clocks[slot(self.core)].load(Ordering::SeqCst)
    }

    fn record(&self, change: Change) {
        let e = Event {
            core: self.core,
            at_ms: self.millis(),
            change,
        };
        // Hold the event lock while noting, so the console shows events in recorded order.
        let mut events = lock(&self.hw.events);
        events.push(e);
        self.hw.console.note(Source::Hardware, e.to_string());
    }
}

/// Formats Unix seconds as C's `ctime` does, without the line end: `"Fri Jan  1 00:00:00 2016"`
/// (UTC, proleptic Gregorian calendar).
pub fn ctime(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
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

/// Year, month (1..=12) and day (1..=31) of the day `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Count from 0000-03-01 in 400-year eras, so leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_matches_known_dates() {
        assert_eq!(ctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(ctime(1_451_606_400), "Fri Jan  1 00:00:00 2016");
        assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(ctime(1_709_251_199), "Thu Feb 29 23:59:59 2024");
        assert_eq!(ctime(-1), "Wed Dec 31 23:59:59 1969");
    }

    #[test]
    fn console_splits_lines_and_keeps_partials() {
        let c = Console::new(false);
        c.write(b"one\r\ntw");
        c.write(b"o\nthr");
        assert_eq!(c.monitor(), ["one", "two"]);
        c.finish();
        assert_eq!(c.monitor(), ["one", "two", "thr"]);
    }

    #[test]
    fn pot_is_a_triangle_on_the_chip_clock() {
        let p = Peripherals::new(Console::new(false), u32::MAX);
        let (m7, m4) = (p.board(CpuId::Cm7), p.board(CpuId::Cm4));
        assert_eq!(m7.analog_read(A0), 0);
        m4.delay(2000);
        assert_eq!(m7.analog_read(A0), 511);
        m4.delay(2000);
        assert_eq!(m7.analog_read(A0), 1023);
        m4.delay(1000);
        assert_eq!(m7.analog_read(A0), 767);
        assert_eq!(m7.millis(), 0);
        assert_eq!(p.chip_ms(), 5000);
    }

    #[test]
    fn leds_are_active_low_and_changes_recorded() {
        let p = Peripherals::new(Console::new(false), u32::MAX);
        let b = p.board(CpuId::Cm4);
        b.digital_write(LEDG, LOW);
        b.digital_write(LEDG, LOW);
        assert_eq!(p.leds_lit(), [false, true, false]);
        b.delay(500);
        b.digital_write(LEDG, HIGH);
        let ev = p.events();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1].at_ms, 500);
        assert_eq!(
            p.console().texts(Source::Hardware),
            [
                "[M4     0 ms] LED green (LEDG) on",
                "[M4   500 ms] LED green (LEDG) off"
            ]
        );
    }

    #[test]
    fn rtc_runs_on_the_chip_clock() {
        let p = Peripherals::new(Console::new(false), u32::MAX);
        let b = p.board(CpuId::Cm4);
        b.delay(300);
        b.set_time(1_451_606_400);
        b.delay(999);
        assert_eq!(b.time(), 1_451_606_400);
        b.delay(1);
        assert_eq!(b.time(), 1_451_606_401);
        assert_eq!(b.servo_write(200), 180);
        assert_eq!(p.servo_angle(), Some(180));
    }
}
