"""mwp: math word problems (GSM8K) solved by AS-ES trained seq2seq models.

from mwp import Solver

print(Solver.load().solve(["A box holds 12 pens. How many pens are in 4 boxes?"])[0].answer)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mwp.solve import Solution, Solver

__all__ = ["Solution", "Solver"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mwp import solve

        return getattr(solve, name)
    raise AttributeError(f"module 'mwp' has no attribute {name!r}")
