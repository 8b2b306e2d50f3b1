"""zksidecar.engine"""
