"""The runtime inside every process that runs user code (driver and workers)."""
