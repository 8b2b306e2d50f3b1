"""The `zksidecar` command.

    zksidecar selfcheck            check every kernel path against plain Python
    zksidecar bench SUITE [--json] [--plot PATH]
                                   measured figures beside same-run baselines
"""
from __future__ import annotations

import argparse
import sys


def _selfcheck(args) -> int:
    from zksidecar.prover import selfcheck

    return 0 if selfcheck.run(verbose=True) else 1


def _bench(args) -> int:
    from . import bench

    return bench.run(args.suite, args.json, args.plot)


def parser() -> argparse.ArgumentParser:
    from .bench import SUITES

    p = argparse.ArgumentParser(prog="zksidecar", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("selfcheck", help="check every kernel path against plain Python")
    s.set_defaults(func=_selfcheck)

    b = sub.add_parser("bench", help="run a benchmark suite")
    b.add_argument("suite", choices=sorted(SUITES), help="what to measure")
    b.add_argument("--json", action="store_true", help="print one JSON object of figures")
    b.add_argument("--plot", metavar="PATH", help="write the suite's plot (PNG), if it has one")
    b.set_defaults(func=_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
