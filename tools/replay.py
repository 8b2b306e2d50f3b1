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
from zksidecar.engine.replay import FileError, check_capacity, read, run
from zksidecar.prover import input_file


class Progress:
    """A one-line progress bar on stderr, by bytes read."""

    def __init__(self, f, total: int):
        self.f, self.total, self.stream, self.ops = f, max(total, 1), sys.stderr, 0

    def __call__(self, n: int) -> None:
        self.ops += n
        done = min(self.f.tell(), self.total) / self.total
        bar = "#" * int(done * 30)
        self.stream.write(f"\r[{bar:<30}] {done:6.1%} {self.ops:,} operations")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")


def main(path: str, fmt: str = "auto", capacity: int = 1 << 20, show_trades: bool = True,
         progress: bool | None = None, out: TextIO | None = None) -> int:
    """Exit 0 with the trades, summary and digest; 2, with every problem on
    stderr as `zksidecar replay: FILE:LINE: what is wrong`, for a file that
    cannot be opened or has malformed lines (refused whole: no summary, no
    digest) or a capacity the engine does not build."""
    out = out or sys.stdout
    problem = check_capacity(capacity)
    if problem:
        print(f"zksidecar replay: {problem}", file=sys.stderr)
        return 2
    try:
        f = input_file.open_regular(path)
    except OSError as exc:
        print(f"zksidecar replay: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    with f:
        total = os.fstat(f.fileno()).st_size
        if progress is None:
            progress = total > 1 << 20 and sys.stderr.isatty()
        bar = Progress(f, total) if progress else None
        book = Book(capacity)
        writer = csv.writer(out, lineterminator="\n")
        header = [show_trades]   # the trades' header, written with the first chunk run

        def write_header() -> None:
            if header[0]:
                writer.writerow(("taker_seq", "price", "qty", "maker_handle", "taker_handle",
                                 "maker_account", "taker_account", "taker_side"))
                header[0] = False

        def print_trades(trades: np.ndarray) -> None:
            write_header()
            if show_trades and len(trades):
                cols = trades[["taker_seq", "price", "qty", "maker_handle", "taker_handle",
                               "maker_account", "taker_account", "taker_side"]].tolist()
                writer.writerows((*row[:7], Side(row[7]).name) for row in cols)

        try:
            summary = run(read(f, fmt), book, print_trades, bar or (lambda n: None))
        except FileError as exc:
            if bar:
                bar.close()
                bar = None
            for line in exc.report(path):
                print(f"zksidecar replay: {line}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"zksidecar replay: {path}: {exc}", file=sys.stderr)
            return 2
        finally:
            if bar:
                bar.close()
    write_header()
    counts = ", ".join(f"{k.lower()} {v:,}" for k, v in sorted(summary.statuses.items()))
    print(f"# {summary.operations:,} operations ({counts}), {summary.trades:,} trades, "
          f"{summary.skipped:,} skipped, {len(book):,} resting", file=out)
    print(f"digest {book.digest().hex()}", file=out)
    return 0
