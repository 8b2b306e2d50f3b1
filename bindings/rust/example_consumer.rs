//! example_consumer.rs — a Rust consumer draining the tests' records:
//!   zkring_rust_consumer NAME COUNT ID [RELEASE_AT]
//! (the record layout of bindings/example_engine.c: u64 seq, u32 id, u32
//! zero, u64 payload[i] = seq * 0x9E3779B97F4A7C15 + id + i).  Checks that the
//! records of producer ID arrive in order from the ring's current position
//! and intact, and prints "received COUNT position P".  With RELEASE_AT the
//! consumer opens with deferred release, releases once it has RELEASE_AT
//! records and exits after COUNT without releasing the rest (a crash after
//! RELEASE_AT: the next consumer gets the rest again).  Built by the tests
//! with `rustc --edition=2021 -O bindings/rust/example_consumer.rs`.
mod zkring;

use std::time::Duration;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TestRecord {
    seq: u64,
    id: u32,
    zero: u32,
    payload: [u64; 6],
}
// Safety: repr(C), no padding, any bits valid.
unsafe impl zkring::records::Record for TestRecord {}

fn fail(msg: String) -> ! {
    eprintln!("zkring_rust_consumer: {}", msg);
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: {} NAME COUNT ID [RELEASE_AT]", args[0]);
        std::process::exit(2);
    }
    let count: u64 = args[2].parse().expect("COUNT");
    let id: u32 = args[3].parse().expect("ID");
    let release_at: Option<u64> = args.get(4).map(|s| s.parse().expect("RELEASE_AT"));
    let mut ring = zkring::Consumer::open_with(&args[1], 64, false, release_at.is_some())
        .unwrap_or_else(|e| fail(e.to_string()));
    let mut batch = [TestRecord::default(); 256];
    let mut got: u64 = 0;
    let mut next: Option<u64> = None; // the first record sets where the stream resumes
    while got < count {
        // release() frees everything polled so far: poll no further than
        // RELEASE_AT before it.
        let until = match release_at { Some(at) if got < at => at, _ => count };
        let want = (until - got).min(256) as usize;
        let bytes = unsafe { std::slice::from_raw_parts_mut(batch.as_mut_ptr() as *mut u8, want * 64) };
        let n = ring.poll_wait(bytes, Duration::from_secs(20)).unwrap_or_else(|e| fail(format!("poll: {}", e)));
        if n == 0 {
            eprintln!("zkring_rust_consumer: nothing for 20 s at record {}", got);
            std::process::exit(3);
        }
        for r in &batch[..n] {
            let expect = next.unwrap_or(r.seq);
            let intact = (0..6u64).all(|i| r.payload[i as usize] == r.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(id as u64 + i));
            if r.seq != expect || r.id != id || r.zero != 0 || !intact {
                fail(format!("bad record after {} (seq {}, expected {}, id {})", got, r.seq, expect, r.id));
            }
            next = Some(r.seq + 1);
            got += 1;
            if release_at == Some(got) {
                ring.release();
            }
        }
    }
    // Typed polling agrees with the byte API (a zero-length poll is a no-op).
    let _ = ring.poll_records::<TestRecord>(&mut []).unwrap_or_else(|e| fail(format!("poll_records: {}", e)));
    println!("received {} position {}", got, ring.position());
}
