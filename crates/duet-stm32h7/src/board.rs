//! Board support: the LEDs and the console UART of the supported boards, chosen with one
//! cargo feature: `board-giga` (Arduino GIGA R1 WiFi, the default), `board-portenta` (Arduino
//! Portenta H7) or `board-disco` (STM32H747I-DISCO). Switch with
//! `--no-default-features --features board-portenta` (or `board-disco`).
//!
//! No clock is configured: both cores run from the 64 MHz HSI after reset ([`CORE_HZ`]); the
//! PLL would need the power supply configured first, which duet leaves to the application
//! (a wrong SMPS/LDO setting can lock a board). The console runs at 115 200 baud, 8N1, from
//! the 64 MHz APB clock, TX only.

use crate::pac;
use crate::servo::ServoPin;

#[cfg(any(
    all(feature = "board-giga", feature = "board-portenta"),
    all(feature = "board-giga", feature = "board-disco"),
    all(feature = "board-portenta", feature = "board-disco"),
))]
compile_error!("choose one board feature: board-giga, board-portenta or board-disco");

/// The core clock both cores run at (HSI, no PLL: duet does not configure clocks).
pub const CORE_HZ: u32 = 64_000_000;
/// The console's kernel clock (APB1/APB2 at reset: HSI, prescalers 1).
pub const CONSOLE_CLOCK_HZ: u32 = 64_000_000;
/// The console's baud rate.
pub const BAUD: u32 = 115_200;

/// A GPIO pin: port (0 = A .. 10 = K) and number (0..=15).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pin {
    /// Port index, 0 = GPIOA.
    pub port: u8,
    /// Pin number in the port.
    pub pin: u8,
}

impl Pin {
    /// Port `port` (`b'A'..=b'K'`), pin `pin`.
    pub const fn new(port: u8, pin: u8) -> Pin {
        Pin {
            port: port - b'A',
            pin,
        }
    }
}

/// An LED: its pin, and whether it lights when the pin is low.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Led {
    /// The pin.
    pub pin: Pin,
    /// Lit at low level (all the LEDs of the supported boards).
    pub active_low: bool,
    /// Its colour, for messages.
    pub colour: &'static str,
}

/// The console UART: register block address, TX pin and its alternate function, and the RCC
/// enable bit (register and bit).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ConsoleUart {
    /// Base address of the U(S)ART.
    pub base: usize,
    /// TX pin.
    pub tx: Pin,
    /// Alternate function number of the TX pin.
    pub af: u8,
    /// Name, for messages.
    pub name: &'static str,
}

/// A board's description.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Board {
    /// The board's name.
    pub name: &'static str,
    /// The red LED.
    pub red: Led,
    /// The green LED.
    pub green: Led,
    /// The blue LED.
    pub blue: Led,
    /// The console.
    pub console: ConsoleUart,
    /// The ADC1 input channel of the Arduino pin A0 (its pin stays in analog mode, the reset
    /// state).
    pub a0_channel: u8,
    /// The servo example's output: Arduino pin D5 on TIM3 (see [`crate::servo`]).
    pub servo: ServoPin,
}

const fn led(port: u8, pin: u8, colour: &'static str) -> Led {
    Led {
        pin: Pin::new(port, pin),
        active_low: true,
        colour,
    }
}

/// USART1 (on APB2) with TX on PA9, alternate function 7.
const USART1_PA9: ConsoleUart = ConsoleUart {
    base: 0x4001_1000,
    tx: Pin::new(b'A', 9),
    af: 7,
    name: "USART1 (TX PA9)",
};

/// Arduino GIGA R1 WiFi: RGB LED on PI12 / PJ13 / PE3, console on Serial1 (D1 = PA9), A0 = PC4.
pub const GIGA: Board = Board {
    name: "Arduino GIGA R1 WiFi",
    red: led(b'I', 12, "red"),
    green: led(b'J', 13, "green"),
    blue: led(b'E', 3, "blue"),
    console: USART1_PA9,
    a0_channel: 4, // PC4 = ADC12_INP4
    servo: ServoPin {
        pin: Pin::new(b'A', 7),
        af: 2,
        channel: 2,
        label: "D5 (PA7, TIM3_CH2)",
    },
};

/// Arduino Portenta H7: RGB LED on PK5 / PK6 / PK7, console on USART1 (PA9), A0 = PA0_C.
pub const PORTENTA: Board = Board {
    name: "Arduino Portenta H7",
    red: led(b'K', 5, "red"),
    green: led(b'K', 6, "green"),
    blue: led(b'K', 7, "blue"),
    console: USART1_PA9,
    a0_channel: 0, // PA0_C = ADC12_INP0
    servo: ServoPin {
        pin: Pin::new(b'C', 6),
        af: 2,
        channel: 1,
        label: "D5 (PC6, TIM3_CH1)",
    },
};

/// STM32H747I-DISCO: LD3 red PI14, LD1 green PI12, LD4 blue PI15; console on USART1 (PA9),
/// the ST-LINK virtual COM port; A0 of the Arduino connector = PA4.
pub const DISCO: Board = Board {
    name: "STM32H747I-DISCO",
    red: led(b'I', 14, "red"),
    green: led(b'I', 12, "green"),
    blue: led(b'I', 15, "blue"),
    console: USART1_PA9,
    a0_channel: 18, // PA4 (Arduino connector A0) = ADC12_INP18
    servo: ServoPin {
        pin: Pin::new(b'A', 6),
        af: 2,
        channel: 1,
        label: "D5 of the Arduino connector (PA6, TIM3_CH1)",
    },
};

/// The board selected by the cargo feature.
#[cfg(feature = "board-portenta")]
pub const BOARD: Board = PORTENTA;
/// The board selected by the cargo feature.
#[cfg(feature = "board-disco")]
pub const BOARD: Board = DISCO;
/// The board selected by the cargo feature.
#[cfg(not(any(feature = "board-portenta", feature = "board-disco")))]
pub const BOARD: Board = GIGA;

/// The USART `BRR` value for `baud` from `clock_hz` (16x oversampling, rounded).
pub const fn brr(clock_hz: u32, baud: u32) -> u32 {
    (clock_hz + baud / 2) / baud
}

/// `USART_ISR` bit 7: TXE (TXFNF with the FIFO on), room in the transmit register.
pub const ISR_TXE: u32 = 1 << 7;

fn gpio(port: u8) -> &'static pac::gpioc::RegisterBlock {
    // Ports A..K are 0x400 apart from GPIOA and share one register layout (the PAC's per-port
    // types differ only in reset values).
    let base = pac::GPIOA::ptr() as usize + usize::from(port) * 0x400;
    // SAFETY: `port` <= 10 for the pins defined here, so `base` is a GPIO block; registers are
    // volatile cells.
    unsafe { &*(base as *const pac::gpioc::RegisterBlock) }
}

fn rcc() -> &'static pac::rcc::RegisterBlock {
    // SAFETY: the PAC's fixed RCC address; registers are volatile cells.
    unsafe { &*pac::RCC::ptr() }
}

/// Enables the GPIO port's clock for this core (`RCC_AHB4ENR`, the running core's alias).
pub fn enable_port(port: u8) {
    let bit = 1u32 << port;
    // SAFETY: setting a clock-enable bit; the other bits are kept.
    rcc()
        .ahb4enr()
        .modify(|r, w| unsafe { w.bits(r.bits() | bit) });
    let _ = rcc().ahb4enr().read();
}

/// Makes `pin` a push-pull output (read-modify-write of the port's `MODER`: do it at start-up,
/// before the other core touches the same port).
pub fn make_output(pin: Pin) {
    enable_port(pin.port);
    let shift = u32::from(pin.pin) * 2;
    // SAFETY: only this pin's two mode bits change, to 0b01 (output).
    gpio(pin.port)
        .moder()
        .modify(|r, w| unsafe { w.bits((r.bits() & !(3 << shift)) | (1 << shift)) });
}

/// Connects `pin` to alternate function `af` (0..=15): its clock, its 4 AF bits, then its
/// mode (0b10). Read-modify-writes of the port: do it at start-up, as [`make_output`].
pub fn enable_alternate(pin: Pin, af: u8) {
    enable_port(pin.port);
    let g = gpio(pin.port);
    let n = u32::from(pin.pin);
    let af = u32::from(af & 0xF);
    if n < 8 {
        // SAFETY: only this pin's 4 AF bits change.
        g.afrl()
            .modify(|r, w| unsafe { w.bits((r.bits() & !(0xF << (n * 4))) | (af << (n * 4))) });
    } else {
        let s = (n - 8) * 4;
        // SAFETY: only this pin's 4 AF bits change.
        g.afrh()
            .modify(|r, w| unsafe { w.bits((r.bits() & !(0xF << s)) | (af << s)) });
    }
    // SAFETY: only this pin's mode bits change, to 0b10 (alternate function).
    g.moder()
        .modify(|r, w| unsafe { w.bits((r.bits() & !(3 << (n * 2))) | (2 << (n * 2))) });
}

/// Drives `pin` high or low (one `BSRR` write: atomic, safe from both cores).
pub fn set_pin(pin: Pin, high: bool) {
    let bit = if high {
        1u32 << pin.pin
    } else {
        1u32 << (pin.pin + 16)
    };
    // SAFETY: BSRR is write-only set/reset; any value is valid.
    gpio(pin.port).bsrr().write(|w| unsafe { w.bits(bit) });
}

impl Led {
    /// Configures the pin and switches the LED off.
    pub fn init(&self) {
        self.set(false);
        make_output(self.pin);
    }

    /// Switches the LED on or off.
    pub fn set(&self, on: bool) {
        set_pin(self.pin, on != self.active_low);
    }
}

/// The console: polled transmit on the board's UART.
#[derive(Clone, Copy, Debug)]
pub struct Console {
    uart: ConsoleUart,
}

impl Console {
    /// The board's console, without touching the hardware (see [`Console::init`]).
    pub const fn new(uart: ConsoleUart) -> Self {
        Console { uart }
    }

    /// The selected board's console.
    pub const fn board() -> Self {
        Console::new(BOARD.console)
    }

    fn regs(&self) -> &'static pac::usart1::RegisterBlock {
        // SAFETY: `base` is one of the board table's U(S)ART addresses, all with USART1's
        // layout; registers are volatile cells.
        unsafe { &*(self.uart.base as *const pac::usart1::RegisterBlock) }
    }

    /// Enables the UART and its TX pin and sets 115 200 baud, 8N1, transmit only. The M7 does
    /// it; the M4 may write to an initialised console (the bytes of both cores interleave).
    pub fn init(&self) {
        enable_alternate(self.uart.tx, self.uart.af);
        self.enable_clock();
        let u = self.regs();
        // SAFETY: disabling the UART before configuring it; any CR1 value is valid.
        u.cr1().write(|w| unsafe { w.bits(0) });
        // SAFETY: BRR takes the divider in its low 16 bits.
        u.brr()
            .write(|w| unsafe { w.bits(brr(CONSOLE_CLOCK_HZ, BAUD) & 0xFFFF) });
        // SAFETY: UE (bit 0) and TE (bit 3).
        u.cr1().write(|w| unsafe { w.bits(1 | 1 << 3) });
    }

    fn enable_clock(&self) {
        let r = rcc();
        match self.uart.base {
            // USART1: APB2ENR bit 4; USART6: bit 5.
            0x4001_1000 | 0x4001_1400 => {
                let bit = if self.uart.base == 0x4001_1000 {
                    1 << 4
                } else {
                    1 << 5
                };
                // SAFETY: setting one clock-enable bit.
                r.apb2enr().modify(|v, w| unsafe { w.bits(v.bits() | bit) });
                let _ = r.apb2enr().read();
            }
            // USART2/3, UART4/5/7/8 on APB1L: bit = (base - 0x4000_0000) / 0x400.
            base => {
                let bit = 1u32 << ((base - 0x4000_0000) / 0x400);
                // SAFETY: setting one clock-enable bit.
                r.apb1lenr()
                    .modify(|v, w| unsafe { w.bits(v.bits() | bit) });
                let _ = r.apb1lenr().read();
            }
        }
    }

    /// Sends `bytes`, waiting for room before each one.
    pub fn write_bytes(&self, bytes: &[u8]) {
        let u = self.regs();
        for &b in bytes {
            while u.isr().read().bits() & ISR_TXE == 0 {}
            // SAFETY: TDR takes the byte in its low 9 bits.
            u.tdr().write(|w| unsafe { w.bits(u32::from(b)) });
        }
    }
}

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
