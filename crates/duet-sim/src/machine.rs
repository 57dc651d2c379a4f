//! [`Machine`]: a simulated STM32H747 that runs an M7 program and an M4 program on two threads
//! against the real stack (duet over duet-rpmsg's [`Host`]/[`Remote`] over [`SimPlatform`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use duet_sim::machine::{Machine, M4, M7, MICROPYTHON_M4_ADDRESS};
//!
//! fn m4(core: M4) {
//!     let add = |a: i32, b: i32| a + b;
//!     let mut rpc: duet::Rpc<'_, _> = duet::Rpc::new(core.transport);
//!     rpc.bind("add", &add).unwrap();
//!     while core.board.powered() {
//!         rpc.poll().ok();
//!         core.board.idle();
//!     }
//! }
//!
//! let mut machine = Machine::new();
//! machine.flash_m4(MICROPYTHON_M4_ADDRESS, m4);
//! let sum = machine.run(|mut core: M7| {
//!     let mut rpc: duet::Rpc<'_, _> = duet::Rpc::new(core.transport);
//!     rpc.start(&mut core.boot, MICROPYTHON_M4_ADDRESS, Duration::from_secs(2)).unwrap();
//!     rpc.call::<i32, _>("add", (2, 3)).unwrap()
//! });
//! assert_eq!(sum, 5);
//! ```
//!
//! For tests of the RPC layer without a board: [`transports`], [`rpc_pair`] (one thread) and
//! [`run_pair`] (two threads, connected transports).

use std::collections::HashMap;
use std::future::Future;
use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Wake, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant as StdInstant};

use duet::{BootError, BootRemote, Doorbell, Rpc};
use duet_rpmsg::{connect, Config, Host, Platform, Remote, Transport};

use crate::board::{Board, Console, Peripherals, DEFAULT_SPEED};
use crate::platform::{pair, PeerWatch, SimPlatform};
use crate::trace::Traced;
use duet::CpuId;

/// The M4 firmware address MicroPython's `rpc.start()` uses by default (the upper 512 KiB of
/// flash bank 2).
pub const MICROPYTHON_M4_ADDRESS: u32 = 0x0818_0000;

/// The M4 firmware address of Arduino's 50/50 flash split (flash bank 2).
pub const ARDUINO_M4_ADDRESS: u32 = 0x0810_0000;

/// Stack size of the simulated cores' threads (an `Rpc` with the default capacities takes
/// about 9 KiB; larger ones more).
pub const CORE_STACK: usize = 8 << 20;

/// How long [`Machine::run`] waits for the M4 program to return once the M7 program has.
pub const M4_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The M7's transport (the RPMsg host), recording its traffic if the machine is traced.
pub type M7Transport = Traced<Host<SimPlatform>>;
/// The M4's transport (the RPMsg remote), recording its traffic if the machine is traced.
pub type M4Transport = Traced<Remote<SimPlatform>>;
/// An `Rpc` with the default capacities on the M7.
pub type M7Rpc<'a> = Rpc<'a, M7Transport>;
/// An `Rpc` with the default capacities on the M4.
pub type M4Rpc<'a> = Rpc<'a, M4Transport>;

/// The transport profile of [`Machine::new`]: Arduino's (SRAM4, 512-byte buffers, `"raw"` and
/// `"rpc"`), with messages up to 2048 bytes (the default `Rpc` buffer) spanning several
/// buffers, since both cores run duet.
pub fn sim_config() -> Config {
    let mut c = Config::arduino();
    c.max_message_len = 2048;
    c
}

/// What the M7 program gets: its transport (already set up: the resource table is written),
/// the way to boot the M4, its board and the Serial Monitor.
pub struct M7 {
    /// The RPMsg host; wrap it in an `Rpc`.
    pub transport: M7Transport,
    /// Boots the M4 (pass it to `Rpc::start`).
    pub boot: Boot,
    /// The M7's view of the hardware.
    pub board: Board,
    /// The Serial Monitor (the M7's USB serial port).
    pub serial: Console,
    /// This core's duet doorbell (rung by the M4), for `Rpc::set_doorbell` and async code.
    pub doorbell: Arc<Doorbell>,
}

/// What an M4 program gets: its transport (not connected yet: the M4 finds the resource table
/// and announces its endpoints while it polls) and its board. The GIGA's M4 has no serial
/// port of its own: it prints through the M7 (RPC serial).
pub struct M4 {
    /// The RPMsg remote; wrap it in an `Rpc` (and `wait_ready`).
    pub transport: M4Transport,
    /// The M4's view of the hardware.
    pub board: Board,
    /// This core's duet doorbell (rung by the M7).
    pub doorbell: Arc<Doorbell>,
}

type Program = Box<dyn FnOnce(M4) + Send + 'static>;

/// The chip state shared by the [`Machine`], its [`Boot`] and the M4 thread.
struct Chip {
    config: Config,
    peripherals: Peripherals,
    programs: Mutex<HashMap<u32, Program>>,
    m4_platform: Mutex<Option<SimPlatform>>,
    m4_thread: Mutex<Option<JoinHandle<()>>>,
    booted: AtomicBool,
    powered: Arc<AtomicBool>,
    m4_done: Arc<AtomicBool>,
    m7_bell: Arc<Doorbell>,
    m4_bell: Arc<Doorbell>,
    recorder: Mutex<Option<Arc<duet_trace::Recorder>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A simulated chip: M7 + M4 over one shared SRAM4, with the board's peripherals and a Serial
/// Monitor. Flash M4 programs at firmware addresses, then [`run`](Machine::run) the M7
/// program; the M4 program starts when the M7 boots its address.
pub struct Machine {
    chip: Arc<Chip>,
    m7: SimPlatform,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    /// A chip with the [`sim_config`] profile, a quiet console and [`DEFAULT_SPEED`].
    pub fn new() -> Machine {
        Machine::with(sim_config(), Console::new(false), DEFAULT_SPEED)
            .expect("the simulator profile is a valid configuration")
    }

    /// A chip with this transport configuration, console and speed (virtual ms per real ms
    /// in `delay`). `Err(InvalidConfig)` if the configuration breaks its limits.
    pub fn with(
        config: Config,
        console: Console,
        speed: u32,
    ) -> Result<Machine, duet_rpmsg::Error> {
        config.validate()?;
        let (m7, m4) = pair();
        let m7_bell = m7.duet_doorbell();
        let m4_bell = m4.duet_doorbell();
        Ok(Machine {
            chip: Arc::new(Chip {
                config,
                peripherals: Peripherals::new(console, speed),
                programs: Mutex::new(HashMap::new()),
                m4_platform: Mutex::new(Some(m4)),
                m4_thread: Mutex::new(None),
                booted: AtomicBool::new(false),
                powered: Arc::new(AtomicBool::new(true)),
                m4_done: Arc::new(AtomicBool::new(false)),
                m7_bell,
                m4_bell,
                recorder: Mutex::new(None),
            }),
            m7,
        })
    }

    /// Flashes `program` as the M4 firmware at `address` (replacing an earlier one there).
    /// It runs when the M7 boots that address.
    pub fn flash_m4(
        &mut self,
        address: u32,
        program: impl FnOnce(M4) + Send + 'static,
    ) -> &mut Machine {
        lock(&self.chip.programs).insert(address, Box::new(program));
        self
    }

    /// Traces this chip into `recorder`: both transports' messages, doorbells and sleeps, and
    /// the boards' `delay`s and idle sleeps (see [`crate::trace`]). Call before
    /// [`run`](Machine::run). The board part can be set once per chip.
    pub fn set_recorder(&mut self, recorder: Arc<duet_trace::Recorder>) -> &mut Machine {
        self.m7.set_recorder(Some(recorder.clone()));
        if let Some(m4) = lock(&self.chip.m4_platform).as_mut() {
            m4.set_recorder(Some(recorder.clone()));
        }
        self.chip.peripherals.set_recorder(recorder.clone());
        *lock(&self.chip.recorder) = Some(recorder);
        self
    }

    /// The hardware (to inspect LEDs, servo, events and the console).
    pub fn peripherals(&self) -> &Peripherals {
        &self.chip.peripherals
    }

    /// The console (Serial Monitor and hardware notes).
    pub fn console(&self) -> &Console {
        self.chip.peripherals.console()
    }

    /// Runs the M7 program on its own thread until it returns, then powers the chip off
    /// ([`Board::powered`] turns false on both cores) and waits for the M4 program (if it
    /// was booted) to return. Returns the M7 program's result.
    ///
    /// Panics: re-raises a panic of either program; panics if the M4 program is still running
    /// [`M4_STOP_TIMEOUT`] after power-off (its thread is left behind).
    pub fn run<R: Send>(self, program: impl FnOnce(M7) -> R + Send) -> R {
        let Machine { chip, m7 } = self;
        let config = chip.config;
        let board = chip.peripherals.board(CpuId::Cm7).with_power(&chip);
        let m7_bell = chip.m7_bell.clone();
        let serial = chip.peripherals.console().clone();
        let boot = Boot {
            chip: chip.clone(),
            peer: None,
        };
        let recorder = lock(&chip.recorder).clone();
        let result = thread::scope(|s| {
            let h = thread::Builder::new()
                .name("M7".into())
                .stack_size(CORE_STACK)
                .spawn_scoped(s, move || {
                    let host = Host::new(m7, config).expect("validated configuration");
                    let transport = Traced::new(host, CpuId::Cm7, recorder);
                    program(M7 {
                        transport,
                        boot,
                        board,
                        serial,
                        doorbell: m7_bell,
                    })
                })
                .expect("spawn the M7 thread");
            h.join()
        });
        chip.powered.store(false, Ordering::SeqCst);
        chip.m4_bell.ring();
        chip.peripherals.console().finish();
        let m4 = lock(&chip.m4_thread).take();
        let m4_result = m4.map(|h| {
            let give_up = StdInstant::now() + M4_STOP_TIMEOUT;
            while !h.is_finished() {
                if StdInstant::now() >= give_up {
                    panic!(
                        "the M4 program did not return within {M4_STOP_TIMEOUT:?} after the \
                         M7 program ended (loop on `board.powered()`)"
                    );
                }
                thread::sleep(Duration::from_millis(1));
            }
            h.join()
        });
        match result {
            Err(p) => panic::resume_unwind(p),
            Ok(r) => {
                if let Some(Err(p)) = m4_result {
                    panic::resume_unwind(p);
                }
                r
            }
        }
    }
}

/// The M7's power over the M4: implements [`BootRemote`] as the chip behaves.
///
/// - `BadAddress` unless the address is 64 KiB aligned (the boot address register holds
///   bits 31..16).
/// - `AlreadyRunning` on any boot after the first accepted one (only a reset stops the M4).
/// - An aligned address with no program flashed is accepted, but nothing comes up (the M4
///   runs whatever is there): `Rpc::start` then times out with `NotReady`.
///
/// In process mode (one core per process, see [`crate::role`]) the M4 is another process
/// started by the user: a boot is accepted and starts nothing, and the M4 counts as finished
/// once its process has detached from the file.
pub struct Boot {
    chip: Arc<Chip>,
    /// Process mode: the M4 process's pid word.
    peer: Option<Arc<PeerWatch>>,
}

impl Boot {
    /// Whether the M4 has been booted (at any address).
    pub fn is_booted(&self) -> bool {
        self.chip.booted.load(Ordering::SeqCst)
    }

    /// Whether a booted M4 program has returned (or panicked); in process mode, whether the
    /// M4 process has detached.
    pub fn m4_finished(&self) -> bool {
        match &self.peer {
            Some(p) => p.gone(),
            None => self.chip.m4_done.load(Ordering::SeqCst),
        }
    }
}

impl BootRemote for Boot {
    fn boot(&mut self, address: u32) -> Result<(), BootError> {
        if !address.is_multiple_of(0x1_0000) {
            return Err(BootError::BadAddress);
        }
        if self.chip.booted.swap(true, Ordering::SeqCst) {
            return Err(BootError::AlreadyRunning);
        }
        let Some(program) = lock(&self.chip.programs).remove(&address) else {
            return Ok(());
        };
        let Some(platform) = lock(&self.chip.m4_platform).take() else {
            return Err(BootError::Failed);
        };
        let config = self.chip.config;
        let board = self
            .chip
            .peripherals
            .board(CpuId::Cm4)
            .with_power(&self.chip);
        let doorbell = self.chip.m4_bell.clone();
        let done = self.chip.m4_done.clone();
        let recorder = lock(&self.chip.recorder).clone();
        let h = thread::Builder::new()
            .name("M4".into())
            .stack_size(CORE_STACK)
            .spawn(move || {
                struct Done(Arc<AtomicBool>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _done = Done(done);
                program(M4 {
                    transport: Traced::new(Remote::new(platform, config), CpuId::Cm4, recorder),
                    board,
                    doorbell,
                });
            })
            .map_err(|_| BootError::Failed)?;
        *lock(&self.chip.m4_thread) = Some(h);
        Ok(())
    }
}

/// What a [`Board`] knows about the chip's power (only boards of a [`Machine`] have it).
#[derive(Clone)]
pub(crate) struct Power {
    powered: Arc<AtomicBool>,
    bell: Arc<Doorbell>,
    /// Process mode: the other core's process; off once it has detached.
    peer: Option<Arc<PeerWatch>>,
    /// Process mode: off from this moment on (a limit for programs that serve forever).
    until: Option<StdInstant>,
}

impl Power {
    pub(crate) fn powered(&self) -> bool {
        self.powered.load(Ordering::SeqCst)
            && !self.peer.as_ref().is_some_and(|p| p.gone())
            && self.until.is_none_or(|u| StdInstant::now() < u)
    }

    /// Sleeps until this core's doorbell rings or `max` passes; `true` if it rang.
    pub(crate) fn idle(&self, max: Duration) -> bool {
        wait_doorbell(&self.bell, max)
    }
}

impl Board {
    fn with_power(self, chip: &Chip) -> Board {
        let bell = match self.core() {
            CpuId::Cm4 => chip.m4_bell.clone(),
            CpuId::Cm7 => chip.m7_bell.clone(),
        };
        self.set_power(Power {
            powered: chip.powered.clone(),
            bell,
            peer: None,
            until: None,
        })
    }
}

/// One core's program inputs in process mode (see [`process_core`]).
pub(crate) enum Side {
    /// The M7's.
    M7(M7),
    /// The M4's.
    M4(M4),
}

/// Process mode: what a program running as core `platform.core()` of an example gets, with
/// `platform` attached to the file. The other core is another process: the M7's boot starts
/// nothing and its `m4_finished` means "the M4 process detached"; either core's
/// [`Board::powered`] turns false once the other process has detached or at `until`.
pub(crate) fn process_core(
    platform: SimPlatform,
    peripherals: &Peripherals,
    recorder: Option<Arc<duet_trace::Recorder>>,
    until: StdInstant,
) -> Result<Side, duet_rpmsg::Error> {
    let mut platform = platform;
    peripherals.follow_real_time();
    platform.set_recorder(recorder.clone());
    if let Some(r) = &recorder {
        peripherals.set_recorder(r.clone());
    }
    let core = platform.core();
    let bell = platform.duet_doorbell();
    let peer = platform.peer_watch().map(Arc::new);
    let board = peripherals.board(core).set_power(Power {
        powered: Arc::new(AtomicBool::new(true)),
        bell: bell.clone(),
        peer: peer.clone(),
        until: Some(until),
    });
    let config = sim_config();
    Ok(match core {
        CpuId::Cm7 => {
            let chip = Arc::new(Chip {
                config,
                peripherals: peripherals.clone(),
                programs: Mutex::new(HashMap::new()),
                m4_platform: Mutex::new(None),
                m4_thread: Mutex::new(None),
                booted: AtomicBool::new(false),
                powered: Arc::new(AtomicBool::new(true)),
                m4_done: Arc::new(AtomicBool::new(false)),
                m7_bell: bell.clone(),
                m4_bell: Arc::new(Doorbell::new()),
                recorder: Mutex::new(recorder.clone()),
            });
            let host = Host::new(platform, config)?;
            Side::M7(M7 {
                transport: Traced::new(host, core, recorder),
                boot: Boot { chip, peer },
                board,
                serial: peripherals.console().clone(),
                doorbell: bell,
            })
        }
        CpuId::Cm4 => Side::M4(M4 {
            transport: Traced::new(Remote::new(platform, config), core, recorder),
            board,
            doorbell: bell,
        }),
    })
}

/// Wakes a parked thread.
struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Blocks this thread until `bell` rings (consuming the ring) or `max` passes; `true` if it
/// rang. Uses the doorbell's server slot (do not also run `Rpc::run` on it).
pub fn wait_doorbell(bell: &Doorbell, max: Duration) -> bool {
    let give_up = StdInstant::now() + max;
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut wait = std::pin::pin!(bell.wait());
    loop {
        if wait.as_mut().poll(&mut cx).is_ready() {
            return true;
        }
        let now = StdInstant::now();
        if now >= give_up {
            return false;
        }
        thread::park_timeout(give_up - now);
    }
}

/// Both transports of a fresh chip, connected (handshake run in this thread), with `config`.
pub fn transports_with(
    config: Config,
) -> Result<(M7Transport, M4Transport), crate::runner::RunError> {
    let (h, r) = crate::runner::handshake(config, Duration::from_secs(5))?;
    Ok((Traced::off(h), Traced::off(r)))
}

/// Both transports of a fresh chip ([`sim_config`]), connected. Panics if the handshake fails
/// (it cannot on a fresh region).
pub fn transports() -> (M7Transport, M4Transport) {
    transports_with(sim_config()).expect("handshake on a fresh simulated chip")
}

/// A connected M7 `Rpc` and M4 `Rpc` in this thread (drive both with `poll`, e.g. `call_async`
/// on one, `poll` the other, then `join`). `Rpc` is not `Send`: for two threads use
/// [`run_pair`].
pub fn rpc_pair<'a>() -> (M7Rpc<'a>, M4Rpc<'a>) {
    let (h, r) = transports();
    (Rpc::new(h), Rpc::new(r))
}

/// Runs `m7` and `m4` on two threads ("M7", "M4", [`CORE_STACK`] each) of a fresh chip with
/// `config`, each with its transport already connected (both endpoints bound), and returns
/// both results. The closures may borrow from the caller. Re-raises a panic of either side
/// (the M7's first); panics if the handshake does not finish within 5 s.
pub fn run_pair_with<A: Send, B: Send>(
    config: Config,
    m7: impl FnOnce(M7Transport) -> A + Send,
    m4: impl FnOnce(M4Transport) -> B + Send,
) -> (A, B) {
    let (p7, p4) = pair();
    let (a, b) = thread::scope(|s| {
        let spawn = |name: &str| {
            thread::Builder::new()
                .name(name.into())
                .stack_size(CORE_STACK)
        };
        let hb = spawn("M4")
            .spawn_scoped(s, move || {
                let mut t = Remote::new(p4, config);
                let deadline = t.platform().now().saturating_add(Duration::from_secs(5));
                connect(&mut t, deadline).expect("M4: handshake");
                m4(Traced::off(t))
            })
            .expect("spawn the M4 thread");
        let ha = spawn("M7")
            .spawn_scoped(s, move || {
                let mut t = Host::new(p7, config).expect("M7: valid configuration");
                let deadline = t.platform().now().saturating_add(Duration::from_secs(5));
                connect(&mut t, deadline).expect("M7: handshake");
                m7(Traced::off(t))
            })
            .expect("spawn the M7 thread");
        (ha.join(), hb.join())
    });
    match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(p), _) | (_, Err(p)) => panic::resume_unwind(p),
    }
}

/// [`run_pair_with`] with [`sim_config`].
pub fn run_pair<A: Send, B: Send>(
    m7: impl FnOnce(M7Transport) -> A + Send,
    m4: impl FnOnce(M4Transport) -> B + Send,
) -> (A, B) {
    run_pair_with(sim_config(), m7, m4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(core: M4) {
        let add = |a: i32, b: i32| a + b;
        let cpu = duet::cpu_id(core.transport.platform());
        let whoami = move || cpu.as_u8();
        let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
        rpc.bind("add", &add).unwrap();
        rpc.bind("whoami", &whoami).unwrap();
        while core.board.powered() {
            rpc.poll().ok();
            core.board.idle();
        }
    }

    #[test]
    fn boots_the_program_at_its_address_and_refuses_a_second_boot() {
        let mut m = Machine::new();
        m.flash_m4(MICROPYTHON_M4_ADDRESS, serve);
        let (sum, who, again, finished) = m.run(|mut core: M7| {
            let mut rpc: M7Rpc<'_> = Rpc::new(core.transport);
            assert_eq!(
                rpc.start(&mut core.boot, 0x0818_0100, Duration::from_secs(1)),
                Err(duet::Error::Boot(BootError::BadAddress))
            );
            rpc.start(
                &mut core.boot,
                MICROPYTHON_M4_ADDRESS,
                Duration::from_secs(5),
            )
            .unwrap();
            let sum: i32 = rpc.call("add", (2, 3)).unwrap();
            let who: u8 = rpc.call("whoami", ()).unwrap();
            let again = rpc.start(
                &mut core.boot,
                MICROPYTHON_M4_ADDRESS,
                Duration::from_secs(1),
            );
            (sum, who, again, core.boot.m4_finished())
        });
        assert_eq!((sum, who), (5, 1));
        assert_eq!(again, Err(duet::Error::Boot(BootError::AlreadyRunning)));
        assert!(!finished);
    }

    #[test]
    fn an_empty_address_never_comes_up() {
        let mut m = Machine::new();
        m.flash_m4(ARDUINO_M4_ADDRESS, serve);
        let r = m.run(|mut core: M7| {
            let mut rpc: M7Rpc<'_> = Rpc::new(core.transport);
            rpc.start(
                &mut core.boot,
                MICROPYTHON_M4_ADDRESS,
                Duration::from_millis(50),
            )
        });
        assert_eq!(r, Err(duet::Error::NotReady));
    }

    #[test]
    fn doorbell_wakes_a_waiting_thread() {
        let (m7, m4) = pair();
        let bell = m7.duet_doorbell();
        assert!(!wait_doorbell(&bell, Duration::from_millis(1)));
        m4.notify();
        assert!(wait_doorbell(&bell, Duration::from_secs(5)));
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            m4.notify();
        });
        assert!(wait_doorbell(&bell, Duration::from_secs(5)));
        t.join().unwrap();
    }

    #[test]
    fn run_pair_connects_both_sides() {
        let done = AtomicBool::new(false);
        let (a, served) = run_pair(
            |t| {
                let mut rpc: M7Rpc<'_> = Rpc::new(t);
                let r = rpc.call::<i32, _>("add", (40, 2));
                done.store(true, Ordering::SeqCst);
                r
            },
            |t| {
                let add = |a: i32, b: i32| a + b;
                let bell = t.platform().duet_doorbell();
                let mut rpc: M4Rpc<'_> = Rpc::new(t);
                rpc.bind("add", &add).unwrap();
                while !done.load(Ordering::SeqCst) {
                    rpc.poll().ok();
                    wait_doorbell(&bell, Duration::from_millis(2));
                }
                rpc.transport().stats().buffers_received
            },
        );
        assert_eq!(a, Ok(42));
        assert!(served >= 1);
    }
}
