"""Alert areas to geometry, cell inventories, the batched targeting index, reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geo.index import CellIndex

__all__ = ["CellIndex"]


def __getattr__(name: str) -> object:
    # CellIndex is imported on first use: it loads numba, which other geo modules do not need.
    if name == "CellIndex":
        from geo.index import CellIndex

        return CellIndex
    raise AttributeError(f"module 'geo' has no attribute {name!r}")
