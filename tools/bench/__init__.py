"""`zksidecar bench SUITE`: runner.py times, pins and reports; each other
module here is one suite, whose function of the same name (``ring(sw) ->
dict`` in ring.py) takes a runner.Stopwatch and returns the figures.

    kernels.py  BabyBear mul, NTT, LDE, SHA-256 beside numpy / hashlib
    stark.py    prove and verify a Fibonacci trace; the pure-Python reference prover
    engine.py   the matching engine beside the plain reference engine
    ring.py     the shared-memory ring across cores beside multiprocessing.Queue & co
    prover.py   order-book batch proofs on the synthetic flow
    e2e.py      the daemon end to end: engine overhead, sustained rate, proof lag
"""
