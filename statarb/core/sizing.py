"""Beta-weighted split of a couple's stake between its two legs, at exchange precision.

For a spread in log prices, one unit of y notional is hedged by ``|beta|`` units of x
notional. Exchange amount steps and minimum notionals round that ratio; a couple whose
rounded legs drift too far from the hedge ratio, or fall under the exchange minimums, is
skipped with the reason rather than traded unhedged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LegLimits", "LegSizes", "size_legs"]


@dataclass(frozen=True)
class LegLimits:
    """What the exchange allows for one leg (from the ccxt market)."""

    amount_step: float
    min_amount: float = 0.0
    min_notional: float = 0.0

    def __post_init__(self) -> None:
        if not self.amount_step > 0:
            raise ValueError(f"amount_step={self.amount_step} must be positive")
        if self.min_amount < 0 or self.min_notional < 0:
            raise ValueError("min_amount and min_notional must be >= 0")


@dataclass(frozen=True)
class LegSizes:
    """Rounded amounts and notionals of both legs, or why the couple is skipped."""

    amount_y: float
    amount_x: float
    notional_y: float
    notional_x: float
    ratio_error: float  # (notional_x / notional_y) / |beta| - 1 after rounding
    skip_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.skip_reason is None


def _steps(amount: float, step: float) -> tuple[float, float]:
    """The amounts on the step grid just below and just above ``amount``."""
    # The epsilon keeps 0.3 / 0.1 from flooring to 2 steps through binary rounding.
    lo = math.floor(amount / step + 1e-9)
    return round(lo * step, 12), round((lo + 1) * step, 12)


def _candidates(
    stake: float, weight: float, price_y: float, price_x: float, step_y: float, step_x: float
) -> list[tuple[float, float]]:
    """Grid amounts near the ideal split: each leg rounded both ways, and the other leg
    re-derived from it so that the coarser leg's rounding is absorbed by the finer one."""
    ideal_y = stake / (1 + weight) / price_y
    ideal_x = stake * weight / (1 + weight) / price_x
    out: list[tuple[float, float]] = []
    for ay in _steps(ideal_y, step_y):
        out += [(ay, ax) for ax in _steps(ay * price_y * weight / price_x, step_x)]
    for ax in _steps(ideal_x, step_x):
        out += [(ay, ax) for ay in _steps(ax * price_x / weight / price_y, step_y)]
    return out


def size_legs(
    stake: float,
    beta: float,
    price_y: float,
    price_x: float,
    limits_y: LegLimits,
    limits_x: LegLimits,
    *,
    max_ratio_error: float = 0.05,
) -> LegSizes:
    """Split ``stake`` (total notional of both legs) as 1 : |beta| on the exchange's grid.

    Among the grid amounts around the ideal split whose total stays within ``stake``, the
    one closest to the hedge ratio wins (ties: the larger position).
    """
    for name, value in (("stake", stake), ("price_y", price_y), ("price_x", price_x)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value} must be a positive finite number")
    if not math.isfinite(beta) or beta == 0:
        raise ValueError(f"beta={beta} must be a finite non-zero hedge ratio")
    if not 0 < max_ratio_error < 1:
        raise ValueError(f"max_ratio_error={max_ratio_error} must be in (0, 1)")
    weight = abs(beta)

    def error(pair: tuple[float, float]) -> float:
        ny, nx = pair[0] * price_y, pair[1] * price_x
        return (nx / ny) / weight - 1 if ny > 0 and nx > 0 else math.inf

    fits = [
        c
        for c in _candidates(
            stake, weight, price_y, price_x, limits_y.amount_step, limits_x.amount_step
        )
        if c[0] * price_y + c[1] * price_x <= stake * (1 + 1e-12)
    ]
    amount_y, amount_x = min(
        fits or [(0.0, 0.0)],
        key=lambda c: (abs(error(c)), -(c[0] * price_y + c[1] * price_x)),
    )
    notional_y, notional_x = amount_y * price_y, amount_x * price_x
    ratio_error = error((amount_y, amount_x))
    reason = None
    for leg, amount, notional, lim in (
        ("y", amount_y, notional_y, limits_y),
        ("x", amount_x, notional_x, limits_x),
    ):
        if amount <= 0 or amount < lim.min_amount:
            reason = f"leg {leg} amount {amount} is below the exchange minimum {lim.min_amount}"
        elif notional < lim.min_notional:
            reason = (
                f"leg {leg} notional {notional:.4f} is below the exchange minimum "
                f"{lim.min_notional}"
            )
        if reason:
            break
    if reason is None and abs(ratio_error) > max_ratio_error:
        reason = (
            f"rounding moves the hedge ratio by {ratio_error:+.1%} "
            f"(limit {max_ratio_error:.0%}); raise the stake"
        )
    return LegSizes(amount_y, amount_x, notional_y, notional_x, ratio_error, reason)
