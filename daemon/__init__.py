"""zksidecar.daemon"""
