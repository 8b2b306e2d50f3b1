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


def test_against_a_daemon_alive_throughout_and_a_second_run_refused(tmp_path, capsys):
    """A daemon that calls a producer stale after 0.5 s silent sees the
    command alive while it paces, then closed; a second run of the same
    symbol is refused before it publishes (exit 2, naming a free symbol),
    and one of that symbol is proven."""
    from daemon_helpers import Daemon

    d = Daemon(tmp_path, settings={"ingest": {"producer_stale_s": 0.5}})
    try:
        d.start()
        argv = ["loadgen", "--config", str(d.config), "--ops", "200", "--rate", "100",
                "--wait", "120"]
        code, out, err = cli(argv, capsys)
        assert code == 0, err
        assert "200 operations" in out
        d.wait_for(lambda st: st["ring"]["producer"] == "closed", what="the stream closed")
        assert "is stale" not in d.logs()
        code, out, err = cli(argv, capsys)
        assert code == 2 and out == ""
        assert "already has operations 1..200 of symbol 0" in err and "(--symbol 1)" in err
        code, _, err = cli(argv[:-4] + ["--symbol", "1", "--rate", "0", "--wait", "120"], capsys)
        assert code == 0, err
        assert d.stop() == 0
    finally:
        d.cleanup()
