"""The `zksidecar` command line itself: every subcommand's help (defaults, an
example), --version, a mistyped option reported by its own subcommand, and
malformed replay / prove input refused with FILE:LINE and exit 2, never a
traceback (issue 15, item 5)."""
from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys

import pytest

from zksidecar.engine import replay as reader
from zksidecar.tools.cli import main, parser

HEADER = "ts_ns,kind,side,price,qty,account,order_id"
GOOD_CSV = f"{HEADER}\n0,LIMIT,SELL,100,5,1,1\n1,LIMIT,BUY,100,2,2,2\n"
GOOD_LOBSTER = "34200.1,1,7,10,5853300,1\n34200.2,1,8,10,5853300,-1\n"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv) in this process: exit code, stdout, stderr (never a
    traceback: every refusal is a message)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def run_process(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser by its words ("journal repair" included)."""
    found = {}

    def walk(p: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[" ".join(words + (name,))] = sub
                    walk(sub, words + (name,))

    walk(parser(), ())
    return found


COMMANDS = commands()


def test_every_command_is_covered():
    assert {"selfcheck", "bench", "replay", "prove", "verify", "daemon", "journal",
            "journal repair", "loadgen", "stats", "demo", "prover-server", "rings", "rings list",
            "rings clean", "export"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_shows_defaults_and_an_example(command, capsys):
    code, out, err = run([*command.split(), "--help"], capsys)
    assert code == 0, err
    assert f"usage: zksidecar {command}" in out
    assert "\nexample:\n  zksidecar " in out or "\nexample:\n" in out
    example = out.split("\nexample:\n", 1)[1]
    assert example.strip(), "an empty example"
    # every option with a default to state says it (the flag-less ones: what it is)
    with_defaults = [a for a in COMMANDS[command]._actions
                     if a.option_strings and a.default not in (None, False, argparse.SUPPRESS)]
    stated = [a for a in COMMANDS[command]._actions if a.help and "default" in a.help]
    if with_defaults or stated:
        assert "default" in out.split("\nexample:\n", 1)[0]
    for action in with_defaults:
        assert action.help, f"{command} {action.option_strings[0]} has no help"


def test_help_names_each_default_value(capsys):
    _, out, _ = run(["prove", "--help"], capsys)
    flat = " ".join(out.split())
    for text in ("(default: 1024)", "(default: 100)", "(default: proofs)", "(default: auto)"):
        assert text in flat
    _, out, _ = run(["replay", "--help"], capsys)
    assert f"(default: {1 << 20})" in " ".join(out.split())


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"zksidecar {importlib.metadata.version('zksidecar')}"


def test_version_from_the_installed_command():
    done = run_process("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"zksidecar {importlib.metadata.version('zksidecar')}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_mistyped_option_is_the_subcommands_error(command, capsys):
    args = {"bench": ["kernels"], "replay": ["f"], "prove": ["f"], "journal repair": ["d"],
            "export": ["--store", "d", "--symbol", "1", "--out", "o"],
            "receipt": ["--store", "d", "--symbol", "1", "--out", "o"], "verify-receipt": ["r", "p"],
            "store prune": ["d", "--keep", "1"], "store archive": ["d", "--keep", "1", "--to", "a"]}
    argv = [*command.split(), *args.get(command, []), "--no-such-option"]
    if command == "journal":
        argv = ["journal", "repair", "d", "--no-such-option"]
        command = "journal repair"
    if command == "store":
        argv = ["store", "prune", "d", "--keep", "1", "--no-such-option"]
        command = "store prune"
    if command == "rings":
        argv = ["rings", "list", "--no-such-option"]
        command = "rings list"
    code, _, err = run(argv, capsys)
    assert code == 2
    assert f"usage: zksidecar {command} " in err
    assert f"zksidecar {command}: error: unrecognized arguments: --no-such-option" in err
    assert "usage: zksidecar [-h]" not in err


def test_daemon_confg(capsys):
    code, _, err = run(["daemon", "--confg", "x"], capsys)
    assert code == 2
    assert err.startswith("usage: zksidecar daemon ")
    assert "unrecognized arguments: --confg x (did you mean --config?)" in err
    done = run_process("daemon", "--confg", "x")             # the process, too
    assert done.returncode == 2 and "usage: zksidecar daemon " in done.stderr
    assert "Traceback" not in done.stderr


def test_a_mistyped_required_option_is_named_not_missing(capsys):
    """`--kep` for `--keep`: argparse would first say that one of the
    required --older-than/--keep is missing; the typo is what to fix.  An
    abbreviation of a real option is still one."""
    code, _, err = run(["store", "prune", "--kep", "3", "DIR"], capsys)
    assert code == 2
    assert "unrecognized arguments: --kep (did you mean --keep?)" in err and "is required" not in err
    code, _, err = run(["store", "prune", "DIR"], capsys)
    assert code == 2 and "one of the arguments --older-than --keep is required" in err
    code, _, err = run(["store", "prune", "--kee", "3", "/nonexistent-store"], capsys)
    assert "unrecognized" not in err and "/nonexistent-store" in err


# ---- malformed input: refused with FILE:LINE, exit 2, never a traceback ----

BIG = 1 << 32

# (name, file text, line, words in the message)
MALFORMED = [
    ("lobster-size", f"34200.1,1,7,10,5853300,1\n34200.2,1,8,{BIG},5853300,1\n", 2, "size"),
    ("lobster-price", f"34200.1,1,7,10,5853300,1\n34200.2,1,8,10,{BIG},-1\n", 2, "price"),
    ("lobster-price-of-execution", f"34200.1,1,7,10,5853300,1\n34200.2,4,7,10,{BIG + 5},1\n", 2,
     "price"),
    ("lobster-order-id", f"34200.1,1,7,10,5853300,1\n34200.2,3,{1 << 64},10,5853300,1\n", 2,
     "order id"),
    ("lobster-negative-order-id", "34200.1,1,-7,10,5853300,1\n", 1, "order id"),
    ("lobster-time", "34200.1,1,7,10,5853300,1\n99999999999.5,1,8,10,5853300,1\n", 2, "time"),
    ("csv-price", f"{HEADER}\n0,LIMIT,SELL,100,5,1,1\n1,LIMIT,SELL,{BIG},5,1,2\n", 3, "price"),
    ("csv-qty", f"{HEADER}\n0,LIMIT,SELL,100,{BIG},1,1\n", 2, "qty"),
    ("csv-order-id", f"{HEADER}\n0,LIMIT,SELL,100,5,1,{1 << 64}\n", 2, "order_id"),
    # int() alone takes these: other scripts' digits, underscores, two signs
    ("csv-fullwidth-digits", f"{HEADER}\n0,LIMIT,SELL,\uff11\uff10\uff11,5,1,1\n", 2,
     "price '\uff11\uff10\uff11' is not an integer"),
    ("csv-underscore", f"{HEADER}\n0,LIMIT,SELL,1_000,5,1,1\n", 2, "price '1_000' is not an integer"),
    ("csv-two-signs", f"{HEADER}\n0,LIMIT,SELL,+-5,5,1,1\n", 2, "price '+-5' is not an integer"),
    ("lobster-arabic-indic-size", "34200.1,1,7,\u0661\u0660,5853300,1\n", 1, "must be integers"),
    ("lobster-fullwidth-time", "\uff13\uff14200.1,1,7,10,5853300,1\n", 1, "time"),
    ("csv-misspelled-header", "ts_ns,kind,sied,price,qty,account,order_id\n0,LIMIT,SELL,1,1,1,1\n",
     1, f"not the CSV header {HEADER}: column 3 is 'sied', not 'side'"),
    ("csv-header-misspelled-first", "tsns,kind,side,price,qty,account,order_id\n0,LIMIT,SELL,1,1,1,1\n",
     1, f"not the CSV header {HEADER}: column 1 is 'tsns', not 'ts_ns'"),
    ("csv-no-header", "0,LIMIT,SELL,100,5,1,1\n", 1, f"not the CSV header {HEADER}"),
]
NON_UTF8 = (f"{HEADER}\n0,LIMIT,SELL,100,5,1,1\n".encode()
            + b"1,LIMIT,S\xffLL,100,5,1,2\n2,LIMIT,SELL,100,5,1,3\n")


def malformed_cases():
    for name, text, line, words in MALFORMED:
        yield pytest.param(text.encode(), line, words, id=name)
    yield pytest.param(NON_UTF8, 3, "not UTF-8 text (byte 0xff at column 10)", id="non-utf8")
    yield pytest.param(b"34200.1,1,7,10,5853300,1\n34200.2,1,8,10,58533\xe900,1\n", 2,
                       "not UTF-8 text (byte 0xe9 at column 21)", id="non-utf8-lobster")


@pytest.mark.parametrize("command", ["replay", "prove"])
@pytest.mark.parametrize("data,line,words", list(malformed_cases()))
def test_malformed_input_is_refused_with_its_line(command, data, line, words, tmp_path, capsys):
    path = tmp_path / "ops.txt"
    path.write_bytes(data)
    out_dir = tmp_path / "proofs"
    extra = ["--out", str(out_dir)] if command == "prove" else []
    code, out, err = run([command, str(path), *extra], capsys)
    assert code == 2
    assert err.startswith(f"zksidecar {command}: {path}:{line}: "), err
    assert words in err
    assert "Traceback" not in err
    # refused whole: no summary or digest, no proof
    assert "digest" not in out and "operations" not in out
    assert not out_dir.exists() or not any(out_dir.iterdir())


@pytest.mark.parametrize("command", ["replay", "prove"])
def test_malformed_input_from_the_process(command, tmp_path):
    """The cases of the issue, as a user runs them: exit 2, FILE:LINE, no traceback."""
    for name, data, line in [("size.txt", f"34200.2,1,8,{BIG},5853300,1\n".encode(), 1),
                             ("id.txt", f"34200.2,1,{1 << 64},1,5853300,1\n".encode(), 1),
                             ("bytes.csv", NON_UTF8, 3),
                             ("header.csv", b"ts_ns,knd,side,price,qty,account,order_id\n", 1)]:
        (tmp_path / name).write_bytes(data)
        done = run_process(command, name, cwd=tmp_path)
        assert done.returncode == 2, (name, done.stderr)
        assert f"zksidecar {command}: {name}:{line}: " in done.stderr
        assert "Traceback" not in done.stderr
    (tmp_path / "ok.csv").write_text(GOOD_CSV)
    done = run_process(command, "ok.csv", "--capacity", "3", cwd=tmp_path)
    assert done.returncode == 2
    assert f"usage: zksidecar {command} " in done.stderr
    assert "argument --capacity: capacity must be a power of two" in done.stderr
    assert "not 3" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["replay", "prove"])
@pytest.mark.parametrize("capacity", ["3", "0", "-16", "1.5", str(1 << 40)])
def test_capacity_out_of_range(command, capacity, tmp_path, capsys):
    path = tmp_path / "ops.csv"
    path.write_text(GOOD_CSV)
    code, _, err = run([command, str(path), "--capacity", capacity], capsys)
    assert code == 2
    assert f"usage: zksidecar {command} " in err and "--capacity" in err


def test_capacity_from_the_library_functions(tmp_path, capsys):
    from zksidecar.tools import proofs, replay

    path = tmp_path / "ops.csv"
    path.write_text(GOOD_CSV)
    assert replay.main(str(path), capacity=3) == 2
    assert "capacity must be a power of two from 2 to 2^24" in capsys.readouterr().err
    assert proofs.prove_main(str(path), "auto", 1 << 21, 4, str(tmp_path), 100) == 2
    assert "capacity must be a power of two from 16 to 2^19" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["replay", "prove"])
def test_every_bad_line_is_named_up_to_a_bound(command, tmp_path, capsys):
    rows = [f"{i},LIMIT,SELL,{100 + i},5,1,{i + 1}" for i in range(60)]
    bad = list(range(3, 60, 2))                        # 29 bad rows: lines 5, 7, ... 61
    for i in bad:
        rows[i] = f"{i},LIMIT,SELL,{BIG},5,1,{i + 1}"
    path = tmp_path / "ops.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    code, out, err = run([command, str(path), *(["--out", str(tmp_path / "p")]
                                                 if command == "prove" else [])], capsys)
    assert code == 2
    lines = err.splitlines()
    shown = [i + 2 for i in bad[:reader.MAX_SHOWN]]
    assert lines[:-1] == [f"zksidecar {command}: {path}:{n}: price {BIG} is out of range "
                          f"(0 to 2^32 - 1)" for n in shown]
    assert lines[-1] == (f"zksidecar {command}: {path}: {len(bad)} malformed lines "
                         f"(the first {reader.MAX_SHOWN} shown); the file is refused")
    assert "digest" not in out


def test_a_wrong_format_is_named(tmp_path, capsys):
    path = tmp_path / "ops.csv"
    path.write_text(GOOD_CSV)
    code, _, err = run(["replay", str(path), "--format", "lobster"], capsys)
    assert code == 2
    assert f"{path}:1: " in err and "LOBSTER message files have none" in err
    path.write_text(GOOD_LOBSTER)
    code, _, err = run(["replay", str(path), "--format", "csv"], capsys)
    assert code == 2 and f"{path}:1: not the CSV header {HEADER}" in err


def test_what_the_records_hold_is_accepted(tmp_path, capsys):
    """The bounds are the records' (docs/FORMATS.md): order ids are u64
    (2^63 and 2^64 - 1 run), prices and sizes u32 (2^32 - 1 runs); a UTF-8
    byte order mark before the header is not part of it; a negative LOBSTER
    size or price is the engine's to reject, not the reader's."""
    path = tmp_path / "ops.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n0,LIMIT,SELL,{BIG - 1},{BIG - 1},1,{1 << 63}\n"
                     f"1,CANCEL,,,,,{1 << 63}\n2,LIMIT,BUY,1,1,1,{(1 << 64) - 1}\n".encode())
    code, out, err = run(["replay", str(path), "--no-trades"], capsys)
    assert code == 0, err
    assert out.startswith("# 3 operations (")
    path.write_text(f"34200.1,1,{(1 << 64) - 1},{BIG - 1},{BIG - 1},1\n34200.2,1,9,-5,-1,1\n"
                    f"34200.3,7,-1,0,-1,-1\n")
    code, out, err = run(["replay", str(path), "--no-trades"], capsys)
    assert code == 0, err
    assert "2 operations" in out and "1 skipped" in out


def test_the_reader_refuses_rather_than_runs_part(tmp_path):
    """read() yields nothing past the first bad line, then names them all."""
    path = tmp_path / "ops.csv"
    path.write_text(f"{HEADER}\n0,LIMIT,SELL,1,1,1,1\n1,NOPE,SELL,1,1,1,2\n2,LIMIT,SELL,1,1,1,3\n"
                    f"3,LIMIT,SELL,1,1,1,{1 << 64}\n")
    seen = []
    with open(path, "rb") as f, pytest.raises(reader.FileError) as refused:
        for event in reader.read(f):
            seen.append(event)
    assert [e.order_id for e in seen] == [1]
    assert [n for n, _ in refused.value.problems] == [3, 5]
    assert refused.value.count == 2


def test_bench_mode_is_the_prover_suites_and_one_of_two(capsys):
    # refused before anything is measured (the suite would take seconds)
    code, out, err = run(["bench", "kernels", "--mode", "zk"], capsys)
    assert code == 2 and out == ""
    assert "--mode applies to suite prover, not kernels" in err
    code, out, err = run(["bench", "prover", "--mode", "fast"], capsys)
    assert code == 2 and out == ""
    assert "--mode: invalid choice: 'fast'" in err and "'transparent', 'zk'" in err
    # the runner, called without the command line, refuses it as well
    from zksidecar.tools.bench import runner

    assert runner.run("prover", True, mode="ZK") == 2
    assert "--mode is transparent or zk, not 'ZK'" in capsys.readouterr().err


def _wait_for_sigterm(running) -> None:
    import time

    running.set()
    time.sleep(60)


def test_a_process_forked_under_the_sigterm_handler_still_dies_of_sigterm():
    """`demo` and `bench` take SIGTERM as Ctrl-C in their own process; a
    process one of them forks (the ring bench's producer, the restart
    bench's ProcessPoolExecutor workers) inherits Python's handlers, and
    with that one a SIGTERM (pool.terminate(), a CI timeout's kill of the
    process group) became a KeyboardInterrupt: a traceback and exit 1, and
    in an executor's worker the job's exception while the worker lived on.
    It ends by the signal, as it did before the handler; the handler is
    put back after."""
    import multiprocessing
    import signal

    from zksidecar.tools import cli

    before = signal.getsignal(signal.SIGTERM)
    restore = cli._interrupt_on_sigterm()
    try:
        fork = multiprocessing.get_context("fork")
        running = fork.Event()
        child = fork.Process(target=_wait_for_sigterm, args=(running,))
        child.start()
        # once it runs (a signal in the instant after fork() is dropped by
        # Python's own after-fork reset, whatever the handler)
        assert running.wait(30)
        child.terminate()
        child.join(30)
        assert child.exitcode == -signal.SIGTERM
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is before
