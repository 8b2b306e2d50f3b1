"""`zksidecar prove` and `zksidecar verify` on a small CSV file."""
import io
import pathlib

from sample_ops import CSV
from zksidecar.tools import proofs
from zksidecar.tools.cli import main


def test_prove_then_verify(tmp_path: pathlib.Path):
    src = tmp_path / "ops.csv"
    src.write_text(CSV)
    out = io.StringIO()
    assert proofs.prove_main(str(src), "auto", 16, 4, str(tmp_path / "p"), 100, out=out) == 0
    files = sorted((tmp_path / "p").glob("batch-*.zkb"))
    assert [f.name for f in files] == ["batch-000000.zkb", "batch-000001.zkb", "batch-000002.zkb"]
    assert "10 operations in batches of up to 4" in out.getvalue()
    out = io.StringIO()
    assert proofs.verify_main([str(f) for f in files], 100, out=out) == 0
    assert "verified 3 batches (10 operations)" in out.getvalue()
    # through the command line too
    assert main(["verify", *map(str, files)]) == 0
    # out of order, or a file missing from the chain: rejected
    assert proofs.verify_main([str(files[1]), str(files[0])], 100, out=io.StringIO()) == 1
    assert proofs.verify_main([str(files[0]), str(files[2])], 100, out=io.StringIO()) == 1
    # a damaged file: a clear error, exit 2 (unreadable) or 1 (does not verify)
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 0x10
    bad = tmp_path / "bad.zkb"
    bad.write_bytes(bytes(raw))
    assert proofs.verify_main([str(files[0]), str(bad)], 100, out=io.StringIO()) in (1, 2)
    bad.write_bytes(bytes(raw[:100]))
    assert proofs.verify_main([str(files[0]), str(bad)], 100, out=io.StringIO()) == 2


def test_bad_arguments(tmp_path: pathlib.Path, capsys):
    src = tmp_path / "ops.csv"
    src.write_text(CSV)
    assert proofs.prove_main(str(src), "auto", 24, 4, str(tmp_path), 100) == 2
    assert "power of two" in capsys.readouterr().err
    assert proofs.prove_main(str(tmp_path / "missing.csv"), "auto", 16, 4, str(tmp_path), 100) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert proofs.prove_main(str(src), "auto", 16, 4, str(tmp_path), 100, trace_length=8) == 2
    (tmp_path / "empty.csv").write_text("ts_ns,kind,side,price,qty,account,order_id\n")
    assert proofs.prove_main(str(tmp_path / "empty.csv"), "auto", 16, 4, str(tmp_path), 100) == 2
    assert "no operations" in capsys.readouterr().err


def test_proving_a_file_twice_gives_the_same_bytes(tmp_path: pathlib.Path):
    """A proof is a function of its inputs: the same file, parameters and
    pre-state give byte-identical proof files (nothing time- or
    run-dependent enters a transcript)."""
    src = tmp_path / "ops.csv"
    src.write_text(CSV)
    for run in ("a", "b"):
        assert proofs.prove_main(str(src), "auto", 16, 4, str(tmp_path / run), 100,
                                 out=io.StringIO()) == 0
    first = sorted((tmp_path / "a").glob("batch-*.zkb"))
    second = sorted((tmp_path / "b").glob("batch-*.zkb"))
    assert [f.name for f in first] == [f.name for f in second] and first
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))


def test_prove_refuses_an_out_directory_holding_proofs(tmp_path: pathlib.Path, capsys):
    """A second `prove` into a directory of batch files is refused: its
    proofs would be written over the first chain's, leaving two chains'
    files mixed.  Nothing there changes."""
    src = tmp_path / "ops.csv"
    src.write_text(CSV)
    assert proofs.prove_main(str(src), "auto", 16, 4, str(tmp_path / "p"), 100, out=io.StringIO()) == 0
    before = {f.name: f.read_bytes() for f in (tmp_path / "p").iterdir()}
    assert proofs.prove_main(str(src), "auto", 16, 4, str(tmp_path / "p"), 100, out=io.StringIO()) == 2
    assert "batch-000000.zkb exists" in capsys.readouterr().err
    assert {f.name: f.read_bytes() for f in (tmp_path / "p").iterdir()} == before


def _chain(tmp_path: pathlib.Path) -> list[pathlib.Path]:
    src = tmp_path / "ops.csv"
    src.write_text(CSV)
    assert proofs.prove_main(str(src), "auto", 16, 4, str(tmp_path / "p"), 100,
                             out=io.StringIO()) == 0
    return sorted((tmp_path / "p").glob("batch-*.zkb"))


def test_verify_one_batch_after_its_predecessor(tmp_path: pathlib.Path, capsys):
    """`verify BATCH --after PREV`: BATCH checked from PREV's post-state;
    a wrong predecessor is refused naming both batches by their ids."""
    files = _chain(tmp_path)
    assert main(["verify", str(files[2]), "--after", str(files[1])]) == 0
    out = capsys.readouterr().out
    assert "verified batch 2 " in out and "continuing batch 1" in out and str(files[1]) in out
    assert main(["verify", str(files[1]), str(files[2]), "--after", str(files[0])]) == 0
    assert "batches 1..2" in capsys.readouterr().out
    # the wrong predecessor: batch 0 is not batch 2's; batch 2 is not batch 1's
    assert main(["verify", str(files[2]), "--after", str(files[0])]) == 1
    err = capsys.readouterr().err
    assert "REJECTED: batch 2 follows batch 0" in err and str(files[2]) in err
    assert main(["verify", str(files[1]), "--after", str(files[2])]) == 1
    assert "REJECTED: batch 1 follows batch 2" in capsys.readouterr().err
    # the right batch id after a predecessor of another chain: the pre-state is not its post-state
    other = tmp_path / "other.csv"
    other.write_text(CSV.replace("0,LIMIT,SELL,101,5,1,1", "0,LIMIT,SELL,102,5,1,1"))
    assert proofs.prove_main(str(other), "auto", 16, 4, str(tmp_path / "q"), 100,
                             out=io.StringIO()) == 0
    foreign = sorted((tmp_path / "q").glob("batch-*.zkb"))[1]
    assert main(["verify", str(files[2]), "--after", str(foreign)]) == 1
    assert "REJECTED: batch 2: its pre-state is not the previous post-state" in \
        capsys.readouterr().err
    # a missing predecessor file: exit 2, named
    assert main(["verify", str(files[2]), "--after", str(tmp_path / "nope.zkb")]) == 2
    assert "nope.zkb" in capsys.readouterr().err
    # --after with --store is a usage error
    assert main(["verify", "--store", str(tmp_path), "--after", str(files[0])]) == 2


def test_verify_messages_name_batch_ids(tmp_path: pathlib.Path, capsys):
    """A forged proof's failure names its batch id (not its position among
    the files), and the file."""
    files = _chain(tmp_path)
    raw = bytearray(files[2].read_bytes())
    raw[-200] ^= 0x01                      # inside the STARK proof: decodes, does not verify
    files[2].write_bytes(bytes(raw))
    assert main(["verify", *map(str, files)]) == 1
    err = capsys.readouterr().err
    assert "REJECTED: batch 2: " in err and str(files[2]) in err and "Traceback" not in err
    assert main(["verify", str(files[2]), "--after", str(files[1])]) == 1
    assert "REJECTED: batch 2: " in capsys.readouterr().err
    # the predecessor itself forged: named by its id
    assert main(["verify", str(files[0]), "--after", str(files[2])]) == 1
    assert "REJECTED: batch 2: " in capsys.readouterr().err
    assert main(["verify", *map(str, files[:2])]) == 0
    assert "batch ids 0..1" in capsys.readouterr().out
