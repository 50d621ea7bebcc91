"""Holds the ``ray`` package that minray.compat puts on PYTHONPATH (a directory, not imported)."""
