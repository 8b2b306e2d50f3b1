"""ZKSIDECAR_ISA forces a path at import; an unknown or unsupported one is a
clear error, never an illegal instruction."""
import os
import subprocess
import sys

import pytest

from zksidecar.prover import native


def run_with_isa(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ZKSIDECAR_ISA=value)
    code = "from zksidecar.prover import native; print(native.isa())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("isa", native.supported_isas())
def test_forced_path_is_active(isa):
    out = run_with_isa(isa.upper())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == isa


def test_unknown_path_is_refused():
    out = run_with_isa("neon")
    assert out.returncode != 0 and "unknown ISA 'neon'" in out.stderr
    assert "ForcedIsaUnusable: ZKSIDECAR_ISA=neon" in out.stderr


def test_the_cli_refuses_an_unknown_path_in_a_line():
    """Every command: a line naming the variable, exit 2, no traceback
    (the kernels are imported by whatever the command needs first)."""
    env = dict(os.environ, ZKSIDECAR_ISA="neon")
    for args in (["replay", "--help"], ["verify", "nothing.zkb"], ["--version"]):
        out = subprocess.run([sys.executable, "-m", "zksidecar.tools.cli", *args], env=env,
                             capture_output=True, text=True)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr == ("zksidecar: ZKSIDECAR_ISA=neon: unknown ISA 'neon': expected one of "
                              "scalar, avx2, avx512\n"), args


def test_default_is_the_best_supported_path():
    env = {k: v for k, v in os.environ.items() if k != "ZKSIDECAR_ISA"}
    code = "from zksidecar.prover import native; print(native.isa())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == native.supported_isas()[-1]
