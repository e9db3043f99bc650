"""`chromaflow batch`: many files on Ray, long videos split at scene cuts, output identical to one process.

The orchestration is a host of the engine: it runs the same nodes as the single-file verbs (ColorizeNode,
DeflickerNode, DeepfakeNode) inside Ray actors that hold the model. Modules by job: ``inputs`` (what to process),
``segments`` (where a video is split and which neighbours each piece needs), ``media`` (the scan, frame-accurate
reads, lossless segment files, the join), ``journal`` (what is finished, with hashes), ``cluster`` (Ray itself),
``worker`` (the actor's work), ``runner`` (scheduling, retries, failures) and ``report`` (progress and results).
Ray is imported only by ``cluster``, ``runner`` and the tests; nothing in core imports it.
"""
