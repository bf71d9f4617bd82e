"""Small argument checks shared by the public functions; imports nothing heavy.

Kept apart from the modules that use them so that torch-free modules (``mapping``,
``charts``, ``synth``) can share them with torch modules (``geodesics``) without
importing torch.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["check_choice"]


def check_choice(name: str, value, choices: Iterable) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``.

    The message names the option, the value and the choices:
    ``unknown method 'foo'; expected one of ['heat', 'sampled']``.
    """
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {choices}")
