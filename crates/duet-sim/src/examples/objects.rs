//! Bound objects and asynchronous calls (the guide's MicroPython section): the M4 binds two
//! objects, whose methods the M7 reaches as `"foo1.add"`, `"foo2.sub"`, ...; the M7 starts
//! several calls at once with `call_async` and then joins them.

use std::cell::Cell;
use std::time::Duration;

use duet::Rpc;

use crate::machine::{M4Rpc, M7Rpc, M4, M7, MICROPYTHON_M4_ADDRESS};

use super::{deadline, m4_begin, m4_serve, report, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "objects",
    title: "bound objects (\"foo1.add\") and call_async + join (MicroPython)",
    m4_address: MICROPYTHON_M4_ADDRESS,
    m7,
    m4,
};

/// An object with methods, as MicroPython's `class Foo` in the guide; it counts its calls.
pub struct Foo {
    calls: Cell<u32>,
}

impl Foo {
    fn add(&self, a: i32, b: i32) -> i32 {
        self.calls.set(self.calls.get() + 1);
        a + b
    }
    fn sub(&self, a: i32, b: i32) -> i32 {
        self.calls.set(self.calls.get() + 1);
        a - b
    }
    fn calls(&self) -> u32 {
        self.calls.get()
    }
}

duet::object!(Foo {
    add(a: i32, b: i32),
    sub(a: i32, b: i32),
    calls(),
});

/// The M7: a plain call, then four calls in flight at once, joined in order.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        serial,
        board,
        ..
    } = core;
    let mut rpc: M7Rpc<'_> = Rpc::new(transport);
    rpc.start(&mut boot, MICROPYTHON_M4_ADDRESS, BOOT_TIMEOUT)?;

    let sum: i32 = rpc.call("foo1.add", (1, 2))?;
    serial.println(&format!("call(\"foo1.add\", 1, 2) = {sum}"));

    let calls = [
        ("foo1.add", 10, 5),
        ("foo1.sub", 10, 5),
        ("foo2.add", 100, 23),
        ("foo2.sub", 100, 23),
    ];
    let mut pending = Vec::new();
    for (name, a, b) in calls {
        pending.push(rpc.call_async::<i32, _>(name, (a, b))?);
    }
    serial.println(&format!("{} calls in flight", pending.len()));
    for ((name, a, b), p) in calls.into_iter().zip(pending) {
        let d = deadline(&rpc, Duration::from_secs(1));
        let r = rpc.join(p, d)?;
        serial.println(&format!("call_async(\"{name}\", {a}, {b}).join() = {r}"));
    }

    let n1: u32 = rpc.call("foo1.calls", ())?;
    let n2: u32 = rpc.call("foo2.calls", ())?;
    serial.println(&format!("foo1 served {n1} calls, foo2 served {n2}"));
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: binds `foo1` and `foo2` (two instances) and serves.
pub fn m4(core: M4) -> Outcome {
    let foo1 = Foo {
        calls: Cell::new(0),
    };
    let foo2 = Foo {
        calls: Cell::new(0),
    };
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    rpc.bind_object("foo1", &foo1)?;
    rpc.bind_object("foo2", &foo2)?;
    m4_begin(&mut rpc)?;
    m4_serve(&mut rpc, &core.board)?;
    report(&core.board, rpc.stats());
    Ok(())
}
