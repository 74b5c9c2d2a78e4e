"""The backtest report: couple trips, the per-couple table, portfolio metrics, the CLI.

The pure functions run on crafted trades whose expected figures are worked out here by
hand; the slow test runs a short real backtest and the CLI on its result.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from statarb.tools.report import (
    COUPLE_COLUMNS,
    TOTAL,
    couple_table,
    couple_trips,
    daily_return_series,
    equity_figure,
    main,
    portfolio_metrics,
    signal_betas,
    write_equity_html,
)
from tests.offline import FREQTRADE, REPO, offline_env
from tests.shared_data import DATADIR, MARKETS, require_shared

FEE = 0.0005
SQRT365 = math.sqrt(365)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


T1 = ts("2025-01-01 10:00")  # AAA~BBB, first trip
T2 = ts("2025-01-03 00:00")  # AAA~BBB, second trip
T3 = ts("2025-01-02 00:00")  # CCC~DDD
T5 = ts("2025-01-05 00:00")  # EEE~FFF, a lone leg


def leg(
    tag: str | None,
    pair: str,
    opened: pd.Timestamp,
    closed: pd.Timestamp,
    amount: float,
    open_rate: float,
    close_rate: float,
    profit: float,
    funding: float = 0.0,
    short: bool = False,
) -> dict[str, object]:
    return {
        "pair": pair,
        "enter_tag": tag,
        "open_date": opened,
        "close_date": closed,
        "amount": amount,
        "open_rate": open_rate,
        "close_rate": close_rate,
        "fee_open": FEE,
        "fee_close": FEE,
        "profit_abs": profit,
        "funding_fees": funding,
        "is_open": False,
        "is_short": short,
    }


@pytest.fixture
def trades() -> pd.DataFrame:
    """Two couples (AAA~BBB twice, CCC~DDD once) and a lone y leg of EEE~FFF.

    AAA~BBB #1: y long 10 @ 100 (notional 1000), x short 40 @ 12.5 (500), x exits one
    candle after y. AAA~BBB #2: y short 5 @ 120 (600), x long 30 @ 10 (300). CCC~DDD: a
    negative beta, both legs long: y 2 @ 50 (100), x 3.1 @ 50 (155).
    """
    rows = [
        leg("AAA~BBB", "AAA/USDT:USDT", T1, ts("2025-01-02 10:00"), 10, 100, 110, 99.0, -1.2),
        leg("AAA~BBB", "BBB/USDT:USDT", T1, ts("2025-01-02 11:00"), 40, 12.5, 12.0, 19.5, 0.3,
            short=True),
        leg("CCC~DDD", "CCC/USDT:USDT", T3, ts("2025-01-03 12:00"), 2, 50, 55, 4.0),
        leg("CCC~DDD", "DDD/USDT:USDT", T3, ts("2025-01-03 12:00"), 3.1, 50, 48, -1.0),
        leg("AAA~BBB", "AAA/USDT:USDT", T2, ts("2025-01-04 06:00"), 5, 120, 126, -30.0, 0.1,
            short=True),
        leg("AAA~BBB", "BBB/USDT:USDT", T2, ts("2025-01-04 06:00"), 30, 10, 10.5, 5.0, -0.4),
        leg("EEE~FFF", "EEE/USDT:USDT", T5, ts("2025-01-05 05:00"), 1, 20, 19, -2.0),
    ]  # fmt: skip
    return pd.DataFrame(rows)


BETAS = {("AAA~BBB", T1): 0.49, ("AAA~BBB", T2): 0.52, ("CCC~DDD", T3): -1.5, ("EEE~FFF", T5): 1.0}

# Worked out by hand from the fixture: amount * rate * fee at entry and at exit per leg.
FEES_AB1 = (10 * 100 * FEE + 10 * 110 * FEE) + (40 * 12.5 * FEE + 40 * 12.0 * FEE)  # 1.54
FEES_AB2 = (5 * 120 * FEE + 5 * 126 * FEE) + (30 * 10 * FEE + 30 * 10.5 * FEE)  # 0.9225
FEES_CD = (2 * 50 * FEE + 2 * 55 * FEE) + (3.1 * 50 * FEE + 3.1 * 48 * FEE)  # 0.2569
FEES_EF = 1 * 20 * FEE + 1 * 19 * FEE  # 0.0195
HEDGE_AB1 = abs(500 / 1000 / 0.49 - 1)  # x notional / y notional / |beta| - 1
HEDGE_AB2 = abs(300 / 600 / 0.52 - 1)
HEDGE_CD = abs(155 / 100 / 1.5 - 1)


# ---------------------------------------------------------------------- trips
def test_trips_group_legs_by_couple_and_open_date(trades: pd.DataFrame) -> None:
    trips = couple_trips(trades, BETAS).set_index(["couple", "open_date"])
    assert len(trips) == 4
    ab1, ab2 = trips.loc[("AAA~BBB", T1)], trips.loc[("AAA~BBB", T2)]
    cd, ef = trips.loc[("CCC~DDD", T3)], trips.loc[("EEE~FFF", T5)]

    assert ab1["legs"] == 2 and not ab1["incomplete"]
    assert ab1["close_date"] == ts("2025-01-02 11:00")  # the later leg
    assert ab1["holding_hours"] == pytest.approx(25.0)
    assert ab1["profit_abs"] == pytest.approx(99.0 + 19.5)
    assert ab1["funding"] == pytest.approx(-1.2 + 0.3)
    assert ab1["fees"] == pytest.approx(1.54)
    assert ab1["hedge_error"] == pytest.approx(HEDGE_AB1)
    assert ab1["side"] == "long"

    assert ab2["profit_abs"] == pytest.approx(-25.0)
    assert ab2["holding_hours"] == pytest.approx(30.0)
    assert ab2["fees"] == pytest.approx(FEES_AB2)
    assert ab2["hedge_error"] == pytest.approx(HEDGE_AB2)
    assert ab2["side"] == "short"

    assert cd["hedge_error"] == pytest.approx(1 / 30)  # 155 / 100 / 1.5 = 31 / 30
    assert cd["hedge_error"] == pytest.approx(HEDGE_CD)
    assert cd["fees"] == pytest.approx(FEES_CD)
    assert cd["notional_y"] == pytest.approx(100) and cd["notional_x"] == pytest.approx(155)

    assert ef["legs"] == 1 and ef["incomplete"]  # a lone leg is flagged
    assert math.isnan(ef["hedge_error"])  # no partner: no hedge ratio, even with a beta
    assert ef["fees"] == pytest.approx(FEES_EF)


def test_trips_without_betas_leave_the_hedge_error_empty(trades: pd.DataFrame) -> None:
    trips = couple_trips(trades)
    assert trips["hedge_error"].isna().all()
    assert trips["profit_abs"].sum() == pytest.approx(trades["profit_abs"].sum())


def test_untagged_and_doubled_legs_are_incomplete(trades: pd.DataFrame) -> None:
    extra = pd.DataFrame(
        [
            leg(None, "ZZZ/USDT:USDT", T5, ts("2025-01-05 02:00"), 1, 10, 11, 1.0),
            leg("CCC~DDD", "CCC/USDT:USDT", T3, ts("2025-01-03 12:00"), 1, 50, 55, 1.0),
        ]
    )
    trips = couple_trips(pd.concat([trades, extra], ignore_index=True), BETAS)
    untagged = trips[trips["couple"].str.startswith("ZZZ/USDT:USDT")]
    assert len(untagged) == 1 and untagged["incomplete"].all()
    cd = trips[trips["couple"] == "CCC~DDD"].iloc[0]
    assert cd["legs"] == 3 and cd["incomplete"] and math.isnan(cd["hedge_error"])


def test_empty_trades_give_empty_trips_and_a_zero_total() -> None:
    trips = couple_trips(pd.DataFrame())
    assert trips.empty
    table = couple_table(trips)
    assert list(table["couple"]) == [TOTAL]
    assert table.iloc[0]["trades"] == 0 and table.iloc[0]["pnl"] == 0.0


def test_signal_betas_read_the_candle_before_the_entry(trades: pd.DataFrame) -> None:
    hour = pd.Timedelta(hours=1)
    signals = {
        # The 2-hour-old candle carries another beta: only open_date - 1h may be used.
        "AAA/USDT:USDT": pd.DataFrame(
            {"date": [T1 - 2 * hour, T1 - hour, T2 - hour], "couple_beta": [9.0, 0.49, 0.52]}
        ),
        # The x leg of the second trip shows another couple's beta: the trip's is unknown.
        "BBB/USDT:USDT": pd.DataFrame({"date": [T1 - hour, T2 - hour], "couple_beta": [0.49, 0.7]}),
        # Pickled candles may carry microsecond stamps where the trades have nanoseconds.
        "CCC/USDT:USDT": pd.DataFrame(
            {"date": pd.Series([T3 - hour]).astype("datetime64[us, UTC]"), "couple_beta": [-1.5]}
        ),
        "DDD/USDT:USDT": pd.DataFrame(),  # no candle: the partner's beta is used
    }
    betas = signal_betas(signals, trades, "1h")
    assert betas[("AAA~BBB", T1)] == pytest.approx(0.49)
    assert math.isnan(betas[("AAA~BBB", T2)])
    assert betas[("CCC~DDD", T3)] == pytest.approx(-1.5)
    assert math.isnan(betas[("EEE~FFF", T5)])
    trips = couple_trips(trades, betas).set_index(["couple", "open_date"])
    assert trips.loc[("AAA~BBB", T1), "hedge_error"] == pytest.approx(HEDGE_AB1)
    assert math.isnan(trips.loc[("AAA~BBB", T2), "hedge_error"])

    four_hours = {"AAA/USDT:USDT": pd.DataFrame({"date": [T1 - 4 * hour], "couple_beta": [0.3]})}
    assert signal_betas(four_hours, trades, "4h")[("AAA~BBB", T1)] == pytest.approx(0.3)


# ---------------------------------------------------------------------- table
def test_couple_table_rows_sorted_by_pnl_with_a_total(trades: pd.DataFrame) -> None:
    table = couple_table(couple_trips(trades, BETAS))
    assert list(table.columns) == COUPLE_COLUMNS
    assert list(table["couple"]) == ["AAA~BBB", "CCC~DDD", "EEE~FFF", TOTAL]
    rows = table.set_index("couple")

    ab = rows.loc["AAA~BBB"]
    assert ab["trades"] == 2
    assert ab["win_rate"] == pytest.approx(0.5)  # +118.5 and -25
    assert ab["pnl"] == pytest.approx(118.5 - 25.0)
    assert ab["avg_holding_hours"] == pytest.approx((25 + 30) / 2)
    assert ab["avg_hedge_error"] == pytest.approx((HEDGE_AB1 + HEDGE_AB2) / 2)
    assert ab["funding_paid"] == pytest.approx(-(-1.2 + 0.3 + 0.1 - 0.4))  # 1.2 paid
    assert ab["fees_paid"] == pytest.approx(FEES_AB1 + FEES_AB2)
    assert ab["incomplete"] == 0

    ef = rows.loc["EEE~FFF"]
    assert ef["win_rate"] == 0.0 and ef["incomplete"] == 1 and math.isnan(ef["avg_hedge_error"])

    total = rows.loc[TOTAL]
    assert total["trades"] == 4
    assert total["win_rate"] == pytest.approx(2 / 4)
    assert total["pnl"] == pytest.approx(trades["profit_abs"].sum())
    assert total["avg_holding_hours"] == pytest.approx((25 + 30 + 36 + 5) / 4)
    assert total["avg_hedge_error"] == pytest.approx((HEDGE_AB1 + HEDGE_AB2 + HEDGE_CD) / 3)
    assert total["funding_paid"] == pytest.approx(1.2)
    assert total["fees_paid"] == pytest.approx(FEES_AB1 + FEES_AB2 + FEES_CD + FEES_EF)
    assert total["incomplete"] == 1


# ---------------------------------------------------------------------- portfolio
def _sharpe(r: np.ndarray) -> float:
    return float(r.mean() / r.std(ddof=1) * SQRT365)


def _sortino(r: np.ndarray) -> float:
    return float(r.mean() / np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * SQRT365)


def test_metrics_from_realised_trades(trades: pd.DataFrame) -> None:
    # End-of-day equity by hand (start 1000; closes +118.5 on 01-02, +3 on 01-03,
    # -25 on 01-04, -2 on 01-05; nothing closes on 01-01, the first entry day).
    equity = np.array([1000.0, 1118.5, 1121.5, 1096.5, 1094.5])
    returns = equity / np.r_[1000.0, equity[:-1]] - 1
    # BTC closes: hourly, each day's last candle at a known price.
    days = pd.date_range("2024-12-31", periods=6, freq="D", tz="UTC")
    day_close = np.array([100.0, 101.0, 99.0, 103.0, 102.0, 105.0])
    hours = pd.date_range(days[0], periods=6 * 24, freq="h")
    btc = pd.Series(np.repeat(day_close, 24) + np.tile(np.r_[np.linspace(-3, 3, 23), 0], 6),
                    index=hours)  # fmt: skip
    btc_returns = day_close[1:] / day_close[:-1] - 1

    m = portfolio_metrics(trades, 1000.0, btc_close=btc)
    assert m["equity_source"] == "trades"
    assert m["days"] == 5
    assert m["total_return"] == pytest.approx(94.5 / 1000)
    assert m["final_balance"] == pytest.approx(1094.5)
    assert m["sharpe"] == pytest.approx(_sharpe(returns))
    assert m["sortino"] == pytest.approx(_sortino(returns))
    assert m["max_drawdown"] == pytest.approx((1121.5 - 1094.5) / 1121.5)
    assert m["max_drawdown_abs"] == pytest.approx(27.0)
    assert m["couple_trips"] == 4 and m["legs"] == 7 and m["incomplete_trips"] == 1
    assert m["fees_paid"] == pytest.approx(FEES_AB1 + FEES_AB2 + FEES_CD + FEES_EF)
    assert m["funding_paid"] == pytest.approx(1.2)
    assert m["btc_correlation"] == pytest.approx(np.corrcoef(returns, btc_returns)[0, 1])
    assert math.isnan(portfolio_metrics(trades, 1000.0)["btc_correlation"])


def test_metrics_over_a_period_count_its_idle_days(trades: pd.DataFrame) -> None:
    """With ``period`` every day of it counts: flat at the start before the first trade,
    the last equity carried after the last one (what research compares variants on)."""
    period = (pd.Timestamp("2024-12-20", tz="UTC"), pd.Timestamp("2025-01-20", tz="UTC"))
    by_hand = np.r_[np.full(12, 1000.0), [1000.0, 1118.5, 1121.5, 1096.5, 1094.5],
                    np.full(14, 1094.5)]  # 12-20 .. 12-31, 01-01 .. 01-05, 01-06 .. 01-19
    returns = by_hand / np.r_[1000.0, by_hand[:-1]] - 1
    m = portfolio_metrics(trades, 1000.0, period=period)
    assert m["days"] == 31
    assert m["sharpe"] == pytest.approx(_sharpe(returns))
    assert m["sharpe"] < portfolio_metrics(trades, 1000.0)["sharpe"] / 2
    assert m["total_return"] == pytest.approx(94.5 / 1000)
    series = daily_return_series(trades, 1000.0, period=period)
    np.testing.assert_allclose(series.to_numpy(), returns, atol=1e-15)
    idle = portfolio_metrics(pd.DataFrame(), 1000.0, period=period)
    assert idle["days"] == 31 and idle["total_return"] == 0.0 and math.isnan(idle["sharpe"])


def test_metrics_prefer_the_wallet(trades: pd.DataFrame) -> None:
    hours = pd.date_range("2025-01-01", periods=4 * 24, freq="h", tz="UTC")
    balance = np.full(len(hours), 1000.0)
    day_end = [1010.0, 990.0, 1030.0, 1020.0]
    for day, value in enumerate(day_end):
        balance[day * 24 + 12 :] = value  # mid-day change, held to the day's end
    wallet = pd.DataFrame(
        {"date": hours, "currency": "USDT", "rate": 1, "balance": balance, "total_quote": balance}
    )
    equity = np.array(day_end)
    returns = equity / np.r_[1000.0, equity[:-1]] - 1

    m = portfolio_metrics(trades, 1000.0, wallet=wallet)
    assert m["equity_source"] == "wallet"
    assert m["days"] == 4
    assert m["sharpe"] == pytest.approx(_sharpe(returns))
    assert m["sortino"] == pytest.approx(_sortino(returns))
    assert m["max_drawdown"] == pytest.approx((1010 - 990) / 1010)
    # Return, trips and costs still come from the trades.
    assert m["total_return"] == pytest.approx(94.5 / 1000)
    assert m["couple_trips"] == 4


def test_flat_equity_has_no_sharpe() -> None:
    m = portfolio_metrics(pd.DataFrame(), 1000.0)
    assert m["couple_trips"] == 0 and m["total_return"] == 0.0 and m["max_drawdown"] == 0.0
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"])


# ---------------------------------------------------------------------- chart and CLI
def test_equity_html_has_a_line_per_couple_and_works_offline(
    trades: pd.DataFrame, tmp_path: Path
) -> None:
    trips = couple_trips(trades, BETAS)
    equity = pd.Series([1000.0, 1118.5, 1094.5], index=[T1, T2, T5])
    fig = equity_figure(equity, trips)
    assert [t.name for t in fig.data] == ["equity", "AAA~BBB", "CCC~DDD", "EEE~FFF"]
    ab = fig.data[1]
    assert list(ab.y) == pytest.approx([0.0, 118.5, 93.5])  # cumulative, from 0 at entry
    path = write_equity_html(fig, tmp_path / "out")
    assert 'src="plotly.min.js"' in path.read_text(encoding="utf-8")
    assert (tmp_path / "out" / "plotly.min.js").stat().st_size > 1_000_000


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out")
    assert main(["--results", str(tmp_path / "missing"), "--out", out]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--results", str(empty), "--out", out]) == 2
    assert "no backtest result" in capsys.readouterr().out
    bad = tmp_path / "backtest-result-bad.zip"
    bad.write_text("not a zip")
    assert main(["--file", str(bad), "--out", out]) == 2
    assert "not a readable zip" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_btc_comes_from_the_backtests_datadir_and_must_cover_it(tmp_path: Path) -> None:
    from statarb.tools.report import FALLBACK_DATADIR, ReportError, _btc_datadir, _check_covers

    given, recorded = tmp_path / "given", tmp_path / "recorded"
    assert _btc_datadir(given, recorded) == (given, "--datadir")
    assert _btc_datadir(None, recorded) == (recorded, "the backtest's datadir")
    assert _btc_datadir(None, None)[0] == FALLBACK_DATADIR
    hours = pd.date_range("2025-01-01", "2025-03-01", freq="h", tz="UTC")
    btc = pd.Series(1.0, index=hours)
    _check_covers(btc, given, "2025-01-01 00:00:00", "2025-03-01 00:00:00")  # covered
    with pytest.raises(ReportError, match=r"cover 2025-01-01\.\.2025-03-01, not the backtest's "
                       r"2025-06-01\.\.2025-07-01"):
        _check_covers(btc, given, "2025-06-01 00:00:00", "2025-07-01 00:00:00")


def test_latest_result_follows_freqtrade_pointer_or_the_newest_name(tmp_path: Path) -> None:
    from statarb.ft.results import ResultError, latest_result_file

    old, new = (
        tmp_path / "backtest-result-2025-01-01_00-00-00.zip",
        tmp_path / "backtest-result-2025-02-01_00-00-00.zip",
    )
    old.write_bytes(b"")
    new.write_bytes(b"")
    assert latest_result_file(tmp_path) == new  # no .last_result.json: newest by name
    (tmp_path / ".last_result.json").write_text(json.dumps({"latest_backtest": old.name}))
    assert latest_result_file(tmp_path) == old
    old.unlink()
    with pytest.raises(ResultError, match=old.name):
        latest_result_file(tmp_path)


# ---------------------------------------------------------------------- real backtest
@pytest.mark.slow
def test_cli_on_a_real_backtest(tmp_path: Path) -> None:
    require_shared()
    userdir, results, out = tmp_path / "user_data", tmp_path / "results", tmp_path / "report"
    userdir.mkdir()
    results.mkdir()
    # Another datadir than the default one, given on the command line only (Freqtrade does
    # not store command-line arguments in the result): the report must still find BTC.
    datadir = tmp_path / "elsewhere" / "binance"
    (datadir / "futures").mkdir(parents=True)
    for f in (DATADIR / "futures").iterdir():
        (datadir / "futures" / f.name).symlink_to(f)
    # July 2025: the walk-forward selection trades couples in it (August 2025 has none).
    cmd = [
        sys.executable, "-m", "statarb.sim.run", "--datadir", str(datadir),
        "--markets", str(MARKETS), "--",
        FREQTRADE, "backtesting", "--config", str(REPO / "config.json"),
        "--config", str(REPO / "config.offline.json"), "--datadir", str(datadir),
        "--userdir", str(userdir), "--strategy", "CointPairsStrategy",
        "--strategy-path", str(REPO / "strategies"), "--timerange", "20250701-20250801",
        "--export", "signals", "--backtest-directory", str(results), "--cache", "none",
    ]  # fmt: skip
    env = offline_env()
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    (zip_path,) = sorted(results.glob("backtest-result-*.zip"))

    report = subprocess.run(
        [sys.executable, "-m", "statarb.tools.report", "--results", str(results),
         "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, (report.stdout + report.stderr)[-4000:]

    # The trades, read independently of the report's loaders.
    with zipfile.ZipFile(zip_path) as archive:
        doc = json.loads(archive.read(f"{zip_path.stem}.json"))
        assert f"{zip_path.stem}_signals.pkl" in archive.namelist()
    stats = doc["strategy"]["CointPairsStrategy"]
    trades = pd.DataFrame(stats["trades"])
    assert len(trades) > 0, "the backtest made no trade: nothing to report on"
    trades["couple"] = trades["enter_tag"]  # one tag per couple
    expected = trades.groupby("couple").agg(
        trips=("open_date", "nunique"), pnl=("profit_abs", "sum")
    )

    table = pd.read_csv(out / "couples.csv")
    assert table["couple"].iloc[-1] == TOTAL
    rows = table.iloc[:-1].set_index("couple")
    assert set(rows.index) == set(expected.index)
    assert (rows["trades"] == expected.loc[rows.index, "trips"]).all()
    assert np.allclose(rows["pnl"], expected.loc[rows.index, "pnl"])
    assert table["pnl"].iloc[-1] == pytest.approx(stats["profit_total_abs"])
    # Amounts were rounded to the hedge ratio read from the exported signal candles.
    assert rows["avg_hedge_error"].notna().all() and (rows["avg_hedge_error"] < 0.05).all()

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["couple_trips"] == int(expected["trips"].sum())
    assert metrics["legs"] == len(trades)
    assert metrics["equity_source"] == "wallet"
    assert metrics["total_return"] == pytest.approx(stats["profit_total"])
    assert metrics["btc_correlation"] is not None
    assert f"BTC candles from {datadir.resolve()} (the backtest's datadir)" in metrics["notes"]
    assert (out / "equity.html").is_file() and (out / "plotly.min.js").is_file()
    assert "TOTAL" in report.stdout
