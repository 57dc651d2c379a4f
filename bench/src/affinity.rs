//! Pinning the calling thread to one CPU (Linux), so the two sides of a measurement run on two
//! different cores, as the two cores of the chip do.

/// Pins the calling thread to CPU `cpu`; `false` if that is not possible here (not Linux, CPU
/// not in this process's set, or refused). Measurements then run unpinned.
pub fn pin(cpu: usize) -> bool {
    imp::pin(cpu)
}

/// The two CPUs the measurements use: the first two of this process's affinity set, or `None`
/// with fewer than two (then nothing is pinned).
pub fn two_cpus() -> Option<(usize, usize)> {
    let mut cpus = imp::allowed().into_iter();
    Some((cpus.next()?, cpus.next()?))
}

#[cfg(target_os = "linux")]
mod imp {
    pub fn allowed() -> Vec<usize> {
        // SAFETY: `cpu_set_t` is plain data; all-zero is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
        // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed; pid 0 = this thread.
        let r = unsafe { libc::sched_getaffinity(0, core::mem::size_of_val(&set), &mut set) };
        if r != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `c` is below CPU_SETSIZE, inside the set.
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect()
    }

    pub fn pin(cpu: usize) -> bool {
        if cpu >= libc::CPU_SETSIZE as usize {
            return false;
        }
        // SAFETY: as in `allowed`.
        let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE (checked), inside the set.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 = this thread.
        unsafe { libc::sched_setaffinity(0, core::mem::size_of_val(&set), &set) == 0 }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn allowed() -> Vec<usize> {
        Vec::new()
    }

    pub fn pin(_cpu: usize) -> bool {
        false
    }
}
