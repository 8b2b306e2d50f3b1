"""`zksidecar replay` on both file forms, and its errors."""
from __future__ import annotations

import io


from zksidecar.engine.book import Book
from zksidecar.engine.records import Kind, Side
from zksidecar.tools import replay
from zksidecar.tools.cli import main as cli

CSV = """ts_ns,kind,side,price,qty,account,order_id
0,LIMIT,SELL,100,5,1,1
1,LIMIT,SELL,101,5,2,2
2,CANCEL,,,,0,1
3,limit,B,101,7,3,3
4,MARKET,SELL,,2,4,4
"""

LOBSTER = """34200.004241176,1,16113575,18,5853300,1
34200.005286800,1,16120456,18,5859100,-1
34200.015640181,1,16167159,18,5853600,1
34200.030771328,2,16113575,8,5853300,1
34200.032010000,4,16167159,10,5853600,1
34200.040000000,3,16120456,18,5859100,-1
34200.050000000,5,0,10,5853600,1
"""


def run_file(tmp_path, text, *extra):
    path = tmp_path / "ops.txt"
    path.write_text(text)
    out = io.StringIO()
    code = replay.main(str(path), *extra, out=out)
    return code, out.getvalue().splitlines()


def test_csv(tmp_path):
    code, lines = run_file(tmp_path, CSV)
    assert code == 0
    assert lines[1:3] == ["4,101,5,2,4294967298,2,3,BUY", "5,101,2,4294967298,0,3,4,SELL"]
    expected = Book(1 << 20)
    for kind, side, price, qty, handle in [(Kind.LIMIT, Side.SELL, 100, 5, 0),
                                           (Kind.LIMIT, Side.SELL, 101, 5, 0), (Kind.CANCEL, 0, 0, 0, 1),
                                           (Kind.LIMIT, Side.BUY, 101, 7, 0), (Kind.MARKET, Side.SELL, 0, 2, 0)]:
        expected.submit(kind, side, price, qty, handle=handle)
    assert lines[-1] == f"digest {expected.digest().hex()}"


def test_lobster(tmp_path):
    code, lines = run_file(tmp_path, LOBSTER)
    assert code == 0
    # the execution of buy order 16167159 is a sell IOC taker at its price
    assert lines[1] == "5,5853600,10,3,0,0,0,SELL"
    assert "1 skipped, 2 resting" in lines[-2]


def test_cli_and_errors(tmp_path, capsys):
    path = tmp_path / "ops.csv"
    path.write_text(CSV)
    assert cli(["replay", str(path), "--no-trades"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("# 5 operations")
    for text, message in [("ts_ns,kind\n", "header"),
                          (CSV.splitlines()[0] + "\n0,FOO,B,1,1,1,1\n", "unknown kind"),
                          (CSV.splitlines()[0] + "\n0,LIMIT,X,1,1,1,1\n", "side"),
                          (CSV.splitlines()[0] + "\n0,LIMIT,B,-1,1,1,1\n", "out of range"),
                          ("1.5,9,1,1,1,1\n", "event type"),
                          ("1.5,1,1,1,1,0\n", "direction")]:
        path.write_text(text)
        assert cli(["replay", str(path)]) == 2
        assert message in capsys.readouterr().err
    assert cli(["replay", str(tmp_path / "missing.csv")]) == 2
