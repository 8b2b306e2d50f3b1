//! zkring.rs — the zksidecar ring's producer and consumer, in Rust with std only.
//!
//! The layout and the protocol are csrc/ring/zkring.h's (docs/RING.md); this file
//! restates the offsets it uses and follows the same memory orderings, each
//! justified there.  POSIX shm on Linux is a file under /dev/shm, so std's
//! File opens it; mmap, getpid, clock_gettime and the futex syscall come
//! from libc through `extern "C"` declarations (std links libc already).
//! The record types of csrc/formats/zk_records.h are `records` (zk_records.rs).
//!
//! Roles as the C takes them (zkring_open_ex): the consumer, and an SPSC
//! producer, take the ring's role word by compare-and-swap of this process's
//! identity word, refused while a live process holds it unless `takeover`; a
//! holder counts as dead when its pid is gone, is a zombie with no other
//! thread, or now names a process with another start time (a reused pid),
//! and a holder recorded from another pid namespace counts as alive while its
//! heartbeat is younger than 10 s.  An MPSC producer takes an entry of the
//! producer registry and announces each claim's positions there before
//! claiming them, so that a consumer stalled on a claim of a producer that
//! died can tell, and skip it (csrc/ring/zkring.h, zkring_unblock).
//!
//! The consumer polls by the MPSC sequence words or the SPSC tail, releases
//! head after each poll or, opened with `defer_release`, in `release()`; it
//! does not unblock a dead claimer's positions (the C's zkring_unblock,
//! off by default there too): it waits, as a C consumer with unblock_ns = 0.
#![allow(dead_code)] // a library module: an engine uses what it needs

#[path = "zk_records.rs"]
pub mod records;

use records::Record;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{fence, AtomicI32, AtomicU32, AtomicU64, Ordering};

pub const MAGIC: u64 = 0x474E_4952_4453_4B5A; // "ZKSDRING"
pub const VERSION: u32 = 3; // 3: records of layout 2 (zk_records.rs RECORDS_VERSION)
pub const SPSC: u32 = 1;
pub const MPSC: u32 = 2;
const RECORDS_OFFSET: usize = 768;
const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_RECORD_SIZE: usize = 12;
const OFF_CAPACITY: usize = 16;
const OFF_MODE: usize = 24;
const OFF_FLAGS: usize = 28;
const OFF_RECORDS_OFFSET: usize = 32;
const OFF_SEQ_OFFSET: usize = 40;
const OFF_SEGMENT_SIZE: usize = 48;
const OFF_REGISTRY_OFFSET: usize = 56;
const OFF_PRODUCER_SLOTS: usize = 64;
const OFF_PRODUCER_PID: usize = 128;
const OFF_PRODUCER_HEARTBEAT: usize = 136;
const OFF_FULL_EVENTS: usize = 144;
const OFF_PRODUCER_OWNER: usize = 152;
const OFF_CONSUMER_PID: usize = 256;
const OFF_CONSUMER_PARKED: usize = 260;
const OFF_CONSUMER_HEARTBEAT_NS: usize = 264;
const OFF_CONSUMER_OWNER: usize = 272;
const OFF_UNBLOCKED: usize = 280;
const OFF_TAIL: usize = 384;
const OFF_HEAD_CACHE: usize = 512;
const OFF_HEAD: usize = 640;
const F_CLOSED: u32 = 2;
const PRODUCER_SLOTS: usize = 64;
const SLOT_SIZE: usize = 128;
const SLOT_OWNER: usize = 0;
const SLOT_INTENT_LO: usize = 8;
const SLOT_INTENT_HI: usize = 16;
const SLOT_HEARTBEAT_NS: usize = 24;
const FOREIGN_STALE_NS: u64 = 10_000_000_000;
const PID_BITS: u64 = 0x3F_FFFF;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
    fn munmap(addr: *mut u8, len: usize) -> i32;
    fn getpid() -> i32;
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    fn syscall(number: i64, ...) -> i64;
    fn kill(pid: i32, sig: i32) -> i32;
}

const PROT_READ_WRITE: i32 = 3;
const MAP_SHARED: i32 = 1;
const CLOCK_MONOTONIC: i32 = 1;
const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: i64 = 202;
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: i64 = 98;

fn now_ns() -> u64 {
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn busy(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::AddrInUse, msg)
}

/// A failed open's error, saying which ring, why (the errno text of a failed
/// system call) and what to do, as zkring_open_error does; the kind is kept.
fn open_error(name: &str, role: &str, e: io::Error) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => "; start the sidecar daemon first, it creates the rings",
        io::ErrorKind::PermissionDenied => {
            "; run as the ring's owner, or as a member of the group the daemon creates its rings for (ring.group)"
        }
        io::ErrorKind::AddrInUse => "; stop that process first (two would corrupt the stream)",
        _ if e.to_string().contains("layout version") => {
            "; the ring and this client are of different zksidecar versions: build the client against the daemon's sources, or let the daemon create the ring again"
        }
        _ => "",
    };
    io::Error::new(e.kind(), format!("ring {}: cannot open as {}: {}{}", name, role, e, hint))
}

/// This process's pid-namespace bits of an identity word (1..1023), 0 when
/// /proc does not say.
fn ns_bits() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| 1 + m.ino() % 1023)
}

/// Field 22 (start time) and field 3 (state) of /proc/<pid>/stat ("self"
/// for this process); None when /proc cannot tell.
fn proc_start(pid: &str) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    let rest = &s[s.rfind(") ")? + 2..]; // fields 3.. follow the last ')'
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    Some((fields.nth(18)?.parse::<u64>().ok()?, state))
}

/// Threads of process `pid` (0 when unreadable).
fn proc_threads(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", pid))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l[8..].trim().parse().ok()))
        .unwrap_or(0)
}

/// This process's identity word (csrc/ring/zkring.h): pid, pid-namespace
/// bits, low 32 bits of the start time; an unknown part is 0.
fn identity(pid: i32, ns: u64) -> u64 {
    let start = proc_start("self").map_or(0, |(t, _)| t);
    (pid as u64 & PID_BITS) | ns << 22 | (start & 0xFFFF_FFFF) << 32
}

#[derive(PartialEq)]
enum Holder {
    Alive,
    Dead,
    Foreign,
}

/// Is the holder of identity word `w` alive, seen from namespace `ns`?  As
/// zkring__ident_status: errs towards alive.
fn holder_status(w: u64, ns: u64) -> Holder {
    let pid = (w & PID_BITS) as i32;
    let their_ns = (w >> 22) & 0x3FF;
    let start = w >> 32;
    if pid == 0 {
        return Holder::Dead;
    }
    if their_ns != 0 && ns != 0 && their_ns != ns {
        return Holder::Foreign;
    }
    // kill(pid, 0): ESRCH (3) means gone; EPERM means it exists.
    if unsafe { kill(pid, 0) } != 0 && io::Error::last_os_error().raw_os_error() == Some(3) {
        return Holder::Dead;
    }
    match proc_start(&pid.to_string()) {
        Some((_, 'X')) => Holder::Dead,
        Some((_, 'Z')) if proc_threads(pid) <= 1 => Holder::Dead,
        Some((now, _)) if start != 0 && now != 0 && now & 0xFFFF_FFFF != start => Holder::Dead,
        _ => Holder::Alive,
    }
}

/// As Holder, with a foreign holder judged by its heartbeat (10 s).
fn holder_dead(w: u64, ns: u64, heartbeat: &AtomicU64) -> bool {
    match holder_status(w, ns) {
        Holder::Dead => true,
        Holder::Alive => false,
        Holder::Foreign => {
            let beat = heartbeat.load(Ordering::Relaxed);
            let now = now_ns();
            now > beat && now - beat > FOREIGN_STALE_NS
        }
    }
}

/// One mapped, checked segment: what the producer and the consumer share.
struct Segment {
    base: *mut u8,
    len: usize,
    capacity: u64,
    mask: u64,
    record_size: usize,
    mpsc: bool,
    seq_off: usize,
    reg_off: usize,
    pid: i32,
    ns: u64,
    ident: u64,
}

impl Segment {
    /// Map ring `name` (as created by the sidecar) for records of
    /// `record_size` bytes and check its header as zkring__validate does.
    fn open(name: &str, record_size: usize) -> io::Result<Segment> {
        let bare = name.trim_start_matches('/');
        if bare.is_empty() || bare.contains('/') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid ring name"));
        }
        let file = OpenOptions::new().read(true).write(true).open(format!("/dev/shm/{}", bare))?;
        // Map what the file has, not what the header claims.
        let len = file.metadata()?.len() as usize;
        if len < RECORDS_OFFSET {
            return Err(invalid("segment truncated: smaller than its header requires"));
        }
        let base = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ_WRITE, MAP_SHARED, file.as_raw_fd(), 0) };
        if base as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let pid = unsafe { getpid() };
        let ns = ns_bits();
        let mut seg = Segment { base, len, capacity: 0, mask: 0, record_size, mpsc: false, seq_off: 0, reg_off: 0, pid, ns, ident: identity(pid, ns) };
        seg.validate()?; // on error, Drop unmaps
        Ok(seg)
    }

    fn validate(&mut self) -> io::Result<()> {
        // Acquire on magic: the creator wrote it last, with release.
        if self.u64_at(OFF_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(invalid("bad magic: not a zksidecar ring, or not initialised"));
        }
        let base = self.base;
        let rd32 = |off: usize| unsafe { std::ptr::read_volatile(base.add(off) as *const u32) };
        let rd64 = |off: usize| unsafe { std::ptr::read_volatile(base.add(off) as *const u64) };
        let version = rd32(OFF_VERSION);
        if version != VERSION {
            return Err(invalid(&format!("it has layout version {}, this build reads {}", version, VERSION)));
        }
        let rsize = rd32(OFF_RECORD_SIZE) as usize;
        if rsize != self.record_size {
            return Err(invalid("record size differs from the expected one"));
        }
        let (capacity, mode) = (rd64(OFF_CAPACITY), rd32(OFF_MODE));
        let corrupt = || invalid("corrupt header: capacity, mode or offsets out of range");
        if capacity < 2 || capacity > 1 << 30 || !capacity.is_power_of_two() || (mode != SPSC && mode != MPSC) || rsize < 8 || rsize > 4096 || rsize % 8 != 0 {
            return Err(corrupt());
        }
        let mpsc = mode == MPSC;
        let seq_at = RECORDS_OFFSET as u64 + capacity * rsize as u64;
        let need = if mpsc { seq_at + capacity * 8 + (PRODUCER_SLOTS * SLOT_SIZE) as u64 } else { seq_at };
        if rd64(OFF_RECORDS_OFFSET) != RECORDS_OFFSET as u64
            || rd64(OFF_SEGMENT_SIZE) != need
            || rd64(OFF_SEQ_OFFSET) != if mpsc { seq_at } else { 0 }
            || rd64(OFF_REGISTRY_OFFSET) != if mpsc { seq_at + capacity * 8 } else { 0 }
            || rd32(OFF_PRODUCER_SLOTS) != if mpsc { PRODUCER_SLOTS as u32 } else { 0 }
        {
            return Err(corrupt());
        }
        if (self.len as u64) < need {
            return Err(invalid("segment truncated: smaller than its header requires"));
        }
        self.capacity = capacity;
        self.mask = capacity - 1;
        self.mpsc = mpsc;
        self.seq_off = if mpsc { seq_at as usize } else { 0 };
        self.reg_off = if mpsc { (seq_at + capacity * 8) as usize } else { 0 };
        // Acquire on both counters, as zkring_open_ex; an impossible pair is
        // refused before anything is read or written.  As there, head is read
        // on both sides of tail and only a snapshot in which it held still is
        // judged: a busy ring moves both between two loads, and a head that
        // moves under every try is a live consumer's, not corruption.
        let mut head = self.u64_at(OFF_HEAD).load(Ordering::Acquire);
        for _ in 0..8 {
            let tail = self.u64_at(OFF_TAIL).load(Ordering::Acquire);
            let again = self.u64_at(OFF_HEAD).load(Ordering::Acquire);
            if again == head {
                if tail.wrapping_sub(head) > capacity {
                    return Err(invalid("corrupt ring: an index in shared memory is out of range"));
                }
                break;
            }
            head = again;
        }
        Ok(())
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    fn i32_at(&self, off: usize) -> &AtomicI32 {
        unsafe { &*(self.base.add(off) as *const AtomicI32) }
    }

    fn seq(&self, pos: u64) -> &AtomicU64 {
        self.u64_at(self.seq_off + (pos & self.mask) as usize * 8)
    }

    fn slot(&self, pos: u64) -> *mut u8 {
        unsafe { self.base.add(RECORDS_OFFSET + (pos & self.mask) as usize * self.record_size) }
    }

    /// Take an exclusive role (the consumer, or the SPSC producer) whose
    /// identity word is at `owner`, as zkring__take_role: refused while a
    /// live holder (ourselves included) has it, unless `takeover`.
    fn take_role(&self, owner: usize, heartbeat: usize, takeover: bool, what: &str) -> io::Result<()> {
        let word = self.u64_at(owner);
        let mut held = word.load(Ordering::Acquire);
        loop {
            if held != 0 && !takeover && !holder_dead(held, self.ns, self.u64_at(heartbeat)) {
                return Err(busy(format!("another live process holds this role: {} pid {}", what, held & PID_BITS)));
            }
            // A CAS: of two openers that found the role free, one wins and
            // the other re-judges the winner.  Acq_rel: the previous
            // holder's head is ours to read; our identity is published first.
            match word.compare_exchange(held, self.ident, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(now) => held = now,
            }
        }
    }

    /// Wake a parked consumer (no fence: the consumer bounds its sleep).
    fn maybe_wake(&self) {
        let parked = self.u32_at(OFF_CONSUMER_PARKED);
        if parked.load(Ordering::Relaxed) != 0 && parked.swap(0, Ordering::Relaxed) == 1 {
            unsafe { syscall(SYS_FUTEX, parked as *const AtomicU32, FUTEX_WAKE, 1i32, 0usize, 0usize, 0i32) };
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        unsafe { munmap(self.base, self.len) };
    }
}

pub struct Producer {
    seg: Segment,
    pos: u64,    // SPSC: next position to claim
    cached: u64, // SPSC: last head seen
    slot: usize, // MPSC: offset of our registry entry (0: none)
    role: bool,  // SPSC: we hold the producer role
}

impl Producer {
    /// Open ring `name` (as created by the sidecar) to publish records of
    /// `record_size` bytes; the header is checked like the C does.
    pub fn open(name: &str, record_size: usize) -> io::Result<Producer> {
        Producer::open_with(name, record_size, false)
    }

    /// As open; `takeover` replaces a live SPSC producer (only for a holder
    /// known to be gone).
    pub fn open_with(name: &str, record_size: usize, takeover: bool) -> io::Result<Producer> {
        Producer::open_inner(name, record_size, takeover).map_err(|e| open_error(name, "producer", e))
    }

    fn open_inner(name: &str, record_size: usize, takeover: bool) -> io::Result<Producer> {
        let seg = Segment::open(name, record_size)?;
        let mut p = Producer { pos: 0, cached: 0, slot: 0, role: false, seg };
        if p.seg.mpsc {
            p.take_slot()?;
        } else {
            p.seg.take_role(OFF_PRODUCER_OWNER, OFF_PRODUCER_HEARTBEAT, takeover, "producer")?;
            p.role = true;
        }
        p.pos = p.seg.u64_at(OFF_TAIL).load(Ordering::Acquire);
        p.cached = p.seg.u64_at(OFF_HEAD).load(Ordering::Acquire);
        p.seg.u32_at(OFF_FLAGS).fetch_and(!F_CLOSED, Ordering::Relaxed);
        p.heartbeat();
        Ok(p)
    }

    /// MPSC: take a free registry entry, or a dead producer's whose intent,
    /// cut at tail, the consumer has passed (as zkring__take_slot).
    fn take_slot(&mut self) -> io::Result<()> {
        let s = &self.seg;
        let head = s.u64_at(OFF_HEAD).load(Ordering::Acquire);
        let tail = s.u64_at(OFF_TAIL).load(Ordering::Acquire);
        for i in 0..PRODUCER_SLOTS {
            let at = s.reg_off + i * SLOT_SIZE;
            let held = s.u64_at(at + SLOT_OWNER).load(Ordering::Acquire);
            if held != 0 {
                let dead = holder_dead(held, s.ns, s.u64_at(at + SLOT_HEARTBEAT_NS));
                let pending = s.u64_at(at + SLOT_INTENT_HI).load(Ordering::Relaxed).min(tail) > head;
                if !dead || pending {
                    continue; // alive, or dead with an intent the consumer has not passed
                }
            }
            if s.u64_at(at + SLOT_OWNER).compare_exchange(held, s.ident, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // After the owner, as the C does: a consumer never pairs a
                // dead owner with our intent.
                s.u64_at(at + SLOT_INTENT_LO).store(0, Ordering::Relaxed);
                s.u64_at(at + SLOT_INTENT_HI).store(0, Ordering::Relaxed);
                s.u64_at(at + SLOT_HEARTBEAT_NS).store(now_ns(), Ordering::Relaxed);
                self.slot = at;
                return Ok(());
            }
        }
        Err(busy("ring busy: every producer registry entry is held".to_string()))
    }

    pub fn capacity(&self) -> u64 {
        self.seg.capacity
    }

    pub fn heartbeat(&self) {
        let now = now_ns();
        self.seg.i32_at(OFF_PRODUCER_PID).store(self.seg.pid, Ordering::Relaxed);
        self.seg.u64_at(OFF_PRODUCER_HEARTBEAT).store(now, Ordering::Relaxed);
        if self.slot != 0 {
            self.seg.u64_at(self.slot + SLOT_HEARTBEAT_NS).store(now, Ordering::Relaxed);
        }
    }

    pub fn full_events(&self) -> u64 {
        self.seg.u64_at(OFF_FULL_EVENTS).load(Ordering::Relaxed)
    }

    /// The stream is over: the consumer's peer status becomes CLOSED.
    /// Release: a consumer that sees it sees every record committed before.
    pub fn mark_closed(&self) {
        self.seg.u32_at(OFF_FLAGS).fetch_or(F_CLOSED, Ordering::Release);
    }

    /// Claim one position, or None when the ring is full.
    fn claim(&mut self) -> Option<u64> {
        let s = &self.seg;
        if !s.mpsc {
            let t = self.pos;
            if t - self.cached >= s.capacity {
                // Acquire: the consumer's reads of the slot are complete.
                self.cached = s.u64_at(OFF_HEAD).load(Ordering::Acquire);
                if t.wrapping_sub(self.cached) >= s.capacity {
                    return None;
                }
            }
            self.pos = t + 1;
            return Some(t);
        }
        let tail = s.u64_at(OFF_TAIL);
        let mut t = tail.load(Ordering::Relaxed);
        loop {
            let mut seen = s.u64_at(OFF_HEAD_CACHE).load(Ordering::Acquire);
            if t.wrapping_sub(seen) >= s.capacity {
                seen = s.u64_at(OFF_HEAD).load(Ordering::Acquire);
                if t.wrapping_sub(seen) <= s.capacity {
                    // Release: producers acquiring head_cache inherit our
                    // acquire of head.
                    s.u64_at(OFF_HEAD_CACHE).store(seen, Ordering::Release);
                }
            }
            if t.wrapping_sub(seen) >= s.capacity {
                // Full, a stale tail, or a head beyond the tail (corrupt):
                // decide on a fresh tail.
                let now = tail.load(Ordering::Relaxed);
                if now == t {
                    return None;
                }
                t = now;
                continue;
            }
            // The intent first (our own line), then the claim, with release
            // so that a consumer acquiring a tail past t sees the intent.
            // Ownership came from the head acquire; publication is the
            // per-slot sequence release in publish.
            s.u64_at(self.slot + SLOT_INTENT_LO).store(t, Ordering::Relaxed);
            s.u64_at(self.slot + SLOT_INTENT_HI).store(t + 1, Ordering::Relaxed);
            match tail.compare_exchange_weak(t, t + 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Some(t),
                Err(now) => t = now,
            }
        }
    }

    /// Publish one record; Ok(false) when the ring is full (counted in the
    /// header, never waited on).
    pub fn try_publish(&mut self, rec: &[u8]) -> io::Result<bool> {
        if rec.len() != self.seg.record_size {
            return Err(invalid("record of the wrong size"));
        }
        let pos = match self.claim() {
            Some(pos) => pos,
            None => {
                self.seg.u64_at(OFF_FULL_EVENTS).fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
        };
        unsafe { std::ptr::copy_nonoverlapping(rec.as_ptr(), self.seg.slot(pos), rec.len()) };
        if self.seg.mpsc {
            self.seg.seq(pos).store(pos + 1, Ordering::Release); // record bytes before its stamp
        } else {
            self.seg.u64_at(OFF_TAIL).store(pos + 1, Ordering::Release); // record bytes before tail
        }
        self.seg.maybe_wake();
        Ok(true)
    }

    /// Publish one typed record (records::Op, ...); its size must be the
    /// ring's record size.
    pub fn try_publish_record<T: Record>(&mut self, rec: &T) -> io::Result<bool> {
        let bytes = unsafe { std::slice::from_raw_parts(rec as *const T as *const u8, std::mem::size_of::<T>()) };
        self.try_publish(bytes)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Give the role (or the registry entry) up, only if it is still
        // ours; Segment unmaps.  An open that failed took nothing.
        let s = &self.seg;
        if self.slot == 0 && !self.role {
            return;
        }
        if self.slot != 0 {
            s.u64_at(self.slot + SLOT_INTENT_LO).store(0, Ordering::Relaxed);
            s.u64_at(self.slot + SLOT_INTENT_HI).store(0, Ordering::Relaxed);
            let _ = s.u64_at(self.slot + SLOT_OWNER).compare_exchange(s.ident, 0, Ordering::Release, Ordering::Relaxed);
        } else if self.role {
            let _ = s.u64_at(OFF_PRODUCER_OWNER).compare_exchange(s.ident, 0, Ordering::Release, Ordering::Relaxed);
        }
        let _ = s.i32_at(OFF_PRODUCER_PID).compare_exchange(s.pid, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The consumer: one per ring (the role is exclusive, as in the C).
pub struct Consumer {
    seg: Segment,
    pos: u64,    // next position to read: the authoritative head, never re-read
    cached: u64, // SPSC: last tail seen
    defer_release: bool,
}

impl Consumer {
    /// Open ring `name` as its consumer, for records of `record_size` bytes.
    /// Refused (ErrorKind::AddrInUse) while another live process, or this
    /// one, is the consumer.
    pub fn open(name: &str, record_size: usize) -> io::Result<Consumer> {
        Consumer::open_with(name, record_size, false, false)
    }

    /// `takeover`: replace a live consumer (only for one known to be gone).
    /// `defer_release`: polls do not free what they return; `release()`
    /// does, and a consumer opened after a crash resumes at the last release
    /// (ZKRING_O_DEFER_RELEASE).
    pub fn open_with(name: &str, record_size: usize, takeover: bool, defer_release: bool) -> io::Result<Consumer> {
        Consumer::open_inner(name, record_size, takeover, defer_release).map_err(|e| open_error(name, "consumer", e))
    }

    fn open_inner(name: &str, record_size: usize, takeover: bool, defer_release: bool) -> io::Result<Consumer> {
        let seg = Segment::open(name, record_size)?;
        seg.take_role(OFF_CONSUMER_OWNER, OFF_CONSUMER_HEARTBEAT_NS, takeover, "consumer")?;
        seg.i32_at(OFF_CONSUMER_PID).store(seg.pid, Ordering::Relaxed);
        // Resume exactly where the last consumer committed; re-read after the
        // role is ours (one we took over from may have moved it).
        let head = seg.u64_at(OFF_HEAD).load(Ordering::Acquire);
        seg.u32_at(OFF_CONSUMER_PARKED).store(0, Ordering::Relaxed);
        let c = Consumer { seg, pos: head, cached: head, defer_release };
        c.heartbeat();
        Ok(c)
    }

    pub fn capacity(&self) -> u64 {
        self.seg.capacity
    }

    /// The position of the next record poll returns.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Records published (MPSC: claimed) and not yet polled, for monitoring.
    pub fn depth(&self) -> u64 {
        self.seg.u64_at(OFF_TAIL).load(Ordering::Relaxed).wrapping_sub(self.pos).min(self.seg.capacity)
    }

    /// Positions consumers skipped because their claimer died (by a C or
    /// Python consumer: this one waits instead).
    pub fn unblocked(&self) -> u64 {
        self.seg.u64_at(OFF_UNBLOCKED).load(Ordering::Relaxed)
    }

    /// A producer ended the stream (and every record before is visible).
    pub fn closed(&self) -> bool {
        self.seg.u32_at(OFF_FLAGS).load(Ordering::Acquire) & F_CLOSED != 0
    }

    pub fn heartbeat(&self) {
        self.seg.u64_at(OFF_CONSUMER_HEARTBEAT_NS).store(now_ns(), Ordering::Relaxed);
    }

    /// Copy up to out.len() / record_size records, in position order, into
    /// `out`; returns how many (0 when empty).  An impossible tail is an
    /// error (InvalidData) and nothing is read.
    pub fn poll(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let s = &self.seg;
        let rs = s.record_size;
        if out.len() % rs != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "buffer is not a whole number of records"));
        }
        let max = ((out.len() / rs) as u64).min(s.capacity);
        let head = self.pos;
        let mut n: u64 = 0;
        if max == 0 {
            return Ok(0);
        }
        if !s.mpsc {
            if self.cached == head {
                // Acquire pairs with the producer's release of tail.
                let tail = s.u64_at(OFF_TAIL).load(Ordering::Acquire);
                if tail.wrapping_sub(head) > s.capacity {
                    return Err(invalid("corrupt ring: an index in shared memory is out of range"));
                }
                self.cached = tail;
            }
            n = (self.cached - head).min(max);
            if n == 0 {
                return Ok(0);
            }
            let first = head & s.mask;
            let run = (s.capacity - first).min(n) as usize;
            unsafe {
                std::ptr::copy_nonoverlapping(s.slot(head), out.as_mut_ptr(), run * rs);
                if (run as u64) < n {
                    std::ptr::copy_nonoverlapping(s.slot(0), out.as_mut_ptr().add(run * rs), (n as usize - run) * rs);
                }
            }
        } else {
            while n < max {
                let p = head + n;
                // Acquire pairs with the committing producer's release: the
                // record is complete.  Any other value means "not yet".
                if s.seq(p).load(Ordering::Acquire) != p + 1 {
                    break;
                }
                unsafe { std::ptr::copy_nonoverlapping(s.slot(p), out.as_mut_ptr().add(n as usize * rs), rs) };
                n += 1;
            }
            if n == 0 {
                return Ok(0);
            }
        }
        self.pos = head + n;
        // Release: our copies complete before a producer may reuse the slots.
        if !self.defer_release {
            s.u64_at(OFF_HEAD).store(self.pos, Ordering::Release);
        }
        Ok(n as usize)
    }

    /// As poll, into typed records (their size must be the ring's).
    pub fn poll_records<T: Record>(&mut self, out: &mut [T]) -> io::Result<usize> {
        if std::mem::size_of::<T>() != self.seg.record_size {
            return Err(invalid("record size differs from the expected one"));
        }
        let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, std::mem::size_of_val(out)) };
        self.poll(bytes)
    }

    /// Poll, spinning, yielding, then sleeping on the futex while empty,
    /// until something arrives or `timeout` passes; 0 on timeout.  The
    /// parking handshake is zkring_poll_wait's: announce, re-check, sleep at
    /// most 1 ms (a producer may miss the flag: it carries no fence).
    pub fn poll_wait(&mut self, out: &mut [u8], timeout: std::time::Duration) -> io::Result<usize> {
        let deadline = now_ns().saturating_add(timeout.as_nanos().min(u64::MAX as u128) as u64);
        let mut empty: u64 = 0;
        loop {
            let n = self.poll(out)?;
            if n != 0 {
                return Ok(n);
            }
            empty += 1;
            if empty % 256 == 0 && now_ns() >= deadline {
                return Ok(0);
            }
            if empty <= 1000 {
                std::hint::spin_loop();
                continue;
            }
            if empty <= 1100 {
                std::thread::yield_now();
                continue;
            }
            // Not borrowed from self: poll below needs it mutably.  The
            // mapping outlives this call.
            let parked = unsafe { &*(self.seg.base.add(OFF_CONSUMER_PARKED) as *const AtomicU32) };
            // Seq_cst store (and fence): our re-check below cannot be
            // satisfied from before the flag is visible.
            parked.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let n = self.poll(out)?;
            if n == 0 {
                let now = now_ns();
                if now >= deadline {
                    parked.store(0, Ordering::Relaxed);
                    return Ok(0);
                }
                let nap = (deadline - now).min(1_000_000);
                let ts = Timespec { tv_sec: (nap / 1_000_000_000) as i64, tv_nsec: (nap % 1_000_000_000) as i64 };
                // Sleeps only while the word is still 1.
                unsafe { syscall(SYS_FUTEX, parked as *const AtomicU32, FUTEX_WAIT, 1i32, &ts as *const Timespec, 0usize, 0i32) };
                self.heartbeat();
            }
            parked.store(0, Ordering::Relaxed);
            if n != 0 {
                return Ok(n);
            }
        }
    }

    /// Opened with defer_release: free every record polled so far (a no-op
    /// in effect otherwise: polls have released them).
    pub fn release(&self) {
        self.seg.u64_at(OFF_HEAD).store(self.pos, Ordering::Release);
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Only our own identity and pid: a process that took over holds them.
        let s = &self.seg;
        let _ = s.u64_at(OFF_CONSUMER_OWNER).compare_exchange(s.ident, 0, Ordering::Release, Ordering::Relaxed);
        let _ = s.i32_at(OFF_CONSUMER_PID).compare_exchange(s.pid, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}
