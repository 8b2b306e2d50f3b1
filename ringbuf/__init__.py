"""zksidecar.ringbuf"""
