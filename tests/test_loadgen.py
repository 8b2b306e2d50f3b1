"""The reference engine (tools/loadgen.py) as docs/INTEGRATION.md asks an
engine to behave: it heartbeats while it publishes and paces, marks its
stream closed, gives up on a ring that stays full (saying the consumer is
not alive), and refuses to restart a symbol's stream the daemon already has
instead of having every record refused in silence."""
from __future__ import annotations

import pytest

from ring_helpers import ring_name
from test_cli import run as cli
from zksidecar import ringbuf
from zksidecar.tools import loadgen


@pytest.fixture
def rings():
    """An ops ring and a completion ring of 16 records, removed after."""
    names = (ring_name(), ring_name())
    for n in names:
        ringbuf.create(n, 16)
    yield names
    for n in names:
        ringbuf.unlink(n, missing_ok=True)


def test_heartbeats_while_pacing_and_closes_the_stream(rings, monkeypatch):
    """One chunk at 64 ops/s: the run sleeps about a second for its rate,
    heartbeating on the way (a silent producer is `stale` to the daemon
    after ingest.producer_stale_s), and ends the stream `closed`."""
    ops_ring, _ = rings
    beats = []
    real = ringbuf.Producer.heartbeat
    monkeypatch.setattr(ringbuf.Producer, "heartbeat", lambda self: (beats.append(1), real(self)))
    with ringbuf.Consumer(ops_ring) as c:
        ops = loadgen.flow(loadgen.CHUNK, seed=1, capacity=64)
        rep = loadgen.run(ops_ring, None, ops[:16], 64, rate=16.0)
        # 16 ops at 16/s: a second asleep, a heartbeat every HEARTBEAT_S of it
        assert rep.published == 16 and rep.unpublished == 0
        assert len(beats) >= 3, beats
        assert c.peer_status() == "closed"


def test_a_full_ring_without_a_consumer_is_given_up_on(rings):
    """More operations than the ring holds and nobody consuming: the run
    stops once the ring has taken nothing for full_timeout, counting what is
    left and the consumer's state (it had hung there)."""
    ops_ring, _ = rings
    ops = loadgen.flow(100, seed=2, capacity=64)
    rep = loadgen.run(ops_ring, None, ops, 64, full_timeout=0.1)
    assert (rep.published, rep.unpublished, rep.consumer) == (16, 84, "none")


def _config(tmp_path, ops_ring: str, completions_ring: str):
    path = tmp_path / "z.toml"
    path.write_text(f'[ring]\nops = "{ops_ring}"\ncompletions = "{completions_ring}"\n'
                    f'[book]\ncapacity = 64\n[admin]\nsocket = "{tmp_path}/a.sock"\n')
    return str(path)


def test_the_command_says_the_ring_is_full_and_the_daemon_not_running(rings, tmp_path, capsys):
    config = _config(tmp_path, *rings)
    code, out, err = cli(["loadgen", "--config", config, "--ops", "100", "--rate", "0",
                          "--wait", "0.1"], capsys)
    assert code == 1
    assert "published 16 operations" in out
    assert (f"the ops ring {rings[0]} stayed full for 0.1 s and its consumer is none "
            "(is `zksidecar daemon` running?): 84 operations not published") in err


def test_the_command_says_why_nothing_came_back_with_no_daemon(rings, tmp_path, capsys):
    config = _config(tmp_path, *rings)
    code, _, err = cli(["loadgen", "--config", config, "--ops", "10", "--rate", "0",
                        "--wait", "0"], capsys)
    assert code == 1
    assert "the daemon is not running (the ops ring's consumer is none)" in err
    assert f"wait in the ring {rings[0]} for its next start" in err


def test_a_symbol_the_daemon_has_is_refused_naming_a_free_one():
    status = {"symbols": {"0": {"next_seq": 3001}, "1": {"next_seq": 1}, "2": {"next_seq": 7}}}
    why = loadgen._stream_taken(status, 0, max_symbols=256)
    assert "already has operations 1..3000 of symbol 0" in why and "replayed" in why
    assert "(--symbol 3)" in why and "Engine restarts" in why
    assert loadgen._stream_taken(status, 1, 256) is None           # known, no operations yet
    assert loadgen._stream_taken(status, 5, 256) is None
    assert loadgen._stream_taken(None, 0, 256) is None              # no daemon to ask
    assert "max_symbols = 3 symbols already" in loadgen._stream_taken(status, 2, max_symbols=3)


def test_refused_records_are_named_as_the_reason():
    rep = loadgen.LoadReport(published=500, consumer="alive")
    why = loadgen._shortfall(rep, 500, 5.0, "/r-o", {"counts": {"rejected": 2}},
                             {"counts": {"rejected": 502}})
    assert why.startswith("the daemon refused 500 of the records")
    why = loadgen._shortfall(rep, 500, 5.0, "/r-o", {"counts": {"rejected": 2}},
                             {"counts": {"rejected": 2}})
    assert "0 of 500 operations proven within --wait 5 s" in why


def test_against_a_daemon_alive_throughout_and_continued_by_its_journal(tmp_path, capsys):
    """A daemon that calls a producer stale after 0.5 s silent sees the
    command alive while it paces, then closed.  A second run of the symbol
    without the journal is refused before it publishes (exit 2, naming a
    free symbol); with it, the stream continues (seq 201 on, from the book
    rebuilt) and is proven without a divergence; a journal that does not
    end where the daemon's stream does is refused."""
    from daemon_helpers import Daemon

    d = Daemon(tmp_path, settings={"ingest": {"producer_stale_s": 0.5}})
    journal = str(tmp_path / "engine.journal")
    try:
        d.start()
        argv = ["loadgen", "--config", str(d.config), "--ops", "200", "--wait", "120"]
        code, out, err = cli(argv + ["--rate", "100", "--journal", journal], capsys)
        assert code == 0, err
        assert "200 operations" in out
        d.wait_for(lambda st: st["ring"]["producer"] == "closed", what="the stream closed")
        assert "is stale" not in d.logs()
        code, out, err = cli(argv, capsys)
        assert code == 2 and out == ""
        assert "already has operations 1..200 of symbol 0" in err and "(--symbol 1)" in err
        code, out, err = cli(argv + ["--rate", "0", "--seed", "9", "--journal", journal], capsys)
        assert code == 0, err
        st = d.status()
        assert st["symbols"]["0"]["next_seq"] == 401 and st["counts"]["divergences"] == 0
        assert st["counts"]["rejected"] == 0
        assert len(loadgen.read_journal(journal, 0, 64)) == 400
        other = str(tmp_path / "other.journal")
        code, _, err = cli(argv + ["--journal", other, "--symbol", "1"], capsys)   # a new stream
        assert code == 0, err
        with open(journal, "r+b") as f:          # the journal cut to 300: not where the daemon is
            f.truncate(16 + 300 * 64)
        code, out, err = cli(argv + ["--journal", journal], capsys)
        assert code == 2 and "has operations 1..400 of symbol 0 and the journal 1..300" in err
        assert d.stop() == 0
    finally:
        d.cleanup()


def test_a_journal_that_does_not_re_apply_is_refused(tmp_path):
    """The journal must be this symbol's and capacity's, of this version,
    whole records, the stream from seq 1, and re-apply to the outcomes it
    claims."""
    ops = loadgen.flow(100, seed=3, capacity=64)
    book = loadgen.Book(64, 0)
    book.process(ops)
    path = tmp_path / "j"
    header = loadgen.journal_header(0, 64)
    path.write_bytes(header + ops.tobytes())
    assert len(loadgen.rebuild(loadgen.read_journal(str(path), 0, 64), 64, 0)) == len(book)
    for symbol, capacity in ((1, 64), (0, 128)):
        with pytest.raises(loadgen.JournalError, match="a journal of symbol 0 on a book of 64 slots"):
            loadgen.read_journal(str(path), symbol, capacity)
    cases = {
        "not an engine journal": ops.tobytes(),
        "engine journal version 2, this build reads 1": header[:4] + b"\2\0" + header[6:] + ops.tobytes(),
        "operation records of layout version 9": header[:6] + b"\x09\0" + header[8:],
        "not a whole number": header + ops.tobytes()[:-1],
        "not one stream of symbol 0 from seq 1": header + ops[1:].tobytes(),
    }
    for why, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(loadgen.JournalError, match=why):
            loadgen.read_journal(str(path), 0, 64)
    lie = ops.copy()
    lie["filled"][50] += 1
    with pytest.raises(loadgen.JournalError, match="seq 51 re-applies to another outcome"):
        loadgen.rebuild(lie, 64, 0)
    assert len(loadgen.read_journal(str(tmp_path / "none"), 0, 64)) == 0      # a first run
    with pytest.raises(loadgen.JournalError, match="not a regular file"):      # not read forever
        loadgen.read_journal("/dev/zero", 0, 64)


def test_the_journal_header_is_as_documented():
    from format_docs import check_byte_table

    check_byte_table("## Engine journal header", loadgen.JOURNAL_HEADER)
    assert loadgen.journal_header(7, 1024)[:4] == b"ZKEJ"
