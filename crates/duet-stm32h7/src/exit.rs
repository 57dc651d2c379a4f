//! Ending a run: a semihosting exit when a debugger (or the emulator) is attached, otherwise
//! sleep forever, since a board without a debugger has nowhere to exit to.

/// `DHCSR` (0xE000_EDF0) bit 0: `C_DEBUGEN`, a debugger is attached.
pub const DHCSR_C_DEBUGEN: u32 = 1;
/// Semihosting `SYS_EXIT`.
pub const SYS_EXIT: u32 = 0x18;
/// Semihosting `SYS_EXIT_EXTENDED`.
pub const SYS_EXIT_EXTENDED: u32 = 0x20;
/// `ADP_Stopped_ApplicationExit`: the reason code of a normal exit.
pub const ADP_STOPPED_APPLICATION_EXIT: u32 = 0x2_0026;

/// The semihosting request that ends a run with `code`: `(operation, parameter)` where the
/// parameter is the reason itself for `SYS_EXIT` (code 0) or the address of the
/// `{reason, code}` block for `SYS_EXIT_EXTENDED`, given as `block`.
pub const fn exit_request(code: u32, block: u32) -> (u32, u32) {
    if code == 0 {
        (SYS_EXIT, ADP_STOPPED_APPLICATION_EXIT)
    } else {
        (SYS_EXIT_EXTENDED, block)
    }
}

/// Ends the run with `code` (0 = success): semihosting exit if `DHCSR.C_DEBUGEN` is set,
/// otherwise (or if the debugger ignores it) sleeps forever in `WFE`.
#[cfg(all(target_arch = "arm", target_os = "none"))]
pub fn exit(code: u32) -> ! {
    // SAFETY: DHCSR (0xE000_EDF0) is always readable from the core; reading has no effect.
    let dhcsr = unsafe { (*cortex_m::peripheral::DCB::PTR).dhcsr.read() };
    if dhcsr & DHCSR_C_DEBUGEN != 0 {
        let block = [ADP_STOPPED_APPLICATION_EXIT, code];
        let (op, param) = exit_request(code, block.as_ptr() as u32);
        // SAFETY: BKPT 0xAB with a debugger attached is a semihosting call; `block` lives
        // across it and the debugger only reads it.
        unsafe {
            core::arch::asm!(
                "bkpt 0xAB",
                inout("r0") op => _,
                in("r1") param,
                options(nostack, readonly),
            );
        }
    }
    loop {
        cortex_m::asm::wfe();
    }
}
