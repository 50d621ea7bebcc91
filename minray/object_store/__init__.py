"""Shared-memory object store: segment layout, segments, and the node's accounting."""
