"""pytest-benchmark suites (`make bench`).  Each group pairs a zksidecar kernel
with a baseline doing the same work, so the comparison is made in one run."""
