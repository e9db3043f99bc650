"""chromaflow: colorization and deepfake scoring for video tools.

The engine lives in :mod:`chromaflow.core`, host nodes in :mod:`chromaflow.filters` and host applications plus
the command line in :mod:`chromaflow.plugins`.
"""

__version__ = "0.1.0"
