//! rust_layout.rs — prints every size, field offset and field size of the
//! Rust record structs (bindings/rust/zk_records.rs), and their constants,
//! for tests/test_rust_client.py to compare with the C header
//! csrc/formats/zk_records.h as the C compiler laid it out.
#[path = "../../bindings/rust/zk_records.rs"]
mod zk_records;

use std::mem::{offset_of, size_of, size_of_val};
use zk_records::*;

macro_rules! fields {
    ($c:literal, $t:ty, $($f:ident),+) => {{
        let v: $t = Default::default();
        println!("size {} {}", $c, size_of::<$t>());
        $( println!("field {} {} {} {}", $c, stringify!($f), offset_of!($t, $f), size_of_val(&v.$f)); )+
    }};
}

fn main() {
    fields!("zk_op", Op, seq, ts_ns, handle, client_id, price, qty, account, symbol, kind, side, flags,
            filled, trades, status, reason, reserved);
    fields!("zk_trade", Trade, taker_seq, maker_handle, taker_handle, price, qty, maker_account,
            taker_account, symbol, taker_side, reserved);
    fields!("zk_completion", Completion, batch_id, first_seq, symbol, op_count, post_state_root,
            status, version, reserved, proof_index);
    for (name, v) in [
        ("ZK_RECORDS_VERSION", RECORDS_VERSION as u64), ("ZK_MAX_PRICE", MAX_PRICE as u64),
        ("ZK_MAX_QTY", MAX_QTY as u64),
        ("ZK_KIND_LIMIT", KIND_LIMIT as u64), ("ZK_KIND_IOC", KIND_IOC as u64),
        ("ZK_KIND_MARKET", KIND_MARKET as u64), ("ZK_KIND_FOK", KIND_FOK as u64),
        ("ZK_KIND_POST_ONLY", KIND_POST_ONLY as u64), ("ZK_KIND_CANCEL", KIND_CANCEL as u64),
        ("ZK_KIND_REDUCE", KIND_REDUCE as u64),
        ("ZK_SIDE_BUY", SIDE_BUY as u64), ("ZK_SIDE_SELL", SIDE_SELL as u64),
        ("ZK_FLAG_CLAIMED", FLAG_CLAIMED as u64), ("ZK_FLAG_CRITICAL", FLAG_CRITICAL as u64),
        ("ZK_FLAGS_KNOWN", FLAGS_KNOWN as u64),
        ("ZK_STATUS_RESTED", STATUS_RESTED as u64), ("ZK_STATUS_FILLED", STATUS_FILLED as u64),
        ("ZK_STATUS_EXPIRED", STATUS_EXPIRED as u64), ("ZK_STATUS_CANCELLED", STATUS_CANCELLED as u64),
        ("ZK_STATUS_REDUCED", STATUS_REDUCED as u64), ("ZK_STATUS_REJECTED", STATUS_REJECTED as u64),
        ("ZK_REASON_NONE", REASON_NONE as u64), ("ZK_REASON_BAD_KIND", REASON_BAD_KIND as u64),
        ("ZK_REASON_BAD_SIDE", REASON_BAD_SIDE as u64), ("ZK_REASON_BAD_PRICE", REASON_BAD_PRICE as u64),
        ("ZK_REASON_BAD_QTY", REASON_BAD_QTY as u64), ("ZK_REASON_BAD_FLAGS", REASON_BAD_FLAGS as u64),
        ("ZK_REASON_UNKNOWN_HANDLE", REASON_UNKNOWN_HANDLE as u64),
        ("ZK_REASON_STALE_HANDLE", REASON_STALE_HANDLE as u64),
        ("ZK_REASON_WOULD_CROSS", REASON_WOULD_CROSS as u64),
        ("ZK_REASON_FOK_UNFILLABLE", REASON_FOK_UNFILLABLE as u64),
        ("ZK_REASON_BOOK_FULL", REASON_BOOK_FULL as u64),
        ("ZK_COMPLETION_PROVEN", COMPLETION_PROVEN as u64),
        ("ZK_COMPLETION_DISAGREES", COMPLETION_DISAGREES as u64),
        ("ZK_COMPLETION_FAILED", COMPLETION_FAILED as u64), ("ZK_NO_PROOF", NO_PROOF as u64),
    ] {
        println!("const {} {}", name, v);
    }
}
