"""densemap command-line interface (imported as ``densemap.cli``)."""
