"""Public names of a package imported on first use, so that a light import stays light.

``taxopost.core``, ``taxopost.io``, ``taxopost.io.predictions`` and ``taxopost.evaluation``
re-export names from heavy modules (numba kernels, pyarrow, scipy.stats, matplotlib); a
command's ``--help`` or a task's config must not pay for them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, names)`` for ``package``, given its ``{module: names}``.

    The first look-up of a name imports its module and stores the value in the package, so
    later look-ups skip ``__getattr__``.
    """
    exports = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__, sorted(exports)
