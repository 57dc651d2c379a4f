//! Peers on the same host, measured in the same run: a MessagePack-RPC round trip through an
//! established implementation (the `msgpack-rpc` crate, tokio-based) over a Unix socket, and a
//! cross-thread channel round trip (`std::sync::mpsc`, crossbeam's algorithm since Rust 1.67).

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use msgpack_rpc::{Client, Service, Value};
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::floor::per_op;
use crate::{pin_side, Cpus, Side};

/// Round trips made before the clock starts.
const WARM_UP: u64 = 200;

/// Nanoseconds per round trip of a request `(1, 2)` answered with `3` through two
/// `std::sync::mpsc` channels between two threads.
pub fn channel_rtt(round_trips: u64, cpus: Cpus) -> f64 {
    let (to_b, b_rx) = mpsc::channel::<(i32, i32)>();
    let (to_a, a_rx) = mpsc::channel::<i32>();
    thread::scope(|s| {
        s.spawn(move || {
            pin_side(cpus, Side::M4);
            while let Ok((a, b)) = b_rx.recv() {
                if to_a.send(a + b).is_err() {
                    break;
                }
            }
        });
        let a = s.spawn(move || {
            pin_side(cpus, Side::M7);
            let mut start = Instant::now();
            for k in 0..round_trips + WARM_UP {
                if k == WARM_UP {
                    start = Instant::now();
                }
                to_b.send((1, 2)).expect("send");
                assert_eq!(a_rx.recv().expect("recv"), 3);
            }
            start.elapsed()
        });
        per_op(a.join().expect("channel thread"), round_trips)
    })
}

/// The `add` service of the socket peer.
#[derive(Clone)]
struct Adder;

impl Service for Adder {
    type RequestFuture = std::future::Ready<Result<Value, Value>>;

    fn handle_request(&mut self, method: &str, params: &[Value]) -> Self::RequestFuture {
        let sum = match (method, params) {
            ("add", [a, b]) => match (a.as_i64(), b.as_i64()) {
                (Some(a), Some(b)) => Ok(Value::from(a + b)),
                _ => Err(Value::from("add takes two integers")),
            },
            _ => Err(Value::from("unknown method")),
        };
        std::future::ready(sum)
    }

    fn handle_notification(&mut self, _: &str, _: &[Value]) {}
}

/// A single-threaded tokio runtime with I/O, for one side of the socket.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime")
}

/// Runs `f` on `rt` with `sock` as a tokio stream.
fn on_tokio<F: Future>(
    rt: &tokio::runtime::Runtime,
    sock: UnixStream,
    f: impl FnOnce(tokio_util::compat::Compat<tokio::net::UnixStream>) -> F,
) -> F::Output {
    sock.set_nonblocking(true).expect("non-blocking socket");
    rt.block_on(async move {
        let s = tokio::net::UnixStream::from_std(sock).expect("tokio socket");
        f(s.compat()).await
    })
}

/// Nanoseconds per `add(1, 2)` round trip through `msgpack-rpc`: a client and a server, each a
/// single-threaded tokio runtime on its own thread, over a Unix socket pair.
pub fn socket_rtt(round_trips: u64, cpus: Cpus) -> f64 {
    let (a, b) = UnixStream::pair().expect("socket pair");
    thread::scope(|s| {
        s.spawn(move || {
            pin_side(cpus, Side::M4);
            let rt = runtime();
            // Ends with an error or Ok when the client closes its end.
            let _ = on_tokio(&rt, b, |stream| msgpack_rpc::serve(stream, Adder));
        });
        let c = s.spawn(move || {
            pin_side(cpus, Side::M7);
            let rt = runtime();
            on_tokio(&rt, a, |stream| async move {
                let client = Client::new(stream);
                let args = [Value::from(1), Value::from(2)];
                let mut start = Instant::now();
                for k in 0..round_trips + WARM_UP {
                    if k == WARM_UP {
                        start = Instant::now();
                    }
                    let r = client.request("add", &args).await.expect("add");
                    assert_eq!(r.as_i64(), Some(3));
                }
                start.elapsed()
            })
        });
        per_op(c.join().expect("client thread"), round_trips)
    })
}
