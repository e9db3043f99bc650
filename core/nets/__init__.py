"""Neural network architectures (colorizers, face detectors, deepfake classifiers)."""
