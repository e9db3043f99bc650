"""Neural network architectures (colorizers, face detectors, deepfake classifiers); :mod:`.builders` says how each
is made, fresh or from its weight file, for the model registry."""
