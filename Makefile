# The two commands of the README: `make demo` and `make test`.  Both create the
# virtual environment and compile the C kernels themselves on a fresh machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.zksidecar-installed
CSRC   := $(wildcard csrc/*/*.c csrc/*/*.h csrc/*/*.inc bindings/*.py bindings/*.c) setup.py pyproject.toml

.PHONY: demo test bench install clean example-engine example-engine-cpp

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

# The C example engine (bindings/example_engine.c): publishes test records to
# a ring the sidecar created.  The tests build their own copy.
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
