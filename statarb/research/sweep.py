"""Many variants in parallel, and the honest choice among them.

Why this shape: formations are the expensive part and depend only on the selection and
walk-forward settings, so the sweep first builds one universe per distinct setting (in
parallel, each written to the formation cache), then evaluates the variants in chunks,
each chunk carrying only the universe it needs. Chunks run through joblib: local
processes by default, or an existing dask.distributed cluster (joblib's dask backend) for
sweeps that outgrow one machine. Results do not depend on where a chunk ran.

The choice uses the in-sample part only. Every variant's in-sample daily Sharpe is
deflated against the expected best Sharpe of as many unskilled trials (variants with
identical in-sample returns count once)
(:mod:`statarb.research.deflated`); the chosen variant is the one with the highest
Deflated Sharpe Ratio, and it only replaces the default when its DSR is at least
``min_dsr`` and above the default's. Out-of-sample figures are computed and reported for
every variant, and never read by the choice. Research-only variants (column
``freqtrade`` false: a reference leg shared by several couples) count as trials but are
never chosen: the default must be something Freqtrade runs. Nor are variants with fewer
than ``min_trips`` couple trips in sample (:data:`MIN_TRIPS`): three lucky trips give a
high Sharpe on mostly idle days, and on random walks such a variant passed a DSR of 0.95
(:mod:`statarb.research.power`).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config

from statarb.research.deflated import deflated_sharpe, sharpe
from statarb.research.evaluate import Workbench
from statarb.research.variants import Variant

__all__ = ["FIGURES", "MIN_TRIPS", "Choice", "choose", "run_sweep", "trial_sharpes"]

#: Fewest in-sample couple trips a variant needs to be chosen (the Makefile's hyperopt
#: asks Freqtrade for 20 trades, ten trips; a variant's verdict needs more than that).
MIN_TRIPS = 20

#: Figures of each part kept in the sweep table.
FIGURES = ("total_return", "sharpe", "max_drawdown", "couple_trips", "fees_paid",
           "funding_paid", "capital_in_use", "btc_correlation", "spread_paid", "gross_profit")


def _evaluate_chunk(bench: Workbench, variants: Sequence[Variant],
                    split: pd.Timestamp) -> list[dict[str, Any]]:
    rows = []
    for variant in variants:
        outcome = bench.run(variant.statarb, variant.params, split=split, parts=("is", "oos"))
        row: dict[str, Any] = {"variant": variant.name, "fingerprint": variant.fingerprint(),
                               "freqtrade": bench.runs_in_freqtrade(variant)}
        for part in ("is", "oos"):
            for key in FIGURES:
                row[f"{part}_{key}"] = outcome.figures[part][key]
            returns = outcome.returns[part].to_numpy(dtype="float64")
            row[f"{part}_returns"] = returns
            row[f"{part}_daily_sharpe"] = sharpe(returns)
        rows.append(row)
    return rows


def _build_universe(bench: Workbench, variant: Variant) -> tuple[str, Any, dict[str, float]]:
    """One variant's universe, and what the cache did for it (the change in its counters:
    the worker's copy may arrive with counts, and in-process it is the sweep's own)."""
    settings = bench.settings_of(variant)
    cache = bench.cache
    before = {} if cache is None else {k: getattr(cache, k) for k in _CACHE_STATS}
    universe = bench.universe(settings)
    stats = {k: getattr(cache, k) - v for k, v in before.items()}
    return bench.selection_key(settings), universe, stats


_CACHE_STATS = ("hits", "misses", "build_seconds", "load_seconds")


@contextlib.contextmanager
def _backend(dask_address: str | None, n_jobs: int) -> Iterator[dict[str, Any]]:
    """joblib's local processes, or the dask cluster at ``dask_address``."""
    if not dask_address:
        with parallel_config(backend="loky", n_jobs=n_jobs):
            yield {"where": f"{n_jobs} local process(es)"}
        return
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a pinned dependency
        raise RuntimeError("--dask needs dask.distributed (pip install 'dask[distributed]')"
                           ) from exc
    with Client(dask_address, timeout="10s") as client, parallel_config(backend="dask"):
        workers = len(client.scheduler_info().get("workers", {}))
        yield {"where": f"dask cluster {dask_address} ({workers} worker(s))"}


def run_sweep(bench: Workbench, variants: Sequence[Variant], split: pd.Timestamp, *,
              n_jobs: int = 2, dask_address: str | None = None, chunk_size: int = 8,
              progress: Callable[[str, int, int], None] | None = None) -> pd.DataFrame:
    """Every variant's in-sample and out-of-sample figures, one row per variant, in the
    order of ``variants``."""
    if not variants:
        raise ValueError("the sweep has no variants")
    report = progress or (lambda stage, done, total: None)
    groups: dict[str, list[Variant]] = {}
    for variant in variants:
        groups.setdefault(bench.selection_key(bench.settings_of(variant)), []).append(variant)
    with _backend(dask_address, n_jobs):
        missing = [g[0] for key, g in groups.items() if key not in bench.universes]
        report("formations", 0, len(groups))
        if missing:
            # Workers get a copy without universes: the loop below adds to this bench's
            # while later tasks are still being pickled, and they would not need them.
            builder = copy.copy(bench)
            builder.universes = {}
            # Its own cache object: the counters below add what each build did, also when
            # joblib runs the builds in this process.
            builder.cache = copy.copy(bench.cache)
            built = Parallel(return_as="generator_unordered")(
                delayed(_build_universe)(builder, v) for v in missing)
            for done, (key, universe, stats) in enumerate(built, start=1):
                bench.universes[key] = universe
                for name, value in stats.items():  # the worker's copy counted it
                    setattr(bench.cache, name, getattr(bench.cache, name) + value)
                report("formations", done + len(groups) - len(missing), len(groups))
        report("formations", len(groups), len(groups))
        tasks = []
        for key, group in groups.items():
            lite = bench.with_only(key)
            for lo in range(0, len(group), chunk_size):
                tasks.append(delayed(_evaluate_chunk)(lite, group[lo:lo + chunk_size], split))
        rows: list[dict[str, Any]] = []
        report("variants", 0, len(variants))
        for chunk in Parallel(return_as="generator_unordered")(tasks):
            rows.extend(chunk)
            report("variants", len(rows), len(variants))
    order = {v.name: i for i, v in enumerate(variants)}
    return pd.DataFrame(sorted(rows, key=lambda r: order[r["variant"]])).reset_index(drop=True)


@dataclass(frozen=True)
class Choice:
    """The sweep's decision and why."""

    chosen: str
    default: str | None
    replaces_default: bool
    n_trials: int
    reason: str
    best_dsr: float = math.nan
    """In-sample DSR of the best variant that may be chosen (NaN: none may)."""


def trial_sharpes(table: pd.DataFrame) -> np.ndarray:
    """The in-sample daily Sharpe of each distinct trial: variants with identical in-sample
    returns count once, variants without a Sharpe not at all."""
    distinct = {np.asarray(r, dtype="float64").round(12).tobytes(): s
                for r, s in zip(table["is_returns"], table["is_daily_sharpe"], strict=True)}
    trial = np.fromiter(distinct.values(), dtype="float64")
    return trial[np.isfinite(trial)]


def choose(table: pd.DataFrame, default: str | None = None, min_dsr: float = 0.95,
           min_trips: int = MIN_TRIPS) -> tuple[pd.DataFrame, Choice]:
    """Add each variant's in-sample Deflated Sharpe Ratio and choose (see module).

    Reads only the ``is_`` columns: out-of-sample figures cannot change the choice.
    """
    # Variants that trade identically in sample (a filter that never binds) are one trial,
    # not several: counting them again would understate the variance of the Sharpes and
    # overstate N. One Sharpe per distinct in-sample return series.
    trial = trial_sharpes(table)
    n_trials = len(trial)
    if n_trials == 0:
        raise ValueError("no variant has an in-sample Sharpe (no trades in the first part?)")
    dsr, benchmark = [], []
    for returns in table["is_returns"]:
        result = deflated_sharpe(np.asarray(returns, dtype="float64"), trial)
        dsr.append(result.dsr)
        benchmark.append(result.sr_benchmark)
    out = table.copy()
    out["is_dsr"] = dsr
    out["is_sr_benchmark"] = benchmark
    ranked = out["is_dsr"].fillna(-math.inf)
    ranked = ranked.where(out["is_couple_trips"].fillna(0) >= min_trips, -math.inf)
    if "freqtrade" in out:
        ranked = ranked.where(out["freqtrade"].astype(bool), -math.inf)
    has_default = default is not None and default in set(out["variant"])
    if not np.isfinite(ranked.max()):
        reason = (f"no variant has {min_trips} couple trips in sample: nothing to choose "
                  "from" + ("; keep the default" if has_default else ""))
        return out, Choice(default if has_default else "", default if has_default else None,
                           False, n_trials, reason)
    best = str(out.loc[ranked.idxmax(), "variant"])
    best_dsr = float(out.loc[ranked.idxmax(), "is_dsr"])
    if not has_default:
        return out, Choice(best, None, False, n_trials,
                           f"highest in-sample DSR {best_dsr:.3f} of {n_trials} trials "
                           "(no default variant in the sweep to compare with)", best_dsr)
    default_dsr = float(out.loc[out["variant"] == default, "is_dsr"].iloc[0])
    if best == default:
        reason = f"the default has the highest in-sample DSR ({best_dsr:.3f})"
        return out, Choice(default, default, False, n_trials, reason, best_dsr)
    if not best_dsr >= min_dsr:
        reason = (f"best variant {best!r} has in-sample DSR {best_dsr:.3f} < {min_dsr} "
                  f"after {n_trials} trials: not distinguishable from luck; keep the default "
                  f"(DSR {default_dsr:.3f})")
        return out, Choice(default, default, False, n_trials, reason, best_dsr)
    reason = (f"{best!r}: in-sample DSR {best_dsr:.3f} >= {min_dsr} after {n_trials} trials, "
              f"above the default's {default_dsr:.3f}")
    return out, Choice(best, default, True, n_trials, reason, best_dsr)
