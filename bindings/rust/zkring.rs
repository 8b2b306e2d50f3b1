//! zkring.rs — a producer for the zksidecar ring, in Rust with std only.
//!
//! The layout and the protocol are csrc/ring/zkring.h's (docs/RING.md); this file
//! restates the offsets it uses and follows the same memory orderings, each
//! justified there.  POSIX shm on Linux is a file under /dev/shm, so std's
//! File opens it; mmap, getpid, clock_gettime and the futex syscall come
//! from libc through `extern "C"` declarations (std links libc already).
//!
//! Like the C, an SPSC producer takes the ring's producer role (refused
//! while a live process holds it) and an MPSC producer takes an entry of
//! the producer registry and announces each claim's positions there before
//! claiming them, so that a consumer stalled on a claim of a producer that
//! died can tell, and skip it (csrc/ring/zkring.h, zkring_unblock).
//! Simplification: a holder or entry counts as dead when kill(pid, 0) says
//! so; the C also compares start times (a reused pid) — here a reused pid
//! only keeps an entry from being reclaimed.
#![allow(dead_code)] // a library module: an engine uses what it needs

use std::fs::OpenOptions;
use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

pub const MAGIC: u64 = 0x474E_4952_4453_4B5A; // "ZKSDRING"
pub const VERSION: u32 = 2;
pub const SPSC: u32 = 1;
pub const MPSC: u32 = 2;
const RECORDS_OFFSET: usize = 768;
const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_RECORD_SIZE: usize = 12;
const OFF_CAPACITY: usize = 16;
const OFF_MODE: usize = 24;
const OFF_FLAGS: usize = 28;
const OFF_SEQ_OFFSET: usize = 40;
const OFF_SEGMENT_SIZE: usize = 48;
const OFF_REGISTRY_OFFSET: usize = 56;
const OFF_PRODUCER_SLOTS: usize = 64;
const OFF_PRODUCER_PID: usize = 128;
const OFF_PRODUCER_HEARTBEAT: usize = 136;
const OFF_FULL_EVENTS: usize = 144;
const OFF_PRODUCER_OWNER: usize = 152;
const OFF_CONSUMER_PARKED: usize = 260;
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

/// This process's identity word (csrc/ring/zkring.h): pid, pid-namespace
/// bits, low 32 bits of the start time; an unknown part is 0.
fn identity(pid: i32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| 1 + m.ino() % 1023);
    let start = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(") ")? + 2..];
            rest.split(' ').nth(19)?.parse::<u64>().ok() // field 22; fields 3.. follow the name
        })
        .unwrap_or(0);
    (pid as u64 & 0x3F_FFFF) | ns << 22 | (start & 0xFFFF_FFFF) << 32
}

/// Is the holder of identity word `w` gone (kill(pid, 0) says ESRCH)?
fn holder_dead(w: u64) -> bool {
    let pid = (w & 0x3F_FFFF) as i32;
    pid == 0 || (unsafe { kill(pid, 0) } != 0 && io::Error::last_os_error().raw_os_error() == Some(3))
}

pub struct Producer {
    base: *mut u8,
    len: usize,
    capacity: u64,
    mask: u64,
    record_size: usize,
    mpsc: bool,
    pos: u64,    // SPSC: next position to claim
    cached: u64, // SPSC: last head seen
    pid: i32,
    ident: u64,
    slot: usize, // MPSC: offset of our registry entry
}

impl Producer {
    /// Open ring `name` (as created by the sidecar) to publish records of
    /// `record_size` bytes; the header is checked like the C does.
    pub fn open(name: &str, record_size: usize) -> io::Result<Producer> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm/{}", name.trim_start_matches('/')))?;
        let len = file.metadata()?.len() as usize;
        if len < RECORDS_OFFSET {
            return Err(invalid("segment truncated"));
        }
        let base = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ_WRITE, MAP_SHARED, file.as_raw_fd(), 0) };
        if base as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let pid = unsafe { getpid() };
        let mut p = Producer { base, len, capacity: 0, mask: 0, record_size, mpsc: false, pos: 0, cached: 0, pid, ident: identity(pid), slot: 0 };
        // Acquire on magic: the creator wrote it last, with release.
        if p.u64_at(OFF_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(invalid("bad magic"));
        }
        let (version, rsize, capacity, mode) = unsafe {
            (
                *(base.add(OFF_VERSION) as *const u32),
                *(base.add(OFF_RECORD_SIZE) as *const u32) as usize,
                *(base.add(OFF_CAPACITY) as *const u64),
                *(base.add(OFF_MODE) as *const u32),
            )
        };
        if version != VERSION {
            return Err(invalid("unsupported layout version"));
        }
        if rsize != record_size {
            return Err(invalid("record size differs"));
        }
        if capacity < 2 || capacity > 1 << 30 || !capacity.is_power_of_two() || (mode != SPSC && mode != MPSC) {
            return Err(invalid("corrupt header"));
        }
        let seq_at = RECORDS_OFFSET as u64 + capacity * rsize as u64;
        let mut need = seq_at;
        if mode == MPSC {
            need += capacity * 8 + (PRODUCER_SLOTS * SLOT_SIZE) as u64;
        }
        let (seg, seq_off, reg_off, slots) = unsafe {
            (
                *(base.add(OFF_SEGMENT_SIZE) as *const u64),
                *(base.add(OFF_SEQ_OFFSET) as *const u64),
                *(base.add(OFF_REGISTRY_OFFSET) as *const u64),
                *(base.add(OFF_PRODUCER_SLOTS) as *const u32),
            )
        };
        let mpsc = mode == MPSC;
        if seg != need
            || seq_off != if mpsc { seq_at } else { 0 }
            || reg_off != if mpsc { seq_at + capacity * 8 } else { 0 }
            || slots != if mpsc { PRODUCER_SLOTS as u32 } else { 0 }
        {
            return Err(invalid("corrupt header"));
        }
        if (len as u64) < need {
            return Err(invalid("segment truncated"));
        }
        p.capacity = capacity;
        p.mask = capacity - 1;
        p.mpsc = mpsc;
        p.pos = p.u64_at(OFF_TAIL).load(Ordering::Acquire);
        p.cached = p.u64_at(OFF_HEAD).load(Ordering::Acquire);
        if mpsc {
            p.take_slot(reg_off as usize)?;
        } else {
            // The one producer: a CAS, so of two openers exactly one wins.
            let owner = p.u64_at(OFF_PRODUCER_OWNER);
            let held = owner.load(Ordering::Acquire);
            if held != 0 && !holder_dead(held) {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, format!("ring busy: producer pid {} is alive", held & 0x3F_FFFF)));
            }
            if owner.compare_exchange(held, p.ident, Ordering::AcqRel, Ordering::Acquire).is_err() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "ring busy: another producer opened it"));
            }
        }
        p.u32_at(OFF_FLAGS).fetch_and(!F_CLOSED, Ordering::Relaxed);
        p.heartbeat();
        Ok(p)
    }

    /// MPSC: take a free registry entry, or a dead producer's whose intent,
    /// cut at tail, the consumer has passed (as zkring__take_slot).
    fn take_slot(&mut self, registry: usize) -> io::Result<()> {
        let head = self.u64_at(OFF_HEAD).load(Ordering::Acquire);
        let tail = self.u64_at(OFF_TAIL).load(Ordering::Acquire);
        for i in 0..PRODUCER_SLOTS {
            let at = registry + i * SLOT_SIZE;
            let held = self.u64_at(at + SLOT_OWNER).load(Ordering::Acquire);
            let pending = self.u64_at(at + SLOT_INTENT_HI).load(Ordering::Relaxed).min(tail) > head;
            if held != 0 && !(holder_dead(held) && !pending) {
                continue;
            }
            if self.u64_at(at + SLOT_OWNER).compare_exchange(held, self.ident, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // After the owner, as the C does: a consumer never pairs a
                // dead owner with our intent.
                self.u64_at(at + SLOT_INTENT_LO).store(0, Ordering::Relaxed);
                self.u64_at(at + SLOT_INTENT_HI).store(0, Ordering::Relaxed);
                self.u64_at(at + SLOT_HEARTBEAT_NS).store(now_ns(), Ordering::Relaxed);
                self.slot = at;
                return Ok(());
            }
        }
        Err(io::Error::new(io::ErrorKind::AddrInUse, "ring busy: every producer registry entry is held"))
    }

    fn u64_at(&self, off: usize) -> &AtomicU64 {
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    fn u32_at(&self, off: usize) -> &AtomicU32 {
        unsafe { &*(self.base.add(off) as *const AtomicU32) }
    }

    fn seq(&self, pos: u64) -> &AtomicU64 {
        let off = RECORDS_OFFSET + self.capacity as usize * self.record_size + (pos & self.mask) as usize * 8;
        self.u64_at(off)
    }

    fn slot(&self, pos: u64) -> *mut u8 {
        unsafe { self.base.add(RECORDS_OFFSET + (pos & self.mask) as usize * self.record_size) }
    }

    pub fn heartbeat(&self) {
        let now = now_ns();
        unsafe { &*(self.base.add(OFF_PRODUCER_PID) as *const AtomicI32) }.store(self.pid, Ordering::Relaxed);
        self.u64_at(OFF_PRODUCER_HEARTBEAT).store(now, Ordering::Relaxed);
        if self.mpsc {
            self.u64_at(self.slot + SLOT_HEARTBEAT_NS).store(now, Ordering::Relaxed);
        }
    }

    pub fn full_events(&self) -> u64 {
        self.u64_at(OFF_FULL_EVENTS).load(Ordering::Relaxed)
    }

    /// Claim one position, or None when the ring is full.
    fn claim(&mut self) -> Option<u64> {
        if !self.mpsc {
            let t = self.pos;
            if t - self.cached >= self.capacity {
                // Acquire: the consumer's reads of the slot are complete.
                self.cached = self.u64_at(OFF_HEAD).load(Ordering::Acquire);
                if t.wrapping_sub(self.cached) >= self.capacity {
                    return None;
                }
            }
            self.pos = t + 1;
            return Some(t);
        }
        let tail = self.u64_at(OFF_TAIL);
        let mut t = tail.load(Ordering::Relaxed);
        loop {
            let mut seen = self.u64_at(OFF_HEAD_CACHE).load(Ordering::Acquire);
            if t.wrapping_sub(seen) >= self.capacity {
                seen = self.u64_at(OFF_HEAD).load(Ordering::Acquire);
                if t.wrapping_sub(seen) <= self.capacity {
                    // Release: producers acquiring head_cache inherit our
                    // acquire of head.
                    self.u64_at(OFF_HEAD_CACHE).store(seen, Ordering::Release);
                }
            }
            if t.wrapping_sub(seen) >= self.capacity {
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
            self.u64_at(self.slot + SLOT_INTENT_LO).store(t, Ordering::Relaxed);
            self.u64_at(self.slot + SLOT_INTENT_HI).store(t + 1, Ordering::Relaxed);
            match tail.compare_exchange_weak(t, t + 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Some(t),
                Err(now) => t = now,
            }
        }
    }

    /// Publish one record; Ok(false) when the ring is full (counted in the
    /// header, never waited on).
    pub fn try_publish(&mut self, rec: &[u8]) -> io::Result<bool> {
        if rec.len() != self.record_size {
            return Err(invalid("record of the wrong size"));
        }
        let pos = match self.claim() {
            Some(pos) => pos,
            None => {
                self.u64_at(OFF_FULL_EVENTS).fetch_add(1, Ordering::Relaxed);
                return Ok(false);
            }
        };
        unsafe { std::ptr::copy_nonoverlapping(rec.as_ptr(), self.slot(pos), self.record_size) };
        if self.mpsc {
            self.seq(pos).store(pos + 1, Ordering::Release); // record bytes before its stamp
        } else {
            self.u64_at(OFF_TAIL).store(pos + 1, Ordering::Release); // record bytes before tail
        }
        // Wake a parked consumer (no fence: the consumer bounds its sleep).
        let parked = self.u32_at(OFF_CONSUMER_PARKED);
        if parked.load(Ordering::Relaxed) != 0 && parked.swap(0, Ordering::Relaxed) == 1 {
            unsafe { syscall(SYS_FUTEX, parked as *const AtomicU32, FUTEX_WAKE, 1i32, 0usize, 0usize, 0i32) };
        }
        Ok(true)
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Give the role (or the registry entry) up, only if it is still
        // ours, then unmap.
        if self.mpsc && self.slot != 0 {
            self.u64_at(self.slot + SLOT_INTENT_LO).store(0, Ordering::Relaxed);
            self.u64_at(self.slot + SLOT_INTENT_HI).store(0, Ordering::Relaxed);
            let _ = self.u64_at(self.slot + SLOT_OWNER).compare_exchange(self.ident, 0, Ordering::Release, Ordering::Relaxed);
        } else if self.capacity != 0 {
            let _ = self.u64_at(OFF_PRODUCER_OWNER).compare_exchange(self.ident, 0, Ordering::Release, Ordering::Relaxed);
        }
        let pid = unsafe { &*(self.base.add(OFF_PRODUCER_PID) as *const AtomicI32) };
        let _ = pid.compare_exchange(self.pid, 0, Ordering::Relaxed, Ordering::Relaxed);
        unsafe { munmap(self.base, self.len) };
    }
}
