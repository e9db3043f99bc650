"""Host applications: the ``chromaflow`` command line, the Blender add-on, the OBS script, FFmpeg recipes."""
