"""Ray's ``ray.util.rpdb``, the module behind ``ray.util.pdb``: the same functions."""

from __future__ import annotations

from .pdb import post_mortem, set_trace

__all__ = ["post_mortem", "set_trace"]
