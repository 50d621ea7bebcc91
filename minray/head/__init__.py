"""Head services: what one node of the cluster keeps for all of them.

Each service is a module with a pure core (no I/O, an injected clock): the node
table and its death detector (``node_table.py``), the cluster scheduling choice
(``cluster_scheduler.py``) and placement-group bundling (``placement.py``). The
head never runs user code and never unpickles: it sees only msgpack fields and
opaque bytes.
"""
