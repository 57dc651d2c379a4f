//! The shared peripherals of the STM32H747 (bus addresses 0x4000_0000..0x6000_0000), each access
//! tagged with the core that made it. Registers outside the modelled set are refused
//! (`Err(())`), and the machine reports them as unmodelled accesses.

use crate::{CoreId, GpioEvent, PwmEvent};

/// HSEM base address.
pub const HSEM: u32 = 0x5802_6400;
/// RCC base address.
pub const RCC: u32 = 0x5802_4400;
/// PWR base address.
pub const PWR: u32 = 0x5802_4800;
/// SYSCFG base address.
pub const SYSCFG: u32 = 0x5800_0400;
/// EXTI base address.
pub const EXTI: u32 = 0x5800_0000;
/// FLASH interface base address.
pub const FLASH: u32 = 0x5200_2000;
/// DBGMCU base address.
pub const DBGMCU: u32 = 0x5C00_1000;
/// GPIOA base address; ports B..K follow 0x400 apart.
pub const GPIOA: u32 = 0x5802_0000;
/// The U(S)ART instances the console accepts (base addresses).
pub const UARTS: [u32; 8] = [
    0x4001_1000,
    0x4000_4400,
    0x4000_4800,
    0x4000_4C00,
    0x4000_5000,
    0x4001_1400,
    0x4000_7800,
    0x4000_7C00,
];
/// RTC base address.
pub const RTC: u32 = 0x5800_4000;
/// TIM3 base address; TIM4 follows at +0x400 (both modelled: PWM outputs).
pub const TIM3: u32 = 0x4000_0400;
/// The kernel clock of TIM3/TIM4 in the model: the reset APB1 timer clock (HSI, 64 MHz).
pub const TIMER_CLOCK_HZ: u64 = 64_000_000;
/// ADC1/ADC2 base address (ADC1 at +0, ADC2 at +0x100, common registers at +0x300).
pub const ADC12: u32 = 0x4002_2000;
/// ADC3 base address (common registers at +0x300).
pub const ADC3: u32 = 0x5802_6000;

/// HSEM interrupt of the M7 (HSEM1, C1 registers).
pub const IRQ_HSEM_M7: u16 = 125;
/// HSEM interrupt of the M4 (HSEM2, C2 registers).
pub const IRQ_HSEM_M4: u16 = 126;

/// Something a peripheral access caused that the machine must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// RCC_GCR.BOOT_C2 went from 0 to 1: release the M4 from reset.
    BootM4,
    /// A level interrupt line of `core` is high: pend `irq` there.
    Irq(CoreId, u16),
}

/// The hardware semaphores.
#[derive(Default)]
struct Hsem {
    /// Per semaphore: LOCK (bit 31) | COREID << 8 | PROCID.
    r: [u32; 32],
    /// Interrupt enable per line (0 = C1/M7, 1 = C2/M4).
    ier: [u32; 2],
    /// Interrupt status per line.
    isr: [u32; 2],
    /// Clear-all key.
    keyr: u32,
}

/// HSEM COREID of a core (RM0399: CM7 = 3, CM4 = 1).
pub fn hsem_core_id(core: CoreId) -> u32 {
    match core {
        CoreId::M7 => 3,
        CoreId::M4 => 1,
    }
}

/// A plain register file for a block whose registers are storage (with a few computed bits).
struct Regs {
    vals: Vec<u32>,
}

impl Regs {
    fn new(words: usize) -> Self {
        Regs {
            vals: vec![0; words],
        }
    }
    fn get(&self, off: u32) -> u32 {
        self.vals[(off / 4) as usize]
    }
    fn set(&mut self, off: u32, v: u32) {
        self.vals[(off / 4) as usize] = v;
    }
}

/// A timer channel's output: (period ns, high ns, routed pin); zeros and `None` when off.
type PwmOut = (u64, u64, Option<(char, u8)>);

/// The peripheral side of the chip.
pub struct Soc {
    hsem: Hsem,
    rcc: Regs,
    pwr: Regs,
    syscfg: Regs,
    exti: Regs,
    flash_acr: u32,
    /// FLASH_OPTSR_CUR: BCM7 set, BCM4 as configured.
    optsr: u32,
    dbgmcu_cr: u32,
    gpio: Vec<Regs>,
    uarts: Vec<Regs>,
    rtc: Regs,
    adc12: Regs,
    adc3: Regs,
    /// TIM3 and TIM4.
    timers: [Regs; 2],
    /// Each timer channel's output as last reported: (period ns, high ns, pin).
    pwm_out: [[PwmOut; 4]; 2],
    /// Every PWM output change.
    pub pwm_events: Vec<PwmEvent>,
    /// Console bytes written by each core (UART TDR or semihosting).
    pub console: [Vec<u8>; 2],
    /// Every GPIO output level change.
    pub gpio_events: Vec<GpioEvent>,
    /// Effects for the machine to apply after the current access.
    pub effects: Vec<Effect>,
    /// Register-level trace lines (time filled in by the machine).
    pub trace: Vec<(CoreId, String)>,
    /// Whether trace lines are recorded.
    pub tracing: bool,
    /// Virtual time of the current access (set by the machine before each access).
    pub now_ns: u64,
    /// RTC calendar: (seconds since 1970 set by the firmware, virtual ns when it was set), once
    /// the firmware leaves init mode.
    rtc_base: Option<(i64, u64)>,
    /// DR value latched by a TR read (the shadow registers stay consistent).
    rtc_dr_latch: Option<u32>,
}

/// Word index helper for the UR registers.
const SYSCFG_UR3: u32 = 0x30C;

impl Soc {
    /// A chip in its reset state; `bcm4` is the BCM4 option byte, `m4_boot` the CM4 boot address
    /// (BCM4_ADD0) reported by SYSCFG UR3.
    pub fn new(bcm4: bool, m4_boot: u32, tracing: bool) -> Self {
        let mut rcc = Regs::new(0x400 / 4);
        // CR: HSION, HSIRDY (recomputed on read), HSIDIVF.
        rcc.set(0x00, 0x0000_0025);
        let mut syscfg = Regs::new(0x400 / 4);
        syscfg.set(0x308, 0x0800 << 16); // UR2: BCM7_ADD0 = 0x0800_0000
        syscfg.set(SYSCFG_UR3, (m4_boot >> 16) << 16);
        let mut optsr = 1 << 23; // BCM7
        if bcm4 {
            optsr |= 1 << 22;
        }
        Soc {
            hsem: Hsem::default(),
            rcc,
            pwr: Regs::new(0x40 / 4),
            syscfg,
            exti: Regs::new(0x400 / 4),
            flash_acr: 0x37,
            optsr,
            dbgmcu_cr: 0,
            gpio: (0..11).map(|_| Regs::new(0x400 / 4)).collect(),
            uarts: (0..UARTS.len()).map(|_| Regs::new(0x400 / 4)).collect(),
            rtc: Regs::new(0x400 / 4),
            adc12: Regs::new(0x400 / 4),
            adc3: Regs::new(0x400 / 4),
            timers: [timer_reset(), timer_reset()],
            pwm_out: [[(0, 0, None); 4]; 2],
            pwm_events: Vec::new(),
            console: [Vec::new(), Vec::new()],
            gpio_events: Vec::new(),
            effects: Vec::new(),
            trace: Vec::new(),
            tracing,
            now_ns: 0,
            rtc_base: None,
            rtc_dr_latch: None,
        }
    }

    /// The CM4 boot address as SYSCFG UR3 holds it now.
    pub fn m4_boot_addr(&self) -> u32 {
        self.syscfg.get(SYSCFG_UR3) & 0xFFFF_0000
    }

    /// Whether the HSEM interrupt line of `core` is high (status & enable non-zero).
    pub fn hsem_line(&self, core: CoreId) -> bool {
        let i = core as usize;
        self.hsem.isr[i] & self.hsem.ier[i] != 0
    }

    fn note(&mut self, core: CoreId, f: impl FnOnce() -> String) {
        if self.tracing {
            self.trace.push((core, f()));
        }
    }

    fn hsem_lines(&mut self) {
        for c in [CoreId::M7, CoreId::M4] {
            if self.hsem_line(c) {
                let irq = match c {
                    CoreId::M7 => IRQ_HSEM_M7,
                    CoreId::M4 => IRQ_HSEM_M4,
                };
                self.effects.push(Effect::Irq(c, irq));
            }
        }
    }

    fn hsem_freed(&mut self, core: CoreId, i: usize) {
        self.hsem.r[i] = 0;
        self.hsem.isr[0] |= 1 << i;
        self.hsem.isr[1] |= 1 << i;
        self.note(core, || format!("HSEM {i} released"));
        self.hsem_lines();
    }

    fn hsem_read(&mut self, core: CoreId, off: u32) -> Option<u32> {
        let id = hsem_core_id(core);
        Some(match off {
            0x000..=0x07C => self.hsem.r[(off / 4) as usize],
            0x080..=0x0FC => {
                let i = ((off - 0x80) / 4) as usize;
                if self.hsem.r[i] & (1 << 31) == 0 {
                    self.hsem.r[i] = (1 << 31) | (id << 8);
                    self.note(core, || format!("HSEM {i} taken (1-step)"));
                }
                self.hsem.r[i]
            }
            0x100 | 0x110 => self.hsem.ier[((off - 0x100) / 0x10) as usize],
            0x104 | 0x114 => 0,
            0x108 | 0x118 => self.hsem.isr[((off - 0x108) / 0x10) as usize],
            0x10C | 0x11C => {
                let l = ((off - 0x10C) / 0x10) as usize;
                self.hsem.isr[l] & self.hsem.ier[l]
            }
            0x140 => 0,
            0x144 => self.hsem.keyr,
            _ => return None,
        })
    }

    fn hsem_write(&mut self, core: CoreId, off: u32, v: u32) -> Option<()> {
        let id = hsem_core_id(core);
        match off {
            0x000..=0x07C => {
                let i = (off / 4) as usize;
                let cur = self.hsem.r[i];
                let wid = (v >> 8) & 0xF;
                if wid != id {
                    // COREID must be the writer's own bus master ID: the write is ignored.
                    return Some(());
                }
                if v & (1 << 31) != 0 {
                    if cur & (1 << 31) == 0 {
                        self.hsem.r[i] = (1 << 31) | (id << 8) | (v & 0xFF);
                        self.note(core, || {
                            format!("HSEM {i} taken (2-step, proc {})", v & 0xFF)
                        });
                    }
                } else if cur & (1 << 31) != 0 && cur & 0xFFF == v & 0xFFF {
                    self.hsem_freed(core, i);
                }
            }
            0x080..=0x0FC => {} // RLR is read-only; writes are ignored by the hardware.
            0x100 | 0x110 => {
                self.hsem.ier[((off - 0x100) / 0x10) as usize] = v;
                self.hsem_lines();
            }
            0x104 | 0x114 => self.hsem.isr[((off - 0x104) / 0x10) as usize] &= !v,
            0x140 => {
                if v >> 16 == self.hsem.keyr >> 16 {
                    let who = (v >> 8) & 0xF;
                    for i in 0..32 {
                        let r = self.hsem.r[i];
                        if r & (1 << 31) != 0 && (r >> 8) & 0xF == who {
                            self.hsem_freed(core, i);
                        }
                    }
                }
            }
            0x144 => self.hsem.keyr = v & 0xFFFF_0000,
            _ => return None,
        }
        Some(())
    }

    /// Reads the 32-bit register at word address `addr` for `core`; `None` if not modelled.
    pub fn read(&mut self, core: CoreId, addr: u32) -> Option<u32> {
        let (base, off) = (addr & !0x3FF, addr & 0x3FF);
        match base {
            HSEM => self.hsem_read(core, off),
            RCC => Some(rcc_read(&self.rcc, off)),
            PWR if off < 0x40 => Some(match off {
                0x04 => self.pwr.get(off) | (1 << 13) | (3 << 14), // CSR1: ACTVOSRDY, ACTVOS
                0x18 => self.pwr.get(off) | (1 << 13),             // D3CR: VOSRDY
                0x0C => self.pwr.get(off) | (1 << 26) | (1 << 16), // CR3: USB33RDY, SMPSEXTRDY
                _ => self.pwr.get(off),
            }),
            SYSCFG => Some(self.syscfg.get(off)),
            EXTI => Some(self.exti.get(off)),
            FLASH => match off {
                0x00 | 0x100 => Some(self.flash_acr),
                0x1C | 0x11C => Some(self.optsr),
                0x18 | 0x118 => Some(1), // OPTCR: OPTLOCK
                _ => None,
            },
            DBGMCU => match off {
                0x00 => Some(0x1003_6450),
                0x04 => Some(self.dbgmcu_cr),
                _ => None,
            },
            b if (GPIOA..GPIOA + 11 * 0x400).contains(&b) => {
                let g = &self.gpio[((b - GPIOA) / 0x400) as usize];
                match off {
                    0x00..=0x14 | 0x1C..=0x24 => Some(match off {
                        0x10 => g.get(0x14), // IDR reads back the output levels
                        _ => g.get(off),
                    }),
                    0x18 => Some(0),
                    _ => None,
                }
            }
            b if UARTS.contains(&b) => {
                let u = &self.uarts[UARTS.iter().position(|&x| x == b).unwrap_or(0)];
                match off {
                    // ISR: TXE/TXFNF, TC, TEACK, REACK.
                    0x1C => Some((1 << 7) | (1 << 6) | (1 << 21) | (1 << 22)),
                    0x24 => Some(0),
                    0x00..=0x2C => Some(u.get(off)),
                    _ => None,
                }
            }
            RTC => self.rtc_read(off),
            ADC12 | ADC3 => self.adc_read(base, off),
            b if b == TIM3 || b == TIM3 + 0x400 => match off {
                // EGR is write-only; the counter is not modelled (reads 0).
                0x14 | 0x24 => Some(0),
                0x00..=0x44 | 0x60 | 0x68 => {
                    Some(self.timers[((b - TIM3) / 0x400) as usize].get(off))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Writes `v` to the register at word address `addr`; `mask` says which bytes the access
    /// covered (narrow writes merge into storage registers). `None` if not modelled.
    pub fn write(&mut self, core: CoreId, addr: u32, v: u32, mask: u32) -> Option<()> {
        let (base, off) = (addr & !0x3FF, addr & 0x3FF);
        let merge = |old: u32| (old & !mask) | (v & mask);
        match base {
            HSEM => self.hsem_write(core, off, v),
            RCC => {
                let old = self.rcc.get(off);
                let new = merge(old);
                self.rcc.set(off, new);
                if off == 0xA0 {
                    if old & (1 << 3) == 0 && new & (1 << 3) != 0 {
                        self.note(core, || "RCC_GCR.BOOT_C2 set".into());
                        self.effects.push(Effect::BootM4);
                    }
                } else if off == 0x10 && new & 7 != old & 7 {
                    let sw = new & 7;
                    self.note(core, || format!("RCC_CFGR.SW = {sw}"));
                }
                Some(())
            }
            PWR if off < 0x40 => {
                let n = merge(self.pwr.get(off));
                self.pwr.set(off, n);
                Some(())
            }
            SYSCFG => {
                let n = merge(self.syscfg.get(off));
                self.syscfg.set(off, n);
                if off == SYSCFG_UR3 {
                    self.note(core, || format!("SYSCFG UR3 BCM4_ADD0 = {:#06x}", n >> 16));
                }
                Some(())
            }
            EXTI => {
                let n = merge(self.exti.get(off));
                self.exti.set(off, n);
                Some(())
            }
            FLASH if off == 0x00 || off == 0x100 => {
                self.flash_acr = merge(self.flash_acr);
                Some(())
            }
            DBGMCU if off == 0x04 => {
                self.dbgmcu_cr = merge(self.dbgmcu_cr);
                Some(())
            }
            b if (GPIOA..GPIOA + 11 * 0x400).contains(&b) => {
                let port = ((b - GPIOA) / 0x400) as usize;
                let old = self.gpio[port].get(0x14);
                let odr = match off {
                    0x14 => merge(old) & 0xFFFF,
                    0x18 => {
                        let set = v & mask & 0xFFFF;
                        let reset = ((v & mask) >> 16) & 0xFFFF;
                        (old & !reset) | set
                    }
                    0x00..=0x0C | 0x1C..=0x24 => {
                        let n = merge(self.gpio[port].get(off));
                        self.gpio[port].set(off, n);
                        if off == 0x00 || off == 0x20 || off == 0x24 {
                            self.pwm_update(core);
                        }
                        return Some(());
                    }
                    _ => return None,
                };
                self.gpio[port].set(0x14, odr);
                let changed = old ^ odr;
                for pin in 0..16u8 {
                    if changed & (1 << pin) != 0 {
                        let high = odr & (1 << pin) != 0;
                        let p = (b'A' + port as u8) as char;
                        self.note(core, || {
                            format!("GPIO P{p}{pin} -> {}", if high { "high" } else { "low" })
                        });
                        self.gpio_events.push(GpioEvent {
                            time_ns: 0,
                            core,
                            port: p,
                            pin,
                            high,
                        });
                    }
                }
                Some(())
            }
            b if UARTS.contains(&b) => {
                let i = UARTS.iter().position(|&x| x == b).unwrap_or(0);
                match off {
                    0x28 => {
                        self.console[core as usize].push(v as u8);
                        Some(())
                    }
                    0x1C | 0x24 => None,
                    0x00..=0x2C => {
                        let n = merge(self.uarts[i].get(off));
                        self.uarts[i].set(off, n);
                        Some(())
                    }
                    _ => None,
                }
            }
            RTC => self.rtc_write(off, merge(self.rtc.get(off & !3))),
            ADC12 | ADC3 => {
                let old = self.adc_reg(base).get(off);
                self.adc_write(base, off, merge(old))
            }
            b if b == TIM3 || b == TIM3 + 0x400 => {
                let t = ((b - TIM3) / 0x400) as usize;
                match off {
                    // EGR: UG loads the preloaded values, which the model applies at once.
                    0x14 => {}
                    0x10 | 0x24 => {}
                    0x00..=0x44 | 0x60 | 0x68 => {
                        let n = merge(self.timers[t].get(off));
                        self.timers[t].set(off, n);
                    }
                    _ => return None,
                }
                self.pwm_update(core);
                Some(())
            }
            _ => None,
        }
    }

    /// The pin (port letter, number) in alternate-function mode with AF2 that carries
    /// `channel` (1..=4) of timer `t` (0 = TIM3, 1 = TIM4), if any (RM0399 / datasheet AF2).
    fn pwm_pin(&self, t: usize, channel: u8) -> Option<(char, u8)> {
        const TIM3_PINS: [&[(u8, u8)]; 4] = [
            &[(b'A', 6), (b'B', 4), (b'C', 6)],
            &[(b'A', 7), (b'B', 5), (b'C', 7)],
            &[(b'B', 0), (b'C', 8)],
            &[(b'B', 1), (b'C', 9)],
        ];
        const TIM4_PINS: [&[(u8, u8)]; 4] = [
            &[(b'B', 6), (b'D', 12)],
            &[(b'B', 7), (b'D', 13)],
            &[(b'B', 8), (b'D', 14)],
            &[(b'B', 9), (b'D', 15)],
        ];
        let pins = if t == 0 { TIM3_PINS } else { TIM4_PINS };
        pins[usize::from(channel - 1)]
            .iter()
            .find_map(|&(port, pin)| {
                let g = &self.gpio[usize::from(port - b'A')];
                let mode = (g.get(0x00) >> (pin * 2)) & 3;
                let afr = if pin < 8 { g.get(0x20) } else { g.get(0x24) };
                let af = (afr >> ((pin % 8) * 4)) & 0xF;
                (mode == 2 && af == 2).then_some((port as char, pin))
            })
    }

    /// Recomputes every modelled timer channel's output and records the ones that changed.
    /// Up-counting PWM mode 1 only: high while CNT < CCRx, period (ARR + 1) x (PSC + 1) ticks.
    fn pwm_update(&mut self, core: CoreId) {
        for t in 0..2 {
            let r = &self.timers[t];
            let running = r.get(0x00) & 1 != 0;
            let tick_ps =
                (u64::from(r.get(0x28) & 0xFFFF) + 1) * 1_000_000_000_000 / TIMER_CLOCK_HZ;
            let top = u64::from(r.get(0x2C) & 0xFFFF) + 1;
            for ch in 1..=4u8 {
                let r = &self.timers[t];
                let ccmr = r.get(if ch <= 2 { 0x18 } else { 0x1C });
                let shift = if ch % 2 == 1 { 0 } else { 8 };
                let mode = ((ccmr >> (4 + shift)) & 7) | ((ccmr >> (16 + shift)) & 1) << 3;
                let enabled = r.get(0x20) & (1 << ((ch - 1) * 4)) != 0;
                let ccr = u64::from(r.get(0x30 + 4 * u32::from(ch)) & 0xFFFF);
                let out = if running && enabled && mode == 0b0110 {
                    (
                        top * tick_ps / 1000,
                        ccr.min(top) * tick_ps / 1000,
                        self.pwm_pin(t, ch),
                    )
                } else {
                    (0, 0, None)
                };
                if out != self.pwm_out[t][usize::from(ch - 1)] {
                    self.pwm_out[t][usize::from(ch - 1)] = out;
                    let timer = if t == 0 { 3 } else { 4 };
                    self.note(core, || {
                        format!("TIM{timer} CH{ch}: period {} ns, high {} ns", out.0, out.1)
                    });
                    self.pwm_events.push(PwmEvent {
                        time_ns: self.now_ns,
                        core,
                        timer,
                        channel: ch,
                        period_ns: out.0,
                        high_ns: out.1,
                        pin: out.2,
                    });
                }
            }
        }
    }

    fn rtc_read(&mut self, off: u32) -> Option<u32> {
        match off {
            // ISR: INITS (bit 4) and RSF (bit 5) set, INITF (bit 6) follows INIT (bit 7).
            0x0C => {
                let isr = self.rtc.get(off) & !((1 << 4) | (1 << 5) | (1 << 6));
                let initf = if isr & (1 << 7) != 0 { 1 << 6 } else { 0 };
                Some(isr | (1 << 4) | (1 << 5) | initf)
            }
            0x00 => Some(match self.rtc_now() {
                Some((tr, dr)) => {
                    self.rtc_dr_latch = Some(dr);
                    tr
                }
                None => self.rtc.get(0x00),
            }),
            0x04 => Some(match self.rtc_dr_latch.take() {
                Some(dr) => dr,
                None => self.rtc_now().map_or(self.rtc.get(0x04), |(_, dr)| dr),
            }),
            0x08..=0x9C => Some(self.rtc.get(off)),
            _ => None,
        }
    }

    /// The running calendar's TR and DR, once it has been set.
    fn rtc_now(&self) -> Option<(u32, u32)> {
        let (base, at) = self.rtc_base?;
        let secs = base + (self.now_ns.saturating_sub(at) / 1_000_000_000) as i64;
        Some(calendar::to_bcd(secs))
    }

    fn rtc_write(&mut self, off: u32, v: u32) -> Option<()> {
        match off {
            0x0C => {
                let was_init = self.rtc.get(off) & (1 << 7) != 0;
                self.rtc.set(off, v);
                if was_init && v & (1 << 7) == 0 {
                    // Leaving init mode starts the calendar from TR/DR.
                    let secs = calendar::from_bcd(self.rtc.get(0x00), self.rtc.get(0x04));
                    self.rtc_base = Some((secs, self.now_ns));
                }
                Some(())
            }
            0x00..=0x9C => {
                self.rtc.set(off, v);
                Some(())
            }
            _ => None,
        }
    }

    fn adc_reg(&mut self, base: u32) -> &mut Regs {
        if base == ADC12 {
            &mut self.adc12
        } else {
            &mut self.adc3
        }
    }

    fn adc_read(&mut self, base: u32, off: u32) -> Option<u32> {
        let within = off & 0xFF;
        if off >= 0x300 {
            return (off < 0x310).then(|| self.adc_reg(base).get(off));
        }
        if off >= 0x200 || within > 0xD0 {
            return None;
        }
        Some(match within {
            // ISR: ADRDY (0) always, EOC (2)/EOS (3) while a conversion result waits.
            0x00 => self.adc_reg(base).get(off) | 1,
            // CR: ADEN stays, ADCAL (31) and ADSTART (2) complete at once, ADVREGEN (28) kept.
            0x08 => self.adc_reg(base).get(off) & !((1 << 31) | (1 << 2)),
            // DR: the potentiometer on every channel, a 16-bit result (see `pot_10bit`).
            0x40 => {
                let isr = off - within;
                let pot = pot_10bit(self.now_ns);
                let r = self.adc_reg(base);
                let v = r.get(isr) & !((1 << 2) | (1 << 3));
                r.set(isr, v);
                pot << 6
            }
            _ => self.adc_reg(base).get(off),
        })
    }

    fn adc_write(&mut self, base: u32, off: u32, v: u32) -> Option<()> {
        let within = off & 0xFF;
        if off >= 0x300 {
            return (off < 0x310).then(|| self.adc_reg(base).set(off, v));
        }
        if off >= 0x200 || within > 0xD0 {
            return None;
        }
        let isr = off - within;
        let r = self.adc_reg(base);
        match within {
            0x00 => {
                let cur = r.get(off);
                r.set(off, cur & !v); // write 1 to clear
            }
            0x08 => {
                r.set(off, v);
                if v & (1 << 2) != 0 {
                    // ADSTART: the conversion completes at once (EOC, EOS).
                    let s = r.get(isr);
                    r.set(isr, s | (1 << 2) | (1 << 3));
                }
            }
            _ => r.set(off, v),
        }
        Some(())
    }
}

/// Period of the potentiometer on the analog inputs, as in the simulator's board.
pub const POT_PERIOD_MS: u64 = 8_000;

/// The potentiometer the simulator wires to A0: a triangle 0 -> 1023 -> 0 over
/// [`POT_PERIOD_MS`] of virtual time (whole milliseconds), in 10 bits.
pub fn pot_10bit(now_ns: u64) -> u32 {
    let half = POT_PERIOD_MS / 2;
    let t = (now_ns / 1_000_000) % POT_PERIOD_MS;
    let up = if t <= half { t } else { POT_PERIOD_MS - t };
    (up * 1023 / half) as u32
}

/// Gregorian calendar <-> RTC BCD registers (years 2000..2099, 24-hour format).
mod calendar {
    fn bcd(v: u32) -> u32 {
        ((v / 10) << 4) | (v % 10)
    }
    fn unbcd(v: u32) -> u32 {
        (v >> 4) * 10 + (v & 0xF)
    }
    /// Days since 1970-01-01 of a civil date.
    fn days(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
    /// Civil date of days since 1970-01-01.
    fn civil(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }
    /// Seconds since 1970 of TR/DR.
    pub fn from_bcd(tr: u32, dr: u32) -> i64 {
        let h = unbcd((tr >> 16) & 0x3F) as i64;
        let mi = unbcd((tr >> 8) & 0x7F) as i64;
        let s = unbcd(tr & 0x7F) as i64;
        let y = 2000 + unbcd((dr >> 16) & 0xFF) as i64;
        let mo = unbcd((dr >> 8) & 0x1F).clamp(1, 12) as i64;
        let d = unbcd(dr & 0x3F).clamp(1, 31) as i64;
        days(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
    }
    /// TR/DR of seconds since 1970 (weekday 1 = Monday .. 7 = Sunday).
    pub fn to_bcd(secs: i64) -> (u32, u32) {
        let (day, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil(day);
        let tr = (bcd((sod / 3600) as u32) << 16)
            | (bcd((sod / 60 % 60) as u32) << 8)
            | bcd((sod % 60) as u32);
        let wd = ((day + 3).rem_euclid(7) + 1) as u32; // 1970-01-01 was a Thursday
        let dr = (bcd((y - 2000).rem_euclid(100) as u32) << 16)
            | (wd << 13)
            | (bcd(m as u32) << 8)
            | bcd(d as u32);
        (tr, dr)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip_and_known_date() {
            // 2025-01-01 00:00:00 UTC, a Wednesday.
            let t = 1_735_689_600;
            let (tr, dr) = super::to_bcd(t);
            assert_eq!(tr, 0);
            assert_eq!(dr, 0x25 << 16 | 3 << 13 | 0x01 << 8 | 0x01);
            assert_eq!(super::from_bcd(tr, dr), t);
            let (tr, dr) = super::to_bcd(t + 86_399 + 59 * 86_400);
            assert_eq!((tr, dr & 0xFF_1FFF), (0x23_5959, 0x25_0301));
        }
    }
}

/// A TIM3/TIM4 register file at reset (ARR = 0xFFFF, the rest 0).
fn timer_reset() -> Regs {
    let mut r = Regs::new(0x400 / 4);
    r.set(0x2C, 0xFFFF);
    r
}

fn rcc_read(rcc: &Regs, off: u32) -> u32 {
    let v = rcc.get(off);
    match off {
        // BDCR: LSERDY (bit 1) follows LSEON (bit 0); CSR: LSIRDY (bit 1) follows LSION (bit 0).
        0x70 | 0x74 => (v & !2) | ((v & 1) << 1),
        // CR: every oscillator/PLL ready flag follows its ON bit; D1/D2 domain clocks ready.
        0x00 => {
            let mut r = v & !((1 << 2) | (1 << 8) | (1 << 13) | (1 << 17) | (0x15 << 25));
            for (on, rdy) in [
                (0, 2),
                (7, 8),
                (12, 13),
                (16, 17),
                (24, 25),
                (26, 27),
                (28, 29),
            ] {
                if v & (1 << on) != 0 {
                    r |= 1 << rdy;
                }
            }
            r | (1 << 14) | (1 << 15)
        }
        // CFGR: SWS follows SW.
        0x10 => (v & !(7 << 3)) | ((v & 7) << 3),
        _ => v,
    }
}
