"""chromaflow studio: a local web page for placing hints and keyframes, previewing colour at once, saving the project
every host renders, running renders and deepfake scans (``chromaflow studio``)."""
