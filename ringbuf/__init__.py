"""zksidecar.ringbuf: the shared-memory ring between the engine and the sidecar.

    create(name, capacity, mode="spsc"|"mpsc")     make a segment (0600)
    (opening refuses a segment not owned by this user or wider than 0600 —
    RingForeign — and a second live consumer — RingBusy)
    Producer(name).publish(records) / try_publish(bytes)
    Consumer(name).drain(out) / poll(out, timeout)
    inspect(name) -> RingInfo                     its header and holders, no role taken

The layout and the lock-free algorithms are in csrc/ring/zkring.h (docs/RING.md).
"""
from .layout import RECORD_SIZE
from .ring import (Consumer, IdleStrategy, NotARing, Producer, RingBusy, RingCorrupt, RingError,
                   RingForeign, RingInfo, RingMissing, create, inspect, unlink)

__all__ = ["RECORD_SIZE", "Consumer", "IdleStrategy", "NotARing", "Producer", "RingBusy",
           "RingCorrupt", "RingError", "RingForeign", "RingInfo", "RingMissing", "create",
           "inspect", "unlink"]
