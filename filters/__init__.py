"""Frame nodes for hosts: VapourSynth functions and PyAV push/pull nodes."""
