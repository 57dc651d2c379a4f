//! The codec probe's request/response path written with the `rmp` crate (low level, no serde:
//! rmp-serde needs std), so `cargo xtask size` compares both in one run.
#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use cortex_m_rt::entry;
use rmp::decode::{read_array_len, read_int, read_nil, read_str_from_slice, Bytes, RmpRead};
use rmp::encode::{write_array_len, write_nil, write_sint, write_str, write_uint};
use size_probe::{opaque_u8, sink};

/// rmp declares `extern crate alloc` unconditionally, so the image needs an allocator to link;
/// nothing in this path allocates.
struct NoAlloc;

// SAFETY: `alloc` always reports failure (null), which the GlobalAlloc contract allows, and
// `dealloc` is never reached because nothing was ever allocated.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

fn encode_request(buf: &mut [u8], id: u32, a: i32, b: i32) -> Option<usize> {
    let total = buf.len();
    let mut w = &mut buf[..];
    write_array_len(&mut w, 4).ok()?;
    write_uint(&mut w, 0).ok()?;
    write_uint(&mut w, u64::from(id)).ok()?;
    write_str(&mut w, "add").ok()?;
    write_array_len(&mut w, 2).ok()?;
    write_sint(&mut w, i64::from(a)).ok()?;
    write_sint(&mut w, i64::from(b)).ok()?;
    Some(total - w.len())
}

/// Parses `[0, id, "add", [a, b]]`, returns (id, a, b).
fn parse_request(buf: &[u8]) -> Option<(u32, i32, i32)> {
    let mut r = Bytes::new(buf);
    if read_array_len(&mut r).ok()? != 4 || read_int::<u8, _>(&mut r).ok()? != 0 {
        return None;
    }
    let id: u32 = read_int(&mut r).ok()?;
    let (method, rest) = read_str_from_slice(r.remaining_slice()).ok()?;
    if method != "add" {
        return None;
    }
    let mut r = Bytes::new(rest);
    if read_array_len(&mut r).ok()? != 2 {
        return None;
    }
    Some((id, read_int(&mut r).ok()?, read_int(&mut r).ok()?))
}

fn encode_response(buf: &mut [u8], id: u32, result: Result<i32, &str>) -> Option<usize> {
    let total = buf.len();
    let mut w = &mut buf[..];
    write_array_len(&mut w, 4).ok()?;
    write_uint(&mut w, 1).ok()?;
    write_uint(&mut w, u64::from(id)).ok()?;
    match result {
        Ok(v) => {
            write_nil(&mut w).ok()?;
            write_sint(&mut w, i64::from(v)).ok()?;
        }
        Err(e) => {
            write_str(&mut w, e).ok()?;
            write_nil(&mut w).ok()?;
        }
    }
    Some(total - w.len())
}

/// Parses `[1, id, nil, result]`, returns (id, result).
fn parse_response(buf: &[u8]) -> Option<(u32, i32)> {
    let mut r = Bytes::new(buf);
    if read_array_len(&mut r).ok()? != 4 || read_int::<u8, _>(&mut r).ok()? != 1 {
        return None;
    }
    let id: u32 = read_int(&mut r).ok()?;
    read_nil(&mut r).ok()?;
    Some((id, read_int(&mut r).ok()?))
}

#[entry]
fn main() -> ! {
    let mut req = [0u8; 64];
    let mut resp = [0u8; 64];
    loop {
        let a = i32::from(opaque_u8(1));
        let id = u32::from(opaque_u8(7));
        let n = encode_request(&mut req, id, a, 2).unwrap_or(0);
        let m = match parse_request(req.get(..n).unwrap_or(&[])) {
            Some((msgid, x, y)) => encode_response(&mut resp, msgid, Ok(x + y)),
            None => encode_response(&mut resp, 0, Err("bad args")),
        }
        .unwrap_or(0);
        if let Some((msgid, v)) = parse_response(resp.get(..m).unwrap_or(&[])) {
            if msgid == id {
                sink(v);
            }
        }
        // Keep the reader trait's default methods honest about what is linked.
        let _ = Bytes::new(&req).read_u8();
    }
}
