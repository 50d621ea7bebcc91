"""A re-joining node's held bundles set against the head's placement groups (pure).

A member that lost the head (the head restarted, or the network was cut) says,
when it registers again, which bundles it holds (node/placement_groups.py). The
head's groups may disagree with it: the tables a restarted head read back were
saved before a placement or a removal finished, or a message was lost with the
old connection. :func:`reconcile` decides what to do and changes nothing; the
head applies the outcome (head/placement_service.py).

The rule it keeps: **a bundle is held where the head's group says, or nowhere**.
For each group a node N reports:

* the head does not know it (removed, or created after its last save): N gives
  all of it back;
* each bundle the head has on N stays; one only prepared there (its commit was
  lost) is committed;
* a bundle the head has not placed yet (the group waits and is not being placed
  right now) is adopted where its strategy allows it on N (STRICT_SPREAD: one
  bundle per node; STRICT_PACK: only when that completes the group on N);
* anything else (the bundle is placed elsewhere, or differs, or the head has one
  of the group's bundles on N that N does not hold): N gives all of the group's
  bundles back, and those the head had on N are placed again.

Bundles the head has on N for groups N does not report are placed again too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

WAITING = ("PENDING", "RESCHEDULING")


@dataclass
class Outcome:
    """What the head does after node N re-joined (group ids as keys)."""

    #: groups N gives back whole -> why, in words (the stopped actors' death cause)
    release: dict[bytes, str] = field(default_factory=dict)
    commit: list[bytes] = field(default_factory=list)  #: groups N holds only prepared
    adopt: dict[bytes, list[int]] = field(default_factory=dict)  #: bundles now placed on N
    #: bundles the head had on N that N no longer holds (or gives back): placed again
    replace: dict[bytes, list[int]] = field(default_factory=dict)
    in_use: int = 0  #: of the bundles given back, how many ran tasks or actors

    @property
    def changed(self) -> bool:
        return bool(self.release or self.commit or self.adopt or self.replace)


def reconcile(
    node: bytes, held: list, groups: Mapping[bytes, Any], placing: bytes = b""
) -> Outcome:
    """The outcome for node ``node`` reporting ``held`` ([[group id, index, bundle,
    committed, in use], ...], see RegisterNode) against ``groups`` (group id -> a record
    with ``bundles``, ``nodes``, ``state``, ``strategy``); ``placing``: the group whose
    two-phase placement is in flight (its bundles are not adopted)."""
    out = Outcome()
    reported: dict[bytes, dict[int, tuple[dict, bool, bool]]] = {}
    for group_id, index, bundle, committed, used in held:
        reported.setdefault(group_id, {})[int(index)] = (dict(bundle), bool(committed), bool(used))
    for group_id, bundles in reported.items():
        record = groups.get(group_id)
        if record is None or record.state == "REMOVED":
            out.release[group_id] = (
                "the head no longer knows its placement group (removed, or created after "
                "the head's last save)"
            )
        else:
            verdict = _judge(node, bundles, record, group_id == placing)
            if verdict is not None:
                adopt, commit = verdict
                if adopt:
                    out.adopt[group_id] = adopt
                if commit:
                    out.commit.append(group_id)
                continue
            out.release[group_id] = (
                "its bundle was held on a node the head had not placed it on; it is placed again"
            )
            mine = _on(node, record)
            if mine:
                out.replace[group_id] = mine
        out.in_use += sum(1 for _, _, used in bundles.values() if used)
    for group_id, record in groups.items():
        if group_id not in reported and record.state != "REMOVED":
            mine = _on(node, record)
            if mine:
                out.replace[group_id] = mine
    return out


def _judge(node: bytes, bundles: dict, record: Any, placing: bool) -> tuple[list[int], bool] | None:
    """(the bundles to adopt, whether to commit) when N's bundles of the group agree with
    the head's record or can be made to; None when N must give them all back."""
    adopt, commit = [], False
    for index, (bundle, committed, _) in sorted(bundles.items()):
        if index >= len(record.bundles) or bundle != dict(record.bundles[index]):
            return None
        where = record.nodes[index]
        if where != node:
            if where or placing or record.state not in WAITING:
                return None
            adopt.append(index)
        commit = commit or not committed
    if any(i not in bundles for i in _on(node, record)):
        return None  # N lost one the head has there: the group's bundles on N start over
    if adopt and not _may_adopt(node, adopt, record):
        return None
    return adopt, commit


def _may_adopt(node: bytes, adopt: list[int], record: Any) -> bool:
    after = list(record.nodes)
    for index in adopt:
        after[index] = node
    if record.strategy == "STRICT_SPREAD":
        return after.count(node) == 1
    if record.strategy == "STRICT_PACK":
        return all(n == node for n in after)
    return True


def _on(node: bytes, record: Any) -> list[int]:
    return [i for i, n in enumerate(record.nodes) if n == node]
