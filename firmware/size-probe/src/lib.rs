//! Shared pieces of the size probes: a panic handler that adds nothing, and opaque I/O so the
//! optimiser keeps the measured code.
#![no_std]

use core::panic::PanicInfo;

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// A byte the optimiser cannot predict (read through a volatile pointer).
pub fn opaque_u8(v: u8) -> u8 {
    let cell = v;
    // SAFETY: reading a local through a pointer derived from a reference to it.
    unsafe { core::ptr::read_volatile(&cell) }
}

/// Keeps `v` alive: the optimiser must assume it is observed.
pub fn sink<T>(v: T) {
    let cell = v;
    // SAFETY: `cell` is a live local; the volatile read only forces it to exist.
    let _ = unsafe { core::ptr::read_volatile(&cell) };
}

/// The chip's side of the transport for the rpmsg probes: SRAM4 through volatile accesses (as
/// the chip platform does), a doorbell and clock the optimiser cannot see through, and one
/// round of poll/send/receive.
pub mod chip {
    use super::{opaque_u8, sink};
    use duet_rpmsg::{Endpoint, Instant, OutOfBounds, Platform, SharedMemory, Transport};

    /// SRAM4 as seen by the firmware.
    pub struct Sram4;

    const BASE: usize = 0x3800_0000;
    const SIZE: usize = 0x1_0000;

    /// As duet-stm32h7's: always inlined, alignment by mask (`align` is a power of two).
    #[inline(always)]
    fn check(offset: usize, len: usize, align: usize) -> Result<usize, OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= SIZE && offset & (align - 1) == 0 => Ok(BASE + offset),
            _ => Err(OutOfBounds { offset, len }),
        }
    }

    impl SharedMemory for Sram4 {
        fn size(&self) -> usize {
            SIZE
        }
        fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
            let a = check(offset, buf.len(), 1)?;
            for (i, b) in buf.iter_mut().enumerate() {
                // SAFETY: `check` keeps the access inside SRAM4, which is always mapped.
                *b = unsafe { core::ptr::read_volatile((a + i) as *const u8) };
            }
            Ok(())
        }
        fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
            let a = check(offset, data.len(), 1)?;
            for (i, b) in data.iter().enumerate() {
                // SAFETY: `check` keeps the access inside SRAM4, which is always mapped.
                unsafe { core::ptr::write_volatile((a + i) as *mut u8, *b) };
            }
            Ok(())
        }
        fn read_u16(&self, offset: usize) -> Result<u16, OutOfBounds> {
            let a = check(offset, 2, 2)?;
            // SAFETY: in bounds and 2-aligned.
            Ok(unsafe { core::ptr::read_volatile(a as *const u16) })
        }
        fn write_u16(&self, offset: usize, value: u16) -> Result<(), OutOfBounds> {
            let a = check(offset, 2, 2)?;
            // SAFETY: in bounds and 2-aligned.
            unsafe { core::ptr::write_volatile(a as *mut u16, value) };
            Ok(())
        }
        fn read_u32(&self, offset: usize) -> Result<u32, OutOfBounds> {
            let a = check(offset, 4, 4)?;
            // SAFETY: in bounds and 4-aligned.
            Ok(unsafe { core::ptr::read_volatile(a as *const u32) })
        }
        fn write_u32(&self, offset: usize, value: u32) -> Result<(), OutOfBounds> {
            let a = check(offset, 4, 4)?;
            // SAFETY: in bounds and 4-aligned.
            unsafe { core::ptr::write_volatile(a as *mut u32, value) };
            Ok(())
        }
        fn fence(&self) {
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        }
    }

    pub struct Chip;

    impl Platform for Chip {
        type Memory = Sram4;
        fn memory(&self) -> &Sram4 {
            &Sram4
        }
        fn notify(&self) {
            sink(opaque_u8(0));
        }
        fn wait(&self, _deadline: Instant) -> bool {
            true
        }
        fn now(&self) -> Instant {
            Instant::from_micros(u64::from(opaque_u8(0)))
        }
    }

    pub fn exercise<T: Transport>(t: &mut T) {
        let mut buf = [0u8; 496];
        let _ = t.poll();
        if t.is_ready(Endpoint::Rpc) {
            let n = usize::from(opaque_u8(16));
            let _ = t.try_send(Endpoint::Rpc, &buf[..n]);
        }
        if let Ok(Some(r)) = t.try_recv(&mut buf) {
            sink(r.len);
        }
    }
}

/// The whole duet stack for the `stack_m7` / `stack_m4` probes: transport, codec, RPC engine
/// and byte stream, with two bound functions, one call, one notification and the stream both
/// ways, on the rpmsg probes' chip platform.
pub mod stack {
    use super::{opaque_u8, sink};
    use duet::{Rpc, Transport};

    /// First bound function: `add(a, b)`.
    pub static ADD: fn(i32, i32) -> i32 = |a, b| a.wrapping_add(b);
    /// Second bound function: `led(on)`, returns whether the LED is lit.
    pub static LED: fn(bool) -> bool = |on| {
        sink(on);
        on
    };

    /// Binds the two functions.
    pub fn bind<T: Transport>(rpc: &mut Rpc<'static, T>) {
        let _ = rpc.bind("add", &ADD);
        let _ = rpc.bind("led", &LED);
    }

    /// One round of an application: serve, call, notify, write and read the stream.
    pub fn exercise<T: Transport>(rpc: &mut Rpc<'static, T>) {
        use embedded_io::{Read, Write};
        let _ = rpc.poll();
        let a = i32::from(opaque_u8(6));
        if let Ok(v) = rpc.call::<i32, _>("mul", (a, 7)) {
            sink(v);
        }
        let _ = rpc.notify("log", (a,));
        let mut serial = rpc.serial();
        let n = usize::from(opaque_u8(5));
        let _ = serial.write_all(&b"hello world"[..n.min(11)]);
        let _ = serial.flush();
        let mut buf = [0u8; 32];
        if let Ok(n) = serial.read(&mut buf) {
            sink(n);
        }
    }
}
