# The two commands of the README: `make demo` and `make test`.  Both create the
# virtual environment and compile the C kernels themselves on a fresh machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.zksidecar-installed
CSRC   := $(wildcard csrc/*/*.c csrc/*/*.h csrc/*/*.inc bindings/*.py bindings/*.c) setup.py pyproject.toml

.PHONY: demo test bench install clean example-engine example-engine-cpp examples

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall (which recompiles the C) whenever a C source or build file changes.
$(STAMP): $(PY) $(CSRC)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# The kernel self-check (a second), then the sidecar end to end (tools/demo.py):
# state in ./var/demo, wiped first.  DEMO_ARGS="--seconds 10 --rate 2000" to vary it.
demo: $(STAMP)
	$(VENV)/bin/zksidecar selfcheck
	$(VENV)/bin/zksidecar demo $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) -m pytest -q benchmarks

clean:
	rm -rf build *.egg-info prover/_kernels.c prover/_kernels*.so engine/_engine.c engine/_engine*.so \
		ringbuf/_ring.c ringbuf/_ring*.so tools/_ring_bench.c tools/_ring_bench*.so

# The ring's test client in C (bindings/example_engine.c): publishes test
# patterns, not operation records (a daemon refuses them), to a ring Python
# created.  The tests build their own copy.  Engines: `make examples`, below.
example-engine: build/example_engine

build/example_engine: bindings/example_engine.c csrc/ring/zkring.h
	mkdir -p build
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Icsrc/ring -o $@ $<

# The same engine through the C++ wrapper (bindings/zkring.hpp): C++17, C++20
# or C++23, g++ or clang++ (CXX=clang++ CXXSTD=c++20).
CXXSTD ?= c++17
example-engine-cpp: build/example_engine_cpp

build/example_engine_cpp: bindings/example_engine.cpp bindings/zkring.hpp csrc/ring/zkring.h
	mkdir -p build
	$(CXX) -std=$(CXXSTD) -O2 -Wall -Wextra -Icsrc/ring -Ibindings -o $@ $<

# The example engines of docs/INTEGRATION.md (examples/): each matches through
# the provable core (build/libzkcore.a: csrc/engine/engine.c behind the public
# header csrc/engine/zk_core.h), publishes operation records with its claims
# and reads completions.  `make examples` builds all three; the Rust one is
# skipped, saying so, where rustc is absent.
CORE_SRC := csrc/engine/engine.c csrc/engine/zk_core.c
CORE_HDR := csrc/engine/zk_core.h csrc/engine/zk_engine.h csrc/engine/engine_core.inc \
	csrc/formats/zk_records.h
RING_HDR := csrc/ring/zkring.h
RUSTC ?= rustc

examples: build/libzkcore.a build/examples/engine_c build/examples/engine_cpp build/examples/engine_rust

build/libzkcore.a: $(CORE_SRC) $(CORE_HDR)
	mkdir -p build/core
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -Icsrc -c csrc/engine/engine.c -o build/core/engine.o
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Icsrc -c csrc/engine/zk_core.c -o build/core/zk_core.o
	$(AR) rcs $@ build/core/engine.o build/core/zk_core.o

build/examples/engine_c: examples/c/engine.c build/libzkcore.a $(CORE_HDR) $(RING_HDR)
	mkdir -p build/examples
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Icsrc -o $@ $< build/libzkcore.a

build/examples/engine_cpp: examples/cpp/engine.cpp build/libzkcore.a $(CORE_HDR) $(RING_HDR) bindings/zkring.hpp
	mkdir -p build/examples
	$(CXX) -std=$(CXXSTD) -O2 -Wall -Wextra -Icsrc -Icsrc/ring -Ibindings -o $@ $< build/libzkcore.a

build/examples/engine_rust: examples/rust/engine.rs bindings/rust/zkring.rs bindings/rust/zk_records.rs build/libzkcore.a
	mkdir -p build/examples
	@if command -v $(RUSTC) >/dev/null; then \
		echo "$(RUSTC) -O --edition 2021 -L build -o $@ $<"; \
		$(RUSTC) -O --edition 2021 -L build -o $@ $<; \
	else echo "examples: rustc not found, the Rust example engine is not built"; fi
