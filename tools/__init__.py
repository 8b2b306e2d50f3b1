"""zksidecar.tools: the `zksidecar` command and what only people run — the
kernel self-check, the proof-file commands, the stats printer, the load
generator, the demo and the benchmarks.

    cli.py        the `zksidecar` command: parses arguments, runs one of the below
    selfcheck.py  `zksidecar selfcheck`: every kernel on every ISA path against plain Python
    replay.py     `zksidecar replay FILE`: trades and the final digest
    proofs.py     `zksidecar prove FILE`, `zksidecar verify PROOF...` and `verify --store DIR`
    stats.py      `zksidecar stats`: the running daemon's figures as a live table
    loadgen.py    `zksidecar loadgen`: a reference engine publishing a synthetic flow to a daemon
    demo.py       `zksidecar demo` (`make demo`): the daemon and the load generator end to end
    bench/        `zksidecar bench SUITE`: the runner and one module per suite

Tools import the library (zksidecar.daemon, .prover, .engine, .ringbuf); the
library never imports zksidecar.tools (tests/test_layout.py).
"""
