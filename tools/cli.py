"""The `zksidecar` command.

    zksidecar selfcheck            check every kernel path against plain Python
    zksidecar bench SUITE [--json] [--plot PATH]
                                   measured figures beside same-run baselines
    zksidecar replay FILE          run a CSV or LOBSTER file through the engine
    zksidecar prove FILE           prove a file of operations, batch by batch, as one chain
    zksidecar verify PROOF...      verify batch proof files as a chain from the empty book
    zksidecar verify PROOF --after PREV
                                   verify a batch from its predecessor's post-state
    zksidecar verify --store DIR   verify every symbol's chain in a daemon's proof store
    zksidecar verify DIR           verify a chain `zksidecar export` wrote (manifest, then proofs)
    zksidecar verify ... [--jobs N] [--report FILE] [--since REPORT] [--progress]
                                   on N cores; write a verification report, or continue from one
    zksidecar receipt --store DIR --symbol S (--seq N... | --account A --batch B) --out FILE
                                   a zk batch's receipt for some operations (docs/ZK.md)
    zksidecar verify-receipt RECEIPT PROOF [--chain DIR]
                                   check a receipt against its verified batch proof
    zksidecar export --store DIR --symbol S --out DIR2
                                   a symbol's chain as proof files and a manifest
    zksidecar reprove --config F [--symbol S]
                                   prove damaged stored proofs again from the journal (daemon stopped)
    zksidecar store prune|archive STORE (--older-than AGE | --keep N) [--to DIR]
                                   remove a proof store's old segments, or move them out
    zksidecar daemon [--config F]  run the sidecar: ring -> journal -> shadow book -> proofs
    zksidecar daemon --check-config [--config F]
                                   check a configuration as the daemon would at start, then exit
    zksidecar rings list|clean [NAME...]
                                   ring segments left in /dev/shm; clean removes unused ones
    zksidecar stats [--once]       the running daemon's figures as a live table
    zksidecar loadgen [--ops N]    a reference engine publishing a synthetic flow to the daemon
    zksidecar demo [--seconds S] [--rate R] [--ops N] [--plot PATH] [--zk]
                                   daemon + reference engine end to end, then every proof verified
    zksidecar prover-server        the native prover behind the external prover protocol (stdin/stdout)
    zksidecar --version            the installed package's version

Every command's --help shows its options' defaults and an example; an
option it does not know is its own usage error (exit 2).
"""
from __future__ import annotations

import argparse
import os
import sys

from . import arg_types


def _selfcheck(args) -> int:
    from . import selfcheck

    return 0 if selfcheck.run(verbose=True) else 1


def _bench(args) -> int:
    from .bench import runner

    if args.plot:
        if args.suite in runner.SUITES and args.suite not in runner.PLOTTING:
            print(f"zksidecar bench: suite {args.suite} draws no plot (those that do: "
                  f"{', '.join(runner.PLOTTING)})", file=sys.stderr)
            return 2
        from . import plots

        if plots.check_or_exit_code("zksidecar bench"):     # before minutes of measuring
            return 2
    return runner.run(args.suite, args.json, args.plot, args.batches, args.overload_seconds, args.mode)


def _replay(args) -> int:
    from . import replay

    return replay.main(args.file, args.format, args.capacity, not args.no_trades, args.progress)


def _prove(args) -> int:
    from . import proofs

    return proofs.prove_main(args.file, args.format, args.capacity, args.batch_size, args.out,
                             args.security, args.trace_length, zk=args.zk, key=args.key, new_key=args.new_key)


def _verify(args) -> int:
    from . import proofs

    common = {"jobs": args.jobs, "report": args.report, "since": args.since,
              "progress": args.progress}
    if args.store is not None:
        if args.proofs or args.after:
            print("zksidecar verify: give proof files or --store DIR, not both (--after goes "
                  "with proof files)", file=sys.stderr)
            return 2
        return proofs.verify_store(args.store, args.min_security, out=sys.stdout,
                                   max_trace_length=args.max_trace_length, **common)
    if not args.proofs and not args.since:
        print("zksidecar verify: give proof files, or --store DIR", file=sys.stderr)
        return 2
    if args.after and (args.report or args.since):
        print("zksidecar verify: --after checks a batch from its predecessor alone; a report "
              "(--report, --since) covers a chain from the empty book", file=sys.stderr)
        return 2
    import os

    dirs = [p for p in args.proofs if os.path.isdir(p)]
    if dirs:
        if len(args.proofs) > 1 or args.after:
            print("zksidecar verify: an exported chain's directory is verified alone (no other "
                  "files, no --after)", file=sys.stderr)
            return 2
        return proofs.verify_exported(dirs[0], args.min_security, out=sys.stdout,
                                      max_trace_length=args.max_trace_length, **common)
    return proofs.verify_main(args.proofs, args.min_security,
                              max_trace_length=args.max_trace_length, after=args.after,
                              out=sys.stdout, **common)


def _receipt(args) -> int:
    from . import receipts

    return receipts.receipt_main(args.store, args.symbol, args.out, seqs=args.seq, account=args.account,
                                 batch=args.batch)


def _verify_receipt(args) -> int:
    from . import receipts

    return receipts.verify_receipt_main(args.receipt, args.proof, args.chain, args.min_security,
                                        max_trace_length=args.max_trace_length)


def _export(args) -> int:
    from . import proofs

    return proofs.export_main(args.store, args.symbol, args.out, out=sys.stdout)


def _reprove(args) -> int:
    from . import reprove

    return reprove.main(args.config, args.symbol, out=sys.stdout)


def _store(args) -> int:
    from . import retention

    return retention.main(args.store_command, args.dir, args.older_than, args.keep, args.symbol,
                          args.dry_run, getattr(args, "to", None), getattr(args, "progress", None))


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


def _rings(args) -> int:
    from . import rings

    if args.rings_command == "list":
        return rings.list_main(args.names)
    return rings.clean_main(args.names, discard_records=args.discard_records)


def _demo(args) -> int:
    from . import demo

    if args.plot:
        from . import plots

        if plots.check_or_exit_code("zksidecar demo"):
            return 2
    return demo.run(args.seconds, args.rate, args.ops, args.dir, plot=args.plot, zk=args.zk)


def _prover_server(args) -> int:
    from zksidecar.daemon import prover_server
    from zksidecar.daemon.malloc import keep_proof_buffers

    keep_proof_buffers()      # each job's arrays serve the next
    out = sys.stdout.buffer
    sys.stdout = sys.stderr   # the frames own stdout: a stray print must not corrupt them
    return prover_server.serve(sys.stdin.buffer, out)


def _loadgen(args) -> int:
    from . import loadgen

    return loadgen.run_args(args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zksidecar")
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


class _Formatter(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help already
    says what the default is or there is none to state (a flag, None); the
    example (the epilog) is printed as written, the description wrapped."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """A subcommand's parser: an argument it does not know is its own error
    (its usage, the argument, a near option name), exit 2 — not the top
    level's, which would show the top-level usage."""

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._near(extras)}")
        return namespace, extras

    def error(self, message):
        # a mistyped option, not what its absence then makes argparse say
        # first ("one of the arguments --older-than --keep is required")
        unknown = [a for a in getattr(self, "_given", ()) if self._unknown_option(a)]
        if unknown and not message.startswith("unrecognized arguments"):
            message = f"unrecognized arguments: {' '.join(unknown)}{self._near(unknown)}"
        super().error(message)

    def _unknown_option(self, arg: str) -> bool:
        """`--name` (or `--name=value`) that is no option of this command nor
        an abbreviation of one."""
        if not arg.startswith("--") or arg == "--":
            return False
        name = arg.split("=", 1)[0]
        return not any(o.startswith(name) for o in self._option_string_actions)

    def _near(self, extras: list[str]) -> str:
        import difflib

        known = [o for o in self._option_string_actions if o.startswith("--")]
        for arg in extras:
            if arg.startswith("--"):
                near = difflib.get_close_matches(arg.split("=", 1)[0], known, n=1)
                if near:
                    return f" (did you mean {near[0]}?)"
        return ""


def _command(sub, name: str, help: str, example: str, func=None, description: str | None = None):
    """A subcommand: its help as its description, `example` as its epilog."""
    c = sub.add_parser(name, help=help, description=description or help,
                       epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
                       formatter_class=_Formatter)
    if func is not None:
        c.set_defaults(func=func)
    return c


def _max_trace_length_option(command: argparse.ArgumentParser, default: int) -> None:
    """The verifier's cap on a proof's claimed heights: what a file of a few
    kilobytes can make it allocate (`verify`, `verify-receipt`)."""
    command.add_argument("--max-trace-length", type=arg_types.trace_length, default=default,
                         metavar="ROWS", help="refuse proofs claiming a taller book (capacity) or ops "
                         f"domain (default {default}: the tallest reaching 100 bits; a chain "
                         "verifier commits the empty book at the first proof's book height)")


def parser() -> argparse.ArgumentParser:
    from zksidecar.daemon.config import BOOK_MAX_CAPACITY, BOOK_MIN_CAPACITY
    from zksidecar.engine.replay import MAX_CAPACITY, MIN_CAPACITY
    from zksidecar.prover.orderbook.params import MAX_TRACE_LENGTH

    from .bench.runner import MODES, SUITES

    p = argparse.ArgumentParser(prog="zksidecar", description=__doc__.split("\n\n")[0],
                                epilog="`zksidecar COMMAND --help` for a command's options, "
                                       "their defaults and an example.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    _command(sub, "selfcheck", "check every kernel path against plain Python",
             "zksidecar selfcheck", _selfcheck)

    b = _command(sub, "bench", "run a benchmark suite",
                 "zksidecar bench kernels --json\n"
                 "zksidecar bench ring --json --plot docs/ring_latency.png\n"
                 "zksidecar bench verify --json --batches 64\n"
                 "zksidecar bench prover --json --mode zk", _bench)
    b.add_argument("suite", choices=sorted(SUITES), help="what to measure")
    b.set_defaults(runs_daemons=True)
    b.add_argument("--json", action="store_true", help="print one JSON object of figures")
    b.add_argument("--plot", metavar="PATH", help="write the suite's plot (PNG), if it has one")
    b.add_argument("--batches", type=arg_types.positive, default=None, metavar="N",
                   help="the verify suite's chain length (default 64 batches of 2^14 operations)")
    b.add_argument("--overload-seconds", type=arg_types.positive_seconds, default=None, metavar="S",
                   help="how long the e2e and overload suites offer 10x the proving rate "
                        "(default 60)")
    b.add_argument("--mode", choices=MODES, default=None,
                   help="prover suite: transparent (the default), or zk: the same batch proven in "
                        "zk mode too, alternated with the transparent proofs, and zk mode's figures "
                        "(rate, proof size, security, a receipt) beside the transparent ones")

    formats = ("auto", "csv", "lobster")
    format_help = "the file's form; auto: a LOBSTER message first, else the CSV header"
    r = _command(sub, "replay", "run a file of operations; print trades and the final digest",
                 "zksidecar replay ops.csv --no-trades\n"
                 "zksidecar replay AAPL_message_10.csv --format lobster --progress", _replay,
                 description="Run a file of operations (docs/MATCHING.md, \"Replay files\") "
                             "through the engine; print its trades as CSV, a summary and the "
                             "final digest.  A file with malformed lines is refused: each is "
                             "named as FILE:LINE (the first 20, and a count), exit 2.")
    r.add_argument("file", help="CSV (docs/MATCHING.md) or LOBSTER message file")
    r.add_argument("--format", choices=formats, default="auto", help=format_help)
    r.add_argument("--capacity", type=arg_types.capacity(MIN_CAPACITY, MAX_CAPACITY), default=1 << 20,
                   metavar="N", help=f"order slots (a power of two from {MIN_CAPACITY} "
                                     f"to 2^{MAX_CAPACITY.bit_length() - 1})")
    r.add_argument("--no-trades", action="store_true", help="print only the summary and digest")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: for files over 1 MiB on a terminal)")

    pr = _command(sub, "prove", "prove a file of operations as a chain of batch proofs",
                  "zksidecar prove ops.csv --out proofs --batch-size 256\n"
                  "zksidecar prove ops.csv --out zk-proofs --zk --key store.key --new-key\n"
                  "zksidecar verify proofs/batch-*.zkb", _prove,
                  description="Prove a file of operations (the forms of `zksidecar replay`) "
                              "batch by batch as one chain from the empty book; one "
                              "batch-NNNNNN.zkb file per batch.  A file with malformed lines "
                              "is refused before anything is proven: each is named as "
                              "FILE:LINE (the first 20, and a count), exit 2.")
    pr.add_argument("file", help="CSV (docs/MATCHING.md) or LOBSTER message file")
    pr.add_argument("--format", choices=formats, default="auto", help=format_help)
    pr.add_argument("--capacity", type=arg_types.capacity(BOOK_MIN_CAPACITY, BOOK_MAX_CAPACITY),
                    default=1 << 10, metavar="N",
                    help=f"order slots (a power of two from {BOOK_MIN_CAPACITY} to "
                         f"2^{BOOK_MAX_CAPACITY.bit_length() - 1})")
    pr.add_argument("--batch-size", type=int, default=1024, metavar="N", help="operations per proof")
    pr.add_argument("--trace-length", type=int, default=None, metavar="ROWS",
                    help="the cap on a batch proof's ops rows, a power of two up to 2^20: each batch is "
                         "proven at the rows it takes, up to this, and closes where it is full (default: "
                         "room for any one operation and 2 rows per operation of a batch)")
    pr.add_argument("--security", type=int, default=100, metavar="BITS", help="conjectured bits")
    pr.add_argument("--out", default="proofs", metavar="DIR",
                    help="directory for batch-NNNNNN.zkb files (holding none yet)")
    pr.add_argument("--zk", action="store_true",
                    help="zero-knowledge mode (docs/ZK.md): the files carry leaves, not records; every batch at "
                         "the one ops height of the chain (at most 2^15 rows), of at most --capacity "
                         "operations (the book domain checks one a row). Refuses an --out directory that "
                         "holds batch files: a batch proven twice reveals its state's mask twice, and outside "
                         "the daemon keeping each batch to one proof is the caller's duty")
    pr.add_argument("--key", metavar="FILE",
                    help="zk mode's store key: a file of exactly 32 bytes, mode 0600 (docs/ZK_KEYS.md, \"Key "
                         "file\"); every salt and mask derives from it, and the chain cannot continue without it")
    pr.add_argument("--new-key", action="store_true",
                    help="make --key FILE first (a new key from the operating system; refused if FILE exists)")

    v = _command(sub, "verify", "verify batch proof files, or a proof store, as chains",
                 "zksidecar verify proofs/batch-*.zkb\n"
                 "zksidecar verify proofs/batch-000007.zkb --after proofs/batch-000006.zkb\n"
                 "zksidecar verify --store var/proofs --report monday.json\n"
                 "zksidecar verify --store var/proofs --since monday.json --report tuesday.json\n"
                 "zksidecar verify chain-AAPL/          # an exported chain", _verify)
    v.add_argument("proofs", nargs="*", help="batch proof files, in chain order; or one directory "
                   "`zksidecar export` wrote (its manifest's digests, then its chain)")
    v.add_argument("--store", metavar="DIR", help="a daemon's proof store: every symbol's chain")
    v.add_argument("--after", metavar="PREV",
                   help="the previous batch's proof file: the proofs given must continue it "
                        "(their first pre-state is its post-state, batch ids and sequence "
                        "numbers follow on) instead of starting from the empty book; PREV is "
                        "itself verified, alone")
    v.add_argument("--min-security", type=arg_types.security_bits, default=100, metavar="BITS",
                   help="refuse weaker proofs (0 to 122; 0: any)")
    v.add_argument("--jobs", type=arg_types.positive, default=None, metavar="N",
                   help="processes verifying proofs (default: every core this process may use); "
                        "the links are checked in chain order, the verdict is the same")
    v.add_argument("--report", metavar="FILE",
                   help="when the chain verifies, write a verification report (docs/FORMATS.md): "
                        "per symbol the last batch, its post-state, counts and a digest of the "
                        "proofs; --since FILE continues from it")
    v.add_argument("--since", metavar="REPORT",
                   help="continue from a report (--report) instead of the empty book, once the "
                        "proofs it covers hash to its digest (files it covers may be given again "
                        "first: they are skipped)")
    v.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress line on stderr: batches and operations per second, ETA "
                        "(default: on a terminal)")
    _max_trace_length_option(v, MAX_TRACE_LENGTH)

    rc = _command(sub, "receipt", "a receipt of some operations of a zk batch, from a zk proof store "
                                  "or its archive",
                  "zksidecar receipt --store var/proofs --symbol 7 --seq 1042 --out 1042.zkr\n"
                  "zksidecar receipt --store var/proofs --symbol 7 --account 31 --batch 12 --out acct31.zkr\n"
                  "zksidecar receipt --store /archive/proofs --symbol 7 --seq 17 --out 17.zkr",
                  _receipt,
                  description="A receipt (docs/ZK.md section 8, docs/FORMATS.md \"Receipt\") of operations of "
                              "one zk batch, chosen by sequence number or by account, made from the store's "
                              "proof, the batch's private file and the store key (the store's private/key: "
                              "run as the daemon's user). What the daemon's admin socket serves as GET "
                              "/receipt. Of a batch `zksidecar store archive --to DIR` archived: --store DIR "
                              "(or DIR/symbol-S), whose archived proof, private file and batch key give the "
                              "same receipt.")
    rc.add_argument("--store", required=True, metavar="DIR",
                    help="the daemon's zk proof store, or an archive `zksidecar store archive` wrote")
    rc.add_argument("--symbol", required=True, type=int, metavar="S")
    rc.add_argument("--seq", type=int, action="append", metavar="N",
                    help="an operation's sequence number (repeat for more, all of one batch)")
    rc.add_argument("--account", type=int, metavar="A", help="every operation of this account in --batch")
    rc.add_argument("--batch", type=int, metavar="B", help="the batch of an --account receipt")
    rc.add_argument("--out", required=True, metavar="FILE", help="a new file for the receipt (- for stdout)")

    vr = _command(sub, "verify-receipt", "check a receipt against its batch proof (and chain)",
                  "zksidecar verify-receipt 1042.zkr chain-7/batch-000012.zkb --chain chain-7", _verify_receipt,
                  description="The trader's side of a receipt (docs/ZK.md section 8): decode it, verify the "
                              "batch proof (with --chain, the whole exported chain from the empty book, the "
                              "proof among its files), check the receipt against the proof's statement and "
                              "leaves, and print what was proven. Exit 1 when anything is refused (the "
                              "message names the check), 2 for a file or a --chain directory that cannot be read.")
    vr.add_argument("receipt", help="the receipt file")
    vr.add_argument("proof", help="the zk batch proof file it names")
    vr.add_argument("--chain", metavar="DIR", help="a chain `zksidecar export` wrote that holds PROOF")
    vr.add_argument("--min-security", type=arg_types.security_bits, default=100, metavar="BITS",
                    help="refuse weaker proofs (0 to 122; 0: any)")
    _max_trace_length_option(vr, MAX_TRACE_LENGTH)

    ex = _command(sub, "export", "copy a symbol's chain out of a proof store: its proof files "
                                 "and a manifest (docs/FORMATS.md) that `zksidecar verify DIR` checks",
                  "zksidecar export --store var/proofs --symbol 7 --out chain-7\n"
                  "zksidecar verify chain-7", _export)
    ex.add_argument("--store", required=True, metavar="DIR", help="the daemon's proof store")
    ex.add_argument("--symbol", required=True, type=int, metavar="S", help="the symbol to export")
    ex.add_argument("--out", required=True, metavar="DIR2",
                    help="a new or empty directory for the proof files and manifest.json")

    rp = _command(sub, "reprove", "prove again, from the journal, the stored proofs whose bytes "
                  "fail their checksums (docs/STORE.md, \"Proving a damaged proof again\")",
                  "zksidecar reprove --config /etc/zksidecar/zksidecar.toml", _reprove,
                  description="prove again, from the journal, the stored proofs whose bytes fail "
                  "their checksums, each checked to link with its stored neighbours, and store "
                  "them superseding the damaged bytes.  Run it with the daemon stopped (it takes "
                  "the journal's and the store's LOCK).  Exit 0 when every damaged proof was "
                  "proven again, 1 if one could not be (the journal no longer holds it: the "
                  "message says what is left), 2 for bad usage.  In zk mode a batch's private file is "
                  "written again with its proof.")
    rp.add_argument("--config", metavar="FILE", help="the daemon's configuration (default: "
                    "built-in defaults)")
    rp.add_argument("--symbol", type=int, metavar="S", help="only symbol S's proofs")

    so = _command(sub, "store", "the daemon's proof store: retention (docs/ADMIN.md)",
                  "zksidecar store prune var/proofs --older-than 30d --dry-run\n"
                  "zksidecar store archive var/proofs --keep 1000 --to /archive/proofs")
    ssub = so.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    for action, text, example in (
            ("prune", "remove whole store segments whose proofs are all old",
             "zksidecar store prune var/proofs --older-than 30d --dry-run\n"
             "zksidecar store prune var/proofs --keep 1000 --symbol 7"),
            ("archive", "move whole store segments whose proofs are all old to DIR, as "
                        "chains `zksidecar verify DIR/symbol-S` checks",
             "zksidecar store archive var/proofs --older-than 30d --to /archive/proofs\n"
             "zksidecar verify /archive/proofs/symbol-7")):
        sp = _command(ssub, action, text, example, _store, description=(
            text + ".  A segment goes only if every proof in it may: older than --older-than "
            "(its segment last written that long ago) or beyond the newest --keep batches of its "
            "symbol.  A symbol's newest batch always stays, and so does every batch after one "
            "that stays, and the segment being written.  The index keeps every archived batch "
            "as proven (the daemon never proves it again); `zksidecar verify --store` verifies "
            "each symbol from its first kept batch.  Refused (exit 2) while a daemon holds the "
            "store: set [store] retain for the daemon's own."))
        sp.add_argument("dir", metavar="STORE", help="the proof store directory (store.dir)")
        limit = sp.add_mutually_exclusive_group(required=True)
        limit.add_argument("--older-than", metavar="AGE",
                           help="proofs older than this go: a whole number and s, m, h or d")
        limit.add_argument("--keep", type=arg_types.positive, metavar="N",
                           help="keep each symbol's newest N batches (at least 1)")
        sp.add_argument("--symbol", type=int, metavar="S",
                        help="only symbol S's batches go (a segment holding other symbols' "
                             "proofs stays)")
        sp.add_argument("--dry-run", action="store_true",
                        help="say what would go; change nothing")
        if action == "archive":
            sp.add_argument("--to", required=True, metavar="DIR",
                            help="where the proofs go: DIR/symbol-S per symbol, with a "
                                 "manifest; an earlier archive there is extended")
            sp.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                            help="progress line on stderr while archiving (default: on a "
                                 "terminal)")

    d = _command(sub, "daemon", "run the sidecar daemon (docs/DAEMON.md)",
                 "zksidecar daemon --check-config --config /etc/zksidecar/zksidecar.toml\n"
                 "zksidecar daemon --config /etc/zksidecar/zksidecar.toml", _daemon)
    d.add_argument("--config", metavar="FILE", default=None,
                   help="TOML configuration (default: built-in defaults, state under ./var)")
    d.add_argument("--check-config", action="store_true",
                   help="check the configuration against every rule and this machine, print a "
                        "summary and exit (0 usable, 2 not); creates nothing")

    j = _command(sub, "journal", "the daemon's journal (docs/STORE.md)",
                 "zksidecar journal repair var/journal")
    jsub = j.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    jr = _command(jsub, "repair", "set aside a journal from its first corrupt entry on "
                                  "(renamed beside it, nothing deleted), so the daemon starts",
                  "zksidecar journal repair var/journal", _journal_repair)
    jr.add_argument("dir", help="the journal directory (journal.dir)")

    rg = _command(sub, "rings", "ring segments left in /dev/shm: list them, remove unused ones",
                  "zksidecar rings list\nzksidecar rings clean")
    rsub = rg.add_subparsers(dest="rings_command", required=True, metavar="ACTION")
    names_help = ("ring names (shm names, with or without the leading /); default: every "
                  "segment in /dev/shm named as the daemon names its rings (zksidecar-*)")
    rl = _command(rsub, "list", "each ring: size, mode and capacity, records waiting, consumer "
                                "and producers (pid and whether alive), processes mapping it",
                  "zksidecar rings list\nzksidecar rings list /zksidecar-alice-ops", _rings)
    rl.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    rc = _command(rsub, "clean", "remove empty rings whose consumer is not alive and that no "
                                 "live process maps (a live consumer's ring is never removed)",
                  "zksidecar rings clean\nzksidecar rings clean /zksidecar-alice-ops", _rings,
                  description="Remove each ring whose consumer is not alive, whose registered "
                              "producers are not alive, that no process maps and that holds no "
                              "unread record; the rest are listed with the reason they are kept.  "
                              "A ring holding records no consumer has read (operations published "
                              "while the daemon was down, completions the engine has not read) "
                              "is kept and named with its count, exit 1, unless "
                              "--discard-records.  A name given that is not a ring is refused "
                              "(exit 2) and left alone; without names, only rings named "
                              "zksidecar-* are considered and other files there are never "
                              "touched.")
    rc.add_argument("names", nargs="*", metavar="NAME", help=names_help)
    rc.add_argument("--discard-records", action="store_true",
                    help="remove an unused ring even if it holds unread records, which are lost "
                         "(an ops ring's operations are then never journaled or proven)")

    from . import loadgen

    lg = _command(sub, "loadgen", "a reference engine publishing a synthetic flow to the daemon",
                  "zksidecar loadgen --ops 20000 --rate 5000", _loadgen)
    loadgen.add_arguments(lg)

    from . import stats

    st = _command(sub, "stats", "the running daemon's figures as a live table",
                  "zksidecar stats\nzksidecar stats --once --json", _stats)
    stats.add_arguments(st)

    from . import demo

    dm = _command(sub, "demo", "the daemon and a reference engine end to end; every proof verified",
                  "zksidecar demo --seconds 10 --rate 2000", _demo)
    demo.add_arguments(dm)
    dm.set_defaults(runs_daemons=True)
    _command(sub, "prover-server", "prove batches sent as frames on stdin (docs/API.md)",
             "zksidecar prover-server < requests.bin > responses.bin\n"
             "ProcessBackend([\"zksidecar\", \"prover-server\"])   # the daemon's Python API "
             "starting it", _prover_server)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        # the kernels first: not built, or ZKSIDECAR_ISA naming a path this CPU
        # cannot run, is said in a line, not a traceback from whatever imports them
        from ..prover import native  # noqa: F401
    except ImportError as exc:
        print(f"zksidecar: {exc}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    restore_sigterm = _interrupt_on_sigterm() if getattr(args, "runs_daemons", False) else None
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    finally:
        if restore_sigterm is not None:
            restore_sigterm()


def _interrupt_on_sigterm():
    """SIGTERM (a `kill`, a CI job's timeout) as Ctrl-C, for the commands
    that start daemons of their own (`demo`, `bench`): their cleanup runs
    (each daemon stopped or killed, its rings removed), where the default
    action ended the command alone, its daemon left running and its rings
    in /dev/shm.  Returns what puts the previous handler back (None off the
    main thread, where no handler can be set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    global _interrupted_pid
    _interrupted_pid = os.getpid()
    before = signal.signal(signal.SIGTERM, _interrupt)
    return lambda: signal.signal(signal.SIGTERM, before)


#: the process whose SIGTERM is Ctrl-C (its forked children's is not)
_interrupted_pid = -1


def _interrupt(signum, frame):
    """Ctrl-C in the command's own process.  A process it forks (the ring
    bench's producer, the restart bench's executor workers) inherits this
    handler, and there a KeyboardInterrupt is no stop: an executor's worker
    reports it as its job's exception and lives on, and one raised in an
    at-fork hook is ignored (the child lived on).  There SIGTERM ends the
    process by the default action, as it did before the handler; the
    command's own process does the cleanup.  (The forks of `demo` and
    `bench` set the default action themselves, a SIGTERM in the instant
    after fork() included: tools/forks.py.)"""
    if os.getpid() != _interrupted_pid:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
