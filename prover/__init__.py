"""zksidecar.prover: the STARK proof system over BabyBear and its C kernels."""
