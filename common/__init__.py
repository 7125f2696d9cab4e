"""Shared machinery for every model of the project: data, the training loop,
the run directory and the pictures (docs/layout.md, file by file)."""
