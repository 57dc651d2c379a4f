//! The host-side `start(firmware_address)`, `cpu_id` and `run()` on a simulated chip
//! (`duet_sim::machine::Machine`): the M7 program boots the M4 program through the glue's
//! `BootRemote`, each on its own thread.

#[path = "../../duet/tests/suite/mod.rs"]
#[macro_use]
mod suite;
mod common;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use duet::{BootError, CpuId, Error, Rpc};
use duet_rpmsg::{Platform, Transport};
use duet_sim::machine::{self, Machine, ARDUINO_M4_ADDRESS, MICROPYTHON_M4_ADDRESS};
use duet_sim::machine::{M4Transport as M4, M7Transport as M7};
use suite::R;

struct Unpark(thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// What the M4 program saw: its own id and the M7's (asked over RPC).
type M4Report = (CpuId, Result<u8, Error>);

/// The M4 firmware: asks the M7 who it is, reports, then serves with `run()` (woken by its
/// doorbell) until power-off.
fn m4_program(report: Arc<Mutex<Option<M4Report>>>) -> impl FnOnce(machine::M4) + Send {
    move |core| {
        let cpu = duet::cpu_id(core.transport.platform());
        let whoami = move || cpu.as_u8();
        let mut rpc: R<M4> = Rpc::new(core.transport);
        rpc.set_doorbell(&core.doorbell);
        rpc.bind("whoami", &whoami).unwrap();
        let far = rpc.context().now().saturating_add(Duration::from_secs(10));
        rpc.wait_ready(far).unwrap();
        let m7 = rpc.call::<u8, _>("whoami", ());
        *report.lock().unwrap() = Some((rpc.cpu_id(), m7));
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = TaskCx::from_waker(&waker);
        let mut run = std::pin::pin!(rpc.run());
        while core.board.powered() {
            assert!(matches!(run.as_mut().poll(&mut cx), Poll::Pending));
            // Only a doorbell ring (an M7 message, or power-off) should wake it.
            thread::park_timeout(Duration::from_secs(5));
        }
    }
}

#[test]
fn start_boots_the_m4_and_each_core_knows_its_id() {
    let report = Arc::new(Mutex::new(None));
    let mut m = Machine::new();
    m.flash_m4(ARDUINO_M4_ADDRESS, m4_program(report.clone()));
    let (m7_id, m4_ids) = m.run(|mut core: machine::M7| {
        let id = duet::cpu_id(core.transport.platform());
        let whoami = move || id.as_u8();
        let mut rpc: R<M7> = Rpc::new(core.transport);
        rpc.bind("whoami", &whoami).unwrap();
        assert!(!rpc.is_ready());
        rpc.start(&mut core.boot, ARDUINO_M4_ADDRESS, Duration::from_secs(10))
            .unwrap();
        assert!(rpc.is_ready());
        // Serve until the M4 has asked and reported.
        while report.lock().unwrap().is_none() {
            rpc.poll().unwrap();
            let p = rpc.transport().platform();
            p.wait(p.now().saturating_add(Duration::from_millis(5)));
        }
        let mut m4 = Vec::new();
        for _ in 0..5 {
            m4.push(rpc.call::<u8, _>("whoami", ()));
        }
        (rpc.cpu_id(), m4)
    });
    assert_eq!(m7_id, CpuId::Cm7);
    assert_eq!(m7_id.as_u8(), 3);
    assert_eq!(m4_ids, [Ok(1); 5]);
    let (m4_id, m7_seen) = report.lock().unwrap().take().unwrap();
    assert_eq!((m4_id, m4_id.as_u8()), (CpuId::Cm4, 1));
    assert_eq!(m7_seen, Ok(3));
}

#[test]
fn start_errors_are_values() {
    let mut m = Machine::new();
    m.flash_m4(ARDUINO_M4_ADDRESS, m4_program(Arc::new(Mutex::new(None))));
    let (before, bad, never, again, booted) = m.run(|mut core: machine::M7| {
        let mut rpc: R<M7> = Rpc::new(core.transport);
        // Nothing is running yet: calls fail at once with NotReady.
        let before = (rpc.call::<u8, _>("whoami", ()), rpc.notify("whoami", ()));
        // Not 64 KiB aligned: refused before anything boots.
        let bad = rpc.start(
            &mut core.boot,
            ARDUINO_M4_ADDRESS + 0x100,
            Duration::from_secs(1),
        );
        // Nothing flashed there: the M4 runs, but never announces its endpoints.
        let never = rpc.start(
            &mut core.boot,
            MICROPYTHON_M4_ADDRESS,
            Duration::from_millis(50),
        );
        // Only a reset could boot it again.
        let again = rpc.start(&mut core.boot, ARDUINO_M4_ADDRESS, Duration::from_secs(1));
        (before, bad, never, again, core.boot.is_booted())
    });
    assert_eq!(before, (Err(Error::NotReady), Err(Error::NotReady)));
    assert_eq!(bad, Err(Error::Boot(BootError::BadAddress)));
    assert_eq!(never, Err(Error::NotReady));
    assert_eq!(again, Err(Error::Boot(BootError::AlreadyRunning)));
    assert!(booted);
}
