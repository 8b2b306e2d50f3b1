//! examples/rust/engine.rs — a matching engine attached to the sidecar, in Rust (std only).
//!
//!   engine OPS_RING COMPLETIONS_RING [OPS [CAPACITY [SYMBOL [SEED [WAIT_S]]]]]
//!
//! The same engine as examples/c/engine.c (docs/INTEGRATION.md): it matches
//! through the provable core (csrc/engine/zk_core.h, linked from
//! build/libzkcore.a through `extern "C"`), stamps seq/ts, publishes every
//! applied operation with its claim on the ops ring (FULL never blocks:
//! retried next turn, counted), heartbeats, and reads completions through
//! `zkring::records::Completion` (bindings/rust/zk_records.rs, never
//! offsets).  The last line is the summary the tests parse.  Exit 0 when
//! every operation was proven.
//!
//! Built by `make examples`:
//!   rustc -O --edition 2021 -L build -o build/examples/engine_rust examples/rust/engine.rs
#[path = "../../bindings/rust/zkring.rs"]
mod zkring;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zkring::records::{self, Completion, Op};

const HEARTBEAT: Duration = Duration::from_millis(200); // well inside the daemon's 5 s

/// The core's C API (csrc/engine/zk_core.h); `Op` and `Trade` are `zk_op`
/// and `zk_trade`, field for field.
mod core {
    use super::records::{Op, Trade};

    #[repr(C)]
    pub struct ZkCore {
        _private: [u8; 0],
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct OrderInfo {
        pub price: u32,
        pub qty: u32,
        pub account: u32,
        pub side: u8,
    }

    pub const OK: i32 = 0;

    #[link(name = "zkcore", kind = "static")]
    extern "C" {
        pub fn zk_core_new(capacity: u32, symbol: u32) -> *mut ZkCore;
        pub fn zk_core_free(core: *mut ZkCore);
        pub fn zk_core_apply(core: *mut ZkCore, op: *mut Op, trades: *mut *const Trade) -> i32;
        pub fn zk_core_next_seq(core: *const ZkCore) -> u64;
        pub fn zk_core_last_ts(core: *const ZkCore) -> u64;
        pub fn zk_core_capacity(core: *const ZkCore) -> u32;
        pub fn zk_core_resting(core: *const ZkCore) -> u32;
        pub fn zk_core_order(core: *const ZkCore, handle: u64, out: *mut OrderInfo) -> i32;
    }

    /// One book, owned; every call goes to the C core.
    pub struct Book(*mut ZkCore);

    impl Book {
        pub fn new(capacity: u32, symbol: u32) -> Option<Book> {
            let p = unsafe { zk_core_new(capacity, symbol) };
            if p.is_null() { None } else { Some(Book(p)) }
        }
        /// Match `op`; on OK its outcome (the claim) is written and the
        /// trades it made are returned (a copy of the core's buffer).
        pub fn apply(&mut self, op: &mut Op) -> Result<Vec<Trade>, i32> {
            let mut trades: *const Trade = std::ptr::null();
            let rc = unsafe { zk_core_apply(self.0, op, &mut trades) };
            if rc != OK {
                return Err(rc);
            }
            let n = op.trades as usize;
            Ok(if n == 0 { Vec::new() } else { unsafe { std::slice::from_raw_parts(trades, n) }.to_vec() })
        }
        pub fn next_seq(&self) -> u64 { unsafe { zk_core_next_seq(self.0) } }
        pub fn last_ts(&self) -> u64 { unsafe { zk_core_last_ts(self.0) } }
        pub fn capacity(&self) -> u32 { unsafe { zk_core_capacity(self.0) } }
        pub fn resting(&self) -> u32 { unsafe { zk_core_resting(self.0) } }
        pub fn is_live(&self, handle: u64) -> bool {
            let mut info = OrderInfo::default();
            unsafe { zk_core_order(self.0, handle, &mut info) == 1 }
        }
    }

    impl Drop for Book {
        fn drop(&mut self) {
            unsafe { zk_core_free(self.0) }
        }
    }
}

/// A deterministic order flow (xorshift64*), the C example's.
struct Flow {
    state: u64,
    mid: i64,
    handles: Vec<u64>, // orders that rested (some filled since)
}

impl Flow {
    fn new(seed: u64) -> Flow {
        Flow { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1), mid: 100_000, handles: Vec::new() }
    }
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }

    fn draw(&mut self, book: &core::Book, client_id: u64) -> Op {
        let mut op = Op { client_id, ..Op::default() };
        op.account = 1 + self.below(10);
        if self.below(20) == 0 {
            self.mid += if self.below(2) != 0 { 1 } else { -1 };
        }
        let u = self.below(100);
        let cancel_pct = if book.resting() * 4 > book.capacity() * 3 { 60 } else { 20 };
        while u < cancel_pct && !self.handles.is_empty() {
            let i = self.below(self.handles.len() as u32) as usize;
            let h = self.handles.swap_remove(i);
            if !book.is_live(h) {
                continue; // filled since: pick another
            }
            op.handle = h;
            if self.below(5) == 0 {
                op.kind = records::KIND_REDUCE;
                op.qty = 1 + self.below(3);
            } else {
                op.kind = records::KIND_CANCEL;
            }
            return op;
        }
        op.side = if self.below(2) != 0 { records::SIDE_BUY } else { records::SIDE_SELL };
        let sign: i64 = if op.side == records::SIDE_BUY { 1 } else { -1 };
        op.qty = if self.below(10) == 0 { 50 + self.below(100) } else { 1 + self.below(20) };
        if u < cancel_pct + 20 {
            // marketable
            let kinds = [records::KIND_IOC, records::KIND_IOC, records::KIND_MARKET, records::KIND_FOK, records::KIND_LIMIT];
            op.kind = kinds[self.below(5) as usize];
            op.price = if op.kind == records::KIND_MARKET { 0 } else { (self.mid + sign * self.below(3) as i64) as u32 };
        } else {
            // resting, behind the touch
            op.kind = if self.below(20) == 0 { records::KIND_POST_ONLY } else { records::KIND_LIMIT };
            op.price = (self.mid - sign * (1 + self.below(5)) as i64) as u32;
        }
        op
    }

    fn remember(&mut self, op: &Op) {
        if op.status == records::STATUS_RESTED {
            self.handles.push(op.handle);
        }
    }
}

#[derive(Default)]
struct Done {
    completions: u64,
    proven_ops: u64,
    disagrees: u64,
    failed: u64,
    covered_ops: u64,
    last_seq: u64,
    last_root: [u8; 32],
    symbol: u32, // the book's: completions of any other are not ours
}

impl Done {
    fn read(&mut self, ring: &mut zkring::Consumer) {
        let mut buf = [Completion::default(); 64];
        loop {
            let n = ring.poll_records(&mut buf).unwrap_or_else(|e| fail(format!("completions ring: {}", e)));
            if n == 0 {
                return;
            }
            for c in &buf[..n] {
                if !c.layout_ok() || c.symbol != self.symbol {
                    // another layout, or another book's batch: not ours to count
                    eprintln!("engine: a completion of layout {} for symbol {} (expected layout {}, symbol {})",
                              c.version, c.symbol, records::RECORDS_VERSION, self.symbol);
                    self.failed += 1;
                    continue;
                }
                let ops = c.op_count as u64;
                self.completions += 1;
                self.covered_ops += ops;
                self.last_seq = self.last_seq.max(c.last_seq());
                if c.status == records::COMPLETION_PROVEN {
                    self.proven_ops += ops;
                    self.last_root = c.post_state_root;
                } else if c.status == records::COMPLETION_DISAGREES {
                    self.disagrees += 1;
                    eprintln!("engine: batch {} (seq {}..{}) disagrees with our claim", c.batch_id, c.first_seq, c.last_seq());
                } else {
                    self.failed += 1;
                }
            }
        }
    }
}

fn fail(msg: String) -> ! {
    eprintln!("engine: {}", msg);
    std::process::exit(1);
}

fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} OPS_RING COMPLETIONS_RING [OPS [CAPACITY [SYMBOL [SEED [WAIT_S]]]]]", args[0]);
        std::process::exit(2);
    }
    let arg = |i: usize, default: u64| -> u64 { args.get(i).map(|s| s.parse().expect("a number")).unwrap_or(default) };
    let n_ops = arg(3, 1000);
    let capacity = arg(4, 1024) as u32;
    let symbol = arg(5, 0) as u32;
    let mut flow = Flow::new(arg(6, 1));
    let wait = Duration::from_secs_f64(args.get(7).map(|s| s.parse().expect("WAIT_S")).unwrap_or(60.0));

    let mut book = core::Book::new(capacity, symbol)
        .unwrap_or_else(|| fail(format!("capacity {}: must be a power of two, 2 .. 2^24", capacity)));
    let size = std::mem::size_of::<Op>();
    let mut ops_ring = zkring::Producer::open(&args[1], size)
        .unwrap_or_else(|e| fail(format!("ring {}: {} (is `zksidecar daemon` running?)", args[1], e)));
    let mut done_ring = zkring::Consumer::open(&args[2], std::mem::size_of::<Completion>())
        .unwrap_or_else(|e| fail(format!("ring {}: {} (is `zksidecar daemon` running?)", args[2], e)));

    let mut outbox: VecDeque<Op> = VecDeque::new(); // applied, not yet on the ring, in seq order
    let mut done = Done { symbol, ..Done::default() };
    let (mut applied, mut published, mut full_events, mut trades, mut rejected) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut last_beat = Instant::now();

    while published < n_ops {
        if applied < n_ops {
            let mut op = flow.draw(&book, applied + 1);
            op.seq = book.next_seq();
            op.ts_ns = wall_ns().max(book.last_ts());
            op.symbol = symbol;
            let fills = book.apply(&mut op).unwrap_or_else(|rc| fail(format!("core refused seq {}: {}", op.seq, rc)));
            trades += fills.len() as u64; // the engine's execution reports
            rejected += (op.status == records::STATUS_REJECTED) as u64;
            flow.remember(&op);
            outbox.push_back(op);
            applied += 1;
        }
        // publish the front of the outbox; never wait for the ring
        while let Some(op) = outbox.front() {
            match ops_ring.try_publish_record(op) {
                Ok(true) => {
                    outbox.pop_front();
                    published += 1;
                }
                Ok(false) => {
                    full_events += 1;
                    if applied == n_ops {
                        std::thread::yield_now();
                    }
                    break;
                }
                Err(e) => fail(format!("publish: {}", e)),
            }
        }
        if last_beat.elapsed() > HEARTBEAT {
            ops_ring.heartbeat();
            done_ring.heartbeat();
            last_beat = Instant::now();
        }
        done.read(&mut done_ring);
    }

    let deadline = Instant::now() + wait;
    while done.covered_ops < n_ops && Instant::now() < deadline {
        done.read(&mut done_ring);
        if last_beat.elapsed() > HEARTBEAT {
            ops_ring.heartbeat();
            done_ring.heartbeat();
            last_beat = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    ops_ring.mark_closed(); // a clean end: the daemon reports the engine "closed", not "dead"
    let root: String = done.last_root.iter().map(|b| format!("{:02x}", b)).collect();
    println!("engine (Rust): {} operations on symbol {}, {} resting at the end; root after seq {}: {}",
             n_ops, symbol, book.resting(), done.last_seq, root);
    println!("summary published={} full_events={} trades={} rejected={} completions={} proven_ops={} disagrees={} failed={} last_seq={}",
             published, full_events, trades, rejected, done.completions, done.proven_ops, done.disagrees, done.failed, done.last_seq);
    let ok = done.proven_ops == n_ops && done.disagrees == 0 && done.failed == 0;
    std::process::exit(if ok { 0 } else { 1 });
}
