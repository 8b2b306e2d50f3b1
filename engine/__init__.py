"""zksidecar.engine"""

from .book import Book, CorruptState, Outcome, StreamError
from .records import Kind, Reason, Side, Status

__all__ = ["Book", "CorruptState", "Outcome", "StreamError", "Kind", "Reason", "Side", "Status"]
