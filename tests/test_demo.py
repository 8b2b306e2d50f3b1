"""`zksidecar demo`, briefly: a real daemon and a real reference engine in
their own processes, a few hundred operations, and the summary's claims
checked against the proof store itself.  And the demo's one dangerous act,
wiping its state directory, refused for a directory it did not make."""
from __future__ import annotations

import os
import re

import pytest

from zksidecar.daemon.store import ProofStore
from zksidecar.prover.orderbook import proof_file
from zksidecar.tools import cli, demo


def test_demo_proves_and_verifies_everything(tmp_path, capsys):
    state = tmp_path / "demo"
    code = cli.main(["demo", "--ops", "700", "--rate", "700", "--dir", str(state)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "OK: every operation proven and every proof verified" in text
    assert re.search(r"operations\s+700 published by the engine .* 700 ingested, 700 proven", text), text
    assert "verified 1 symbols" in text
    # the summary's figures are the store's: every operation once, in order
    with ProofStore(str(state / "proofs"), fsync=False, readonly=True) as store:
        ids = store.batches(0)
        seqs = [int(s) for b in ids for s in proof_file.decode(store.get(0, b)).public.ops["seq"]]
    assert ids == list(range(len(ids)))
    assert seqs == list(range(1, 701))
    assert re.search(rf"proofs verified\s+{len(ids)} of {len(ids)} in the store", text), text
    assert re.search(r"batches\s+%d proven, 0 failed" % len(ids), text), text
    # the demo's rings are gone
    ring = re.search(r"through rings (\S+) and (\S+)", text)
    for name in ring.groups():
        assert not os.path.exists("/dev/shm/" + name.lstrip("/"))
    # plain progress lines when the output is not a terminal
    assert "\r" not in text and re.search(r"published\s+[\d,]+\s+ingested", text)


def test_demo_wipes_only_its_own_directory(tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    assert demo.run(n_ops=10, rate=10, state_dir=str(precious)) == 2
    assert "refusing to wipe" in capsys.readouterr().err
    assert (precious / "keep.txt").read_text() == "mine"
    # a directory an earlier demo made is wiped
    made = demo.fresh_dir(str(tmp_path / "old"))
    (tmp_path / "old" / "stale").write_text("x")
    assert demo.fresh_dir(made) == made and os.listdir(made) == [demo.MARKER]


def test_toml_text_round_trips_through_the_config_loader(tmp_path):
    from zksidecar.daemon.config import load

    path = tmp_path / "c.toml"
    path.write_text(demo.toml_text({"ring": {"ops": 'a"b\\c', "capacity": 1 << 12},
                                    "workers": {"count": 2, "cores": [0, 1]},
                                    "store": {"fsync": False}}))
    cfg = load(str(path))
    assert cfg.ring.ops == 'a"b\\c' and cfg.ring.capacity == 4096
    assert cfg.workers.cores == (0, 1) and cfg.store.fsync is False
    path.write_text(demo.toml_text({"workers": {"stop_grace_s": 1.5}}))
    assert load(str(path)).workers.stop_grace_s == 1.5
    with pytest.raises(TypeError):
        demo.toml_text({"ring": {"capacity": None}})


def test_sigterm_stops_the_demo_as_ctrl_c_does(tmp_path):
    """A `kill` of the demo (SIGTERM, as a CI job's timeout sends): the
    daemon is stopped and the demo's rings removed, exit status 130 and
    `interrupted`, as for Ctrl-C (the CLI's handling of the commands that
    run daemons, `demo` and `bench`); the default action ended the demo
    alone, its daemon left running and both rings in /dev/shm."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "zksidecar.tools.cli", "demo", "--ops", "100000",
                             "--rate", "500", "--dir", str(tmp_path / "demo")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = proc.stdout.readline()
        rings = re.search(r"through rings (\S+) and (\S+)", head).groups()
        while "published" not in proc.stdout.readline():      # the engine is running
            pass
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "zksidecar demo: interrupted" in err and "Traceback" not in err
    for name in rings:
        assert not os.path.exists("/dev/shm/" + name.lstrip("/"))
