"""What a "no edge" verdict is worth: the power of the sweep-and-choose procedure.

On a synthetic market with a known answer the procedure of :mod:`statarb.research` (a
walk-forward sweep, chosen on the first 60% of the days by the Deflated Sharpe Ratio over
every trial) is run per seed:

- **planted**: random-walk coins plus one cointegrated couple, ``log Y = a + b log X + e``
  with ``e`` an AR(1) spread of a known half-life, scaled so that a round trip from
  ``|z| = 2`` to 0 earns ``k`` times what its fills cost (``2 s / (2 fee (1 + b))`` with
  ``s`` the spread's standard deviation);
- **null**: the same random-walk coins and no couple.

The share of seeds in which the procedure accepts a variant (in-sample DSR >= 0.95) is
its power on the planted market and its false-acceptance rate on the null one. A sweep
that would not find a planted edge worth three times its costs could not tell a user much
by finding none on real data; one that accepts on random walks would find edges anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from statarb.research.evaluate import Workbench
from statarb.research.sweep import MIN_TRIPS, choose, run_sweep
from statarb.research.variants import Variant, parse_variants

__all__ = ["PowerResult", "best_dsr", "planted_market", "power", "procedure_accepts"]

FEE = 0.0005
HOURLY_VOL = 0.006
#: The procedure's sweep on the synthetic market, shaped as the real one
#: (research/timeframes.yml): z window x hedge x entry x exit levels, 24 variants.
GRID = {"grid": {"statarb.walk_forward.z_window_hours": [48, 100],
                 "statarb.selection.hedge": ["ols", "kalman"],
                 "params.entry_z": [1.5, 2.0, 2.5], "params.exit_z": [0.0, 0.5]}}
#: A short formation keeps each seed to seconds; every other setting is the project's.
SECTION = {"walk_forward": {"formation_days": 20, "reform_hours": 24, "horizon_hours": 168},
           "regime": {"pair": "C0/USDT:USDT"}}


def _market_entry() -> dict[str, Any]:
    """A Binance USDT-M market's precision and limits (those of a mid-priced coin)."""
    return {"precision": {"amount": 0.001, "price": 0.0001},
            "limits": {"amount": {"min": 0.001, "max": 1e7}, "cost": {"min": 5.0, "max": None},
                       "leverage": {"min": None, "max": None}},
            "maker": 0.0002, "taker": FEE, "contractSize": 1.0, "linear": True,
            "contract": True, "type": "swap", "settle": "USDT", "quote": "USDT"}


def planted_market(seed: int, *, k: float | None, coins: int = 6, days: int = 365,
                   half_life_hours: float = 8.0, beta: float = 1.0
                   ) -> dict[str, pd.DataFrame]:
    """Hourly candles of ``coins`` random walks on a common market factor, plus (``k`` not
    None) a couple ``P1~P0`` whose round trip earns ``k`` times its costs."""
    rng = np.random.default_rng(seed)
    n = days * 24
    dates = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC")
    # One market factor and each coin's own part (return correlation 0.64, as crypto
    # coins move together): the selection's return-correlation filter lets them through.
    market = rng.normal(0.0, HOURLY_VOL, n)

    def walk() -> np.ndarray:
        return math.log(100.0) + np.cumsum(0.8 * market + 0.6 * rng.normal(0.0, HOURLY_VOL, n))

    logs: dict[str, np.ndarray] = {f"C{i}": walk() for i in range(coins)}
    if k is not None:
        phi = 2.0 ** (-1.0 / half_life_hours)
        spread_std = k * FEE * (1.0 + abs(beta))
        shocks = rng.normal(0.0, spread_std * math.sqrt(1.0 - phi * phi), n)
        e = np.zeros(n)
        for t in range(1, n):
            e[t] = phi * e[t - 1] + shocks[t]
        x = walk()
        logs["P0"], logs["P1"] = x, 0.1 + beta * x + e
    frames = {}
    for coin, log_close in logs.items():
        close = np.exp(log_close)
        open_ = np.r_[close[0], close[:-1]]
        wiggle = np.exp(np.abs(rng.normal(0.0, HOURLY_VOL / 2, n)))
        frames[f"{coin}/USDT:USDT"] = pd.DataFrame({
            "date": dates, "open": open_, "high": np.maximum(open_, close) * wiggle,
            "low": np.minimum(open_, close) / wiggle, "close": close, "volume": 1e6})
    return frames


def _config(pairs: Sequence[str]) -> dict[str, Any]:
    return {"timeframe": "1h", "stake_currency": "USDT", "dry_run_wallet": 10_000,
            "stake_amount": "unlimited", "tradable_balance_ratio": 0.99, "max_open_trades": 10,
            "trading_mode": "futures", "margin_mode": "isolated", "fee": FEE,
            "exchange": {"name": "binance", "pair_whitelist": list(pairs)},
            "statarb": SECTION}


def procedure_accepts(frames: dict[str, pd.DataFrame], *, min_dsr: float = 0.95,
                      variants: list[Variant] | None = None, min_trips: int = MIN_TRIPS
                      ) -> tuple[bool, float, int]:
    """Run the sweep and the choice on ``frames``: (accepted, best in-sample DSR of a
    variant that may be chosen, trials)."""
    pairs = sorted(frames)
    config = _config(pairs)
    bench = Workbench(config, frames, {p: _market_entry() for p in pairs}, {})
    variants = variants or parse_variants(GRID, "power")
    index = frames[pairs[0]]["date"]
    split = (index.iloc[0] + (index.iloc[-1] - index.iloc[0]) * 0.6).floor("1D")
    table = run_sweep(bench, variants, split, n_jobs=1)
    if not np.isfinite(table["is_daily_sharpe"].astype("float64")).any():
        return False, math.nan, 0  # nothing traded in sample: nothing to accept
    _, choice = choose(table, None, min_dsr, min_trips)
    return bool(choice.best_dsr >= min_dsr), choice.best_dsr, choice.n_trials


@dataclass(frozen=True)
class PowerResult:
    """Acceptances per seed on planted and null markets."""

    k: float
    seeds: tuple[int, ...]
    planted: tuple[float, ...]
    null: tuple[float, ...]
    min_dsr: float = 0.95

    @property
    def power(self) -> float:
        return float(np.mean([d >= self.min_dsr for d in self.planted]))

    @property
    def false_acceptance(self) -> float:
        return float(np.mean([d >= self.min_dsr for d in self.null]))


def best_dsr(seed: int, k: float | None, min_dsr: float = 0.95) -> float:
    """The procedure's best choosable in-sample DSR on one market (NaN: none to choose)."""
    return procedure_accepts(planted_market(seed, k=k), min_dsr=min_dsr)[1]


def power(seeds: Sequence[int], k: float = 3.0, min_dsr: float = 0.95, n_jobs: int = 1
          ) -> PowerResult:
    """The procedure's best in-sample DSR per seed, planted and null (the markets in
    ``n_jobs`` processes: each is independent)."""
    from joblib import Parallel, delayed

    markets = [(s, k) for s in seeds] + [(s, None) for s in seeds]
    found = Parallel(n_jobs=n_jobs)(delayed(best_dsr)(s, kk, min_dsr) for s, kk in markets)
    n = len(seeds)
    return PowerResult(k, tuple(seeds), tuple(found[:n]), tuple(found[n:]), min_dsr)
