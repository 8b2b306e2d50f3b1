"""Hypothesis strategies for random engine flows, shared by the engine test
modules (pytest puts this folder on sys.path)."""
from hypothesis import strategies as st

from zksidecar.engine import flow
from zksidecar.engine.flow import FlowParams


def flows(max_n: int, max_depth: int):
    """Parameters of one random flow (see make)."""
    return st.builds(
        dict,
        seed=st.integers(0, 2**32 - 1),
        n=st.integers(1, max_n),
        log2=st.integers(2, 8),
        depth=st.integers(1, max_depth),
        take=st.floats(0, 0.6),
        invalid=st.floats(0, 0.05),
    )


def make(f):
    """The operation records of a flow drawn from `flows`."""
    params = FlowParams(depth=f["depth"], take=f["take"], invalid=f["invalid"], move=0.2)
    return flow.generate(f["n"], f["seed"], 1 << f["log2"], params=params)
