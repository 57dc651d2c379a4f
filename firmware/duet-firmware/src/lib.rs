//! What every example firmware shares: the runtime (console, panic and fault handlers, the
//! interrupt routing duet-stm32h7 needs, the end of a run) and the small helpers of the
//! Arduino guide's sketches, as in the simulator's examples (`duet-sim/src/examples`).
//!
//! A run ends when the M7 calls [`exit`]: 0 when the example did what it should. The M4 tells
//! the M7 it has finished with the notification [`M4_DONE`] (the simulator knows this from its
//! thread ending; a chip has no such thing).
#![no_std]
// duet::Error carries the peer's error text inline (no heap to box it), by design.
#![allow(clippy::result_large_err)]

use core::cell::Cell;
use core::fmt::{self, Write as _};
use core::time::Duration;

use cortex_m_rt::{exception, ExceptionFrame};
use duet::{Error, Rpc, SerialError};
use duet_rpmsg::{Instant, Platform, Transport};
use duet_stm32h7::board::{Console, BOARD};
use duet_stm32h7::{FlashSplit, M4Boot, M4BootError};

pub use duet_stm32h7::{exit, Chip, HostTransport, RemoteTransport};

/// The RPC engine on the M7 (the host).
pub type M7Rpc<'a> = Rpc<'a, HostTransport>;
/// The RPC engine on the M4 (the remote).
pub type M4Rpc<'a> = Rpc<'a, RemoteTransport>;

/// The flash split the images are linked for (cargo feature `split-75-25`).
pub const SPLIT: FlashSplit = if cfg!(feature = "split-75-25") {
    FlashSplit::ThreeQuarters
} else {
    FlashSplit::Half
};
/// Where the M4 image is, and what the M7 boots.
pub const M4_ADDRESS: u32 = SPLIT.m4_address();
/// How long the M7 waits for the M4 to come up, and the M4 for the M7's endpoints (as
/// Arduino's `RPC.begin()`).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(5);
/// The notification the M4 sends when its part of an example is done.
pub const M4_DONE: &str = "m4Done";

/// The core clock both cores run at, readable from the ELF's symbol table (`DUET_CORE_HZ`) by
/// tools such as the emulator.
#[no_mangle]
#[used]
pub static DUET_CORE_HZ: u32 = duet_stm32h7::board::CORE_HZ;

/// Prints to the board's console UART (no newline).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the board's console UART.
#[macro_export]
macro_rules! println {
    () => { $crate::console_fmt(format_args!("\n")) };
    ($($arg:tt)*) => {{
        $crate::console_fmt(format_args!($($arg)*));
        $crate::console_fmt(format_args!("\n"));
    }};
}

/// Writes formatted text to the console (what [`print!`] expands to).
pub fn console_fmt(args: fmt::Arguments<'_>) {
    let _ = Console::board().write_fmt(args);
}

/// Writes bytes to the console.
pub fn console_write(bytes: &[u8]) {
    Console::board().write_bytes(bytes);
}

/// The M7's set-up: the chip (HSEM, MPU, SysTick, doorbell interrupt) and the console UART.
pub fn init_m7() -> Chip {
    Console::board().init();
    Chip::init()
}

/// The M4's set-up: the chip (HSEM, SysTick, doorbell interrupt); the console was set up by
/// the M7.
pub fn init_m4() -> Chip {
    Chip::init()
}

/// Milliseconds since the clock started (Arduino's `millis()`).
pub fn millis() -> u64 {
    duet_stm32h7::clock::millis()
}

/// Waits `ms` milliseconds, sleeping (Arduino's `delay()`).
pub fn delay(ms: u32) {
    duet_stm32h7::clock::delay_ms(ms);
}

/// A deadline `d` from now.
pub fn deadline(d: Duration) -> Instant {
    duet_stm32h7::clock::now().saturating_add(d)
}

/// Ends the run with 0 if `r` is `Ok`, else prints the error and ends with 1.
pub fn finish<E: fmt::Display>(core: &str, r: Result<(), E>) -> ! {
    match r {
        Ok(()) => exit(0),
        Err(e) => {
            println!("{core} error: {e}");
            exit(1)
        }
    }
}

/// `RPC.begin()` on the M7: boots the M4 at [`M4_ADDRESS`] and waits until it has announced
/// both endpoints. If the M4 boots by itself (`BCM4` set) it says so and waits for it anyway;
/// other boot errors and a peer that never comes up are printed and returned.
pub fn m7_begin(rpc: &mut M7Rpc<'_>) -> Result<(), Error> {
    // SAFETY: only this code writes RCC_GCR and SYSCFG_UR3.
    let mut boot = unsafe { M4Boot::chip() };
    match rpc.start(&mut boot, M4_ADDRESS, BOOT_TIMEOUT) {
        Ok(()) => Ok(()),
        Err(Error::Boot(e)) => match boot.last_error() {
            Some(M4BootError::AutobootEnabled) => {
                println!("M4 boot: {}", M4BootError::AutobootEnabled);
                println!("waiting for the M4 that booted by itself");
                rpc.wait_ready(deadline(BOOT_TIMEOUT))
                    .inspect_err(|_| not_up())
            }
            Some(detail) => {
                println!("M4 boot: {detail}");
                Err(Error::Boot(e))
            }
            None => Err(Error::Boot(e)),
        },
        Err(Error::NotReady) => {
            not_up();
            Err(Error::NotReady)
        }
        Err(e) => Err(e),
    }
}

fn not_up() {
    println!(
        "the M4 did not come up within {} s (is its image flashed at 0x{:08X}?)",
        BOOT_TIMEOUT.as_secs(),
        M4_ADDRESS
    );
}

/// `RPC.begin()` on the M4: waits until the M7 has bound both endpoints.
pub fn m4_begin(rpc: &mut M4Rpc<'_>) -> Result<(), Error> {
    rpc.wait_ready(deadline(BOOT_TIMEOUT))
}

/// A line of at most `N` bytes formatted on the stack (longer text is cut at `N`).
pub struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Line<N> {
    /// An empty line.
    pub const fn new() -> Self {
        Line {
            buf: [0; N],
            len: 0,
        }
    }

    /// The bytes written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for Line<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// `RPC.println(...)`: sends one formatted line (up to 256 bytes) to the other core's RPC
/// serial at once.
pub fn rpc_println<T: duet::Transport>(
    rpc: &mut Rpc<'_, T>,
    args: fmt::Arguments<'_>,
) -> Result<(), SerialError> {
    use embedded_io::Write;
    let mut line = Line::<256>::new();
    let _ = line.write_fmt(args);
    let mut serial = rpc.serial();
    serial.write_all(line.as_bytes())?;
    serial.write_all(b"\n")?;
    serial.flush()
}

/// The guide's M7 `loop()` for RPC serial: copies everything the M4 has printed so far to the
/// console.
pub fn forward_serial<T: duet::Transport>(rpc: &mut Rpc<'_, T>) {
    use embedded_io::Read;
    let mut serial = rpc.serial();
    let mut buf = [0u8; 128];
    while serial.available() > 0 {
        match serial.read(&mut buf) {
            Ok(n) => console_write(&buf[..n]),
            Err(_) => break,
        }
    }
}

/// [`m7_serve`]'s limit for an example whose M4 part takes `expected` on the M4's clock: twice
/// that (the two clocks need not agree: an emulator may run the M4 at half the M7's rate) plus
/// [`BOOT_TIMEOUT`].
pub fn serve_limit(expected: Duration) -> Duration {
    expected * 2 + BOOT_TIMEOUT
}

/// The M4 was still running when [`m7_serve`]'s limit passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct M4StillRunning {
    /// The limit that passed.
    pub limit: Duration,
}

impl fmt::Display for M4StillRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the M4 was still running after {} ms",
            self.limit.as_millis()
        )
    }
}

/// Why [`m7_serve`] stopped.
#[derive(Debug)]
pub enum ServeError {
    /// `poll` failed.
    Rpc(Error),
    /// The M4 did not finish in time.
    Late(M4StillRunning),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Rpc(e) => write!(f, "{e}"),
            ServeError::Late(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for ServeError {
    fn from(e: Error) -> Self {
        ServeError::Rpc(e)
    }
}

/// The M7's `loop()` in most examples: serves the M4's calls and forwards its RPC serial output
/// until `done` is set (by the [`M4_DONE`] handler), then forwards what is left. Sleeps in `WFE`
/// between doorbells. Gives up after `limit` with [`ServeError::Late`].
pub fn m7_serve(rpc: &mut M7Rpc<'_>, done: &Cell<bool>, limit: Duration) -> Result<(), ServeError> {
    let end = deadline(limit);
    while !done.get() {
        rpc.poll()?;
        forward_serial(rpc);
        let now = rpc.transport().platform().now();
        if now >= end {
            return Err(ServeError::Late(M4StillRunning { limit }));
        }
        rpc.transport()
            .platform()
            .wait(end.min(now.saturating_add(Duration::from_millis(10))));
    }
    rpc.poll()?;
    forward_serial(rpc);
    Ok(())
}

/// The M4's `loop()` when it only serves calls: poll, sleep until the doorbell; forever.
pub fn m4_serve(rpc: &mut M4Rpc<'_>) -> ! {
    loop {
        if let Err(e) = rpc.poll() {
            println!("M4 poll error: {e}");
        }
        let now = rpc.transport().platform().now();
        rpc.transport()
            .platform()
            .wait(now.saturating_add(Duration::from_millis(100)));
    }
}

/// The M4's end of an example: tells the M7 it is done, then serves forever.
pub fn m4_done(rpc: &mut M4Rpc<'_>) -> ! {
    if let Err(e) = rpc.notify(M4_DONE, ()) {
        println!("M4 error: {e}");
        exit(1);
    }
    m4_serve(rpc)
}

/// What the benchmark pair (`bench_m7`, `bench_m4`) shares: the size of each phase and the
/// marker the emulator probes (`cargo xtask bench`).
pub mod bench {
    /// `add` calls before the measured ones (steady state: buffers cycled, caches of the
    /// engine warm).
    pub const WARM_UP: u32 = 50;
    /// Measured `call("add", 1, 2)` round trips.
    pub const CALLS: u32 = 1000;
    /// Measured notifications.
    pub const NOTIFICATIONS: u32 = 1000;
    /// KiB streamed through RPC serial from the M4 to the M7.
    pub const STREAM_KIB: u32 = 64;
    /// The notification that marks a phase boundary on the M7: `benchMark(phase)`.
    pub const MARK: &str = "benchMark";

    /// `[CALLS, NOTIFICATIONS, STREAM_KIB]`, readable from the ELF by the emulator's harness
    /// (so the sizes are written down once, here).
    #[no_mangle]
    #[used]
    pub static DUET_BENCH_SIZES: [u32; 3] = [CALLS, NOTIFICATIONS, STREAM_KIB];

    /// A phase boundary: the emulator probes this symbol's entry on each core and records the
    /// core's instruction count at every call. Kept out of line and by name for that.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn duet_bench_mark(phase: u32) {
        core::hint::black_box(phase);
    }

    /// Marks phase boundary `phase` (calls [`duet_bench_mark`]).
    pub fn mark(phase: u32) {
        duet_bench_mark(phase);
    }
}

/// The board's name, for greetings.
pub const BOARD_NAME: &str = BOARD.name;

#[exception]
fn SysTick() {
    duet_stm32h7::clock::on_systick();
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if !duet_stm32h7::on_interrupt(irqn) {
        println!("{}: unexpected interrupt {irqn}", core_name());
        exit(3);
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    println!(
        "{}: HardFault at PC 0x{:08X} (LR 0x{:08X})",
        core_name(),
        frame.pc(),
        frame.lr()
    );
    exit(2)
}

fn core_name() -> &'static str {
    duet_stm32h7::cpu_id().name()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("{}: panic: {info}", core_name());
    exit(101)
}

/// The blink example's shared sketch (core identification): which LED and how fast, by core.
pub mod blink {
    use duet::CpuId;
    use duet_stm32h7::board::{Led, BOARD};

    /// How long both cores blink, in ms of their own clocks.
    pub const BLINK_FOR_MS: u64 = 2000;

    /// The M7 blinks the blue LED every 100 ms, the M4 the green one every 500 ms.
    pub fn led_for(cpu: CpuId) -> (Led, u32) {
        match cpu {
            CpuId::Cm7 => (BOARD.blue, 100),
            CpuId::Cm4 => (BOARD.green, 500),
        }
    }

    /// One blink of the sketch's `loop()`: on, wait, off, wait.
    pub fn blink(led: &Led, ms: u32) {
        led.set(true);
        crate::delay(ms);
        led.set(false);
        crate::delay(ms);
    }
}

/// The serial example's constants (as the simulator's).
pub mod serial {
    use core::fmt;

    /// Lines the M4 prints once a second.
    pub const SLOW_LINES: u32 = 3;
    /// Lines it then prints without any pause.
    pub const BURST_LINES: u32 = 12;

    /// The `n`th line of the burst (numbered from 1), as `Display`: long enough that the
    /// burst spans several transport buffers.
    pub struct BurstLine(pub u32);

    impl fmt::Display for BurstLine {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "burst {:02}/{BURST_LINES}: the quick brown fox jumps over the lazy dog",
                self.0
            )
        }
    }
}

/// The sensor example's constants.
pub mod sensor {
    /// How many readings the M4 takes.
    pub const READINGS: u32 = 5;
}

/// The servo example's constants.
pub mod servo {
    /// The M4's sweep (the last one is out of range on purpose).
    pub const SWEEP: [i32; 7] = [0, 45, 90, 135, 180, 90, 270];
}

/// The rtc example's constants.
pub mod rtc {
    /// What the M4 sets the RTC to: 2025-01-01 00:00:00 UTC.
    pub const START: i64 = 1_735_689_600;
    /// How many readings it sends after the first.
    pub const READINGS: u32 = 3;
}

/// The led example's constants.
pub mod led {
    /// How many times the M7 switches the LED on and off.
    pub const TOGGLES: u32 = 3;
}
