"""Rails on a new rule set: what ``rules check``, ``rules publish`` and hot reload refuse unless forced.

A rule set that compiles can still be a mistake that silences the fleet: a
typo'd directory publishes nothing, an emptied file removes every rule, a
half-copied directory drops a rule that was alerting. Each is refused with the
reason unless the author says ``--force`` (published bundles carry the flag, so
workers accept what was forced on purpose). A rule retired on purpose stays in
its file with ``enabled: false``: that is not a drop.

>>> refusals(["a", "b"], running=["a", "b", "c"])
['it drops 1 running rule(s): c (set `enabled: false` in a rule to retire it, or --force)']
>>> refusals(["a", "b"], running=["a", "b", "c"], disabled=["c"])
[]
>>> refusals([], running=None)
['it holds no rules: every alert would stop (--force to accept an empty set)']
>>> refusals([], running=None, force=True)
[]
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["refusals"]


def refusals(new_ids: Iterable[str], running: Iterable[str] | None, force: bool = False, disabled: Iterable[str] = ()) -> list[str]:
    """Why a compiled rule set with ``new_ids`` (and ``disabled`` ids) must not replace ``running`` (``None``: nothing runs)."""
    if force:
        return []
    new = set(new_ids)
    out = []
    if not new:
        out.append("it holds no rules: every alert would stop (--force to accept an empty set)")
    dropped = sorted(set(running or ()) - new - set(disabled))
    if dropped and new:
        shown = ", ".join(dropped[:10]) + (f" and {len(dropped) - 10} more" if len(dropped) > 10 else "")
        out.append(f"it drops {len(dropped)} running rule(s): {shown} (set `enabled: false` in a rule to retire it, or --force)")
    return out
