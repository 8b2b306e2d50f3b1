"""The command line's argument types (tools/arg_types.py): what each takes
and what it refuses, so that no NaN, infinity, negative count or
meaningless threshold reaches the code behind an option."""
import argparse

import pytest

from zksidecar.prover.params import MAX_SECURITY_BITS
from zksidecar.tools import arg_types as A


@pytest.mark.parametrize("parse,good,bad", [
    (A.positive, {"1": 1, "12": 12}, ["0", "-1", "1.5", "x", ""]),
    (A.nonnegative, {"0": 0, "7": 7}, ["-1", "nan", "1e3"]),
    (A.positive_seconds, {"0.5": 0.5, "10": 10.0}, ["0", "-1", "nan", "inf", "-inf", "x"]),
    (A.nonnegative_seconds, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "inf"]),
    (A.positive_rate, {"2000": 2000.0}, ["0", "-5", "nan", "inf"]),
    (A.nonnegative_rate, {"0": 0.0, "1e6": 1e6}, ["-1", "nan", "inf"]),
    (A.security_bits, {"0": 0, "100": 100, str(MAX_SECURITY_BITS): MAX_SECURITY_BITS},
     ["-5", str(MAX_SECURITY_BITS + 1), "nan", "100.0"]),
    (A.trace_length, {"16": 16, "0x400": 1024}, ["8", "1000", "0", "-16", str(1 << 40)]),
    (A.capacity(16, 1 << 20), {"16": 16, "0x100": 256}, ["8", "100", str(1 << 21), "x"]),
])
def test_each_type_takes_its_values_and_refuses_the_rest(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
