"""User-facing errors.

Every error a user can cause (a bad file, an unknown name, a layer out of range) is raised as
`SteerlabError` with a message that says what was wrong, where, and how to fix it. The CLI
prints such errors as one line and exits with status 2; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class SteerlabError(Exception):
    """An error caused by input the user can fix; the message says how."""


def unknown_name(kind: str, name: str, available: list[str] | tuple[str, ...], hint: str = "") -> SteerlabError:
    """A lookup failure that lists what exists (registries use this)."""
    names = ", ".join(sorted(available)) or "(none)"
    message = f"unknown {kind} {name!r}; available: {names}"
    if hint:
        message += f". {hint}"
    return SteerlabError(message)
