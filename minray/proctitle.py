"""Process titles, so that ``ps`` and ``top`` say what each minray process does:
``minray::head`` (a node running the head services, embedded ones too),
``minray::node``, ``minray::zygote``, and for a worker ``minray::IDLE``,
``minray::<task name>`` while it runs a task, ``minray::<ActorClass>`` for an actor.

A title is written into the process's argv area (``setproctitle``, about 0.3 us);
:func:`set_title` writes only when the title changes, so a worker that runs the same
function again and again writes none. ``SPT_NOENV`` keeps setproctitle from using
the environment's area too: ``/proc/PID/environ`` stays readable and the title is
cut to the length of the original command line (the node's is long).
"""

from __future__ import annotations

import os

PREFIX = "minray::"
#: how a node's /proc/PID/cmdline starts once titled (``minray stop`` checks it)
NODE_TITLES = (b"minray::head", b"minray::node")

_current = ""
_setter = None  #: setproctitle.setproctitle, once loaded


def set_title(what: str) -> None:
    """Title this process ``minray::<what>`` (nothing to do if it already is)."""
    global _current, _setter
    if what == _current:
        return
    _current = what
    if _setter is None:
        _setter = _load()
    _setter(PREFIX + what)


def _load():
    """Import setproctitle with SPT_NOENV set (it reads it once, on its first title)."""
    added = "SPT_NOENV" not in os.environ
    if added:
        os.environ["SPT_NOENV"] = "1"
    try:
        from setproctitle import setproctitle

        setproctitle(f"{PREFIX}starting")
    finally:
        if added:
            del os.environ["SPT_NOENV"]
    return setproctitle
