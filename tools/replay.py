"""`zksidecar replay FILE`: run a file of operations through a Book
(engine/replay.py reads the file forms, docs/MATCHING.md "Replay files"),
print its trades as CSV and the final digest.
"""
from __future__ import annotations

import csv
import os
import sys
from typing import TextIO

import numpy as np

from zksidecar.engine.book import Book
from zksidecar.engine.records import Side
from zksidecar.engine.replay import FileError, detect, read_csv, read_lobster, run


class Progress:
    """A one-line progress bar on stderr, by bytes read."""

    def __init__(self, f, total: int):
        self.f, self.total, self.stream, self.ops = f, max(total, 1), sys.stderr, 0

    def __call__(self, n: int) -> None:
        self.ops += n
        done = min(self.f.buffer.tell() if hasattr(self.f, "buffer") else 0, self.total) / self.total
        bar = "#" * int(done * 30)
        self.stream.write(f"\r[{bar:<30}] {done:6.1%} {self.ops:,} operations")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")


def main(path: str, fmt: str = "auto", capacity: int = 1 << 20, show_trades: bool = True,
         progress: bool | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        f = open(path, newline="")
    except OSError as exc:
        print(f"zksidecar replay: {exc}", file=sys.stderr)
        return 2
    with f:
        first = f.readline()
        f.seek(0)
        fmt = detect(first) if fmt == "auto" else fmt
        events = read_csv(f) if fmt == "csv" else read_lobster(f)
        total = os.fstat(f.fileno()).st_size
        if progress is None:
            progress = total > 1 << 20 and sys.stderr.isatty()
        bar = Progress(f, total) if progress else None
        book = Book(capacity)
        writer = csv.writer(out, lineterminator="\n")
        if show_trades:
            writer.writerow(("taker_seq", "price", "qty", "maker_handle", "taker_handle",
                             "maker_account", "taker_account", "taker_side"))

        def print_trades(trades: np.ndarray) -> None:
            if show_trades and len(trades):
                cols = trades[["taker_seq", "price", "qty", "maker_handle", "taker_handle",
                               "maker_account", "taker_account", "taker_side"]].tolist()
                writer.writerows((*row[:7], Side(row[7]).name) for row in cols)

        try:
            summary = run(events, book, print_trades, bar or (lambda n: None))
        except FileError as exc:
            print(f"zksidecar replay: {path}: {exc}", file=sys.stderr)
            return 2
        finally:
            if bar:
                bar.close()
    counts = ", ".join(f"{k.lower()} {v:,}" for k, v in sorted(summary.statuses.items()))
    print(f"# {summary.operations:,} operations ({counts}), {summary.trades:,} trades, "
          f"{summary.skipped:,} skipped, {len(book):,} resting", file=out)
    print(f"digest {book.digest().hex()}", file=out)
    return 0
