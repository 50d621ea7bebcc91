"""Profiling messages: a process's stacks now, and a sampled profile of what it runs.

Part of the protocol's one place for messages (re-exported by messages.py). A
request names the process by ``worker_id`` (a worker or a driver) or by
``actor_id`` (the worker hosting it), and travels dashboard or CLI -> head ->
the node that runs the process -> the process (see runtime/stack_sampling.py,
node/profile_handlers.py, head/profile_service.py). ``node_id`` is empty until
the head has found that node. Errors come back as ``ErrorReply`` with one of the
names below, so the dashboard can choose its HTTP status.
"""

from __future__ import annotations

from .message_base import Message, MsgType, message

#: ErrorReply names of these requests (and the dashboard's HTTP status for each)
NOT_FOUND = "LookupError"  #: no such actor or worker in the cluster (404)
BAD_REQUEST = "ValueError"  #: a duration or rate out of range (400)
GONE = "ProcessGone"  #: the actor is dead or the worker has exited (410)
NOT_NOW = "NotNow"  #: not sampleable now: an actor not started, a profile running (409)
NO_ANSWER = "TimeoutError"  #: the process or its node did not answer in time (504)


@message
class GetStacks(Message):
    """Request: every thread's Python stack in the process, now. Answered by Stacks."""

    type = MsgType.GET_STACKS
    node_id: bytes  #: the process's node; b"" until the head has found it
    worker_id: bytes  #: the process (b"": the one hosting ``actor_id``)
    actor_id: bytes  #: b"" when ``worker_id`` names the process


@message
class Stacks(Message):
    type = MsgType.STACKS
    pid: int
    node_id: bytes
    worker_id: bytes
    #: ``[[thread name, thread id, [[file, line, function], ...]], ...]``, each thread's
    #: frames outermost first, innermost last
    threads: list


@message
class ProfileProcess(Message):
    """Request: sample the process's stacks ``rate_hz`` times a second for
    ``duration_s`` seconds, in a thread of its own. Answered by Profile."""

    type = MsgType.PROFILE_PROCESS
    node_id: bytes  #: as in GetStacks
    worker_id: bytes
    actor_id: bytes
    duration_s: float
    rate_hz: int


@message
class Profile(Message):
    type = MsgType.PROFILE
    pid: int
    node_id: bytes
    worker_id: bytes
    samples: int  #: how many times the stacks were read
    seconds: float  #: how long the sampling ran
    #: folded stacks: ``[[[thread label, outermost frame label, ..., innermost], count], ...]``
    stacks: list
