#!/usr/bin/env python3
"""An independent MicroPython/Arduino-style RPMsg *host* (the M7, virtio driver) for duet-sim's
process mode, written only from crates/duet-sim/PROCESS-MODE.md and the wire spec
(arduino-rpc-wire.md sections 1, 3, 4, 7). Standard library only.

    python3 mpy_host.py FILE [--attach] [--timeout S] [--expect-sum N] [--calls N] [--chunk N]
    python3 mpy_host.py FILE --example sensor|led [--timeout S]

It creates (or with --attach, attaches to) the process-mode file, writes the resource table and
both vrings, pre-posts the 64 receive buffers, sets DRIVER_OK last and rings HSEM 0; waits for
the remote's name-service announcements ("raw" then "rpc"), binds 0x400/0x401 and sends the
throw-away byte 0x00 on each; then speaks MessagePack-RPC on "rpc" as MicroPython's msgpackrpc
does with streaming=True (msgids from 0; incoming payloads are concatenated and complete
messages decoded from the front; a message over 496 bytes is sent as consecutive 496-byte
payloads, the last shorter) and reads/writes bytes on "raw". The duet remote it talks to is
`duet-sim rpc-remote --shm FILE`.

--example NAME plays the M7 of one of duet-sim's examples instead, against
`duet-sim --role remote --shm FILE NAME` (the example's M4 program on the file):
  sensor  binds sensorRead (answers 100, 200, ... 500) and checks that the remote prints
          "Sensor value: N" for each answer, in order, on "raw" (the remote calls us);
  led     calls led(True), led(False), led(True), led(False) and checks each result (we call
          the remote); then detaches, which ends the remote's serve loop.

--chunk N sends multi-buffer messages in N-byte payloads instead of 496 (a framing error for
N < 496: only a full buffer says "more follows"; used to show the checks can fail).

Every check prints "ok: ..." or "FAIL: ..."; the exit code is 0 only if all passed.
"""

import mmap
import os
import struct
import sys
import time

# ---- process-mode file (PROCESS-MODE.md) ----
FILE_SIZE = 0x11000
CTRL = 0x10000
MAGIC = 0x54455544
REGION_BASE = 0x38000000

# ---- SRAM4 layout (spec section 1) ----
RSC = 0x0000                 # resource table
VRING1 = 0x0400              # M7 -> M4: the host's transmit ring
VRING0 = 0x1400              # M4 -> M7: the host's receive ring
NUM = 64                     # descriptors per ring
ALIGN = 32
AVAIL = 0x400                # avail ring offset in a vring (after desc[64])
USED = 0x4A0                 # used ring offset: next 32-byte boundary after avail
SHM_DA = 0x38000400          # desc.addr is an offset from this address
BUF_SIZE = 512
PAYLOAD_MAX = BUF_SIZE - 16
RX_POOL = 0x2400             # 64 receive buffers (file offsets)
TX_POOL = 0xA400             # host transmit buffers, taken lazily
TX_MAX = 46
VRING_DESC_F_WRITE = 2
NO_INTERRUPT = 1             # avail.flags
NO_NOTIFY = 1                # used.flags
DRIVER_OK = 0x04
NS_ADDR = 0x35
HOST_ADDR = {"raw": 0x400, "rpc": 0x401}   # host endpoints, allocated in announcement order


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print("ok: " + what, flush=True)
        else:
            self.failed.append(what)
            print("FAIL: " + what + (" (" + detail + ")" if detail else ""), flush=True)
        return cond


class Fatal(Exception):
    """A failure after which the exchange cannot go on."""


class Truncated(ValueError):
    """The data ends inside a value: more payloads may complete it."""


# ---- minimal MessagePack (the forms msgpackrpc and rpclib use) ----

def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 0x80:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v <= 0xFF:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", v)
        if -0x80 <= v < 0:
            return b"\xd0" + struct.pack(">b", v)
        if -0x8000 <= v < 0:
            return b"\xd1" + struct.pack(">h", v)
        if -0x80000000 <= v < 0:
            return b"\xd2" + struct.pack(">i", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) <= 0xFF:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, (bytes, bytearray)):
        if len(v) <= 0xFF:
            return b"\xc4" + bytes([len(v)]) + bytes(v)
        return b"\xc5" + struct.pack(">H", len(v)) + bytes(v)
    if isinstance(v, (list, tuple)):
        if len(v) < 16:
            head = bytes([0x90 | len(v)])
        else:
            head = b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(pack(x) for x in v)
    raise TypeError("cannot pack %r" % (v,))


def unpack(data, i=0):
    """Decodes one value at data[i:]; returns (value, next index). Raises ValueError."""
    if i >= len(data):
        raise Truncated("truncated")
    t = data[i]
    i += 1

    def take(n):
        if i + n > len(data):
            raise Truncated("truncated")
        return data[i:i + n]

    if t < 0x80:
        return t, i
    if t >= 0xE0:
        return t - 0x100, i
    if 0x80 <= t <= 0x8F:
        return unpack_map(data, i, t & 0x0F)
    if 0x90 <= t <= 0x9F:
        return unpack_array(data, i, t & 0x0F)
    if 0xA0 <= t <= 0xBF:
        n = t & 0x1F
        return bytes(take(n)).decode(), i + n
    if t == 0xC0:
        return None, i
    if t == 0xC2:
        return False, i
    if t == 0xC3:
        return True, i
    fixed = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h",
             0xD2: ">i", 0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if t in fixed:
        n = struct.calcsize(fixed[t])
        return struct.unpack(fixed[t], take(n))[0], i + n
    lens = {0xC4: (1, "bin"), 0xC5: (2, "bin"), 0xC6: (4, "bin"),
            0xD9: (1, "str"), 0xDA: (2, "str"), 0xDB: (4, "str"),
            0xDC: (2, "arr"), 0xDD: (4, "arr"), 0xDE: (2, "map"), 0xDF: (4, "map")}
    if t in lens:
        w, kind = lens[t]
        n = int.from_bytes(take(w), "big")
        i += w
        if kind == "arr":
            return unpack_array(data, i, n)
        if kind == "map":
            return unpack_map(data, i, n)
        if i + n > len(data):
            raise Truncated("truncated")
        raw = bytes(data[i:i + n])
        return (raw if kind == "bin" else raw.decode()), i + n
    raise ValueError("unsupported type byte 0x%02x" % t)


def unpack_array(data, i, n):
    out = []
    for _ in range(n):
        v, i = unpack(data, i)
        out.append(v)
    return out, i


def unpack_map(data, i, n):
    out = {}
    for _ in range(n):
        k, i = unpack(data, i)
        v, i = unpack(data, i)
        out[k] = v
    return out, i


# ---- the shared-memory file and the doorbells (PROCESS-MODE.md) ----

class Shm:
    def __init__(self, path, create, timeout):
        end = time.monotonic() + timeout
        if create:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if os.fstat(fd).st_size < FILE_SIZE:
                os.ftruncate(fd, FILE_SIZE)      # extend only, never shrink
        else:
            while True:
                try:
                    fd = os.open(path, os.O_RDWR)
                    if os.fstat(fd).st_size >= FILE_SIZE:
                        break
                    os.close(fd)
                except FileNotFoundError:
                    pass
                if time.monotonic() >= end:
                    raise Fatal("no initialised file at %s" % path)
                time.sleep(0.01)
        self.m = mmap.mmap(fd, FILE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)
        # Typed views: every index / counter access is one aligned native load or store.
        # (struct.pack_into("<H") stores byte by byte: a peer could see a torn ring index.)
        self.u16 = memoryview(self.m).cast("H")
        self.u32 = memoryview(self.m).cast("I")
        if sys.byteorder != "little":
            raise Fatal("this peer needs a little-endian host")
        if create:
            self.w32(CTRL + 0, 0)
            self.m[0:FILE_SIZE] = bytes(FILE_SIZE)
            self.w32(CTRL + 4, 1)
            self.w32(CTRL + 8, 0x10000)
            self.w32(CTRL + 12, REGION_BASE)
            self.w32(CTRL + 0, MAGIC)            # last
        else:
            while self.r32(CTRL) != MAGIC:
                if time.monotonic() >= end:
                    raise Fatal("magic never appeared")
                time.sleep(0.01)
            if (self.r32(CTRL + 4), self.r32(CTRL + 8), self.r32(CTRL + 12)) != \
                    (1, 0x10000, REGION_BASE):
                raise Fatal("bad control page header")
        self.w32(CTRL + 0x18, os.getpid())       # pid_m7 (informative)
        self.seen = self.r32(CTRL + 0x14)        # incoming: HSEM 1, M4 -> M7
        self.rings = 0

    def r16(self, off):
        return self.u16[off // 2]

    def w16(self, off, v):
        self.u16[off // 2] = v & 0xFFFF

    def r32(self, off):
        return self.u32[off // 4]

    def w32(self, off, v):
        self.u32[off // 4] = v & 0xFFFFFFFF

    def ring(self):
        """HSEM 0 (M7 -> M4): we are the counter's only writer."""
        self.w32(CTRL + 0x10, self.r32(CTRL + 0x10) + 1)
        self.rings += 1

    def wait(self, timeout):
        """Waits for HSEM 1 (M4 -> M7); True if it was rung since the last wait returned."""
        end = time.monotonic() + timeout
        while True:
            now = self.r32(CTRL + 0x14)
            if now != self.seen:
                self.seen = now
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.0002)

    def detach(self):
        if self.r32(CTRL + 0x18) == os.getpid():
            self.w32(CTRL + 0x18, 0)


# ---- the RPMsg host ----

def desc(vring, i):
    return vring + 16 * i


class Host:
    def __init__(self, shm, checks):
        self.s = shm
        self.c = checks
        self.rx_last_used = 0          # next used entry to read on vring0
        self.rx_avail = 0              # our avail.idx on vring0
        self.rx_out = set()            # receive buffers the remote holds (posted)
        self.tx_last_used = 0
        self.tx_avail = 0
        self.tx_allocated = 0          # buffers taken from the pool so far (lazily)
        self.tx_free = []
        self.tx_inflight = set()
        self.used_len_bad = 0
        self.header_bad = 0
        self.rx_count = 0
        self.tx_count = 0
        self.reclaimed = 0
        self.reposted = 0
        self.ns = []                   # (name, addr, flags) in arrival order
        self.remote = {}               # endpoint name -> remote address
        self.inbox = {"raw": [], "rpc": []}
        self.chunk = PAYLOAD_MAX       # payload size of multi-buffer messages (--chunk)

    def init(self):
        s = self.s
        s.m[0:0x2400] = bytes(0x2400)  # resource table and both rings
        # Resource table, DRIVER_OK not yet set.
        for off, v in [(0, 1), (4, 1), (8, 0), (12, 0), (16, 24), (20, 0),
                       (24, 3), (28, 7), (32, 0), (36, 1), (40, 1), (44, 0)]:
            s.w32(RSC + off, v)
        s.m[49] = 2                    # num_of_vrings
        for base, da, notifyid in [(52, 0x38001400, 0), (72, 0x38000400, 1)]:
            for k, v in enumerate([da, ALIGN, NUM, notifyid, 0]):
                s.w32(RSC + base + 4 * k, v)
        # vring0 (receive): 64 write-only buffers, pre-chained, all posted.
        for i in range(NUM):
            d = desc(VRING0, i)
            s.w32(d, RX_POOL - 0x400 + BUF_SIZE * i)
            s.w32(d + 4, 0)
            s.w32(d + 8, BUF_SIZE)
            s.w16(d + 12, VRING_DESC_F_WRITE)
            s.w16(d + 14, (i + 1) % NUM)
            s.w16(VRING0 + AVAIL + 4 + 2 * i, i)
            self.rx_out.add(i)
        self.rx_avail = NUM
        s.w16(VRING0 + AVAIL + 2, self.rx_avail)
        # vring1 (transmit): no interrupts for returned buffers (reclaimed lazily).
        s.w16(VRING1 + AVAIL, NO_INTERRUPT)
        s.m[RSC + 48] = DRIVER_OK      # last
        s.ring()

    # -- receive --

    def drain(self):
        """Takes every used entry of vring0, handles it and re-posts its buffer."""
        s = self.s
        n = 0
        while True:
            idx = s.r16(VRING0 + USED + 2)
            pending = (idx - self.rx_last_used) & 0xFFFF
            if pending == 0:
                return n
            if pending > NUM:
                raise Fatal("vring0 used.idx jumped by %d" % pending)
            e = VRING0 + USED + 4 + 8 * (self.rx_last_used % NUM)
            bid, blen = s.r32(e), s.r32(e + 4)
            self.rx_last_used = (self.rx_last_used + 1) & 0xFFFF
            if bid not in self.rx_out:
                raise Fatal("vring0 used entry names buffer %d we do not have posted" % bid)
            self.rx_out.discard(bid)
            if blen != BUF_SIZE:
                self.used_len_bad += 1
            buf = RX_POOL + BUF_SIZE * bid
            src, dst, res = s.r32(buf), s.r32(buf + 4), s.r32(buf + 8)
            plen, flags = s.r16(buf + 12), s.r16(buf + 14)
            if res != 0 or flags != 0 or plen > PAYLOAD_MAX:
                self.header_bad += 1
            payload = bytes(s.m[buf + 16:buf + 16 + min(plen, PAYLOAD_MAX)])
            self.rx_count += 1
            self.deliver(src, dst, payload)
            self.repost(bid)
            n += 1

    def repost(self, bid):
        s = self.s
        d = desc(VRING0, bid)
        s.w32(d + 8, BUF_SIZE)
        s.w16(VRING0 + AVAIL + 4 + 2 * (self.rx_avail % NUM), bid)
        self.rx_avail = (self.rx_avail + 1) & 0xFFFF
        s.w16(VRING0 + AVAIL + 2, self.rx_avail)
        self.rx_out.add(bid)
        self.reposted += 1
        if not s.r16(VRING0 + USED) & NO_NOTIFY:
            s.ring()

    def deliver(self, src, dst, payload):
        if dst == NS_ADDR:
            if len(payload) != 40:
                self.header_bad += 1
                return
            name = payload[:32].split(b"\0", 1)[0].decode(errors="replace")
            addr, flags = struct.unpack_from("<II", payload, 32)
            self.ns.append((name, addr, flags, src))
            if name in HOST_ADDR and flags == 0:
                self.remote[name] = addr
            return
        for name, local in HOST_ADDR.items():
            if dst == local:
                if src != self.remote.get(name):
                    self.header_bad += 1
                self.inbox[name].append(payload)
                return
        self.header_bad += 1

    def pump(self, slice_s=0.01):
        """Drains; if nothing came, waits for the doorbell up to slice_s (a hint only)."""
        if self.drain() == 0:
            self.s.wait(slice_s)
            self.drain()

    # -- transmit --

    def reclaim(self):
        s = self.s
        while True:
            idx = s.r16(VRING1 + USED + 2)
            pending = (idx - self.tx_last_used) & 0xFFFF
            if pending == 0:
                return
            if pending > NUM:
                raise Fatal("vring1 used.idx jumped by %d" % pending)
            e = VRING1 + USED + 4 + 8 * (self.tx_last_used % NUM)
            bid, blen = s.r32(e), s.r32(e + 4)
            self.tx_last_used = (self.tx_last_used + 1) & 0xFFFF
            if bid not in self.tx_inflight:
                raise Fatal("vring1 used entry names buffer %d not in flight" % bid)
            if blen != BUF_SIZE:
                self.used_len_bad += 1
            self.tx_inflight.discard(bid)
            self.tx_free.append(bid)
            self.reclaimed += 1

    def send_message(self, name, data, deadline):
        """Sends `data` as consecutive payloads of self.chunk (PAYLOAD_MAX) bytes, the last
        shorter (streaming=True framing); returns how many buffers it took."""
        n = self.chunk
        chunks = [data[k:k + n] for k in range(0, len(data), n)] or [b""]
        for chunk in chunks:
            self.send(name, chunk, deadline)
        return len(chunks)

    def send(self, name, payload, deadline):
        if len(payload) > PAYLOAD_MAX:
            raise Fatal("payload over one buffer")
        s = self.s
        while True:
            self.reclaim()
            if self.tx_free:
                bid = self.tx_free.pop()
                break
            if self.tx_allocated < TX_MAX:
                bid = self.tx_allocated
                self.tx_allocated += 1
                d = desc(VRING1, bid)
                s.w32(d, TX_POOL - 0x400 + BUF_SIZE * bid)
                s.w32(d + 4, 0)
                s.w32(d + 8, BUF_SIZE)
                s.w16(d + 12, 0)
                s.w16(d + 14, 0)
                break
            if time.monotonic() >= deadline:
                raise Fatal("no free transmit buffer before the deadline")
            self.pump(0.001)   # serve the remote meanwhile; returns are not signalled
        buf = TX_POOL + BUF_SIZE * bid
        s.w32(buf, HOST_ADDR[name])
        s.w32(buf + 4, self.remote[name])
        s.w32(buf + 8, 0)
        s.w16(buf + 12, len(payload))
        s.w16(buf + 14, 0)
        s.m[buf + 16:buf + 16 + len(payload)] = payload
        s.w16(VRING1 + AVAIL + 4 + 2 * (self.tx_avail % NUM), bid)
        self.tx_avail = (self.tx_avail + 1) & 0xFFFF
        self.tx_inflight.add(bid)
        s.w16(VRING1 + AVAIL + 2, self.tx_avail)
        self.tx_count += 1
        if not s.r16(VRING1 + USED) & NO_NOTIFY:
            s.ring()


# ---- MessagePack-RPC, msgpackrpc style ----

class Rpc:
    def __init__(self, host, checks, deadline):
        self.h = host
        self.c = checks
        self.deadline = deadline
        self.next_id = 0
        self.responses = {}           # msgid -> (raw bytes, message)
        self.functions = {}
        self.served = []              # (method, args, msgid) of requests from the remote
        self.raw = bytearray()
        # streaming=True reassembly: payloads are appended, messages decoded from the front.
        self.buf = bytearray()
        self.buf_pos = 0              # stream offset of buf[0]
        self.chunks = []              # (start, end) stream offsets of payloads still in buf
        self.spans = {}               # msgid of a response -> its payloads' lengths

    def bind(self, name, fn):
        self.functions[name] = fn

    def step(self, slice_s=0.01):
        self.h.pump(slice_s)
        for data in self.h.inbox["raw"]:
            self.raw += data
        self.h.inbox["raw"].clear()
        payloads, self.h.inbox["rpc"] = self.h.inbox["rpc"], []
        for payload in payloads:
            end = self.buf_pos + len(self.buf)
            self.chunks.append((end, end + len(payload)))
            self.buf += payload
        while self.buf:
            try:
                msg, end = unpack(self.buf)
            except Truncated:
                break                 # a partial tail: wait for the next payload
            except ValueError as e:
                self.c.check(False, "message on rpc decodes", "%s: %s" % (e, self.buf.hex()))
                self.take(len(self.buf))
                break
            data = self.take(end)
            if not isinstance(msg, list) or len(msg) not in (3, 4):
                self.c.check(False, "message on rpc is one msgpack-rpc array", data.hex())
                continue
            if msg[0] == 0 and len(msg) == 4:
                self.serve(msg[1], msg[2], msg[3], data)
            elif msg[0] == 1 and len(msg) == 4:
                self.responses[msg[1]] = (data, msg)
                self.spans[msg[1]] = self.last_span
            # type 2 (notification) is ignored, as msgpackrpc does

    def take(self, n):
        """Removes n bytes from the front of buf; sets last_span to the lengths of the
        payloads they came in (whole payloads only if the message started one)."""
        start, end = self.buf_pos, self.buf_pos + n
        self.last_span = [e - s for s, e in self.chunks if s < end and e > start]
        if self.chunks and self.chunks[0][0] != start:
            self.last_span = None     # it began inside a payload, behind another message
        data = bytes(self.buf[:n])
        del self.buf[:n]
        self.buf_pos = end
        self.chunks = [(s, e) for s, e in self.chunks if e > end]
        return data

    def serve(self, msgid, method, args, data):
        self.served.append((method, args, msgid, data))
        fn = self.functions.get(method)
        if fn is None:
            reply = [1, msgid, "Unbound function called %s" % method, None]
        else:
            reply = [1, msgid, None, fn(*args)]
        self.h.send_message("rpc", pack(reply), self.deadline)

    def call_async(self, method, *args):
        msgid = self.next_id
        self.next_id += 1
        self.sent_buffers = self.h.send_message("rpc", pack([0, msgid, method, list(args)]),
                                                self.deadline)
        return msgid

    def call_raw(self, method, *args):
        return self.join(self.call_async(method, *args), method, args)

    def join(self, msgid, method="?", args=()):
        while msgid not in self.responses:
            if time.monotonic() >= self.deadline:
                raise Fatal("no reply to %s%r" % (method, args))
            self.step()
        return self.responses.pop(msgid)

    def until(self, cond, what):
        while not cond():
            if time.monotonic() >= self.deadline:
                self.c.check(False, what, "timed out")
                return False
            self.step()
        return True


def main(argv):
    path = None
    create = True
    timeout = 10.0
    expect_sum = 3
    calls = 100
    chunk = PAYLOAD_MAX
    example = None
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--attach":
            create = False
        elif a in ("--timeout", "--expect-sum", "--calls", "--chunk", "--example") \
                and i + 1 < len(argv):
            i += 1
            if a == "--example":
                example = argv[i]
            elif a == "--timeout":
                timeout = float(argv[i])
            elif a == "--expect-sum":
                expect_sum = int(argv[i])
            elif a == "--chunk":
                chunk = min(max(1, int(argv[i])), PAYLOAD_MAX)
            else:
                calls = int(argv[i])
        elif path is None and not a.startswith("--"):
            path = a
        else:
            print(__doc__, file=sys.stderr)
            return 2
        i += 1
    if path is None:
        print(__doc__, file=sys.stderr)
        return 2

    c = Checks()
    deadline = time.monotonic() + timeout
    shm = Shm(path, create, timeout)
    try:
        if example is None:
            run(shm, c, deadline, expect_sum, calls, chunk)
        else:
            run_example(shm, c, deadline, example)
    except Fatal as e:
        c.check(False, "exchange completed", str(e))
    finally:
        shm.detach()
    if c.failed:
        print("mpy_host: %d of %d checks FAILED: %s"
              % (len(c.failed), c.passed + len(c.failed), "; ".join(c.failed)))
        return 1
    print("mpy_host: all %d checks passed" % c.passed)
    return 0


def pattern_str(n, seed):
    return "".join(chr(0x20 + (k * 7 + seed) % 95) for k in range(n))


def blob_bytes(n):
    """What duet's blob(n) returns: byte k is k mod 251."""
    return bytes(k % 251 for k in range(n))


def bufs(k):
    return "%d buffer%s" % (k, "" if k == 1 else "s")


def whole(length):
    """The payload lengths of a `length`-byte message: 496 each, the last shorter."""
    k = max(1, -(-length // PAYLOAD_MAX))
    return [PAYLOAD_MAX] * (k - 1) + [length - PAYLOAD_MAX * (k - 1)]


def multi_buffer(rpc, c):
    """Messages over one buffer, both ways (streaming=True framing)."""
    # A 1500-character str: the request spans 4 buffers, so does the reply.
    big = pattern_str(1500, 0)
    msgid = rpc.call_async("echo", big)
    req_bufs = rpc.sent_buffers
    data, msg = rpc.join(msgid, "echo", ("<1500 chars>",))
    span = rpc.spans.get(msgid)
    c.check(req_bufs == 4 and msg[2] is None and msg[3] == big and span == whole(len(data)),
            "echo(1500-char str): request in %s, %d-byte reply back intact in %r"
            % (bufs(req_bufs), len(data), span),
            "reply %r, error %r, %d chars" % (span, msg[2], len(msg[3] or "")))

    # Requests whose encoded length sits on a buffer edge (a full last buffer, one byte over).
    for target in (495, 496, 497, 992, 993):
        over = len(pack([0, rpc.next_id, "echo", ["x" * 300]])) - 300
        text = pattern_str(target - over, target)
        msgid = rpc.call_async("echo", text)
        sent, req_bufs = len(pack([0, msgid, "echo", [text]])), rpc.sent_buffers
        data, msg = rpc.join(msgid, "echo", ("<%d chars>" % len(text),))
        c.check(sent == target and req_bufs == len(whole(target)) and msg[3] == text,
                "echo: %d-byte request in %s answered intact" % (sent, bufs(req_bufs)),
                "%r" % (msg[2],))

    # Replies around the buffer size: n from the list, then n giving a reply of exactly
    # 496, 497, 992, 993 bytes.
    def blob(n):
        msgid = rpc.call_async("blob", n)
        data, msg = rpc.join(msgid, "blob", (n,))
        span = rpc.spans.get(msgid)
        ok = msg[2] is None and msg[3] == blob_bytes(n) and span == whole(len(data))
        bad = "error %r" % (msg[2],)
        if isinstance(msg[3], bytes):
            wrong = [k for k, (x, y) in enumerate(zip(msg[3], blob_bytes(n))) if x != y]
            bad += ", %d bytes, first wrong at %r" % (len(msg[3]), wrong[:1])
        c.check(ok, "blob(%d): %d-byte reply in %s %r, every byte right"
                % (n, len(data), bufs(len(span or [])), span), bad + ", buffers %r" % (span,))

    for n in (495, 496, 497, 992, 1800):
        blob(n)
    for target in (496, 497, 992, 993):
        blob(target - (len(pack([1, rpc.next_id, None, b"x" * 300])) - 300))

    data, msg = rpc.call_raw("blob", 5000)
    c.check(msg[2] == "blob: n = 5000 is over 2000" and msg[3] is None,
            "blob(5000) fails with duet's error text", repr(msg[2]))

    # Pipelined: several multi-buffer requests and replies in flight at once.
    calls = []
    for k in range(6):
        if k % 2:
            calls.append((rpc.call_async("blob", 1800 - k), blob_bytes(1800 - k)))
        else:
            text = pattern_str(1500 - k, k)
            calls.append((rpc.call_async("echo", text), text))
    got = [(rpc.join(i)[1], rpc.spans.get(i)) for i, _ in calls]
    c.check(all(m[2] is None and m[3] == want and span is not None and len(span) == 4
                for (m, span), (_, want) in zip(got, calls)),
            "6 pipelined multi-buffer calls (echo 1500 / blob 1800) all intact",
            repr([(m[2], span) for m, span in got]))


def handshake(h, c, deadline):
    """Lays out the shared memory, waits for both announcements, binds both endpoints."""
    h.init()
    print("host: resource table and vrings written, 64 rx buffers posted, DRIVER_OK set, "
          "HSEM 0 rung", flush=True)

    # Handshake: two announcements, then one throw-away byte per endpoint.
    while len(h.ns) < 2:
        if time.monotonic() >= deadline:
            raise Fatal("name-service announcements: got %r" % h.ns)
        h.pump()
    c.check([(n, a, f) for n, a, f, _ in h.ns] == [("raw", 0x400, 0), ("rpc", 0x401, 0)],
            "announcements are raw@0x400 then rpc@0x401, flags 0", repr(h.ns))
    c.check([s for *_, s in h.ns] == [0x400, 0x401], "announcements come from src 0x400/0x401")
    for name in ("raw", "rpc"):
        h.send(name, b"\x00", deadline)
    print("host: bound raw 0x400->0x400 and rpc 0x401->0x401, sent 0x00 on each", flush=True)


def run_example(shm, c, deadline, name):
    """The M7 of duet-sim's example `name` (see the module doc)."""
    h = Host(shm, c)
    handshake(h, c, deadline)
    rpc = Rpc(h, c, deadline)
    if name == "sensor":
        answers = [100 * k for k in range(1, 6)]
        given = []

        def sensor_read():
            given.append(answers[len(given) % len(answers)])
            return given[-1]

        rpc.bind("sensorRead", sensor_read)
        want = "".join("Sensor value: %d\n" % v for v in answers).encode()
        rpc.until(lambda: len(rpc.raw) >= len(want), "five printed lines")
        c.check(given == answers, "the remote called sensorRead five times", repr(given))
        c.check(bytes(rpc.raw) == want, "it printed each answer in order on raw",
                bytes(rpc.raw).decode("utf-8", "replace"))
        c.check([m for m, _, _, _ in rpc.served] == ["sensorRead"] * 5 and
                all(a == [] for _, a, _, _ in rpc.served), "requests were sensorRead()",
                repr(rpc.served))
        print("host: answered sensorRead %d times, got %r" % (len(given), bytes(rpc.raw)),
              flush=True)
    elif name == "led":
        end = time.monotonic() + 0.1      # msgpackrpc.start() sleeps 100 ms
        while time.monotonic() < end:
            rpc.step(0.005)
        for on in (True, False, True, False):
            data, msg = rpc.call_raw("led", on)
            c.check(msg[2] is None and msg[3] is on, "led(%r) returns %r" % (on, on), repr(msg))
        print("host: called led 4 times", flush=True)
    else:
        raise Fatal("no example %r here (sensor, led)" % name)


def run(shm, c, deadline, expect_sum, calls, chunk):
    h = Host(shm, c)
    h.chunk = chunk
    handshake(h, c, deadline)

    rpc = Rpc(h, c, deadline)
    leds = []

    def led(on):
        leds.append(on)
        return on

    rpc.bind("led", led)
    end = time.monotonic() + 0.1      # msgpackrpc.start() sleeps 100 ms after the handshake
    while time.monotonic() < end:
        rpc.step(0.005)

    data, msg = rpc.call_raw("add", 1, 2)
    c.check(data == bytes.fromhex("940100c003"), "add(1, 2) reply bytes are 94 01 00 c0 03",
            data.hex())
    c.check(msg[2] is None and msg[3] == expect_sum,
            "add(1, 2) == %d" % expect_sum, "got %r" % (msg[3],))

    data, msg = rpc.call_raw("nope", 1)
    want = "rpclib: server could not find function 'nope' with argument count 1."
    c.check(msg[1] == 1 and msg[2] == want and msg[3] is None,
            "nope(1) fails with rpclib's text", repr(msg))

    data, msg = rpc.call_raw("echo", "hello from python")
    c.check(msg[2] is None and msg[3] == "hello from python", "echo(str) returns it", repr(msg))

    data, msg = rpc.call_raw("add", -70000, 5)
    c.check(msg[3] == -69995, "add(-70000, 5) == -69995 (int32 forms)", repr(msg))

    bad = [k for k in range(calls) if rpc.call_raw("add", k, 1000)[1][3] != k + 1000]
    c.check(not bad, "%d more add calls all correct" % calls, "wrong for %r" % bad[:5])

    # A burst of pipelined calls (msgpackrpc's call_async), more than the 46 transmit buffers:
    # sending must reclaim buffers the remote has consumed.
    burst = 60
    ids = [rpc.call_async("add", k, -k * 3) for k in range(burst)]
    peak = len(h.tx_inflight)
    results = [rpc.join(i)[1] for i in ids]
    c.check(all(m[2] is None and m[3] == -2 * k for k, m in enumerate(results)),
            "%d pipelined add calls all correct (msgids matched)" % burst)
    print("host: burst of %d calls; %d buffers in flight after the last send, %d allocated"
          % (burst, peak, h.tx_allocated), flush=True)

    multi_buffer(rpc, c)

    h.send("raw", b"hello from python\n", deadline)

    greeting, echoed = b"hello from duet remote\n", b"echo: hello from python\n"
    rpc.until(lambda: greeting in rpc.raw and echoed in rpc.raw, "raw lines received")
    c.check(greeting in rpc.raw, "raw: remote's line received", bytes(rpc.raw).decode("utf-8", "replace"))
    c.check(echoed in rpc.raw, "raw: our line echoed back", bytes(rpc.raw).decode("utf-8", "replace"))

    rpc.until(lambda: len(rpc.served) >= 3, "three requests from the remote")
    served = [(m, a) for m, a, _, _ in rpc.served]
    c.check(served[:3] == [("led", [True]), ("led", [False]), ("nope_host", [])],
            "remote called led(True), led(False), nope_host()", repr(served))
    c.check(leds == [True, False], "led handler ran with True then False", repr(leds))
    ids = [i for _, _, i, _ in rpc.served]
    c.check(all(isinstance(i, int) and 0 <= i <= 0xFFFFFFFF for i in ids) and
            len(set(ids)) == len(ids), "remote msgids are distinct uint32s", repr(ids))
    first = rpc.served[0][3] if rpc.served else b""
    c.check(first[:2] == b"\x94\x00", "requests start 94 00 (fixarray, fixint type)",
            first.hex())

    data, msg = rpc.call_raw("done")
    c.check(msg[2] is None and msg[3] is True, "done() returns True", repr(msg))

    # Every transmit buffer comes back through vring1's used ring; every receive buffer is
    # re-posted.
    while h.tx_inflight and time.monotonic() < deadline:
        h.reclaim()
        h.pump(0.002)
    h.reclaim()
    c.check(not h.tx_inflight and len(h.tx_free) == h.tx_allocated,
            "all %d transmit buffers reclaimed" % h.tx_allocated,
            "%d still in flight" % len(h.tx_inflight))
    c.check(h.tx_allocated <= TX_MAX and h.tx_count > h.tx_allocated,
            "%d payloads sent through %d buffers (reused after reclaim)"
            % (h.tx_count, h.tx_allocated))
    c.check(len(h.rx_out) == NUM and h.rx_count > NUM,
            "%d payloads received, all 64 rx buffers posted again" % h.rx_count,
            "%d posted" % len(h.rx_out))
    c.check(h.used_len_bad == 0, "every used.len is 512 (the buffer's desc.len)",
            "%d entries differ" % h.used_len_bad)
    c.check(h.header_bad == 0, "every rpmsg header valid (addresses, reserved, flags, len)",
            "%d bad" % h.header_bad)
    print("host: sent %d, received %d, reclaimed %d, re-posted %d, rang HSEM 0 %d times"
          % (h.tx_count, h.rx_count, h.reclaimed, h.reposted, shm.rings), flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
