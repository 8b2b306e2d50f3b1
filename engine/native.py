"""The compiled engine (csrc/engine/engine.c, built by bindings/build_engine.py)."""
from __future__ import annotations

try:
    from ._engine import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "zksidecar's matching engine is not built: run `make install` (or `pip install -e .`) "
        "from the source tree"
    ) from exc

__all__ = ["ffi", "lib"]
