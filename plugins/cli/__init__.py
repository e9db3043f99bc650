"""The ``chromaflow`` command line: one module per verb, each with a ``register(subparsers)`` function."""
