"""Rendering of traces, datasets and reports for people (terminal and HTML).

``build_site`` and ``SiteServer`` are loaded on first use, so ``simulate``, which only needs
the terminal renderer, does not pay for Jinja and Markdown at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matrix_align.view.serve import SiteServer
    from matrix_align.view.site import Site, build_site

__all__ = ["Site", "SiteServer", "build_site"]

_LAZY = {
    "Site": "matrix_align.view.site",
    "build_site": "matrix_align.view.site",
    "SiteServer": "matrix_align.view.serve",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
