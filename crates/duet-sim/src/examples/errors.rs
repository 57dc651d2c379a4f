//! What duet does better than Arduino's `RPC` library, shown on the M7 calling the M4:
//! - a call to a name nobody bound returns an error value (Arduino: the sketch hangs or
//!   crashes); so does a call with arguments of the wrong type;
//! - a call the M4 is too slow to answer returns `Timeout` (Arduino: blocks forever), its late
//!   reply is dropped, and the next call is unharmed;
//! - a message larger than one 496-byte buffer goes through whole, both ways; one larger than
//!   the configured limit is refused with `MessageTooLarge`, never truncated.

use std::time::Duration;

use duet::Rpc;

use crate::machine::{M4Rpc, M7Transport, M4, M7, MICROPYTHON_M4_ADDRESS};

use super::{m4_begin, m4_serve, report, Example, Outcome, BOOT_TIMEOUT};

/// This example.
pub const EXAMPLE: Example = Example {
    name: "errors",
    title: "errors are values: unbound names, wrong types, timeouts, messages over one buffer",
    m4_address: MICROPYTHON_M4_ADDRESS,
    m7,
    m4,
};

/// The timeout the M7 gives the slow call.
pub const SHORT_TIMEOUT: Duration = Duration::from_millis(100);

/// How long `slow` works, in ms of the M4's clock (20 s: 200 ms of real time at the default
/// speed, twice the short timeout).
pub const SLOW_MS: u64 = 20_000;

/// Length of the text the M7 sends to `length` (three buffers' worth).
pub const BIG: usize = 1200;

/// The M7's engine: default capacities, except that a call's reply may take 2 KiB (the
/// default is 512 bytes), so `repeat`'s long answer fits.
type BigReplyRpc<'a> = Rpc<'a, M7Transport, 16, 8, 2048, 2048>;

/// The M7: one call per failure mode, printing what comes back.
pub fn m7(core: M7) -> Outcome {
    let M7 {
        transport,
        mut boot,
        serial,
        board,
        ..
    } = core;
    let mut rpc: BigReplyRpc<'_> = Rpc::new(transport);
    rpc.start(&mut boot, MICROPYTHON_M4_ADDRESS, BOOT_TIMEOUT)?;
    let show = |what: &str, r: Result<String, duet::Error>| match r {
        Ok(v) => serial.println(&format!("{what} -> {v}")),
        Err(e) => serial.println(&format!("{what} -> error: {e}")),
    };

    let r = rpc.call::<i32, _>("nope", (1,));
    show("call(\"nope\", 1)", r.map(|v| v.to_string()));

    let r = rpc.call::<i32, _>("add", ("two", 2));
    show("call(\"add\", \"two\", 2)", r.map(|v| v.to_string()));

    let r = rpc.call_with_timeout::<(), _>("slow", (), SHORT_TIMEOUT);
    show(
        "call(\"slow\") with a 100 ms timeout",
        r.map(|()| "done".into()),
    );

    let r = rpc.call::<i32, _>("add", (2, 2));
    show("call(\"add\", 2, 2)", r.map(|v| v.to_string()));
    serial.println(&format!(
        "late replies dropped so far: {}",
        rpc.stats().late_replies
    ));

    let text = "x".repeat(BIG);
    let r = rpc.call::<usize, _>("length", (text.as_str(),));
    show(
        &format!("call(\"length\", <{BIG} bytes>)"),
        r.map(|n| format!("{n} bytes arrived")),
    );

    let r = rpc.call::<String, _>("repeat", ("ab", BIG / 2));
    show(
        &format!("call(\"repeat\", \"ab\", {})", BIG / 2),
        r.map(|s| {
            format!(
                "{} bytes back, all \"ab\": {}",
                s.len(),
                s == "ab".repeat(BIG / 2)
            )
        }),
    );

    let huge = "y".repeat(4000);
    let r = rpc.call::<usize, _>("length", (huge.as_str(),));
    show("call(\"length\", <4000 bytes>)", r.map(|n| n.to_string()));
    report(&board, rpc.stats());
    Ok(())
}

/// The M4: binds `add`, `slow`, `length` and `repeat`, and serves.
pub fn m4(core: M4) -> Outcome {
    let board = &core.board;
    let add = |a: i32, b: i32| a + b;
    let slow = || board.delay(SLOW_MS);
    let length = |text: String| text.len();
    let repeat = |s: String, n: usize| s.repeat(n.min(1000));
    let mut rpc: M4Rpc<'_> = Rpc::new(core.transport);
    rpc.bind("add", &add)?;
    rpc.bind("slow", &slow)?;
    rpc.bind("length", &length)?;
    rpc.bind("repeat", &repeat)?;
    m4_begin(&mut rpc)?;
    m4_serve(&mut rpc, board)?;
    report(board, rpc.stats());
    Ok(())
}
