"""Helpers shared by the tests (and benchmarks): generated media, host tools, the pinned public surface."""
