//! The emulated chip: two unicorn engines over shared host memory, the host-side exception
//! model and the deterministic scheduler.

use crate::core::{Block, Core, HookFault, State, Stop, SVCALL};
use crate::soc::{Effect, Soc};
use crate::{CoreId, Counters, GpioEvent, Image, Outcome, PwmEvent, RunError, TraceEvent};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use unicorn_engine::unicorn_const::{uc_error, Arch, HookType, MemType, Mode, Prot};
use unicorn_engine::{ArmCpuModel, RegisterARM as R, Unicorn};

/// Core clocks used when neither the configuration nor the image says (`DUET_CORE_HZ`).
const DEFAULT_HZ: [u32; 2] = [480_000_000, 240_000_000];

/// How the M4 comes out of reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum M4Boot {
    /// BCM4 option byte cleared (the Arduino default): the M4 waits until the M7 sets
    /// RCC_GCR.BOOT_C2, then starts from SYSCFG UR3 BCM4_ADD0.
    Gated,
    /// Like `Gated`, but BOOT_C2 is ignored: the M4 never starts (to test an M7 whose peer does
    /// not come up).
    Suppressed,
    /// BCM4 option byte set: the M4 starts at time zero together with the M7.
    Autoboot,
}

/// Run configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// How the M4 is started.
    pub m4_boot: M4Boot,
    /// CM4 boot address (BCM4_ADD0 option byte), 64 KiB aligned.
    pub m4_boot_addr: u32,
    /// Virtual-time budget in nanoseconds; the run stalls past it.
    pub max_time_ns: u64,
    /// Scheduling quantum in nanoseconds of virtual time: each core runs this long in turn.
    pub quantum_ns: u64,
    /// Core clocks in Hz, M7 then M4. `None`: the `u32` the image exports as `DUET_CORE_HZ`,
    /// else 480 MHz / 240 MHz. One instruction takes one cycle.
    pub core_hz: [Option<u32>; 2],
    /// Record register-level trace events.
    pub trace: bool,
    /// Count instructions per translation block for [`Emulator::profile`].
    pub profile: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            m4_boot: M4Boot::Gated,
            m4_boot_addr: 0x0810_0000,
            max_time_ns: 60_000_000_000,
            quantum_ns: 4_000,
            core_hz: [None, None],
            trace: false,
            profile: false,
        }
    }
}

/// Identifies a probe added with [`Emulator::probe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeId {
    core: CoreId,
    index: usize,
}

/// Both cores' instruction counts per translation-block address, `[M7, M4]`.
type Profiles = [HashMap<u32, u64>; 2];

struct Shared {
    soc: Soc,
    cores: [Core; 2],
    start: [u64; 2],
    now: u64,
    boot_request: Option<u64>,
    trace: Vec<TraceEvent>,
    /// With [`Config::profile`]: both cores' profiles at each probe hit, per probe
    /// (`[core][probe index][hit]`), for [`Emulator::profile_between`].
    snapshots: [Vec<Vec<Profiles>>; 2],
    /// Global ticks per second: the least common multiple of the two core clocks.
    tick_hz: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Shared {
    /// Nanoseconds of `ticks` (global time unit: 1 / `tick_hz`).
    fn ns(&self, ticks: u64) -> u64 {
        (ticks as u128 * 1_000_000_000 / self.tick_hz as u128) as u64
    }

    fn ticks(&self, i: usize) -> u64 {
        self.start[i] + self.cores[i].cycles * self.cores[i].ratio
    }

    fn note(&mut self, i: usize, what: String) {
        let time_ns = self.ns(self.ticks(i));
        self.trace.push(TraceEvent {
            time_ns,
            core: self.cores[i].id,
            what,
        });
    }

    /// Applies what a peripheral access by core `i` caused.
    fn settle(&mut self, i: usize) {
        let t = self.ticks(i);
        let lines: Vec<_> = self.soc.trace.drain(..).collect();
        for (_, what) in lines {
            self.note(i, what);
        }
        let now = self.ns(t).max(1);
        for e in self.soc.gpio_events.iter_mut().rev() {
            if e.time_ns != 0 {
                break;
            }
            e.time_ns = now;
        }
        let effects: Vec<_> = self.soc.effects.drain(..).collect();
        for e in effects {
            match e {
                Effect::Irq(c, irq) => {
                    let core = &mut self.cores[c as usize];
                    core.pend(16 + irq);
                    core.wake_hint = core.wake_hint.max(t);
                }
                Effect::BootM4 => {
                    if self.boot_request.is_none() {
                        self.boot_request = Some(t);
                    }
                }
            }
        }
    }
}

struct Region {
    base: u32,
    buf: Box<[u8]>,
}

/// An emulated STM32H747 with both cores' images loaded.
pub struct Emulator {
    // Field order matters: the engines are dropped before the memory they map.
    engines: [Unicorn<'static, ()>; 2],
    shared: Rc<RefCell<Shared>>,
    config: Config,
    images: [Option<Image>; 2],
    regions: Vec<Region>,
    /// The traffic recorder, while [`Emulator::record_traffic`] is on.
    traffic: Option<crate::traffic::Traffic>,
}

const FLASH_BASE: u32 = 0x0800_0000;
const SRAM123: u32 = 0x3000_0000;

fn err(e: uc_error) -> RunError {
    RunError::Setup(format!("unicorn: {e:?}"))
}

fn rd(uc: &Unicorn<'_, ()>, r: R) -> u32 {
    uc.reg_read(r).unwrap_or(0) as u32
}

fn wr(uc: &mut Unicorn<'_, ()>, r: R, v: u32) -> Result<(), RunError> {
    uc.reg_write(r, v as u64).map_err(err)
}

fn read32(uc: &Unicorn<'_, ()>, addr: u32) -> Option<u32> {
    let mut b = [0u8; 4];
    uc.mem_read(addr as u64, &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

fn read16(uc: &Unicorn<'_, ()>, addr: u32) -> Option<u16> {
    let mut b = [0u8; 2];
    uc.mem_read(addr as u64, &mut b).ok()?;
    Some(u16::from_le_bytes(b))
}

fn is_wide(hw: u16) -> bool {
    hw >> 11 >= 0b11101
}

/// Counts the Thumb instructions of a block and notes SEV in it.
fn decode(uc: &Unicorn<'_, ()>, addr: u32, size: u32) -> Block {
    let mut buf = vec![0u8; size as usize];
    if uc.mem_read(addr as u64, &mut buf).is_err() {
        return Block {
            insns: 1,
            sev: false,
        };
    }
    let (mut i, mut insns, mut sev) = (0usize, 0u32, false);
    while i + 1 < buf.len() {
        let hw = u16::from_le_bytes([buf[i], buf[i + 1]]);
        insns += 1;
        if is_wide(hw) {
            if i + 3 < buf.len()
                && hw == 0xF3AF
                && u16::from_le_bytes([buf[i + 2], buf[i + 3]]) == 0x8004
            {
                sev = true;
            }
            i += 4;
        } else {
            sev |= hw == 0xBF40;
            i += 2;
        }
    }
    Block {
        insns: insns.max(1),
        sev,
    }
}

/// Instructions from `from` up to (not including) `to`.
fn insns_between(uc: &Unicorn<'_, ()>, from: u32, to: u32) -> u64 {
    let (mut a, mut n) = (from, 0);
    while a < to {
        let Some(hw) = read16(uc, a) else { break };
        a += if is_wide(hw) { 4 } else { 2 };
        n += 1;
    }
    n
}

/// Whether the instruction just before `pc` is WFE or YIELD (16- or 32-bit encoding).
fn after_wfe(uc: &Unicorn<'_, ()>, pc: u32) -> bool {
    let narrow = read16(uc, pc.wrapping_sub(2));
    if matches!(narrow, Some(0xBF20 | 0xBF10)) {
        return true;
    }
    read16(uc, pc.wrapping_sub(4)) == Some(0xF3AF) && matches!(narrow, Some(0x8001 | 0x8002))
}

/// Whether the instruction just before `pc` is WFI.
fn after_wfi(uc: &Unicorn<'_, ()>, pc: u32) -> bool {
    let narrow = read16(uc, pc.wrapping_sub(2));
    narrow == Some(0xBF30)
        || (read16(uc, pc.wrapping_sub(4)) == Some(0xF3AF) && narrow == Some(0x8003))
}

fn bus_access(
    sh: &RefCell<Shared>,
    i: usize,
    uc: &mut Unicorn<'_, ()>,
    addr: u32,
    size: usize,
    write: Option<u64>,
) -> u64 {
    let mut s = sh.borrow_mut();
    let id = s.cores[i].id;
    s.soc.now_ns = s.ns(s.ticks(i));
    let word = addr & !3;
    let shift = (addr & 3) * 8;
    let smask: u32 = if size >= 4 {
        !0
    } else {
        (1u32 << (size * 8)) - 1
    };
    let result = match write {
        Some(v) => {
            let (v, mask) = ((v as u32) << shift, smask << shift);
            let ok = if addr >= 0xE000_0000 {
                s.cores[i].sys_write(word, v, mask)
            } else {
                s.soc.write(id, word, v, mask)
            };
            ok.map(|()| 0)
        }
        None => {
            let v = if addr >= 0xE000_0000 {
                s.cores[i].sys_read(word)
            } else {
                s.soc.read(id, word)
            };
            v.map(|v| ((v >> shift) & smask) as u64)
        }
    };
    s.settle(i);
    match result {
        Some(v) => v,
        None => {
            let core = &mut s.cores[i];
            if core.fault.is_none() {
                core.fault = Some(HookFault {
                    pc: uc.pc_read().unwrap_or(0) as u32,
                    address: Some(addr),
                    what: if write.is_some() { "write" } else { "read" }.into(),
                    unmodelled: true,
                });
            }
            let _ = uc.emu_stop();
            0
        }
    }
}

impl Emulator {
    /// Builds the chip and loads the images (the M4 image may be absent). The M7 is out of
    /// reset; the M4 is held, or started at once for [`M4Boot::Autoboot`].
    pub fn new(m7: &Image, m4: Option<&Image>, config: Config) -> Result<Self, RunError> {
        let mk = |base: u32, size: usize, fill: u8| Region {
            base,
            buf: vec![fill; size].into_boxed_slice(),
        };
        // Shared regions first (indices used below), then the M7's private TCMs.
        let mut regions = vec![
            mk(FLASH_BASE, 2 << 20, 0xFF),
            mk(0x2400_0000, 512 << 10, 0),
            mk(SRAM123, 288 << 10, 0),
            mk(0x3800_0000, 64 << 10, 0),
            mk(0x3880_0000, 4 << 10, 0),
            mk(0x0000_0000, 64 << 10, 0),
            mk(0x2000_0000, 128 << 10, 0),
        ];
        for img in std::iter::once(m7).chain(m4) {
            for seg in &img.segments {
                let r = regions
                    .iter_mut()
                    .find(|r| {
                        seg.addr >= r.base
                            && (seg.addr - r.base) as usize + seg.data.len() <= r.buf.len()
                    })
                    .ok_or_else(|| {
                        RunError::Setup(format!(
                            "segment at {:#010x} ({} bytes) is outside the memory map",
                            seg.addr,
                            seg.data.len()
                        ))
                    })?;
                let off = (seg.addr - r.base) as usize;
                r.buf[off..off + seg.data.len()].copy_from_slice(&seg.data);
            }
        }
        let bcm4 = config.m4_boot == M4Boot::Autoboot;
        let hz: [u64; 2] = [0, 1].map(|k| {
            let img = if k == 0 { Some(m7) } else { m4 };
            config.core_hz[k]
                .or_else(|| img.and_then(|i| i.u32_symbol("DUET_CORE_HZ")))
                .filter(|&h| h >= 1_000)
                .unwrap_or(DEFAULT_HZ[k]) as u64
        });
        let tick_hz = hz[0] / gcd(hz[0], hz[1]) * hz[1];
        let shared = Rc::new(RefCell::new(Shared {
            soc: Soc::new(bcm4, config.m4_boot_addr, config.trace),
            cores: [
                Core::new(CoreId::M7, tick_hz / hz[0], FLASH_BASE, config.profile),
                Core::new(
                    CoreId::M4,
                    tick_hz / hz[1],
                    config.m4_boot_addr,
                    config.profile,
                ),
            ],
            start: [0, 0],
            now: 0,
            boot_request: None,
            trace: Vec::new(),
            snapshots: [Vec::new(), Vec::new()],
            tick_hz,
        }));
        let mut engines = [
            Self::engine(ArmCpuModel::CORTEX_M7, 0, &mut regions, &shared)?,
            Self::engine(ArmCpuModel::CORTEX_M4, 1, &mut regions, &shared)?,
        ];
        let mut emu = {
            let [e7, _] = &mut engines;
            Self::reset(e7, FLASH_BASE)?;
            {
                let mut s = shared.borrow_mut();
                s.cores[0].state = State::Running;
                s.cores[0].booted = true;
            }
            Emulator {
                engines,
                shared,
                config,
                images: [Some(m7.clone()), m4.cloned()],
                regions,
                traffic: None,
            }
        };
        if bcm4 {
            emu.boot_m4(0)?;
        }
        Ok(emu)
    }

    fn engine(
        model: ArmCpuModel,
        i: usize,
        regions: &mut [Region],
        shared: &Rc<RefCell<Shared>>,
    ) -> Result<Unicorn<'static, ()>, RunError> {
        let mut uc = Unicorn::new(Arch::ARM, Mode::THUMB).map_err(err)?;
        uc.ctl_set_cpu_model(model as i32).map_err(err)?;
        for (k, r) in regions.iter_mut().enumerate() {
            let private = k >= 5;
            if private && i != 0 {
                continue;
            }
            let perms = if r.base == FLASH_BASE {
                Prot::READ | Prot::EXEC
            } else {
                Prot::ALL
            };
            let ptr = r.buf.as_mut_ptr().cast();
            // SAFETY: the buffer is heap memory owned by the Emulator, which drops the engines
            // before its regions; its length is a multiple of 4 KiB and is what is mapped.
            unsafe { uc.mem_map_ptr(r.base as u64, r.buf.len() as u64, perms, ptr) }
                .map_err(err)?;
            if i == 1 && r.base == SRAM123 {
                // SAFETY: as above; the M4 sees SRAM1-3 a second time at 0x1000_0000.
                unsafe { uc.mem_map_ptr(0x1000_0000, r.buf.len() as u64, perms, ptr) }
                    .map_err(err)?;
            }
        }
        let sh = shared.clone();
        uc.add_block_hook(1, 0, move |uc, addr, size| {
            let mut s = sh.borrow_mut();
            let other_ticks = s.ticks(i);
            let c = &mut s.cores[i];
            let key = addr | (size as u64) << 32;
            let b = match c.blocks.get(&key) {
                Some(b) => *b,
                None => {
                    let b = decode(uc, addr as u32, size);
                    c.blocks.insert(key, b);
                    b
                }
            };
            // A block whose hook stops the engine does not execute (it runs again, hook and
            // all, on resume), so the stop decision comes before counting it.
            let mut stop = c.cycles >= c.slice_end || c.cycles >= c.systick_due();
            if !stop && c.any_pending() {
                let p =
                    c.exec_priority(rd(uc, R::PRIMASK), rd(uc, R::BASEPRI), rd(uc, R::FAULTMASK));
                stop = c.best_pending().is_some_and(|(_, bp)| bp < p);
            }
            if stop {
                let _ = uc.emu_stop();
                return;
            }
            let n = b.insns as u64;
            c.block_addr = addr as u32;
            c.block_start = c.instructions;
            c.instructions += n;
            c.cycles += n;
            if !c.active.is_empty() {
                c.handler_instructions += n;
            }
            if let Some(p) = &mut c.profile {
                *p.entry(addr as u32).or_default() += n;
            }
            if b.sev {
                s.cores[0].event = true;
                s.cores[1].event = true;
                let o = &mut s.cores[1 - i];
                o.wake_hint = o.wake_hint.max(other_ticks);
            }
        })
        .map_err(err)?;
        let sh = shared.clone();
        uc.add_intr_hook(move |uc, intno| {
            let mut s = sh.borrow_mut();
            let c = &mut s.cores[i];
            let pc = uc.pc_read().unwrap_or(0) as u32;
            match intno {
                7 => c.stop = Some(Stop::Bkpt(pc)),
                8 => c.stop = Some(Stop::ExcReturn(pc | 1)),
                2 => c.stop = Some(Stop::Svc),
                _ => {
                    c.fault = Some(HookFault {
                        pc,
                        address: None,
                        what: format!("CPU exception {intno}"),
                        unmodelled: false,
                    })
                }
            }
            let _ = uc.emu_stop();
        })
        .map_err(err)?;
        let sh = shared.clone();
        uc.add_insn_invalid_hook(move |uc| {
            let pc = uc.pc_read().unwrap_or(0) as u32;
            let mut s = sh.borrow_mut();
            let c = &mut s.cores[i];
            if after_wfe(uc, pc) {
                c.stop = Some(Stop::Wfe);
                let _ = uc.emu_stop();
                true
            } else {
                c.fault = Some(HookFault {
                    pc,
                    address: None,
                    what: "undefined instruction".into(),
                    unmodelled: false,
                });
                false
            }
        })
        .map_err(err)?;
        let sh = shared.clone();
        let bad = HookType::MEM_READ_UNMAPPED
            | HookType::MEM_WRITE_UNMAPPED
            | HookType::MEM_FETCH_UNMAPPED
            | HookType::MEM_READ_PROT
            | HookType::MEM_WRITE_PROT
            | HookType::MEM_FETCH_PROT;
        uc.add_mem_hook(bad, 1, 0, move |uc, ty, addr, size, _| {
            let what = match ty {
                MemType::READ_UNMAPPED => "read of unmapped memory",
                MemType::WRITE_UNMAPPED => "write to unmapped memory",
                MemType::FETCH_UNMAPPED => "instruction fetch from unmapped memory",
                MemType::WRITE_PROT => "write to read-only memory",
                MemType::FETCH_PROT => "instruction fetch from non-executable memory",
                _ => "access violation",
            };
            let mut s = sh.borrow_mut();
            let c = &mut s.cores[i];
            if c.fault.is_none() {
                c.fault = Some(HookFault {
                    pc: uc.pc_read().unwrap_or(0) as u32,
                    address: Some(addr as u32),
                    what: format!("{what} ({size} bytes)"),
                    unmodelled: false,
                });
            }
            false
        })
        .map_err(err)?;
        for (base, size) in [(0x4000_0000u64, 0x2000_0000u64), (0xE000_0000, 0x10_0000)] {
            let (shr, shw) = (shared.clone(), shared.clone());
            uc.mmio_map(
                base,
                size,
                Some(move |uc: &mut Unicorn<'_, ()>, off: u64, sz: usize| {
                    bus_access(&shr, i, uc, (base + off) as u32, sz, None)
                }),
                Some(
                    move |uc: &mut Unicorn<'_, ()>, off: u64, sz: usize, v: u64| {
                        bus_access(&shw, i, uc, (base + off) as u32, sz, Some(v));
                    },
                ),
            )
            .map_err(err)?;
        }
        Ok(uc)
    }

    /// Loads SP and PC from the vector table at `vtor` (thread mode, MSP, privileged).
    fn reset(uc: &mut Unicorn<'static, ()>, vtor: u32) -> Result<(), RunError> {
        let sp = read32(uc, vtor)
            .ok_or_else(|| RunError::Setup(format!("no vector table at {vtor:#x}")))?;
        let pc = read32(uc, vtor + 4).unwrap_or(0);
        wr(uc, R::SP, sp)?;
        wr(uc, R::PC, pc | 1)?;
        wr(uc, R::APSR_NZCV, 0)?;
        Ok(())
    }

    fn boot_m4(&mut self, at: u64) -> Result<(), RunError> {
        let (addr, suppressed) = {
            let s = self.shared.borrow();
            (
                s.soc.m4_boot_addr(),
                self.config.m4_boot == M4Boot::Suppressed,
            )
        };
        let mut s = self.shared.borrow_mut();
        if suppressed {
            s.note(0, "M4 boot request ignored (boot suppressed)".into());
            return Ok(());
        }
        if s.cores[1].booted {
            return Ok(());
        }
        Self::reset(&mut self.engines[1], addr)?;
        let c = &mut s.cores[1];
        c.vtor = addr;
        c.state = State::Running;
        c.booted = true;
        s.start[1] = at.next_multiple_of(s.cores[1].ratio);
        s.note(1, format!("M4 out of reset, vector table {addr:#010x}"));
        Ok(())
    }

    /// Runs until the M7 exits (semihosting SYS_EXIT), a core faults, an unmodelled register is
    /// accessed, or the time budget ([`Config::max_time_ns`]) runs out. After it returned,
    /// the counters, console, probes and trace stay readable.
    pub fn run(&mut self) -> Result<Outcome, RunError> {
        let tick_hz = self.shared.borrow().tick_hz as u128;
        let to_ticks =
            |ns: u64| (ns as u128 * tick_hz / 1_000_000_000).min(u64::MAX as u128) as u64;
        let budget = to_ticks(self.config.max_time_ns);
        let q = to_ticks(self.config.quantum_ns).max(16);
        loop {
            {
                let s = self.shared.borrow();
                if let State::Exited(code) = s.cores[0].state {
                    let m4_exit = match s.cores[1].state {
                        State::Exited(c) => Some(c),
                        _ => None,
                    };
                    return Ok(Outcome {
                        m7_exit: code,
                        m4_exit,
                        time_ns: s.ns(s.ticks(0)),
                    });
                }
                if s.now >= budget {
                    return Err(RunError::Stall {
                        time_ns: s.ns(s.now),
                        reason: format!("time budget ran out; {}", self.describe(&s)),
                    });
                }
            }
            let mut end = self.shared.borrow().now + q;
            if let Some(next) = self.idle_until()? {
                end = end
                    .max(next.next_multiple_of(q))
                    .min(budget.next_multiple_of(q));
            }
            self.advance(0, end)?;
            self.advance(1, end)?;
            self.shared.borrow_mut().now = end;
            if let Some(mut t) = self.traffic.take() {
                let (now, asleep) = {
                    let s = self.shared.borrow();
                    let asleep =
                        [0, 1].map(|i| matches!(s.cores[i].state, State::Wfi | State::Wfe));
                    (s.ns(end), asleep)
                };
                t.after_quantum(now, asleep, |off, buf| {
                    let addr = crate::traffic::SRAM4 as usize + off;
                    match self.read_memory(CoreId::M7, addr as u32, buf.len()) {
                        Some(v) if v.len() == buf.len() => {
                            buf.copy_from_slice(&v);
                            true
                        }
                        _ => false,
                    }
                });
                self.traffic = Some(t);
            }
        }
    }

    /// Records the traffic between the cores from now on (call before [`run`](Self::run)):
    /// the messages on the vrings, doorbells and sleeps, read back with
    /// [`traffic`](Self::traffic). Needs `Config::trace` for the doorbells (HSEM releases).
    pub fn record_traffic(&mut self) {
        self.traffic = Some(crate::traffic::Traffic::default());
    }

    /// The recorded traffic as `duet_trace` events (empty unless
    /// [`record_traffic`](Self::record_traffic) was called): write it with
    /// `duet_trace::chrome::write(&duet_trace::Timeline::build(&events))`.
    pub fn traffic(&self) -> Vec<duet_trace::Event> {
        match &self.traffic {
            Some(t) => t.events(&self.shared.borrow().trace),
            None => Vec::new(),
        }
    }

    fn describe(&self, s: &Shared) -> String {
        let st = |i: usize| match s.cores[i].state {
            State::Held => "held in reset".to_string(),
            State::Running => format!(
                "running at pc {:#010x}",
                self.engines[i].pc_read().unwrap_or(0)
            ),
            State::Wfi => "asleep in WFI".into(),
            State::Wfe => "asleep in WFE".into(),
            State::Exited(c) => format!("exited({c})"),
        };
        format!("M7 {}, M4 {}", st(0), st(1))
    }

    /// If no core can run now, the global tick at which the next timer could wake one;
    /// an error if nothing ever can.
    fn idle_until(&self) -> Result<Option<u64>, RunError> {
        let s = self.shared.borrow();
        if s.boot_request.is_some() {
            return Ok(None);
        }
        let mut next = u64::MAX;
        for i in 0..2 {
            match s.cores[i].state {
                State::Running => return Ok(None),
                State::Wfi | State::Wfe => {
                    if self.can_wake(&s.cores[i], i) {
                        return Ok(None);
                    }
                    let due = s.cores[i].systick_due();
                    if due != u64::MAX {
                        next = next.min(s.start[i] + due * s.cores[i].ratio);
                    }
                }
                State::Held | State::Exited(_) => {}
            }
        }
        if next == u64::MAX {
            return Err(RunError::Stall {
                time_ns: s.ns(s.now),
                reason: format!("no core can ever wake up; {}", self.describe(&s)),
            });
        }
        Ok(Some(next))
    }

    fn can_wake(&self, c: &Core, i: usize) -> bool {
        let uc = &self.engines[i];
        let (bp, fm) = (rd(uc, R::BASEPRI), rd(uc, R::FAULTMASK));
        match c.state {
            State::Wfi => {
                let p = c.exec_priority(0, bp, fm);
                c.best_pending().is_some_and(|(_, q)| q < p)
            }
            State::Wfe => {
                let p = c.exec_priority(rd(uc, R::PRIMASK), bp, fm);
                c.event || c.best_pending().is_some_and(|(_, q)| q < p)
            }
            _ => true,
        }
    }

    fn takeable(&self, c: &Core, i: usize) -> Option<u16> {
        let uc = &self.engines[i];
        let p = c.exec_priority(rd(uc, R::PRIMASK), rd(uc, R::BASEPRI), rd(uc, R::FAULTMASK));
        c.best_pending().filter(|&(_, q)| q < p).map(|(n, _)| n)
    }

    fn advance(&mut self, i: usize, end: u64) -> Result<(), RunError> {
        loop {
            if i == 1 {
                let req = self.shared.borrow_mut().boot_request.take();
                if let Some(t) = req {
                    self.boot_m4(t)?;
                }
            }
            let mut s = self.shared.borrow_mut();
            let t = s.ticks(i);
            if t >= end {
                return Ok(());
            }
            let start = s.start[i];
            let state = s.cores[i].state;
            match state {
                State::Held | State::Exited(_) => return Ok(()),
                State::Wfi | State::Wfe => {
                    s.cores[i].service_timers();
                    let c = &s.cores[i];
                    let ratio = c.ratio;
                    let target = if self.can_wake(c, i) {
                        t.max(c.wake_hint.min(end))
                    } else {
                        let due = c.systick_due();
                        if due == u64::MAX {
                            end
                        } else {
                            (start + due * ratio).clamp(t, end)
                        }
                    };
                    let woke = self.can_wake(c, i);
                    let c = &mut s.cores[i];
                    let cyc = (target - start).div_ceil(ratio);
                    if cyc > c.cycles {
                        c.asleep_cycles += cyc - c.cycles;
                        c.cycles = cyc;
                    }
                    if woke {
                        if c.state == State::Wfe && c.event {
                            c.event = false;
                        }
                        c.state = State::Running;
                    } else if cyc * ratio + start < end && c.systick_due() > c.cycles {
                        // Not woken and no timer before `end`: sleep through the slice.
                        c.asleep_cycles += (end - start).div_ceil(ratio) - c.cycles;
                        c.cycles = (end - start).div_ceil(ratio);
                    }
                }
                State::Running => {
                    s.cores[i].service_timers();
                    if let Some(n) = self.takeable(&s.cores[i], i) {
                        drop(s);
                        self.enter(i, n)?;
                        continue;
                    }
                    let c = &mut s.cores[i];
                    c.slice_end = (end - start).div_ceil(c.ratio);
                    drop(s);
                    let uc = &mut self.engines[i];
                    let pc = uc.pc_read().unwrap_or(0) as u32;
                    let r = uc.emu_start((pc | 1) as u64, 1, 0, 0);
                    let mut s = self.shared.borrow_mut();
                    let c = &mut s.cores[i];
                    let (stop, fault) = (c.stop.take(), c.fault.take());
                    let id = c.id;
                    if let Some(f) = fault {
                        return Err(if f.unmodelled {
                            RunError::Unmodelled {
                                core: id,
                                pc: f.pc,
                                address: f.address.unwrap_or(0),
                                write: f.what == "write",
                            }
                        } else {
                            RunError::Fault {
                                core: id,
                                pc: f.pc,
                                address: f.address,
                                what: f.what,
                            }
                        });
                    }
                    let uc = &mut self.engines[i];
                    let pc = uc.pc_read().unwrap_or(0) as u32;
                    if let Err(e) = r {
                        return Err(RunError::Fault {
                            core: id,
                            pc,
                            address: None,
                            what: format!("engine stopped: {e:?}"),
                        });
                    }
                    match stop {
                        Some(Stop::Bkpt(at)) => {
                            drop(s);
                            self.semihost(i, at)?;
                        }
                        Some(Stop::ExcReturn(v)) => {
                            drop(s);
                            self.exc_return(i, v)?;
                        }
                        Some(Stop::Wfe) => {
                            if c.event {
                                c.event = false;
                            } else {
                                c.state = State::Wfe;
                            }
                        }
                        Some(Stop::Svc) => c.pend(SVCALL),
                        None => {
                            if after_wfi(uc, pc) && c.cycles < c.slice_end {
                                c.state = State::Wfi;
                            } else if after_wfi(uc, pc) {
                                // WFI at the slice boundary: sleep from the next slice on.
                                c.state = State::Wfi;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Host-side exception entry into exception `n` on core `i`.
    fn enter(&mut self, i: usize, n: u16) -> Result<(), RunError> {
        let uc = &mut self.engines[i];
        let mut s = self.shared.borrow_mut();
        let c = &mut s.cores[i];
        let control = rd(uc, R::CONTROL);
        let handler = !c.active.is_empty();
        let use_psp = !handler && control & 2 != 0;
        let fp = control & 4 != 0;
        let xpsr = rd(uc, R::XPSR);
        let sp = rd(uc, R::SP);
        let words: u32 = if fp { 26 } else { 8 };
        let realign = sp & 4 != 0;
        let frame = (sp - words * 4) & !7;
        let pc = uc.pc_read().unwrap_or(0) as u32;
        let mut vals = vec![
            rd(uc, R::R0),
            rd(uc, R::R1),
            rd(uc, R::R2),
            rd(uc, R::R3),
            rd(uc, R::R12),
            rd(uc, R::LR),
            pc & !1,
            (xpsr & !0x200) | (1 << 24) | if realign { 0x200 } else { 0 },
        ];
        if fp {
            for k in 0..16 {
                vals.push(rd(uc, s_reg(k)));
            }
            vals.push(rd(uc, R::FPSCR));
            vals.push(0);
        }
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let id = c.id;
        if uc.mem_write(frame as u64, &bytes).is_err() {
            return Err(RunError::Fault {
                core: id,
                pc,
                address: Some(frame),
                what: format!("stack overflow on exception {n} entry"),
            });
        }
        let vector = read32(uc, c.vtor + 4 * n as u32).unwrap_or(0);
        if vector & 1 == 0 || vector == 0xFFFF_FFFF {
            return Err(RunError::Fault {
                core: id,
                pc,
                address: Some(c.vtor + 4 * n as u32),
                what: format!("no handler for exception {n} (vector {vector:#010x})"),
            });
        }
        wr(uc, R::SP, frame)?;
        wr(uc, R::CONTROL, control & !4 & if handler { !0 } else { !2 })?;
        wr(uc, R::XPSR, (xpsr & 0xF800_0000) | (1 << 24) | n as u32)?;
        let mut exc_return = if handler {
            0xFFFF_FFF1
        } else if use_psp {
            0xFFFF_FFFD
        } else {
            0xFFFF_FFF9
        };
        if fp {
            exc_return &= !0x10;
        }
        wr(uc, R::LR, exc_return)?;
        wr(uc, R::PC, vector)?;
        wr(uc, R::APSR_NZCV, xpsr & 0xF000_0000)?;
        c.entered(n);
        Ok(())
    }

    /// Host-side exception return through EXC_RETURN `v` on core `i`.
    fn exc_return(&mut self, i: usize, v: u32) -> Result<(), RunError> {
        let uc = &mut self.engines[i];
        let mut s = self.shared.borrow_mut();
        let id = s.cores[i].id;
        let Some(n) = s.cores[i].active.pop() else {
            return Err(RunError::Fault {
                core: id,
                pc: v,
                address: None,
                what: "exception return outside a handler".into(),
            });
        };
        let to_thread = v & 8 != 0;
        let use_psp = v & 0xF == 0xD;
        let fp = v & 0x10 == 0;
        let sp = if use_psp {
            rd(uc, R::PSP)
        } else {
            rd(uc, R::MSP)
        };
        let words = if fp { 26 } else { 8 };
        let mut buf = vec![0u8; words * 4];
        if uc.mem_read(sp as u64, &mut buf).is_err() {
            return Err(RunError::Fault {
                core: id,
                pc: v,
                address: Some(sp),
                what: "bad stack on exception return".into(),
            });
        }
        let w: Vec<u32> = buf
            .chunks(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        for (k, r) in [R::R0, R::R1, R::R2, R::R3, R::R12, R::LR]
            .into_iter()
            .enumerate()
        {
            wr(uc, r, w[k])?;
        }
        let xpsr = w[7];
        if fp {
            for k in 0..16 {
                wr(uc, s_reg(k), w[8 + k as usize])?;
            }
            wr(uc, R::FPSCR, w[24])?;
        }
        let new_sp = sp + words as u32 * 4 + if xpsr & 0x200 != 0 { 4 } else { 0 };
        if use_psp {
            wr(uc, R::PSP, new_sp)?;
        } else {
            wr(uc, R::MSP, new_sp)?;
        }
        let ipsr = if to_thread { 0 } else { xpsr & 0x1FF };
        wr(uc, R::XPSR, (xpsr & !0x3FF) | ipsr)?;
        let control = rd(uc, R::CONTROL);
        let control = (control & !6) | if use_psp { 2 } else { 0 } | if fp { 4 } else { 0 };
        wr(uc, R::CONTROL, control)?;
        wr(uc, R::PC, w[6] | 1)?;
        wr(uc, R::APSR_NZCV, xpsr & 0xF000_0000)?;
        // A level interrupt whose source is still high pends again.
        let line = match (id, n) {
            (CoreId::M7, 141) => s.soc.hsem_line(CoreId::M7),
            (CoreId::M4, 142) => s.soc.hsem_line(CoreId::M4),
            _ => false,
        };
        let c = &mut s.cores[i];
        if line {
            c.pend(n);
        }
        c.event = true;
        Ok(())
    }

    /// Semihosting call at the BKPT at `pc`.
    fn semihost(&mut self, i: usize, pc: u32) -> Result<(), RunError> {
        let uc = &mut self.engines[i];
        let mut s = self.shared.borrow_mut();
        let id = s.cores[i].id;
        let insn = read16(uc, pc).unwrap_or(0);
        let fault = |what: String, address: Option<u32>| RunError::Fault {
            core: id,
            pc,
            address,
            what,
        };
        if insn != 0xBEAB {
            return Err(fault(format!("breakpoint (bkpt #{})", insn & 0xFF), None));
        }
        let (op, arg) = (rd(uc, R::R0), rd(uc, R::R1));
        let mut ret = 0u32;
        match op {
            0x01 => ret = 1, // SYS_OPEN (":tt" for stdout): handle 1
            0x02 => {}       // SYS_CLOSE
            0x03 => {
                let mut b = [0u8];
                uc.mem_read(arg as u64, &mut b)
                    .map_err(|_| fault("SYS_WRITEC: bad pointer".into(), Some(arg)))?;
                s.soc.console[i].push(b[0]);
            }
            0x04 => {
                let mut a = arg;
                let mut b = [0u8];
                while uc.mem_read(a as u64, &mut b).is_ok() && b[0] != 0 && a - arg < 65536 {
                    s.soc.console[i].push(b[0]);
                    a += 1;
                }
            }
            0x05 => {
                let blk = (0..3)
                    .map(|k| read32(uc, arg + 4 * k))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| fault("SYS_WRITE: bad block".into(), Some(arg)))?;
                let mut data = vec![0u8; blk[2].min(1 << 20) as usize];
                uc.mem_read(blk[1] as u64, &mut data)
                    .map_err(|_| fault("SYS_WRITE: bad buffer".into(), Some(blk[1])))?;
                s.soc.console[i].extend_from_slice(&data);
            }
            0x18 | 0x20 => {
                let code = if op == 0x18 {
                    if arg == 0x20026 {
                        0
                    } else {
                        1
                    }
                } else {
                    let reason = read32(uc, arg).unwrap_or(0);
                    let sub = read32(uc, arg + 4).unwrap_or(1) as i32;
                    if reason == 0x20026 {
                        sub
                    } else if sub == 0 {
                        1
                    } else {
                        sub
                    }
                };
                s.cores[i].state = State::Exited(code);
                s.note(i, format!("exit({code})"));
                return Ok(());
            }
            _ => return Err(fault(format!("unmodelled semihosting call {op:#x}"), None)),
        }
        wr(uc, R::R0, ret)?;
        wr(uc, R::PC, (pc + 2) | 1)?;
        Ok(())
    }

    /// Adds a probe at instruction address `addr` on `core`: each time that instruction is
    /// about to execute, the core's instruction count is recorded (see [`Emulator::probe_hits`]).
    /// Add probes before [`Emulator::run`].
    pub fn probe(&mut self, core: CoreId, addr: u32) -> Result<ProbeId, RunError> {
        let i = core as usize;
        let addr = addr & !1;
        let index = {
            let mut s = self.shared.borrow_mut();
            s.cores[i].probes.push((addr, Vec::new()));
            s.snapshots[i].push(Vec::new());
            s.cores[i].probes.len() - 1
        };
        let sh = self.shared.clone();
        self.engines[i]
            .add_code_hook(addr as u64, addr as u64, move |uc, pc, _| {
                let mut s = sh.borrow_mut();
                let other = s.cores[1 - i].instructions;
                let c = &mut s.cores[i];
                let before = if (pc as u32) >= c.block_addr {
                    insns_between(uc, c.block_addr, pc as u32)
                } else {
                    0
                };
                let own = c.block_start + before;
                let hit = if i == 0 { [own, other] } else { [other, own] };
                c.probes[index].1.push(hit);
                if s.cores[i].profile.is_some() {
                    let snap = [0, 1].map(|k| s.cores[k].profile.clone().unwrap_or_default());
                    s.snapshots[i][index].push(snap);
                }
            })
            .map_err(err)?;
        Ok(ProbeId { core, index })
    }

    /// Adds a probe at the entry of function symbol `name` of `core`'s image (exact name, or a
    /// unique substring of it).
    pub fn probe_symbol(&mut self, core: CoreId, name: &str) -> Result<ProbeId, RunError> {
        let addr = self.images[core as usize]
            .as_ref()
            .and_then(|img| img.symbol(name))
            .ok_or_else(|| {
                RunError::Setup(format!("no unique symbol {name:?} in the {core} image"))
            })?;
        self.probe(core, addr)
    }

    /// The probed core's instruction count at each hit of the probe, in order (exact: the
    /// count of instructions executed before the probed one).
    pub fn probe_hits(&self, id: ProbeId) -> Vec<u64> {
        self.probe_hits_both(id)
            .iter()
            .map(|h| h[id.core as usize])
            .collect()
    }

    /// Both cores' instruction counts `[M7, M4]` at each hit of the probe. The probed core's is
    /// exact; the other core's is its count at the end of its latest scheduling slice (exact
    /// whenever that core was asleep or waiting at the time, as in a call round trip). The
    /// difference of two hits' sums is the instructions both cores spent between them.
    pub fn probe_hits_both(&self, id: ProbeId) -> Vec<[u64; 2]> {
        self.shared.borrow().cores[id.core as usize].probes[id.index]
            .1
            .clone()
    }

    /// The counters of `core` so far.
    pub fn counters(&self, core: CoreId) -> Counters {
        let s = self.shared.borrow();
        let c = &s.cores[core as usize];
        Counters {
            instructions: c.instructions,
            handler_instructions: c.handler_instructions,
            cycles: c.cycles,
            asleep_cycles: c.asleep_cycles,
            interrupts: c.interrupts,
            booted: c.booted,
        }
    }

    /// Console output of `core` so far (UART TDR writes and semihosting output).
    pub fn console(&self, core: CoreId) -> Vec<u8> {
        self.shared.borrow().soc.console[core as usize].clone()
    }

    /// Every GPIO level change so far.
    pub fn gpio_events(&self) -> Vec<GpioEvent> {
        self.shared.borrow().soc.gpio_events.clone()
    }

    /// Every PWM output change of TIM3/TIM4 so far.
    pub fn pwm_events(&self) -> Vec<PwmEvent> {
        self.shared.borrow().soc.pwm_events.clone()
    }

    /// The trace events so far (empty unless [`Config::trace`]; exits and boots always).
    pub fn trace(&self) -> Vec<TraceEvent> {
        self.shared.borrow().trace.clone()
    }

    /// Instructions per function symbol of `core`'s image, most first (needs
    /// [`Config::profile`]; blocks outside any symbol are listed by address).
    pub fn profile(&self, core: CoreId) -> Vec<(String, u64)> {
        let s = self.shared.borrow();
        match &s.cores[core as usize].profile {
            Some(p) => self.by_symbol(core, p.iter().map(|(&a, &n)| (a, n))),
            None => Vec::new(),
        }
    }

    /// Like [`Emulator::profile`], but only the instructions `core` executed between hit `from`
    /// and hit `from + 1` of probe `id` (counted per translation block: the block holding a
    /// probe counts on the side where it began). `None` without [`Config::profile`] or if the
    /// probe has fewer hits.
    pub fn profile_between(
        &self,
        id: ProbeId,
        from: usize,
        core: CoreId,
    ) -> Option<Vec<(String, u64)>> {
        let s = self.shared.borrow();
        let snaps = s.snapshots[id.core as usize].get(id.index)?;
        let (a, b) = (
            &snaps.get(from)?[core as usize],
            &snaps.get(from + 1)?[core as usize],
        );
        let diff = b
            .iter()
            .map(|(&addr, &n)| (addr, n - a.get(&addr).copied().unwrap_or(0)));
        Some(self.by_symbol(core, diff))
    }

    /// Sums per-block counts by function symbol, most first (zero entries dropped).
    fn by_symbol(
        &self,
        core: CoreId,
        counts: impl Iterator<Item = (u32, u64)>,
    ) -> Vec<(String, u64)> {
        let mut by: HashMap<String, u64> = HashMap::new();
        for (addr, n) in counts.filter(|&(_, n)| n > 0) {
            let name = self.images[core as usize]
                .as_ref()
                .and_then(|img| img.symbol_at(addr))
                .map_or_else(|| format!("{addr:#010x}"), |s| s.name.clone());
            *by.entry(name).or_default() += n;
        }
        let mut v: Vec<_> = by.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Reads `len` bytes of memory as `core` sees it.
    pub fn read_memory(&self, core: CoreId, addr: u32, len: usize) -> Option<Vec<u8>> {
        self.engines[core as usize]
            .mem_read_as_vec(addr as u64, len)
            .ok()
    }

    /// The core clocks in use (M7, M4), in Hz.
    pub fn core_hz(&self) -> [u64; 2] {
        let s = self.shared.borrow();
        [0, 1].map(|k| s.tick_hz / s.cores[k].ratio)
    }

    /// Virtual time reached by the scheduler, in nanoseconds.
    pub fn time_ns(&self) -> u64 {
        let s = self.shared.borrow();
        s.ns(s.now)
    }

    /// Size of the emulated memory in bytes (all regions), for information.
    pub fn memory_bytes(&self) -> usize {
        self.regions.iter().map(|r| r.buf.len()).sum()
    }
}

fn s_reg(k: u32) -> R {
    const S: [R; 16] = [
        R::S0,
        R::S1,
        R::S2,
        R::S3,
        R::S4,
        R::S5,
        R::S6,
        R::S7,
        R::S8,
        R::S9,
        R::S10,
        R::S11,
        R::S12,
        R::S13,
        R::S14,
        R::S15,
    ];
    S[k as usize]
}
