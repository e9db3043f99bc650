"""``python -m chromaflow`` runs the command line."""

from chromaflow.plugins.cli.main import main

raise SystemExit(main())
