"""Remote breakpoints: ``breakpoint()`` inside a task or actor method, ``minray debug`` outside.

* ``registry.py``: where a paused task is written down (the head's internal KV),
  and the record kept there (pure).
* ``channel.py``: the paused worker's side of the wire: a listening socket on the
  node's address, the cluster-token handshake, and pdb's lines over it.
* ``remote_pdb.py``: the ``pdb.Pdb`` that talks through a channel, and the
  ``breakpoint()`` hook a worker installs.
* ``cli.py``: ``minray debug``, which lists the paused tasks and attaches a
  terminal to one.

How the pieces meet is drawn in docs/architecture.md ("Remote breakpoints").
"""
