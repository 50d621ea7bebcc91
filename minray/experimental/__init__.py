"""Ray's ``ray.experimental``: the internal key-value store (``internal_kv``)."""
