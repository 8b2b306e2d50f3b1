"""Build hook: the C kernels are compiled by cffi at install time.

Everything declarative lives in pyproject.toml; setuptools has no pyproject key
for cffi's `cffi_modules`, so this file exists only to pass it.
"""
from setuptools import setup

setup(cffi_modules=["bindings/build_kernels.py:ffibuilder", "bindings/build_engine.py:ffibuilder",
                     "bindings/build_ring.py:ffibuilder", "bindings/build_ring.py:benchbuilder"])
