"""Reading a Freqtrade backtest result (zip) with Freqtrade's own loaders.

Why through Freqtrade: the result layout (the ``.last_result.json`` pointer, the zip
members, the trade columns, the joblib-pickled signal candles) is Freqtrade's and changes
between releases; its loaders are the reference for what a result holds. This module is
the only place that imports them, so :mod:`statarb.tools.report` stays plain pandas.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from freqtrade.data.btanalysis import (
    get_backtest_wallet_change,
    get_latest_backtest_filename,
    load_backtest_analysis_data,
    load_backtest_data,
    load_backtest_stats,
)

from statarb.ft import FREQTRADE_VERSION

__all__ = [
    "FREQTRADE_VERSION",
    "BacktestResult",
    "ResultError",
    "latest_result_file",
    "load_result",
    "record_datadir",
]

RESULT_GLOB = "backtest-result-*.zip"


class ResultError(ValueError):
    """A backtest result that cannot be found or read; the message names the path."""


@dataclass(frozen=True)
class BacktestResult:
    """One strategy's part of a backtest result file.

    ``signals`` (pair -> analysed candles at the trade entries) exists only for results
    exported with ``--export signals``; ``wallet`` (the stake-currency balance captured at
    every candle) only for zip results of Freqtrade versions that write it.
    """

    path: Path
    strategy: str
    trades: pd.DataFrame
    stats: dict[str, Any]
    signals: dict[str, pd.DataFrame] | None = None
    wallet: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    datadir: Path | None = None  # the candles the backtest ran on, when it recorded them

    @property
    def timeframe(self) -> str:
        """Candle timeframe the backtest ran on (``"1h"``)."""
        return str(self.stats.get("timeframe") or "1h")

    @property
    def starting_balance(self) -> float:
        """Stake-currency balance the backtest started with (``dry_run_wallet``)."""
        value = self.stats.get("starting_balance", self.stats.get("dry_run_wallet"))
        if value is None:
            raise ResultError(f"{self.path}: the result has no starting_balance")
        return float(value)


def latest_result_file(directory: Path) -> Path:
    """The result Freqtrade names in ``directory/.last_result.json``.

    Falls back to the newest ``backtest-result-*.zip`` by name (names carry the run time)
    when the pointer file is missing, e.g. after results were copied by hand.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultError(f"backtest results directory {directory} does not exist")
    try:
        name = get_latest_backtest_filename(directory)
    except ValueError:
        found = sorted(directory.glob(RESULT_GLOB))
        if not found:
            raise ResultError(
                f"no backtest result in {directory}: no .last_result.json and no "
                f"{RESULT_GLOB}; run `make backtest` (it exports signals) first"
            ) from None
        return found[-1]
    path = directory / name
    if not path.is_file():
        raise ResultError(
            f"{directory / '.last_result.json'} names {name}, which does not exist in {directory}"
        )
    return path


def record_datadir(config: dict[str, Any]) -> None:
    """Write the datadir a backtest really reads into the config its result will store.

    Why: Freqtrade stores ``original_config`` in the result zip (``*_config.json``), the
    merged config files *before* command-line arguments, so a ``--datadir`` given on the
    command line is not in the result, and a later report would read BTC from another
    datadir. The strategy calls this at bot start; in backtesting (one strategy) its
    config is the very dict Freqtrade stores. Harmless elsewhere: the key is Freqtrade's own
    and holds the value that was used.
    """
    original = config.get("original_config")
    datadir = config.get("datadir")
    if isinstance(original, dict) and datadir:
        original["datadir"] = str(Path(datadir).resolve())


def _datadir(path: Path, members: list[str]) -> Path | None:
    """The datadir stored in the result's config, or None (older results, another tool)."""
    name = f"{path.stem}_config.json"
    if name not in members:
        return None
    with zipfile.ZipFile(path) as archive:
        try:
            value = json.loads(archive.read(name)).get("datadir")
        except (ValueError, AttributeError):
            return None
    return Path(value) if isinstance(value, str) and value else None


def _members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        raise ResultError(f"{path} is not a readable zip file") from None


def _pick_strategy(path: Path, stats: dict[str, Any], strategy: str | None) -> str:
    names = list(stats.get("strategy", {}))
    if not names:
        raise ResultError(f"{path} holds no strategy result")
    if strategy is None:
        if len(names) > 1:
            raise ResultError(f"{path} holds several strategies ({', '.join(names)}); pick one")
        return names[0]
    if strategy not in names:
        raise ResultError(f"{path} has no result for {strategy}; it holds {', '.join(names)}")
    return strategy


def _signals(path: Path, strategy: str, members: list[str]) -> dict[str, pd.DataFrame] | None:
    """Signal candles of ``strategy`` (zip results only), or None when not exported.

    The member is looked up first so a result exported without signals does not make
    Freqtrade log an error for the missing file.
    """
    if f"{path.stem}_signals.pkl" not in members:
        return None
    loaded = load_backtest_analysis_data(path, "signals")
    if not isinstance(loaded, dict):
        return None
    per_pair = loaded.get(strategy)
    return dict(per_pair) if isinstance(per_pair, dict) else None


def _wallet(path: Path, strategy: str, members: list[str]) -> pd.DataFrame | None:
    if f"{path.stem}_{strategy}_wallet.feather" not in members:
        return None
    frame = get_backtest_wallet_change(path, strategy)
    if frame is None or frame.empty:
        return None
    return frame.drop(columns=["__date_ts", "index"], errors="ignore")


def load_result(
    path: Path | None = None,
    *,
    directory: Path | None = None,
    strategy: str | None = None,
) -> BacktestResult:
    """Trades, stats, signal candles and wallet of one backtest result.

    ``path`` is a result zip; without it the latest result in ``directory`` is read.
    Raises :class:`ResultError` (a ``ValueError``) naming the path when there is no
    result or it cannot be read.
    """
    if path is None:
        if directory is None:
            raise ResultError("give a result file or a results directory")
        path = latest_result_file(directory)
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"backtest result {path} does not exist")
    if path.suffix != ".zip":
        raise ResultError(f"{path} is not a backtest result zip (backtest-result-*.zip)")
    members = _members(path)
    try:
        stats = load_backtest_stats(path)
        name = _pick_strategy(path, stats, strategy)
        trades = load_backtest_data(path, strategy=name)
        signals = _signals(path, name, members)
        wallet = _wallet(path, name, members)
    except ResultError:
        raise
    except Exception as exc:
        # Freqtrade's loaders raise anything from JSON, zip, pickle and pandas on a damaged
        # or foreign file; to the user each is the same "cannot read this result".
        raise ResultError(f"cannot read backtest result {path}: {exc}") from exc
    notes: list[str] = []
    if signals is None:
        notes.append(
            f"{path.name} has no signal candles (run the backtest with --export signals): "
            "hedge-ratio errors are left empty"
        )
    return BacktestResult(
        path=path,
        strategy=name,
        trades=trades,
        stats=dict(stats["strategy"][name]),
        signals=signals,
        wallet=wallet,
        notes=notes,
        datadir=_datadir(path, members),
    )
