//! example.rs — a Rust engine publishing the tests' records:
//!   zkring_rust_example NAME COUNT [ID]
//! (the record layout of bindings/example_engine.c).  Built by the tests
//! with `rustc --edition=2021 -O bindings/rust/example.rs`.  Test patterns
//! for the ring's tests, not operation records (a daemon refuses them): the
//! Rust engine attached to the sidecar is examples/rust/engine.rs
//! (docs/INTEGRATION.md).
mod zkring;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} NAME COUNT [ID]", args[0]);
        std::process::exit(2);
    }
    let count: u64 = args[2].parse().expect("COUNT");
    let id: u32 = args.get(3).map_or(0, |s| s.parse().expect("ID"));
    let mut ring = zkring::Producer::open(&args[1], 64).unwrap_or_else(|e| {
        eprintln!("zkring_rust_example: {}", e);
        std::process::exit(1);
    });
    let mut rec = [0u8; 64];
    for seq in 0..count {
        rec[0..8].copy_from_slice(&seq.to_le_bytes());
        rec[8..12].copy_from_slice(&id.to_le_bytes());
        for i in 0..6u64 {
            let word = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(id as u64 + i);
            rec[16 + 8 * i as usize..24 + 8 * i as usize].copy_from_slice(&word.to_le_bytes());
        }
        while !ring.try_publish(&rec).expect("publish") {
            std::thread::yield_now(); // full: let the consumer run
        }
        if seq % 65536 == 0 {
            ring.heartbeat();
        }
    }
}
