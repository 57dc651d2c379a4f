//! Handlers: what a bound name runs when the peer calls it.
//!
//! Three forms, all stored in the router as borrowed trait objects (`&'a dyn Handler` or
//! `&'a dyn Object`, see [`Rpc`](crate::Rpc) for why):
//! - typed functions and closures ([`TypedFn`]): `|a: i32, b: i32| a + b`, 0 to 8 owned serde
//!   arguments, optionally preceded by `&mut Context<'_>` to make calls back to the peer;
//!   they return any `Serialize` value, and a `Result<R, E>` puts `E` in the error field;
//! - [`Handler`] implementations, including closures `|ctx: &mut Context<'_>, req: Request<'_>|`,
//!   which read the arguments themselves and may borrow them from the message (`&str`, `&[u8]`,
//!   zero-copy) with [`Request::args`];
//! - [`Object`]s, whose methods are bound under `"name.method"` (see the [`object!`](crate::object)
//!   macro).

use core::fmt;

use crate::reply::Part;
use core::marker::PhantomData;

use duet_codec::rpc::MsgId;
use duet_codec::{Decoder, RawValue};
use serde::de::{Deserialize, DeserializeOwned};
use serde::{Serialize, Serializer};

use crate::Context;

/// One incoming request or notification, as a handler sees it. Borrows from the receive buffer.
#[derive(Clone, Copy, Debug)]
pub struct Request<'m> {
    pub(crate) method: &'m str,
    pub(crate) params: RawValue<'m>,
    pub(crate) msgid: Option<MsgId>,
}

impl<'m> Request<'m> {
    /// The full method name as called (for objects: `"object.method"`).
    pub fn method(&self) -> &'m str {
        self.method
    }

    /// The encoded arguments (always a MessagePack array).
    pub fn params(&self) -> RawValue<'m> {
        self.params
    }

    /// The caller's msgid; `None` for a notification (no reply is sent).
    pub fn msgid(&self) -> Option<MsgId> {
        self.msgid
    }

    /// The number of arguments.
    pub fn arg_count(&self) -> usize {
        self.params
            .decoder()
            .read_array_len()
            .map_or(0, |n| n as usize)
    }

    /// Decodes all arguments as the tuple `T`, borrowing strings and byte slices from the
    /// message. A count mismatch or a type mismatch gives an [`ArgError`] whose text (when sent
    /// as the error) follows rpclib's wording.
    pub fn args<T: Deserialize<'m>>(&self) -> Result<T, ArgError<'m>> {
        let got = self.arg_count();
        let expected = tuple_len::<T>();
        if let Some(expected) = expected {
            if expected != got {
                return Err(ArgError::count(self.method, expected, got));
            }
        }
        self.params.decode::<T>().map_err(|e| ArgError {
            method: self.method,
            kind: ArgErrorKind::Type { index: 0, error: e },
        })
    }

    /// A reader that decodes the arguments one by one (for handlers with a fixed count).
    pub fn reader(&self, expected: usize) -> Result<ArgReader<'m>, ArgError<'m>> {
        let mut dec = self.params.decoder();
        let got = dec.read_array_len().map_or(0, |n| n as usize);
        if got != expected {
            return Err(ArgError::count(self.method, expected, got));
        }
        Ok(ArgReader {
            method: self.method,
            dec,
            index: 0,
        })
    }
}

/// The element count of a tuple type, found by a probe deserializer; `None` for other types.
fn tuple_len<'de, T: Deserialize<'de>>() -> Option<usize> {
    struct Probe(Option<usize>);
    impl<'de> serde::Deserializer<'de> for &mut Probe {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom(""))
        }
        fn deserialize_tuple<V: serde::de::Visitor<'de>>(
            self,
            len: usize,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(len);
            Err(serde::de::Error::custom(""))
        }
        fn deserialize_unit<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(0);
            Err(serde::de::Error::custom(""))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit_struct newtype_struct seq
            tuple_struct map struct enum identifier ignored_any
        }
    }
    let mut p = Probe(None);
    let _ = T::deserialize(&mut p);
    p.0
}

/// Decodes the arguments of a request one at a time (see [`Request::reader`]).
pub struct ArgReader<'m> {
    method: &'m str,
    dec: Decoder<'m>,
    index: usize,
}

impl<'m> ArgReader<'m> {
    /// Decodes the next argument as `T` (may borrow from the message).
    pub fn arg<T: Deserialize<'m>>(&mut self) -> Result<T, ArgError<'m>> {
        self.index += 1;
        duet_codec::decode(&mut self.dec).map_err(|error| ArgError {
            method: self.method,
            kind: ArgErrorKind::Type {
                index: self.index,
                error,
            },
        })
    }
}

/// Why a request's arguments did not fit the handler. Serializes as the error text sent to the
/// peer: rpclib's C0002 text for a count mismatch, duet's text for a type mismatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgError<'m> {
    method: &'m str,
    kind: ArgErrorKind,
}

/// The kind of an [`ArgError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgErrorKind {
    /// The request carried `got` arguments; the handler takes `expected`.
    Count {
        /// Number of parameters of the handler.
        expected: usize,
        /// Number of arguments received.
        got: usize,
    },
    /// Argument `index` (1-based; 0 = the argument tuple as a whole) did not decode.
    Type {
        /// 1-based position of the argument, 0 if unknown.
        index: usize,
        /// What the decoder said.
        error: duet_codec::Error,
    },
}

impl<'m> ArgError<'m> {
    fn count(method: &'m str, expected: usize, got: usize) -> Self {
        ArgError {
            method,
            kind: ArgErrorKind::Count { expected, got },
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ArgErrorKind {
        self.kind
    }
}

impl ArgError<'_> {
    /// Calls `f` with the pieces of this error's text (see `Display`).
    pub(crate) fn with_parts<R>(&self, f: impl FnOnce(&[Part<'_>]) -> R) -> R {
        use crate::error::text::{ARITY_PREFIX, TYPE_PREFIX};
        use Part::{N, S};
        match self.kind {
            ArgErrorKind::Count { expected, got } => f(&[
                S(ARITY_PREFIX),
                S(" Function '"),
                S(self.method),
                S("' was called with an invalid number of arguments. Expected: "),
                N(expected),
                S(", got: "),
                N(got),
            ]),
            ArgErrorKind::Type { index, error } => {
                let at = if index == 0 {
                    [S(""), S(""), S("")]
                } else {
                    [S("argument "), N(index), S(": ")]
                };
                f(&[
                    S(TYPE_PREFIX),
                    S(self.method),
                    S("': "),
                    at[0],
                    at[1],
                    at[2],
                    S(error.as_str()),
                ])
            }
        }
    }
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_parts(|p| crate::reply::write_parts(f, p))
    }
}

impl Serialize for ArgError<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A bound name's code, called with the request; object-safe so the router can store it.
///
/// For a request (`req.msgid()` is `Some`) the handler answers with [`Context::respond`] (or
/// [`Context::respond_error`]); if it does not, the engine sends a nil result. A handler whose
/// work takes long takes the request with [`Context::defer`] and answers it later. Closures
/// `|ctx: &mut Context<'_>, req: Request<'_>| { .. }` implement this trait.
pub trait Handler {
    /// Handles one request or notification.
    fn handle(&self, ctx: &mut Context<'_>, req: Request<'_>);
}

impl<F> Handler for F
where
    F: Fn(&mut Context<'_>, Request<'_>),
{
    fn handle(&self, ctx: &mut Context<'_>, req: Request<'_>) {
        self(ctx, req)
    }
}

/// An object whose methods are bound together under `"name.method"`.
///
/// Implement it with the [`object!`](crate::object) macro, or by hand with
/// [`Context::serve`] for each method.
pub trait Object {
    /// Runs `method` (the part after `"name."`). Returns `false` if there is no such method (the
    /// engine then answers with rpclib's unknown-method text).
    fn call(&self, ctx: &mut Context<'_>, method: &str, req: Request<'_>) -> bool;
}

/// Marker for typed handlers whose first parameter is `&mut Context<'_>`.
pub enum WithContext {}

/// Functions and closures usable as typed handlers. `M` is an inference marker (the signature);
/// never name it.
///
/// Implemented for `Fn(A1, .., An) -> R` and `Fn(&mut Context<'_>, A1, .., An) -> R` with
/// `n <= 8`, `Ai: DeserializeOwned`, `R: Serialize` (a `Result<T, E>` sends `E` as the error).
/// Arguments are owned values (numbers, structs, `heapless::String`, ...); for borrowed `&str` /
/// `&[u8]` arguments use a [`Handler`] closure and [`Request::args`].
pub trait TypedFn<M> {
    /// Number of parameters (not counting the context).
    const ARITY: usize;
    /// Decodes the arguments, runs the function and answers the request.
    fn invoke(&self, ctx: &mut Context<'_>, req: Request<'_>);
}

/// A typed function seen as a [`Handler`]; `repr(transparent)` so a `&F` can be viewed as it.
#[repr(transparent)]
pub(crate) struct Typed<F, M> {
    f: F,
    _m: PhantomData<fn() -> M>,
}

impl<F, M> Typed<F, M> {
    pub(crate) fn from_ref(f: &F) -> &Typed<F, M> {
        // SAFETY: `Typed<F, M>` is `repr(transparent)` over `F` (the other field is a
        // zero-sized, align-1 `PhantomData`), so it has the same layout and validity as `F`, and
        // the returned reference has the same lifetime as `f`.
        unsafe { &*(f as *const F as *const Typed<F, M>) }
    }
}

impl<F: TypedFn<M>, M> Handler for Typed<F, M> {
    fn handle(&self, ctx: &mut Context<'_>, req: Request<'_>) {
        self.f.invoke(ctx, req)
    }
}

macro_rules! typed_fn {
    ($n:expr; $($a:ident),*) => {
        impl<Func, Ret, $($a,)*> TypedFn<fn($($a,)*) -> Ret> for Func
        where
            Func: Fn($($a,)*) -> Ret,
            Ret: Serialize,
            $($a: DeserializeOwned,)*
        {
            const ARITY: usize = $n;
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn invoke(&self, ctx: &mut Context<'_>, req: Request<'_>) {
                let mut rd = match req.reader($n) {
                    Ok(r) => r,
                    Err(e) => return ctx.respond_arg_error(&e),
                };
                $(let $a: $a = match rd.arg() {
                    Ok(v) => v,
                    Err(e) => return ctx.respond_arg_error(&e),
                };)*
                let r = (self)($($a,)*);
                ctx.respond(&r);
            }
        }

        impl<Func, Ret, $($a,)*> TypedFn<(WithContext, fn($($a,)*) -> Ret)> for Func
        where
            Func: for<'c, 'e> Fn(&'c mut Context<'e>, $($a,)*) -> Ret,
            Ret: Serialize,
            $($a: DeserializeOwned,)*
        {
            const ARITY: usize = $n;
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn invoke(&self, ctx: &mut Context<'_>, req: Request<'_>) {
                let mut rd = match req.reader($n) {
                    Ok(r) => r,
                    Err(e) => return ctx.respond_arg_error(&e),
                };
                $(let $a: $a = match rd.arg() {
                    Ok(v) => v,
                    Err(e) => return ctx.respond_arg_error(&e),
                };)*
                let r = (self)(ctx, $($a,)*);
                ctx.respond(&r);
            }
        }
    };
}

typed_fn!(0;);
typed_fn!(1; A1);
typed_fn!(2; A1, A2);
typed_fn!(3; A1, A2, A3);
typed_fn!(4; A1, A2, A3, A4);
typed_fn!(5; A1, A2, A3, A4, A5);
typed_fn!(6; A1, A2, A3, A4, A5, A6);
typed_fn!(7; A1, A2, A3, A4, A5, A6, A7);
typed_fn!(8; A1, A2, A3, A4, A5, A6, A7, A8);

/// Implements [`Object`] for a type by listing its methods and their argument types; each is
/// reachable as `"<bound name>.<method>"`. Methods take `&self` (use `Cell`/`RefCell` for state)
/// and owned serde arguments, and return any `Serialize` value (a `Result` sends its error).
///
/// ```
/// use core::cell::Cell;
/// use duet::{Rpc, RouterFull, Transport};
///
/// struct Foo {
///     n: Cell<i32>,
/// }
/// impl Foo {
///     fn add(&self, a: i32, b: i32) -> i32 {
///         a + b
///     }
///     fn bump(&self) -> i32 {
///         self.n.set(self.n.get() + 1);
///         self.n.get()
///     }
/// }
/// duet::object!(Foo { add(a: i32, b: i32), bump() });
///
/// fn serve<T: Transport>(transport: T) -> Result<(), RouterFull> {
///     let foo = Foo { n: Cell::new(0) };
///     let mut rpc: Rpc<'_, T> = Rpc::new(transport);
///     rpc.bind_object("foo1", &foo)?; // the peer calls "foo1.add" and "foo1.bump"
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! object {
    ($ty:ty { $($m:ident ( $($a:ident : $t:ty),* $(,)? )),* $(,)? }) => {
        impl $crate::Object for $ty {
            fn call(
                &self,
                ctx: &mut $crate::Context<'_>,
                method: &str,
                req: $crate::Request<'_>,
            ) -> bool {
                match method {
                    $(::core::stringify!($m) => {
                        ctx.serve(req, |$($a: $t),*| self.$m($($a),*));
                        true
                    })*
                    _ => false,
                }
            }
        }
    };
}
