//! Per-core state the host keeps for a Cortex-M core: NVIC, the SCB registers the firmware
//! uses, SysTick, DWT cycle counter, the event register and the counters.

use crate::CoreId;
use std::collections::HashMap;

/// Number of external interrupts of the STM32H747 (0..149).
pub const IRQS: usize = 150;
/// Exception numbers 0..(16 + IRQS).
pub const EXCEPTIONS: usize = 16 + IRQS;
const WORDS: usize = EXCEPTIONS.div_ceil(32);

/// SysTick exception number.
pub const SYSTICK: u16 = 15;
/// PendSV exception number.
pub const PENDSV: u16 = 14;
/// SVCall exception number.
pub const SVCALL: u16 = 11;

/// What the core is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Held in reset (the M4 before BOOT_C2).
    Held,
    /// Executing.
    Running,
    /// In WFI (wakes on an interrupt that would preempt, even if PRIMASK masks it).
    Wfi,
    /// In WFE (wakes on the event register or an interrupt that is taken).
    Wfe,
    /// Stopped by semihosting SYS_EXIT with this code.
    Exited(i32),
}

/// Why the engine stopped, as recorded by the hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// BKPT at `pc`.
    Bkpt(u32),
    /// Exception return (branch to EXC_RETURN `value`).
    ExcReturn(u32),
    /// WFE or YIELD just executed.
    Wfe,
    /// SVC just executed.
    Svc,
}

/// A decoded translation block: instruction count and whether it contains SEV.
#[derive(Clone, Copy)]
pub struct Block {
    pub insns: u32,
    pub sev: bool,
}

/// Fault details recorded by a hook.
#[derive(Clone, Debug)]
pub struct HookFault {
    pub pc: u32,
    pub address: Option<u32>,
    pub what: String,
    pub unmodelled: bool,
}

/// Host-side state of one core.
pub struct Core {
    pub id: CoreId,
    pub state: State,
    /// Global ticks (480 MHz) per core cycle: 1 for the M7, 2 for the M4.
    pub ratio: u64,
    pub instructions: u64,
    pub handler_instructions: u64,
    pub cycles: u64,
    pub asleep_cycles: u64,
    pub interrupts: u64,
    pub booted: bool,
    enabled: [u32; WORDS],
    pending: [u32; WORDS],
    /// Active exception numbers, innermost last.
    pub active: Vec<u16>,
    prio: Vec<u8>,
    pub vtor: u32,
    prigroup: u32,
    pub scr: u32,
    regs: HashMap<u32, u32>,
    syst_csr: u32,
    syst_rvr: u32,
    syst_next: u64,
    dwt_ctrl: u32,
    dwt_base: u64,
    dwt_value: u32,
    demcr: u32,
    /// The event register (WFE/SEV).
    pub event: bool,
    pub blocks: HashMap<u64, Block>,
    pub block_addr: u32,
    pub block_start: u64,
    pub stop: Option<Stop>,
    pub fault: Option<HookFault>,
    /// The slice ends once `cycles` reaches this.
    pub slice_end: u64,
    /// Set when something may make an exception takeable; the block hook then stops.
    pub check: bool,
    /// Earliest global tick at which a sleeping core may resume after a wake-up from the other core.
    pub wake_hint: u64,
    pub profile: Option<HashMap<u32, u64>>,
    /// Probes: address and, per hit, [M7, M4] instruction counts (this core's exact).
    pub probes: Vec<(u32, Vec<[u64; 2]>)>,
}

impl Core {
    /// A core in reset with the vector table at `vtor`.
    pub fn new(id: CoreId, ratio: u64, vtor: u32, profile: bool) -> Self {
        Core {
            id,
            state: State::Held,
            ratio,
            instructions: 0,
            handler_instructions: 0,
            cycles: 0,
            asleep_cycles: 0,
            interrupts: 0,
            booted: false,
            enabled: [0; WORDS],
            pending: [0; WORDS],
            active: Vec::new(),
            prio: vec![0; EXCEPTIONS],
            vtor,
            prigroup: 0,
            scr: 0,
            regs: HashMap::new(),
            syst_csr: 0,
            syst_rvr: 0,
            syst_next: u64::MAX,
            dwt_ctrl: 0x4000_0000,
            dwt_base: 0,
            dwt_value: 0,
            demcr: 0,
            event: false,
            blocks: HashMap::new(),
            block_addr: 0,
            block_start: 0,
            stop: None,
            fault: None,
            slice_end: 0,
            check: false,
            wake_hint: 0,
            profile: profile.then(HashMap::new),
            probes: Vec::new(),
        }
    }

    /// Marks exception `n` pending (sets the event register if SCR.SEVONPEND).
    pub fn pend(&mut self, n: u16) {
        let n = n as usize;
        if n < EXCEPTIONS {
            if self.pending[n / 32] & (1 << (n % 32)) == 0 && self.scr & (1 << 4) != 0 {
                self.event = true;
            }
            self.pending[n / 32] |= 1 << (n % 32);
            self.check = true;
        }
    }

    fn unpend(&mut self, n: u16) {
        let n = n as usize;
        self.pending[n / 32] &= !(1 << (n % 32));
    }

    fn is_pending(&self, n: usize) -> bool {
        self.pending[n / 32] & (1 << (n % 32)) != 0
    }

    fn group(&self, p: u8) -> i16 {
        let sub_bits = self.prigroup + 1;
        ((p as u32 >> sub_bits) << sub_bits) as i16
    }

    fn priority(&self, n: usize) -> i16 {
        match n {
            1 => -3,
            2 => -2,
            3 => -1,
            _ => self.group(self.prio[n]),
        }
    }

    /// Current execution priority from the active exceptions and the mask registers.
    pub fn exec_priority(&self, primask: u32, basepri: u32, faultmask: u32) -> i16 {
        let mut p = self
            .active
            .iter()
            .map(|&n| self.priority(n as usize))
            .min()
            .unwrap_or(256);
        if basepri & 0xFF != 0 {
            p = p.min(self.group(basepri as u8));
        }
        if primask & 1 != 0 {
            p = p.min(0);
        }
        if faultmask & 1 != 0 {
            p = p.min(-1);
        }
        p
    }

    /// The highest-priority pending and enabled exception, with its group priority.
    pub fn best_pending(&self) -> Option<(u16, i16)> {
        let mut best: Option<(u16, i16)> = None;
        for w in 0..WORDS {
            let en = if w == 0 {
                0xFFFF | self.enabled[0]
            } else {
                self.enabled[w]
            };
            let mut bits = self.pending[w] & en;
            while bits != 0 {
                let n = w * 32 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let p = self.priority(n);
                if best.is_none_or(|(_, bp)| p < bp) {
                    best = Some((n as u16, p));
                }
            }
        }
        best
    }

    /// Whether anything is pending and enabled at all (cheap pre-check for the block hook).
    pub fn any_pending(&self) -> bool {
        (0..WORDS).any(|w| {
            let en = if w == 0 {
                0xFFFF | self.enabled[0]
            } else {
                self.enabled[w]
            };
            self.pending[w] & en != 0
        })
    }

    /// Records entry into exception `n`.
    pub fn entered(&mut self, n: u16) {
        self.unpend(n);
        self.active.push(n);
        self.interrupts += 1;
    }

    /// Cycles per SysTick count (CLKSOURCE = 0: HCLK/8 reference).
    fn syst_div(&self) -> u64 {
        if self.syst_csr & 4 != 0 {
            1
        } else {
            8
        }
    }

    /// The cycle at which SysTick next wraps, if it counts.
    pub fn systick_due(&self) -> u64 {
        self.syst_next
    }

    /// Fires SysTick wraps up to the current cycle.
    pub fn service_timers(&mut self) {
        while self.syst_csr & 1 != 0 && self.cycles >= self.syst_next {
            self.syst_csr |= 1 << 16;
            if self.syst_csr & 2 != 0 {
                self.pend(SYSTICK);
            }
            self.syst_next += (self.syst_rvr as u64 + 1) * self.syst_div();
        }
    }

    fn syst_restart(&mut self) {
        self.syst_next = if self.syst_csr & 1 != 0 && self.syst_rvr != 0 {
            self.cycles + (self.syst_rvr as u64 + 1) * self.syst_div()
        } else {
            u64::MAX
        };
    }

    fn cyccnt(&self) -> u32 {
        if self.dwt_ctrl & 1 != 0 && self.demcr & (1 << 24) != 0 {
            self.dwt_value
                .wrapping_add((self.cycles - self.dwt_base) as u32)
        } else {
            self.dwt_value
        }
    }

    fn icsr(&self) -> u32 {
        let mut v = self.active.last().copied().unwrap_or(0) as u32;
        if self.active.len() <= 1 {
            v |= 1 << 11; // RETTOBASE
        }
        if let Some((n, _)) = self.best_pending() {
            v |= (n as u32) << 12;
            if n >= 16 {
                v |= 1 << 22;
            }
        }
        if self.is_pending(SYSTICK as usize) {
            v |= 1 << 26;
        }
        if self.is_pending(PENDSV as usize) {
            v |= 1 << 28;
        }
        v
    }

    /// Reads a System Control Space / debug register (0xE000_0000..0xE010_0000) word.
    pub fn sys_read(&mut self, addr: u32) -> Option<u32> {
        let cpuid = match self.id {
            CoreId::M7 => 0x411F_C271,
            CoreId::M4 => 0x410F_C241,
        };
        Some(match addr {
            0xE000_1000 => self.dwt_ctrl,
            0xE000_1004 => self.cyccnt(),
            0xE000_1FB0..=0xE000_1FB4 => 0,
            0xE000_E004 => 4, // ICTR: 160 interrupt lines
            0xE000_E008 => self.reg(addr),
            0xE000_E010 => {
                let v = self.syst_csr;
                self.syst_csr &= !(1 << 16);
                v
            }
            0xE000_E014 => self.syst_rvr,
            0xE000_E018 => {
                if self.syst_next == u64::MAX {
                    0
                } else {
                    // A tick that is due but not yet taken (read between the counter reaching
                    // 0 and the wrap being processed) reads as 0, not as an underflow.
                    (self.syst_next.saturating_sub(self.cycles) / self.syst_div())
                        .min(self.syst_rvr as u64) as u32
                }
            }
            0xE000_E01C => 0x4000_0000 | 479_999, // CALIB: NOREF, 1 ms at 480 MHz
            0xE000_E100..=0xE000_E13C => self.enabled_word(addr, 0xE000_E100),
            0xE000_E180..=0xE000_E1BC => self.enabled_word(addr, 0xE000_E180),
            0xE000_E200..=0xE000_E23C => self.pending_word(addr, 0xE000_E200),
            0xE000_E280..=0xE000_E2BC => self.pending_word(addr, 0xE000_E280),
            0xE000_E300..=0xE000_E33C => {
                let first = (addr - 0xE000_E300) * 8;
                let mut v = 0;
                for b in 0..32 {
                    let n = (16 + first + b) as u16;
                    if self.active.contains(&n) {
                        v |= 1 << b;
                    }
                }
                v
            }
            0xE000_E400..=0xE000_E4EC => {
                let first = 16 + (addr - 0xE000_E400) as usize;
                u32::from_le_bytes(
                    [0, 1, 2, 3].map(|i| self.prio.get(first + i).copied().unwrap_or(0)),
                )
            }
            0xE000_ED00 => cpuid,
            0xE000_ED04 => self.icsr(),
            0xE000_ED08 => self.vtor,
            0xE000_ED0C => 0xFA05_0000 | (self.prigroup << 8),
            0xE000_ED10 => self.scr,
            0xE000_ED18..=0xE000_ED20 => {
                let first = 4 + (addr - 0xE000_ED18) as usize;
                u32::from_le_bytes([0, 1, 2, 3].map(|i| self.prio[first + i]))
            }
            0xE000_ED14 | 0xE000_ED24..=0xE000_ED3C | 0xE000_ED84 | 0xE000_ED88 => self.reg(addr),
            0xE000_ED40..=0xE000_ED74 => 0,
            0xE000_ED78 => match self.id {
                CoreId::M7 => 0x0900_0003, // CLIDR: L1 I+D
                CoreId::M4 => 0,
            },
            0xE000_ED7C => 0x8303_C003, // CTR
            0xE000_ED80 => {
                // CCSIDR for the selected cache: 16 KiB, 32-byte lines.
                if self.reg(0xE000_ED84) & 1 == 0 {
                    0xF01F_E019 // D-cache: 4 ways, 128 sets
                } else {
                    0xF03F_E009 // I-cache: 2 ways, 256 sets
                }
            }
            0xE000_ED90 => 16 << 8, // MPU_TYPE: 16 regions
            0xE000_ED94..=0xE000_EDB8 => self.reg(addr),
            0xE000_EDF0 => 1, // DHCSR: C_DEBUGEN, the emulator is the debugger
            0xE000_EDFC => self.demcr,
            0xE000_EF34..=0xE000_EF3C => self.reg(addr),
            _ => return None,
        })
    }

    fn reg(&self, addr: u32) -> u32 {
        self.regs.get(&addr).copied().unwrap_or(match addr {
            0xE000_ED14 => 0x200,       // CCR: STKALIGN
            0xE000_EF34 => 0xC000_0000, // FPCCR: ASPEN, LSPEN
            _ => 0,
        })
    }

    fn enabled_word(&self, addr: u32, base: u32) -> u32 {
        let i = word(addr, base);
        self.irq_word(&self.enabled, i)
    }

    fn pending_word(&self, addr: u32, base: u32) -> u32 {
        let i = word(addr, base);
        self.irq_word(&self.pending, i)
    }

    /// IRQ bits 32*i.. as stored in exception-number order (offset by 16).
    fn irq_word(&self, bits: &[u32; WORDS], i: usize) -> u32 {
        let mut v = 0;
        for b in 0..32 {
            let n = 16 + i * 32 + b;
            if n < EXCEPTIONS && bits[n / 32] & (1 << (n % 32)) != 0 {
                v |= 1 << b;
            }
        }
        v
    }

    fn irq_update(&mut self, which: u8, i: usize, v: u32) {
        for b in 0..32 {
            if v & (1 << b) == 0 {
                continue;
            }
            let n = 16 + i * 32 + b;
            if n >= EXCEPTIONS {
                continue;
            }
            let (w, m) = (n / 32, 1u32 << (n % 32));
            match which {
                0 => self.enabled[w] |= m,
                1 => self.enabled[w] &= !m,
                2 => self.pend(n as u16),
                _ => self.pending[w] &= !m,
            }
        }
        self.check = true;
    }

    /// Writes a System Control Space / debug register; `mask` covers the written bytes.
    pub fn sys_write(&mut self, addr: u32, v: u32, mask: u32) -> Option<()> {
        match addr {
            0xE000_1000 => {
                let c = self.cyccnt();
                self.dwt_ctrl = (self.dwt_ctrl & !mask) | (v & mask);
                self.dwt_value = c;
                self.dwt_base = self.cycles;
            }
            0xE000_1004 => {
                self.dwt_value = v;
                self.dwt_base = self.cycles;
            }
            0xE000_1FB0 => {} // DWT_LAR
            0xE000_E008 => {
                self.regs.insert(addr, v);
            }
            0xE000_E010 => {
                let was = self.syst_csr & 1;
                self.syst_csr = (self.syst_csr & (1 << 16)) | (v & 7);
                if was == 0 && v & 1 != 0 {
                    self.syst_restart();
                } else if v & 1 == 0 {
                    self.syst_next = u64::MAX;
                }
                self.check = true;
            }
            0xE000_E014 => self.syst_rvr = v & 0xFF_FFFF,
            0xE000_E018 => {
                self.syst_csr &= !(1 << 16);
                self.syst_restart();
            }
            0xE000_E100..=0xE000_E13C => self.irq_update(0, word(addr, 0xE000_E100), v),
            0xE000_E180..=0xE000_E1BC => self.irq_update(1, word(addr, 0xE000_E180), v),
            0xE000_E200..=0xE000_E23C => self.irq_update(2, word(addr, 0xE000_E200), v),
            0xE000_E280..=0xE000_E2BC => self.irq_update(3, word(addr, 0xE000_E280), v),
            0xE000_E400..=0xE000_E4EC => {
                let first = 16 + (addr - 0xE000_E400) as usize;
                for (i, b) in v.to_le_bytes().iter().enumerate() {
                    if mask & (0xFF << (8 * i)) != 0 && first + i < EXCEPTIONS {
                        self.prio[first + i] = b & 0xF0;
                    }
                }
                self.check = true;
            }
            0xE000_EF00 => {
                let n = 16 + (v & 0x1FF) as usize;
                if n < EXCEPTIONS {
                    self.pend(n as u16);
                }
            }
            0xE000_ED04 => {
                if v & (1 << 28) != 0 {
                    self.pend(PENDSV);
                }
                if v & (1 << 27) != 0 {
                    self.unpend(PENDSV);
                }
                if v & (1 << 26) != 0 {
                    self.pend(SYSTICK);
                }
                if v & (1 << 25) != 0 {
                    self.unpend(SYSTICK);
                }
                if v & (1 << 31) != 0 {
                    self.pend(2);
                }
            }
            0xE000_ED08 => self.vtor = v & !0x7F,
            0xE000_ED0C => {
                if v >> 16 == 0x05FA {
                    self.prigroup = (v >> 8) & 7;
                    if v & 4 != 0 {
                        // SYSRESETREQ: not modelled (would reset the whole chip).
                        return None;
                    }
                }
                self.check = true;
            }
            0xE000_ED10 => self.scr = v & 0x16,
            0xE000_ED18..=0xE000_ED20 => {
                let first = 4 + (addr - 0xE000_ED18) as usize;
                for (i, b) in v.to_le_bytes().iter().enumerate() {
                    if mask & (0xFF << (8 * i)) != 0 {
                        self.prio[first + i] = b & 0xF0;
                    }
                }
                self.check = true;
            }
            0xE000_ED14 | 0xE000_ED24 | 0xE000_ED84 | 0xE000_ED88 | 0xE000_ED94..=0xE000_EDB8 => {
                let n = (self.reg(addr) & !mask) | (v & mask);
                self.regs.insert(addr, n);
            }
            0xE000_ED28..=0xE000_ED30 => {
                let n = self.reg(addr) & !(v & mask); // write 1 to clear
                self.regs.insert(addr, n);
            }
            0xE000_EDF0 => {} // DHCSR: writes from the firmware are ignored (key-protected)
            0xE000_EDFC => {
                let c = self.cyccnt();
                self.demcr = (self.demcr & !mask) | (v & mask);
                self.dwt_value = c;
                self.dwt_base = self.cycles;
            }
            0xE000_EF34..=0xE000_EF3C => {
                let n = (self.reg(addr) & !mask) | (v & mask);
                self.regs.insert(addr, n);
            }
            // Cache and branch-predictor maintenance operations: no effect on this model.
            0xE000_EF50..=0xE000_EF78 => {}
            _ => return None,
        }
        Some(())
    }
}

fn word(addr: u32, base: u32) -> usize {
    ((addr - base) / 4) as usize
}
