//! zkring.rs — a producer for the zksidecar ring, in Rust with std only.
//!
//! The layout and the protocol are csrc/ring/zkring.h's (docs/RING.md); this file
//! restates the offsets it uses and follows the same memory orderings, each
//! justified there.  POSIX shm on Linux is a file under /dev/shm, so std's
//! File opens it; mmap, getpid, clock_gettime and the futex syscall come
//! from libc through `extern "C"` declarations (std links libc already).
#![allow(dead_code)] // a library module: an engine uses what it needs

use std::fs::OpenOptions;
use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

pub const MAGIC: u64 = 0x474E_4952_4453_4B5A; // "ZKSDRING"
pub const VERSION: u32 = 1;
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
const OFF_PRODUCER_PID: usize = 128;
const OFF_PRODUCER_HEARTBEAT: usize = 136;
const OFF_FULL_EVENTS: usize = 144;
const OFF_CONSUMER_PARKED: usize = 260;
const OFF_TAIL: usize = 384;
const OFF_HEAD_CACHE: usize = 512;
const OFF_HEAD: usize = 640;
const F_CLOSED: u32 = 2;

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
        let mut p = Producer { base, len, capacity: 0, mask: 0, record_size, mpsc: false, pos: 0, cached: 0, pid: unsafe { getpid() } };
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
        let mut need = RECORDS_OFFSET as u64 + capacity * rsize as u64;
        if mode == MPSC {
            need += capacity * 8;
        }
        let (seg, seq_off) = unsafe { (*(base.add(OFF_SEGMENT_SIZE) as *const u64), *(base.add(OFF_SEQ_OFFSET) as *const u64)) };
        if seg != need || (mode == MPSC && seq_off != need - capacity * 8) {
            return Err(invalid("corrupt header"));
        }
        if (len as u64) < need {
            return Err(invalid("segment truncated"));
        }
        p.capacity = capacity;
        p.mask = capacity - 1;
        p.mpsc = mode == MPSC;
        p.pos = p.u64_at(OFF_TAIL).load(Ordering::Acquire);
        p.cached = p.u64_at(OFF_HEAD).load(Ordering::Acquire);
        p.u32_at(OFF_FLAGS).fetch_and(!F_CLOSED, Ordering::Relaxed);
        p.heartbeat();
        Ok(p)
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
        unsafe { &*(self.base.add(OFF_PRODUCER_PID) as *const AtomicI32) }.store(self.pid, Ordering::Relaxed);
        self.u64_at(OFF_PRODUCER_HEARTBEAT).store(now_ns(), Ordering::Relaxed);
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
            // Relaxed: ownership came from the head acquire; publication is
            // the per-slot sequence release in publish.
            match tail.compare_exchange_weak(t, t + 1, Ordering::Relaxed, Ordering::Relaxed) {
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
        // Give the role up (only if it is still ours), then unmap.
        let pid = unsafe { &*(self.base.add(OFF_PRODUCER_PID) as *const AtomicI32) };
        let _ = pid.compare_exchange(self.pid, 0, Ordering::Relaxed, Ordering::Relaxed);
        unsafe { munmap(self.base, self.len) };
    }
}
