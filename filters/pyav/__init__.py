"""PyAV host: push/pull frame nodes that chain with ``av.filter.Graph``, and :func:`transcode`.

Nodes (``push(frame | None)``, ``pull() -> list[av.VideoFrame]``, ``flush()``):

- :class:`ColorizeNode` colorizes with the core video engine (model batches, keyframe references, temporal
  smoothing: the options of VapourSynth's ``colorize``); Y'CbCr frames keep their luma plane bit for bit (gray
  becomes 4:2:0 or 4:4:4). ``ColorizeNode(model=None, references={0: "key.png"})`` is the keyframe-transfer node.
- :class:`DeflickerNode` removes colour flicker from video already in colour (luma and alpha kept bit for bit).
- :class:`DeepfakeNode` scores faces (per-frame results, a video summary) and can draw the overlay.
- :class:`FilterNode` runs a chain of FFmpeg filters (``"scale=320:-2,format=yuv420p"``); :class:`GraphNode` wraps a
  configured ``av.filter.Graph``; :class:`NodeChain` runs several nodes in a row.

Example::

    from chromaflow.filters.pyav import ColorizeNode, FilterNode, transcode

    transcode("in.mp4", "out.mp4", [FilterNode("scale=640:-2"), ColorizeNode(model="base"),
                                    FilterNode("drawbox=x=10:y=10:w=100:h=20:color=black@0.5:t=fill")])

The modules, one job each: ``nodes`` (the push/pull protocol, FFmpeg filter nodes, chains), ``colorization``
(``ColorizeNode``), ``deflickering`` (``DeflickerNode``), ``deepfake_scoring`` (``DeepfakeNode``); ``frames``
(planes, pixel-format families, colour tags of PyAV frames), ``transcoding`` (``transcode``, ``run_nodes``),
``pipeline`` (its decode / nodes / encode threads), ``writer`` (the encoder and muxer side), ``report``
(``TranscodeReport``), ``frame_counts`` (how many frames an input holds, estimated or stated), ``y4m`` (y4m
headers and cut streams), ``targets`` (inputs, outputs, partial files), ``encoders`` (which encoder, with which
options), ``pixel_formats`` (the pixels an encoder gets), ``hardware`` (does an NVENC encoder open here),
``node_options`` (a node's options object, given whole or built from its keywords). The modules are not named
after the classes and functions they hold, so ``pyav.transcode`` is always the function.
"""

from chromaflow.filters.pyav.colorization import ColorizeNode, output_format
from chromaflow.filters.pyav.deepfake_scoring import DeepfakeNode, ScoredFrame
from chromaflow.filters.pyav.deflickering import DeflickerNode
from chromaflow.filters.pyav.encoders import DEFAULTS_BY_SUFFIX, EncodeOptions
from chromaflow.filters.pyav.frame_counts import estimate_frames
from chromaflow.filters.pyav.nodes import BatchNode, FilterNode, FrameNode, GraphNode, NodeChain
from chromaflow.filters.pyav.report import TranscodeReport
from chromaflow.filters.pyav.targets import STDIO, is_sequence_pattern, open_input
from chromaflow.filters.pyav.transcoding import run_nodes, transcode

__all__ = [
    "DEFAULTS_BY_SUFFIX",
    "STDIO",
    "BatchNode",
    "ColorizeNode",
    "DeepfakeNode",
    "DeflickerNode",
    "EncodeOptions",
    "FilterNode",
    "FrameNode",
    "GraphNode",
    "NodeChain",
    "ScoredFrame",
    "TranscodeReport",
    "estimate_frames",
    "is_sequence_pattern",
    "open_input",
    "output_format",
    "run_nodes",
    "transcode",
]
