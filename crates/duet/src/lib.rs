//! duet: MessagePack-RPC and a byte stream between the two cores of an STM32H747, over the
//! shared-memory transport of `duet-rpmsg`; wire-compatible with Arduino's `RPC` library and
//! MicroPython's `msgpackrpc`. `no_std`, no heap; every capacity is a const generic.
//!
//! ```no_run
//! use duet::{Instant, Rpc, Transport};
//!
//! fn app<T: Transport>(transport: T, deadline: Instant) -> Result<(), Box<dyn std::error::Error>> {
//!     let add = |a: i32, b: i32| a + b; // handlers outlive the Rpc
//!     let mut rpc: Rpc<'_, T> = Rpc::new(transport);
//!     rpc.bind("add", &add)?;
//!     let product: i32 = rpc.call("mul", (6, 7))?; // blocking, 1 s default timeout
//!     let p = rpc.call_async::<i32, _>("slow", ())?; // several in flight (CALLS)
//!     let late: i32 = rpc.join(p, deadline)?; // or rpc.wait(p).await
//!     rpc.notify("log", ("hello", product + late))?;
//!     loop {
//!         rpc.poll()?; // or rpc.run().await
//!     }
//! }
//! ```
//!
//! A slow handler answers later: `let d = ctx.defer()` in the handler, then
//! `rpc.respond(d, &value)` once the work is done.
//!
//! - [`Rpc`]: router, call table, reassembly, dispatch (design notes there).
//! - [`Context`]: the call API, also lent to handlers so they can call back (nested calls).
//! - [`Deferred`]: a request a handler answers later, so slow work does not block other traffic.
//! - [`handler`]: typed functions, raw handlers with zero-copy arguments, bound objects.
//! - [`Serial`]: the `"raw"` byte stream (or SerialRPC `"tty"`), `embedded_io` + `fmt::Write`.
//! - [`Doorbell`]: wakes `run()` and call futures from the doorbell interrupt.
//! - [`CpuId`], [`Core`], [`BootRemote`]: what the platform provides besides the transport.
//!
//! Wire behaviour toward the peer: error texts for unknown methods and wrong argument counts in
//! rpclib's exact form ([`error::text`]); msgids echoed as received; own msgids are a counter,
//! so a late reply never reaches a later call.
#![no_std]
#![deny(missing_docs)]
// `Error` carries the peer's error text inline (no heap to box it): about 170 bytes, by design.
#![allow(clippy::result_large_err)]

mod chip;
mod context;
mod doorbell;
mod engine;
pub mod error;
pub mod handler;
mod reply;
mod serial;

pub use chip::{BootError, BootRemote, Core, CpuId};
pub use context::{CallFuture, Context, Deferred, Pending};
pub use doorbell::{Doorbell, Wait};
pub use engine::{
    CallStats, HighWater, RouterFull, Rpc, Stats, Traffic, DEFAULT_TIMEOUT, MAX_NESTING,
    MAX_PAYLOAD, WAIT_SLICE,
};
pub use error::{Error, RemoteError};
pub use handler::{ArgError, Handler, Object, Request, TypedFn};
pub use serial::{Serial, SerialError, SerialOverflow};

pub use duet_codec::rpc::MsgId;
pub use duet_codec::RawValue;
pub use duet_rpmsg::{Endpoint, Instant, Transport};

/// A byte slice that serializes as MessagePack bin (what Arduino's `std::vector<uint8_t>` and
/// MicroPython's `bytes` are), for arguments and results. Receive bins as `&[u8]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bin<'b>(pub &'b [u8]);

impl serde::Serialize for Bin<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Which core the code runs on, from the platform (Arduino's `RPC.cpu_id()`).
pub fn cpu_id<C: Core + ?Sized>(platform: &C) -> CpuId {
    platform.cpu_id()
}
