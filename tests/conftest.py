"""Shared fixtures: every kernel test runs once per instruction-set path this
CPU supports, and each path is compared to plain Python integers."""
import pytest

from zksidecar.prover import native


@pytest.fixture(params=native.supported_isas())
def each_isa(request):
    """Run the test with every kernel on ISA path `request.param`."""
    with native.using_isa(request.param) as name:
        yield name


@pytest.fixture(params=["transparent", "zk"])
def book_mode(request):
    """The order book's malicious-engine suite runs in both proof modes
    (tests/book_modes.py, docs/ZK.md section 11)."""
    import book_modes
    return book_modes.MODES[request.param]
