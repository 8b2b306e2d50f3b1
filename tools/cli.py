"""The `zksidecar` command.

    zksidecar selfcheck            check every kernel path against plain Python
    zksidecar bench SUITE [--json] [--plot PATH]
                                   measured figures beside same-run baselines
    zksidecar replay FILE          run a CSV or LOBSTER file through the engine
    zksidecar prove FILE           prove a file of operations, batch by batch, as one chain
    zksidecar verify PROOF...      verify batch proof files as a chain from the empty book
    zksidecar verify --store DIR   verify every symbol's chain in a daemon's proof store
    zksidecar daemon [--config F]  run the sidecar: ring -> journal -> shadow book -> proofs
    zksidecar daemon --check-config [--config F]
                                   check a configuration as the daemon would at start, then exit
    zksidecar stats [--once]       the running daemon's figures as a live table
    zksidecar loadgen [--ops N]    a reference engine publishing a synthetic flow to the daemon
    zksidecar demo [--seconds S] [--rate R] [--ops N]
                                   daemon + reference engine end to end, then every proof verified
    zksidecar prover-server        the native prover behind the external prover protocol (stdin/stdout)
"""
from __future__ import annotations

import argparse
import sys


def _selfcheck(args) -> int:
    from . import selfcheck

    return 0 if selfcheck.run(verbose=True) else 1


def _bench(args) -> int:
    from .bench import runner

    return runner.run(args.suite, args.json, args.plot)


def _replay(args) -> int:
    from . import replay

    return replay.main(args.file, args.format, args.capacity, not args.no_trades, args.progress)


def _prove(args) -> int:
    from . import proofs

    return proofs.prove_main(args.file, args.format, args.capacity, args.batch_size, args.out,
                             args.security, args.trace_length)


def _verify(args) -> int:
    from . import proofs

    if args.store is not None:
        if args.proofs:
            print("zksidecar verify: give proof files or --store DIR, not both", file=sys.stderr)
            return 2
        return proofs.verify_store(args.store, args.min_security, out=sys.stdout,
                                   max_trace_length=args.max_trace_length)
    if not args.proofs:
        print("zksidecar verify: give proof files, or --store DIR", file=sys.stderr)
        return 2
    return proofs.verify_main(args.proofs, args.min_security,
                              max_trace_length=args.max_trace_length)


def _stats(args) -> int:
    from . import stats

    return stats.run(args.socket, args.interval, 1 if args.once else None, args.json)


def _daemon(args) -> int:
    if args.check_config:
        from zksidecar.daemon.config import check_main

        return check_main(args.config)
    from zksidecar.daemon import service

    return service.main(args.config)


def _journal_repair(args) -> int:
    from zksidecar.daemon.journal import JournalError, set_aside_corruption

    try:
        notes = set_aside_corruption(args.dir)
    except (JournalError, OSError) as exc:
        print(f"zksidecar journal repair: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(note)
    print("the journal is intact" if not notes else
          "done: the daemon's next start rebuilds from the proof store what it proves")
    return 0


def _demo(args) -> int:
    from . import demo

    return demo.run(args.seconds, args.rate, args.ops, args.dir)


def _prover_server(args) -> int:
    from zksidecar.daemon import prover_server

    out = sys.stdout.buffer
    sys.stdout = sys.stderr   # the frames own stdout: a stray print must not corrupt them
    return prover_server.serve(sys.stdin.buffer, out)


def _loadgen(args) -> int:
    from . import loadgen

    return loadgen.run_args(args)


def _trace_length(text: str) -> int:
    from zksidecar.prover.params import MAX_LOG_TRACE

    try:
        n = int(text, 0)
    except ValueError:
        n = 0
    if n < 16 or n & (n - 1) or n > 1 << MAX_LOG_TRACE:
        raise argparse.ArgumentTypeError(f"a trace length is a power of two from 16 to "
                                         f"2^{MAX_LOG_TRACE}, not {text!r}")
    return n


def parser() -> argparse.ArgumentParser:
    from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH

    from .bench.runner import SUITES

    p = argparse.ArgumentParser(prog="zksidecar", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("selfcheck", help="check every kernel path against plain Python")
    s.set_defaults(func=_selfcheck)

    b = sub.add_parser("bench", help="run a benchmark suite")
    b.add_argument("suite", choices=sorted(SUITES), help="what to measure")
    b.add_argument("--json", action="store_true", help="print one JSON object of figures")
    b.add_argument("--plot", metavar="PATH", help="write the suite's plot (PNG), if it has one")
    b.set_defaults(func=_bench)

    r = sub.add_parser("replay", help="run a file of operations; print trades and the final digest")
    r.add_argument("file", help="CSV (docs/MATCHING.md) or LOBSTER message file")
    r.add_argument("--format", choices=("auto", "csv", "lobster"), default="auto")
    r.add_argument("--capacity", type=int, default=1 << 20, help="order slots (a power of two)")
    r.add_argument("--no-trades", action="store_true", help="print only the summary and digest")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: for files over 1 MiB on a terminal)")
    r.set_defaults(func=_replay)

    pr = sub.add_parser("prove", help="prove a file of operations as a chain of batch proofs")
    pr.add_argument("file", help="CSV (docs/MATCHING.md) or LOBSTER message file")
    pr.add_argument("--format", choices=("auto", "csv", "lobster"), default="auto")
    pr.add_argument("--capacity", type=int, default=1 << 10, help="order slots (a power of two)")
    pr.add_argument("--batch-size", type=int, default=1024, help="operations per proof")
    pr.add_argument("--trace-length", type=int, default=None,
                    help="rows per proof, fixed for the chain (default: room for any one operation and 2 rows per operation of a batch)")
    pr.add_argument("--security", type=int, default=100, help="conjectured bits")
    pr.add_argument("--out", default="proofs", help="directory for batch-NNNNNN.zkb files")
    pr.set_defaults(func=_prove)

    v = sub.add_parser("verify", help="verify batch proof files, or a proof store, as chains")
    v.add_argument("proofs", nargs="*", help="batch proof files, in chain order")
    v.add_argument("--store", metavar="DIR", help="a daemon's proof store: every symbol's chain")
    v.add_argument("--min-security", type=int, default=100, help="refuse weaker proofs")
    v.add_argument("--max-trace-length", type=_trace_length, default=MAX_TRACE_LENGTH,
                   metavar="ROWS", help="refuse proofs claiming longer traces (default "
                   f"{MAX_TRACE_LENGTH}: the longest reaching 100 bits; a chain verifier commits the "
                   "empty book at the first proof's length)")
    v.set_defaults(func=_verify)

    d = sub.add_parser("daemon", help="run the sidecar daemon (docs/DAEMON.md)")
    d.add_argument("--config", metavar="FILE", default=None,
                   help="TOML configuration (default: built-in defaults, state under ./var)")
    d.add_argument("--check-config", action="store_true",
                   help="check the configuration against every rule and this machine, print a "
                        "summary and exit (0 usable, 2 not); creates nothing")
    d.set_defaults(func=_daemon)

    j = sub.add_parser("journal", help="the daemon's journal (docs/STORE.md)")
    jsub = j.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    jr = jsub.add_parser("repair", help="set aside a journal from its first corrupt entry on "
                                        "(renamed beside it, nothing deleted), so the daemon starts")
    jr.add_argument("dir", help="the journal directory (journal.dir)")
    jr.set_defaults(func=_journal_repair)

    from . import loadgen

    lg = sub.add_parser("loadgen", help="a reference engine publishing a synthetic flow to the daemon")
    loadgen.add_arguments(lg)
    lg.set_defaults(func=_loadgen)

    from . import stats

    st = sub.add_parser("stats", help="the running daemon's figures as a live table")
    stats.add_arguments(st)
    st.set_defaults(func=_stats)
    from . import demo

    dm = sub.add_parser("demo", help="the daemon and a reference engine end to end; every proof verified")
    demo.add_arguments(dm)
    dm.set_defaults(func=_demo)
    ps = sub.add_parser("prover-server", help="prove batches sent as frames on stdin (docs/API.md)")
    ps.set_defaults(func=_prover_server)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
