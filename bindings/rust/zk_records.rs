//! zk_records.rs — the operation, trade and completion records of
//! csrc/formats/zk_records.h as `#[repr(C)]` structs, in Rust with std only.
//!
//! The C header is the definition (docs/FORMATS.md documents each byte);
//! these structs restate it field for field, and tests/test_rust_client.py
//! compiles a C program printing every size and offset from the header and a
//! Rust one printing them from these structs, and compares the two.  The
//! compile-time checks below catch a changed size here; the test catches a
//! field moved on either side.  Little-endian only, like the header.
#![allow(dead_code)] // a library module: an engine uses what it needs

#[cfg(not(target_endian = "little"))]
compile_error!("zk_records.rs: records are little-endian and read in place; this target is not");

/// Record layout version (ZK_RECORDS_VERSION).
/// 2: the completion record names its symbol and carries this version.
pub const RECORDS_VERSION: u32 = 2;
pub const MAX_PRICE: u32 = 939_524_096;
pub const MAX_QTY: u32 = 939_524_096;

// Operation kinds (Op::kind); 0 is invalid.
pub const KIND_LIMIT: u8 = 1;
pub const KIND_IOC: u8 = 2;
pub const KIND_MARKET: u8 = 3;
pub const KIND_FOK: u8 = 4;
pub const KIND_POST_ONLY: u8 = 5;
pub const KIND_CANCEL: u8 = 6;
pub const KIND_REDUCE: u8 = 7;
// Sides (Op::side, Trade::taker_side); 0 is invalid.
pub const SIDE_BUY: u8 = 1;
pub const SIDE_SELL: u8 = 2;
// Op::flags
pub const FLAG_CLAIMED: u16 = 1;
pub const FLAG_CRITICAL: u16 = 2;
pub const FLAGS_KNOWN: u16 = 3;
// Op::status; 0 = not processed.
pub const STATUS_RESTED: u8 = 1;
pub const STATUS_FILLED: u8 = 2;
pub const STATUS_EXPIRED: u8 = 3;
pub const STATUS_CANCELLED: u8 = 4;
pub const STATUS_REDUCED: u8 = 5;
pub const STATUS_REJECTED: u8 = 6;
// Op::reason, set exactly when the status is REJECTED.
pub const REASON_NONE: u8 = 0;
pub const REASON_BAD_KIND: u8 = 1;
pub const REASON_BAD_SIDE: u8 = 2;
pub const REASON_BAD_PRICE: u8 = 3;
pub const REASON_BAD_QTY: u8 = 4;
pub const REASON_BAD_FLAGS: u8 = 5;
pub const REASON_UNKNOWN_HANDLE: u8 = 6;
pub const REASON_STALE_HANDLE: u8 = 7;
pub const REASON_WOULD_CROSS: u8 = 8;
pub const REASON_FOK_UNFILLABLE: u8 = 9;
pub const REASON_BOOK_FULL: u8 = 10;
// Completion::status
pub const COMPLETION_PROVEN: u8 = 1;
pub const COMPLETION_DISAGREES: u8 = 2;
pub const COMPLETION_FAILED: u8 = 3;
/// Completion::proof_index when there is no proof.
pub const NO_PROOF: u32 = u32::MAX;

/// Operation record, engine -> daemon, 64 bytes (zk_op).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Op {
    pub seq: u64,
    pub ts_ns: u64,
    pub handle: u64,
    pub client_id: u64,
    pub price: u32,
    pub qty: u32,
    pub account: u32,
    pub symbol: u32,
    pub kind: u8,
    pub side: u8,
    pub flags: u16,
    pub filled: u32,
    pub trades: u32,
    pub status: u8,
    pub reason: u8,
    pub reserved: u16,
}

/// Trade record, one per fill, 48 bytes (zk_trade).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trade {
    pub taker_seq: u64,
    pub maker_handle: u64,
    pub taker_handle: u64,
    pub price: u32,
    pub qty: u32,
    pub maker_account: u32,
    pub taker_account: u32,
    pub symbol: u32,
    pub taker_side: u8,
    pub reserved: [u8; 3],
}

/// Completion record, daemon -> engine, 64 bytes (zk_completion): batch
/// `batch_id` of `symbol` is operations first_seq ..= last_seq().  Check
/// `layout_ok()` before using a record: one of another layout version
/// (a version-1 daemon leaves 0 in `version`) must be refused, not read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    pub batch_id: u64,
    pub first_seq: u64,
    pub symbol: u32,
    pub op_count: u32,
    pub post_state_root: [u8; 32],
    pub status: u8,
    pub version: u8,
    pub reserved: u16,
    pub proof_index: u32,
}

impl Completion {
    /// Whether the record is of this build's layout (RECORDS_VERSION).
    pub fn layout_ok(&self) -> bool {
        self.version as u32 == RECORDS_VERSION
    }

    /// The batch's last operation (inclusive); op_count is at least 1 in
    /// any record layout_ok() accepts.
    pub fn last_seq(&self) -> u64 {
        self.first_seq.wrapping_add(self.op_count as u64).wrapping_sub(1)
    }
}

const _: () = assert!(std::mem::size_of::<Op>() == 64);
const _: () = assert!(std::mem::size_of::<Trade>() == 48);
const _: () = assert!(std::mem::size_of::<Completion>() == 64);

/// A fixed-size record that may be copied to and from a ring's slots as
/// bytes: `#[repr(C)]`, no padding, every bit pattern valid.
///
/// # Safety
/// Implement only for such types (the three above are).
pub unsafe trait Record: Copy + Default {}
unsafe impl Record for Op {}
unsafe impl Record for Trade {}
unsafe impl Record for Completion {}
