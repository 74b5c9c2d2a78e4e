"""Chaos scenarios: ``freqtrade trade`` in LIVE mode against the private simulator, with one
scripted exchange fault per scenario, judged on what the exchange account went through.

A pairs bot is only as safe as its worst couple entry: one leg filled while its partner is
flat is an unhedged position. Each scenario starts the simulator shifted to now at the
Makefile's ``REPLAY_START`` (where the strategy opens WLD~ARB on its first loop, the y leg
WLD first, the x leg ARB about 0.2 s later), starts the bot with ``dry_run: false`` and dummy
keys in a temporary directory, arms the scenario's fault at the moment it matters, waits
for the account to go quiet and stops everything, failure or not.

The verdict comes from the simulator's journal, not from the bot's own view, because the
bot's view is exactly what a fault can corrupt. A scenario passes when

* every couple ends flat or with both legs open in the hedge ratio (within 5 %),
* the time one leg was held while its partner was flat (naked exposure) stays under
  :data:`NAKED_BOUND_S`: three bot loops plus one order's latency, counted only while the
  bot can act. Where the scenario itself takes the bot away from the exchange, that
  window is not counted: the connection drop (its outage) and a crash until the restarted
  bot's supervision starts (Python and Freqtrade start-up, its restart time). Both are
  printed in their own columns; no bot can close a leg while it cannot reach the
  exchange or is not running, and a slow start-up on a busy machine is not the bot's
  fault. Only :func:`close_keeps_failing` widens its bound, by the refusals it scripts,
* no order was sent twice (same symbol, side and quantity within one second),
* Freqtrade's records match the exchange: each open trade's amount equals the exchange's
  position of its pair (within the amount step), and no trade is open on a flat pair.

A scenario the strategy cannot handle reports FAIL with the measured numbers; the bounds are
never loosened to make one pass.

    python -m statarb.harness.chaos                 # every scenario
    python -m statarb.harness.chaos --only ghost_order_second_leg --only forceexit_one_leg
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from statarb.core.messages import SUPERVISION_STARTED
from statarb.core.published import FILE_NAME as SELECTION_FILE
from statarb.harness.offline import (
    free_port,
    offline_env,
    replay_start,
    shifted_clock,
    stop_process,
)
from statarb.sim import DEFAULT_DATADIR, DEFAULT_MARKETS, REPO_ROOT, SimServer
from statarb.sim.journal import Entry, naked_intervals
from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
from statarb.tools.credentials import credentials

THROTTLE_S = 2
"""``process_throttle_secs`` of every run: one bot loop."""
ORDER_LATENCY_S = 2.0
"""One order's round trip at worst in these scenarios (the simulator's stall is 2 s)."""
NAKED_BOUND_S = 3 * THROTTLE_S + ORDER_LATENCY_S
"""A lone leg must be hedged or closed within three bot loops plus one order."""
RATIO_TOLERANCE = 0.05
DUPLICATE_WINDOW_MS = 1000
QUIET_S = 4 * THROTTLE_S
"""The account is settled when the journal has not moved for four loops, no order open."""
SETTLE_MAX_S = 75.0
"""Upper bound on the wait for a settled account after the fault; then it is judged as is."""
FIRST_ORDER_TIMEOUT_S = 240.0
"""Start-up (pairlist, history, first analysis) until the first leg's order."""
SCENARIO_MAX_S = 120.0
"""Wall time a scenario is given before a candle close: they take 26-35 s on an idle
machine (`make test`'s --durations), so 120 s leaves three times that for a loaded one.
Crossing a close is not fatal anyway: WLD~ARB's z-score stays beyond the entry level and
short of the exit and the stop for three more candles (-2.37, -2.37, -2.49)."""

Y_SYMBOL, X_SYMBOL = "WLDUSDT", "ARBUSDT"
LIVE_KEYS = {
    "FREQTRADE__EXCHANGE__KEY": "sim-dummy-key",
    "FREQTRADE__EXCHANGE__SECRET": "sim-dummy-secret",
}


class ChaosError(RuntimeError):
    """The run itself went wrong (bot died, never traded): the scenario cannot be judged."""


@dataclass
class ScenarioResult:
    """What one scenario measured, and the verdict against the bounds above."""

    scenario: str
    passed: bool
    reason: str
    naked_s: float
    orders_sent: int
    duplicates: int
    final_state: str
    workdir: str = ""
    bound_s: float = NAKED_BOUND_S
    restart_s: float = 0.0  # crash until the restarted bot's supervision started
    outage_s: float = 0.0  # the exchange unreachable

    @property
    def outcome(self) -> str:
        return "PASS" if self.passed else "FAIL"


_FORMED: dict[int, bytes] = {}
"""The selection file a first bot start published, by replay offset (ms).

Why: every scenario starts a bot on the same replay, and a bot's pairlist spends most of
its start-up (fetching the whole lookback of every coin, then forming couples) computing
a selection that, for one replay offset (the whole hours the replay is shifted by), is the
same every time: the same candles, the same settings. A later scenario starts with that
file in its ``user_data``, so its pairlist resumes it as a restarted bot would (same
settings, refresh not due; otherwise it selects afresh). The first scenario at each
offset still forms it live, and the crash scenarios' restarts resumed from the start.
"""


class LiveRun:
    """The simulator plus a live-mode ``freqtrade trade`` in ``workdir``, restartable on the
    same database; :meth:`close` always leaves nothing running."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.user_data = workdir / "user_data"
        for sub in ("data", "logs"):
            (self.user_data / sub).mkdir(parents=True, exist_ok=True)
        self.db = workdir / "live.sqlite"
        self.creds = credentials()
        # A scenario (first order, fault, settle) must not cross a candle close.
        clock = shifted_clock(replay_start(), run_s=SCENARIO_MAX_S)
        self.sim = SimServer(datadir=DEFAULT_DATADIR, markets=DEFAULT_MARKETS, port=0,
                             clock=clock).start()
        self.offset_ms = clock.offset_ms
        self.selection_path = self.user_data / SELECTION_FILE
        if self.offset_ms in _FORMED and not self.selection_path.exists():
            self.selection_path.write_bytes(_FORMED[self.offset_ms])
        self.overlay = write_overlay(DEFAULT_OVERLAY, self.sim.port, DEFAULT_DATADIR, workdir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log = workdir / "freqtrade-0.log"
        self.api_port = 0
        # Wall-clock windows (ms) in which the bot could not act: not counted as naked.
        self.blackouts: list[tuple[int, int]] = []
        self.restart_s = 0.0
        self.outage_s = 0.0
        self.allowance_s = 0.0  # added to the bound by a scenario whose faults take time
        self.killed_ms = 0
        self.extra_config: dict[str, Any] = {}  # merged into the run's config
        self._hooks: list[Callable[[Entry], None]] = []
        record = self.sim.journal.record

        def recording(event: str, reason: str, **kw: Any) -> Entry:
            entry = record(event, reason, **kw)
            for hook in list(self._hooks):
                hook(entry)
            return entry

        # On the simulator's thread, before the response leaves: "right after an order"
        # means before the bot has even heard back, with no polling race.
        self.sim.journal.record = recording  # type: ignore[method-assign]

    # -- the bot process -------------------------------------------------------------
    def start(self) -> None:
        self.api_port = free_port()
        extra = self.workdir / "config.chaos.json"
        extra.write_text(json.dumps({
            "dry_run": False,
            "user_data_dir": str(self.user_data),
            "api_server": {"listen_port": self.api_port},
            "internals": {"process_throttle_secs": THROTTLE_S},
            **self.extra_config,
        }))
        self.runs += 1
        self.log = self.workdir / f"freqtrade-{self.runs}.log"
        cmd = [
            str(Path(sys.executable).parent / "freqtrade"), "trade",
            "--config", "config.json", "--config", "config.api.json",
            "--config", str(self.overlay), "--config", str(extra),
            "--strategy", "CointPairsStrategy", "--db-url", f"sqlite:///{self.db}",
        ]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO_ROOT,
                                         env=offline_env(**self.creds, **LIVE_KEYS),
                                         stdout=out, stderr=subprocess.STDOUT)

    def restart(self) -> None:
        """Start the bot again after a crash at ``killed_ms`` and wait until its leg
        supervision runs; the time between is a blackout (the bot cannot act)."""
        self.start()
        ready = self.wait("the restarted bot's supervision", self.supervision_started, 120)
        self.blackouts.append((self.killed_ms, ready))
        self.restart_s = (ready - self.killed_ms) / 1000

    def supervision_started(self) -> int | None:
        """Wall time (ms) the current run's strategy logged that its live supervision
        started (Freqtrade's log time, local), or None before."""
        try:
            text = self.log.read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if SUPERVISION_STARTED in line:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                return int(stamp.timestamp() * 1000)
        return None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.sim.stop()
        if self.offset_ms not in _FORMED and self.selection_path.exists():
            _FORMED[self.offset_ms] = self.selection_path.read_bytes()

    def client(self) -> Any:
        from freqtrade_client import FtRestClient  # freqtrade's client: only with freqtrade

        return FtRestClient(f"http://127.0.0.1:{self.api_port}",
                            self.creds["FREQTRADE__API_SERVER__USERNAME"],
                            self.creds["FREQTRADE__API_SERVER__PASSWORD"])

    def on_entry(self, hook: Callable[[Entry], None]) -> None:
        self._hooks.append(hook)

    # -- waiting -----------------------------------------------------------------------
    def wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """Poll ``check`` until truthy; a dead bot or the deadline raise :class:`ChaosError`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ChaosError(f"freqtrade exited ({self.proc.returncode}) waiting for "
                                 f"{what}: {self.tail()}")
            try:
                value = check()
            except Exception:  # the REST API is not up yet
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise ChaosError(f"timed out after {timeout:.0f} s waiting for {what}: {self.tail()}")

    def tail(self, lines: int = 6) -> str:
        try:
            return " | ".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def new_orders(self) -> list[Entry]:
        return [e for e in self.sim.journal.entries()
                if e["event"] == "order" and e["reason"] == "new"]

    def wait_first_order(self) -> Entry:
        return self.wait("the first leg's order", lambda: next(iter(self.new_orders()), None),
                         FIRST_ORDER_TIMEOUT_S)

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Exchange truth: symbol -> (signed amount, entry price) of open positions."""
        with self.sim.private.lock:
            return {s: (p.amount, p.entry_price)
                    for s, p in self.sim.account.positions.items() if p.amount}

    def open_orders(self) -> int:
        with self.sim.private.lock:
            return sum(1 for o in self.sim.account.orders.values() if o.is_open)

    def wait_both_open(self) -> None:
        self.wait("both legs open", lambda: {Y_SYMBOL, X_SYMBOL} <= set(self.positions())
                  and self.api_up() and len(self.client().status()) == 2,
                  FIRST_ORDER_TIMEOUT_S)

    def lone_leg(self) -> bool:
        """Some couple holds one leg only: the bot still has work to do, keep watching."""
        held = set(self.positions())
        return any((y in held) != (x in held) for y, x, _ in self.couples())

    def api_up(self) -> bool:
        """The REST port accepts connections (asked before the client, which prints every
        refused connection)."""
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.api_port)) == 0

    def settle(self) -> None:
        """Wait for a quiet account (journal still, no open order, no couple on one leg)
        or :data:`SETTLE_MAX_S`: a bot that repairs a lone leg late gets the chance to, and
        its naked time is then measured in full."""
        deadline = time.monotonic() + SETTLE_MAX_S
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = len(self.sim.journal.entries())
            if n != seen or self.open_orders() or self.lone_leg() or self.records_behind():
                seen, since = n, time.monotonic()
            elif time.monotonic() - since >= QUIET_S:
                return
            if self.proc is not None and self.proc.poll() is not None:
                return  # judged as left: a dead bot is no excuse for a naked leg
            time.sleep(0.25)

    def records_behind(self) -> bool:
        """The bot's books still differ from the exchange (a trade recording what is not
        held, a ledger entry for a flat couple): it has bookkeeping left to do."""
        positions = self.positions()
        trades = self.open_trades()
        for pair in set(trades) | {_pair(s) for s in positions}:
            symbol = pair.split("/")[0] + "USDT"
            held = float(positions[symbol][0]) if symbol in positions else 0.0
            if abs(held - trades.get(pair, 0.0)) > self.step(symbol) / 2 + 1e-9:
                return True
        held_pairs = {_pair(s) for s in positions}
        return any(not {e["y"][0], e["x"][0]} & held_pairs for e in self.ledger().values())

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of the bot's trade database, read with sqlite (none before it exists)."""
        if not self.db.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.db)) as db:
            try:
                return db.execute(sql).fetchall()
            except sqlite3.Error:
                return []

    def ledger(self) -> dict[str, dict[str, Any]]:
        """The bot's couple ledger as its trade database holds it: couple id -> entry
        (``y``/``x``: [pair, signed target, step]); read with sqlite, not the bot."""
        out = {}
        for (text,) in self._rows("SELECT string_value FROM KeyValueStore "
                                  "WHERE key LIKE 'statarb:%'"):
            doc = json.loads(text)
            out[doc["c"]] = doc
        return out

    def open_trades(self) -> dict[str, float]:
        """Signed amount per pair of the open trades in the bot's database (sqlite)."""
        out: dict[str, float] = {}
        for pair, amount, is_short in self._rows(
                "SELECT pair, amount, is_short FROM trades WHERE is_open = 1"):
            out[pair] = out.get(pair, 0.0) + (-float(amount) if is_short else float(amount))
        return out

    def step(self, symbol: str) -> float:
        info = self.sim.market_data.symbols.get(symbol)
        return float(info.step) if info is not None else 0.0

    def couples(self) -> list[tuple[str, str, float]]:
        """(y symbol, x symbol, beta) of the couples the pairlist published."""
        try:
            doc = json.loads(self.selection_path.read_text())
        except (OSError, ValueError):
            return [(Y_SYMBOL, X_SYMBOL, float("nan"))]
        return [(c["y"].split("/")[0] + "USDT", c["x"].split("/")[0] + "USDT", float(c["beta"]))
                for c in doc.get("couples", [])]


# ------------------------------------------------------------------------------ judging
def _pair(symbol: str) -> str:
    """``WLDUSDT`` -> ``WLD/USDT:USDT`` (the simulator's symbols are USDT-M perpetuals)."""
    return f"{symbol.removesuffix('USDT')}/USDT:USDT"


def counted_ms(intervals: Sequence[tuple[int, int]],
               blackouts: Sequence[tuple[int, int]]) -> int:
    """Length of ``intervals`` outside every ``blackouts`` window (both in ms)."""
    total = 0
    for a, b in intervals:
        cuts = sorted((max(a, lo), min(b, hi)) for lo, hi in blackouts if lo < b and hi > a)
        covered, edge = 0, a
        for lo, hi in cuts:
            lo = max(lo, edge)
            if hi > lo:
                covered += hi - lo
                edge = hi
        total += (b - a) - covered
    return total


def duplicate_orders(orders: Sequence[Entry]) -> int:
    """New orders repeating an earlier one (symbol, side, quantity) within one second."""
    dups = 0
    for i, e in enumerate(orders):
        for prev in orders[:i]:
            if (prev["symbol"], prev["side"], prev["qty"]) == (e["symbol"], e["side"], e["qty"]) \
                    and 0 <= e["wall_ms"] - prev["wall_ms"] <= DUPLICATE_WINDOW_MS:
                dups += 1
                break
    return dups


def judge(name: str, run: LiveRun, notes: Sequence[str] = ()) -> ScenarioResult:
    """The verdict from the journal and the simulated account at the end of a run."""
    entries = run.sim.journal.entries()
    (run.workdir / "journal.json").write_text(json.dumps(entries, indent=1))  # post-mortem
    now_ms = int(time.time() * 1000)
    couples = run.couples()
    naked_ms = 0
    for y, x, _ in couples:
        for leg, partner in ((y, x), (x, y)):
            naked_ms += counted_ms(naked_intervals(entries, leg, partner, until=now_ms),
                                   run.blackouts)
    orders = [e for e in entries if e["event"] == "order" and e["reason"] == "new"]
    dups = duplicate_orders(orders)
    positions = run.positions()
    ledger = run.ledger()
    states, problems = [], list(notes)
    for y, x, beta in couples:
        name_c = f"{y.removesuffix('USDT')}~{x.removesuffix('USDT')}"
        py, px = positions.get(y), positions.get(x)
        if py is None and px is None:
            if y == Y_SYMBOL:
                states.append(f"{name_c} flat")
            continue
        if py is None or px is None:
            lone = y if py is not None else x
            amount = (py or px)[0]  # type: ignore[index]
            states.append(f"{name_c} naked {lone.removesuffix('USDT')} {amount:+}")
            problems.append(f"{name_c} left with one leg")
            continue
        ratio = float(abs(px[0]) * px[1]) / float(abs(py[0]) * py[1])
        err = ratio / abs(beta) - 1
        same_side = (py[0] > 0) == (px[0] > 0)
        pairs = (_pair(y), _pair(x))
        entry = next((e for e in ledger.values() if (e["y"][0], e["x"][0]) == pairs), None)
        if entry is None:
            problems.append(f"{name_c} is open with no ledger entry (no targets)")
            states.append(f"{name_c} open ratio {err:+.1%} of beta, no targets")
        else:
            off = {leg: float(abs(pos[0])) / abs(float(entry[leg][1])) - 1
                   for leg, pos in (("y", py), ("x", px))}
            states.append(f"{name_c} open ratio {err:+.1%} of beta, at "
                          f"{float(abs(py[0])) / abs(float(entry['y'][1])):.0%}/"
                          f"{float(abs(px[0])) / abs(float(entry['x'][1])):.0%} of targets "
                          f"{abs(float(entry['y'][1])):g}/{abs(float(entry['x'][1])):g}")
            for leg, e in off.items():
                if abs(e) > RATIO_TOLERANCE:
                    problems.append(f"{name_c} {leg} leg {e:+.1%} off its target")
        if abs(err) > RATIO_TOLERANCE:
            problems.append(f"{name_c} hedge ratio off by {err:+.1%}")
        if same_side == (beta > 0):
            problems.append(f"{name_c} legs on the wrong sides")
    trades = run.open_trades()
    for pair in sorted(set(trades) | {_pair(s) for s in positions}):
        symbol = pair.split("/")[0] + "USDT"
        held_amount = float(positions[symbol][0]) if symbol in positions else 0.0
        recorded = trades.get(pair, 0.0)
        if abs(held_amount - recorded) > run.step(symbol) / 2 + 1e-9 and (
                recorded or symbol in {s for c in couples for s in c[:2]}):
            problems.append(f"trade of {pair} records {recorded:+g}, the exchange holds "
                            f"{held_amount:+g}")
    held = {_pair(s) for s in positions}
    stale = [c for c, e in ledger.items() if not {e["y"][0], e["x"][0]} & held]
    if stale:
        problems.append(f"ledger entries left for flat couples: {stale}")
    others = sorted(set(positions) - {s for c in couples for s in c[:2]})
    if others:
        states.append("stray " + ", ".join(s.removesuffix("USDT") for s in others))
        problems.append("positions outside the couples")
    if run.open_orders():
        problems.append(f"{run.open_orders()} order(s) still open")
    naked_s = naked_ms / 1000
    bound = NAKED_BOUND_S + run.allowance_s
    if naked_s > bound:
        problems.append(f"naked {naked_s:.1f} s > {bound:.1f} s")
    if dups:
        problems.append(f"{dups} duplicate order(s)")
    return ScenarioResult(
        scenario=name, passed=not problems, reason="; ".join(problems) or "ok",
        naked_s=round(naked_s, 2), orders_sent=len(orders), duplicates=dups,
        final_state="; ".join(states) or "flat", workdir=str(run.workdir),
        bound_s=round(bound, 2), restart_s=round(run.restart_s, 2),
        outage_s=round(run.outage_s, 2),
    )


@contextlib.contextmanager
def live_run(workdir: Path | None) -> Iterator[LiveRun]:
    """A :class:`LiveRun` in ``workdir`` (default: a fresh temporary directory, kept for its
    logs), closed on the way out whatever happened."""
    path = workdir or Path(tempfile.mkdtemp(prefix="statarb-chaos-"))
    path.mkdir(parents=True, exist_ok=True)
    run = LiveRun(path)
    try:
        yield run
    finally:
        run.close()


def _scenario(name: str, workdir: Path | None, act: Callable[[LiveRun], list[str] | None],
              arm: Callable[[LiveRun], None] | None = None,
              after: Callable[[LiveRun], list[str]] | None = None) -> ScenarioResult:
    """Shared shape: arm, start, act, settle, check ``after``, judge, stop; the notes of
    ``act`` and ``after`` (what went wrong) join the verdict."""
    with live_run(workdir) as run:
        try:
            if arm is not None:
                arm(run)
            run.start()
            notes = act(run) or []
            run.settle()
            if after is not None:
                notes += after(run)
            return judge(name, run, notes)
        except ChaosError as err:
            result = judge(name, run, [f"run error: {err}"])
            result.passed = False
            return result


def _first_order_then_settle(run: LiveRun) -> list[str]:
    run.wait_first_order()
    return []


# ------------------------------------------------------------------------------ scenarios
def partial_fill_first_leg_60(workdir: Path | None = None) -> ScenarioResult:
    """The y leg (WLD) fills 60 %, the rest expires: the x leg must follow the real fill."""
    return _scenario("partial_fill_first_leg_60", workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("partial", symbol=Y_SYMBOL, ratio=0.6,
                                                    rest="cancel"))


def partial_fill_first_leg_10(workdir: Path | None = None) -> ScenarioResult:
    """The y leg fills only 10 %: hedging it or giving it up, never a full x leg."""
    return _scenario("partial_fill_first_leg_10", workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("partial", symbol=Y_SYMBOL, ratio=0.1,
                                                    rest="cancel"))


def reject_second_leg_margin(workdir: Path | None = None) -> ScenarioResult:
    """The x leg (ARB) is refused for margin (-2019): the filled y leg must be closed."""
    return _scenario("reject_second_leg_margin", workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("reject", symbol=X_SYMBOL, code=-2019))


def rate_limit_second_leg(workdir: Path | None = None) -> ScenarioResult:
    """The x leg hits the rate limiter (HTTP 429, -1003)."""
    return _scenario("rate_limit_second_leg", workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("reject", symbol=X_SYMBOL, code=-1003))


def ghost_order_second_leg(workdir: Path | None = None) -> ScenarioResult:
    """The x order is created but its answer never arrives (a ghost the bot cannot see).

    Once settled, the adopted x leg must be a trade like any other: both legs open in the
    ratio, the x trade tagged as the couple's leg, and a ``/forceexit`` of it closes the
    couple (judged flat at the end)."""

    def after(run: LiveRun) -> list[str]:
        held = run.positions()
        notes = []
        if {Y_SYMBOL, X_SYMBOL} - set(held):
            notes.append(f"after the ghost the account holds {sorted(held)}, not both legs")
        client = run.client()
        x = [t for t in client.status() if t["pair"].startswith("ARB/")]
        if len(x) != 1 or x[0].get("enter_tag") != "WLD~ARB":
            return [*notes, f"the ghost ARB leg is not one couple trade: {x}"]
        client.forceexit(x[0]["trade_id"])
        run.settle()
        return notes

    return _scenario("ghost_order_second_leg", workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("timeout_after", symbol=X_SYMBOL),
                     after=after)


def timeout_no_order_second_leg(workdir: Path | None = None) -> ScenarioResult:
    """The x request times out and no order exists."""
    return _scenario("timeout_no_order_second_leg", workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("timeout_before", symbol=X_SYMBOL))


DROP_S = 5.0
"""Length of the connection drop in :func:`drop_mid_entry`."""


def drop_mid_entry(workdir: Path | None = None) -> ScenarioResult:
    """The link drops for 5 s right after the y order: the x order and the polls are cut."""

    def arm(run: LiveRun) -> None:
        fired = threading.Event()
        run.outage_s = DROP_S

        def hook(entry: Entry) -> None:
            if (entry["event"] == "order" and entry["symbol"] == Y_SYMBOL
                    and not fired.is_set()):
                fired.set()
                run.sim.faults.add("drop", duration_s=DROP_S)
                start = int(entry["wall_ms"])
                run.blackouts.append((start, start + int(DROP_S * 1000)))

        run.on_entry(hook)

    return _scenario("drop_mid_entry", workdir, _first_order_then_settle, arm=arm)


def _kill_when(run: LiveRun, match: Callable[[Entry], bool]) -> None:
    """kill -9 the bot the first time the simulator journals an entry ``match`` accepts,
    on the simulator's thread before its answer leaves: the bot never hears back."""
    fired = threading.Event()

    def hook(entry: Entry) -> None:
        if not fired.is_set() and run.proc is not None and match(entry):
            fired.set()
            os.kill(run.proc.pid, signal.SIGKILL)
            run.killed_ms = int(time.time() * 1000)

    run.on_entry(hook)


def _kill_now(run: LiveRun) -> None:
    assert run.proc is not None
    os.kill(run.proc.pid, signal.SIGKILL)
    run.killed_ms = int(time.time() * 1000)


def _is(event: str, symbol: str, side: str | None = None) -> Callable[[Entry], bool]:
    return lambda e: (e["event"] == event and e["symbol"] == symbol
                      and (side is None or e.get("side") == side))


def _await_crash_and_restart(run: LiveRun, notes: list[str]) -> list[str]:
    """Wait for the bot to die at the armed instant, check the database, restart."""
    assert run.proc is not None
    deadline = time.monotonic() + FIRST_ORDER_TIMEOUT_S
    while run.proc.poll() is None:  # the bot dies on purpose here: no liveness check
        if time.monotonic() > deadline:
            raise ChaosError(f"the crash instant never came: {run.tail()}")
        time.sleep(0.05)
    if not run.killed_ms:
        raise ChaosError(f"freqtrade exited ({run.proc.returncode}) by itself: {run.tail()}")
    with contextlib.closing(sqlite3.connect(run.db)) as db:
        check = db.execute("PRAGMA integrity_check").fetchone()
    if check != ("ok",):
        notes.append(f"database integrity_check {check}")
    run.restart()
    return notes


def _exit_side(run: LiveRun, symbol: str) -> str:
    """The side that closes ``symbol``'s position (from its entry order in the journal)."""
    first = next(e for e in run.new_orders() if e["symbol"] == symbol)
    return "SELL" if first["side"] == "BUY" else "BUY"


def _force_exit_async(run: LiveRun, symbol: str) -> None:
    """``/forceexit`` of one leg over REST, in a thread: the bot may die answering it."""
    client = run.client()
    trade = next(t for t in client.status() if t["pair"] == _pair(symbol))

    def call() -> None:
        with contextlib.suppress(Exception):
            client.forceexit(trade["trade_id"])

    threading.Thread(target=call, daemon=True).start()


# The crash sweep: kill -9 at every instant of a couple's entry and exit whose aftermath
# differs, restart on the same database, and judge the account (flat, or hedged at the
# ledger's targets), the database (integrity_check) and the orders (no duplicate).
def _entry_crash(name: str, arm: Callable[[LiveRun], None],
                 workdir: Path | None) -> ScenarioResult:
    notes: list[str] = []
    return _scenario(name, workdir, lambda run: _await_crash_and_restart(run, notes), arm=arm)


def crash_before_first_order(workdir: Path | None = None) -> ScenarioResult:
    """Killed with the ledger written and the y order on its way, before the exchange has
    it (the request never lands): nothing is held; the entry is forgotten."""
    def arm(run: LiveRun) -> None:
        run.sim.faults.add("timeout_before", symbol=Y_SYMBOL)
        _kill_when(run, _is("fault", Y_SYMBOL))
    return _entry_crash("crash_before_first_order", arm, workdir)


def kill9_between_legs(workdir: Path | None = None) -> ScenarioResult:
    """Killed the instant the y order reaches the exchange (it fills; the bot never hears):
    the restart finds y held with no trade and no x, and closes it reduce-only."""
    return _entry_crash("kill9_between_legs",
                        lambda run: _kill_when(run, _is("order", Y_SYMBOL)), workdir)


def crash_after_first_fill(workdir: Path | None = None) -> ScenarioResult:
    """Killed after the y fill was recorded, as the x order leaves (it never lands): the
    restart finds y alone and closes it."""
    def arm(run: LiveRun) -> None:
        run.sim.faults.add("timeout_before", symbol=X_SYMBOL)
        _kill_when(run, _is("fault", X_SYMBOL))
    return _entry_crash("crash_after_first_fill", arm, workdir)


def crash_second_order_open(workdir: Path | None = None) -> ScenarioResult:
    """Killed once the x order rests on the exchange unfilled: the restart cancels the
    ghost order and closes y."""
    def arm(run: LiveRun) -> None:
        run.sim.faults.add("partial", symbol=X_SYMBOL, ratio=0.0, rest="open")
        _kill_when(run, _is("order", X_SYMBOL))
    return _entry_crash("crash_second_order_open", arm, workdir)


def crash_second_fill_on_exchange(workdir: Path | None = None) -> ScenarioResult:
    """Killed once the x fill is on the exchange, before the bot processed it: the restart
    adopts x from the ledger and the recorded y leg; the couple stays hedged."""
    return _entry_crash("crash_second_fill_on_exchange",
                        lambda run: _kill_when(run, _is("fill", X_SYMBOL)), workdir)


def crash_both_recorded(workdir: Path | None = None) -> ScenarioResult:
    """Killed with both legs recorded: the restart keeps the couple as it is."""
    notes: list[str] = []

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        run.wait("the ledger's open stage", lambda: any(
            e["s"] == "open" for e in run.ledger().values()), 30)
        _kill_now(run)
        return _await_crash_and_restart(run, notes)

    return _scenario("crash_both_recorded", workdir, act)


def _exit_crash(name: str, arm: Callable[[LiveRun], None] | None,
                kill_after: Callable[[LiveRun], None] | None,
                workdir: Path | None) -> ScenarioResult:
    """Both legs open, ``arm`` the crash, ``/forceexit`` the y leg (the couple leaves: y
    first, then the supervisor closes x), crash, restart."""
    notes: list[str] = []

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        if arm is not None:
            arm(run)
        _force_exit_async(run, Y_SYMBOL)
        if kill_after is not None:
            kill_after(run)
        return _await_crash_and_restart(run, notes)

    return _scenario(name, workdir, act)


def crash_before_first_exit(workdir: Path | None = None) -> ScenarioResult:
    """Killed as the y exit order leaves (it never lands): the couple's exit had begun
    (its ledger says so, written before the order), so the restart closes both legs."""
    def arm(run: LiveRun) -> None:
        run.sim.faults.add("timeout_before", symbol=Y_SYMBOL)
        _kill_when(run, _is("fault", Y_SYMBOL))
    return _exit_crash("crash_before_first_exit", arm, None, workdir)


def crash_first_exit_on_exchange(workdir: Path | None = None) -> ScenarioResult:
    """Killed once the y exit filled on the exchange, unprocessed: the restart finds x
    alone (y's trade still open in the database, its position gone) and closes both."""
    def arm(run: LiveRun) -> None:
        _kill_when(run, _is("order", Y_SYMBOL, _exit_side(run, Y_SYMBOL)))
    return _exit_crash("crash_first_exit_on_exchange", arm, None, workdir)


def crash_after_first_exit_fill(workdir: Path | None = None) -> ScenarioResult:
    """Killed after the y exit was recorded, as the x exit leaves (it never lands): the
    restart finds x alone and closes it."""
    def arm(run: LiveRun) -> None:
        run.sim.faults.add("timeout_before", symbol=X_SYMBOL)
        _kill_when(run, _is("fault", X_SYMBOL))
    return _exit_crash("crash_after_first_exit_fill", arm, None, workdir)


def crash_second_exit_on_exchange(workdir: Path | None = None) -> ScenarioResult:
    """Killed once the x exit filled on the exchange, unprocessed: the account is flat;
    the restart settles the trade Freqtrade still holds open."""
    def arm(run: LiveRun) -> None:
        _kill_when(run, _is("order", X_SYMBOL, _exit_side(run, X_SYMBOL)))
    return _exit_crash("crash_second_exit_on_exchange", arm, None, workdir)


def crash_exit_both_recorded(workdir: Path | None = None) -> ScenarioResult:
    """Killed after both exits were recorded: the restart finds nothing to do."""
    def kill_after(run: LiveRun) -> None:
        run.wait("both exits recorded", lambda: run.api_up() and run.client().status() == [],
                 60)
        _kill_now(run)
    return _exit_crash("crash_exit_both_recorded", None, kill_after, workdir)


# ------------------------------------------------------------------ ratio faults
def _partial_second_leg(ratio: float, workdir: Path | None) -> ScenarioResult:
    """The x leg fills ``ratio`` of its target, the rest expires: the bot tops it up to
    the target with one market order for the difference."""
    name = f"partial_fill_second_leg_{round(ratio * 100)}"
    return _scenario(name, workdir, _first_order_then_settle,
                     arm=lambda r: r.sim.faults.add("partial", symbol=X_SYMBOL, ratio=ratio,
                                                    rest="cancel"))


def partial_fill_second_leg_30(workdir: Path | None = None) -> ScenarioResult:
    return _partial_second_leg(0.3, workdir)


def partial_fill_second_leg_60(workdir: Path | None = None) -> ScenarioResult:
    return _partial_second_leg(0.6, workdir)


def partial_fill_second_leg_90(workdir: Path | None = None) -> ScenarioResult:
    return _partial_second_leg(0.9, workdir)


def _reduce(symbol: str, ratio: float, workdir: Path | None) -> ScenarioResult:
    """Once both legs are open the exchange takes ``ratio`` of one leg (a partial
    liquidation; a trim on the exchange's website looks the same): the bot trims the other
    leg to the ratio, or closes both when less than half the couple is left."""
    name = f"reduce_{symbol.removesuffix('USDT').lower()}_{round(ratio * 100)}"

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        run.sim.faults.add("liquidate", symbol=symbol, ratio=ratio)
        return []

    return _scenario(name, workdir, act)


def reduce_arb_30(workdir: Path | None = None) -> ScenarioResult:
    return _reduce(X_SYMBOL, 0.3, workdir)


def reduce_wld_20(workdir: Path | None = None) -> ScenarioResult:
    return _reduce(Y_SYMBOL, 0.2, workdir)


def reduce_arb_70(workdir: Path | None = None) -> ScenarioResult:
    return _reduce(X_SYMBOL, 0.7, workdir)


PARTNER_REFUSALS = 2
"""Closes of the partner the exchange refuses in :func:`partner_close_refused`."""


def partner_close_refused(workdir: Path | None = None) -> ScenarioResult:
    """``/forceexit`` of y; the exchange refuses the partner's close twice (-1001): the
    bot retries with backoff until x is closed. Its bound adds the refusals' span and the
    backoff after the last one."""
    from statarb.core.legs import backoff

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        run.sim.faults.add("reject", symbol=X_SYMBOL, code=-1001, count=PARTNER_REFUSALS)
        _force_exit_async(run, Y_SYMBOL)
        return []

    def after(run: LiveRun) -> list[str]:
        refused = [e["wall_ms"] for e in run.sim.journal.entries()
                   if e["event"] == "fault" and e["symbol"] == X_SYMBOL]
        run.allowance_s = ((refused[-1] - refused[0]) / 1000 if refused else 0.0) \
            + backoff(PARTNER_REFUSALS - 1)
        if len(refused) != PARTNER_REFUSALS:
            return [f"{len(refused)} partner closes refused, expected {PARTNER_REFUSALS}"]
        return []

    return _scenario("partner_close_refused", workdir, act, after=after)


CLOSE_REFUSALS = 3
"""Closes the exchange refuses in :func:`close_keeps_failing`; also the run's
``statarb.live.max_close_attempts``, so the refusals reach the manual-intervention limit."""


def close_keeps_failing(workdir: Path | None = None) -> ScenarioResult:
    """The x leg is refused, then the exchange refuses to close the lone y leg
    :data:`CLOSE_REFUSALS` times (-1001, internal error). The bot must retry with backoff,
    stop new entries and call a person naming the coin and amount, and end flat once the
    exchange accepts, then resume entries.

    Its bound adds what the refusals cost by design: their span plus the backoff the bot
    waits after the last one before trying again (:func:`statarb.core.legs.backoff`).
    """
    from statarb.core.legs import backoff

    def arm(run: LiveRun) -> None:
        run.extra_config = {"statarb": {"live": {"max_close_attempts": CLOSE_REFUSALS}}}
        run.sim.faults.add("reject", symbol=X_SYMBOL, code=-2019)
        fired = threading.Event()

        def hook(entry: Entry) -> None:
            if (entry["event"] == "order" and entry["symbol"] == Y_SYMBOL
                    and not fired.is_set()):
                fired.set()  # the entry went through: refuse what comes next for WLD
                run.sim.faults.add("reject", symbol=Y_SYMBOL, code=-1001,
                                   count=CLOSE_REFUSALS)

        run.on_entry(hook)

    def act(run: LiveRun) -> list[str]:
        run.wait_first_order()
        run.wait("the manual-intervention alert",
                 lambda: "MANUAL INTERVENTION REQUIRED" in run.log.read_text(), 120)
        return []

    def after(run: LiveRun) -> list[str]:
        entries = run.sim.journal.entries()
        refused = [e["wall_ms"] for e in entries
                   if e["event"] == "fault" and e["symbol"] == Y_SYMBOL]
        run.allowance_s = ((refused[-1] - refused[0]) / 1000 if refused else 0.0) \
            + backoff(CLOSE_REFUSALS)
        first = next(e for e in entries if e["event"] == "order" and e["symbol"] == Y_SYMBOL)
        amount = f"{Decimal(str(first['qty'])).normalize():f}"
        log = run.log.read_text()
        alerts = [line for line in log.splitlines() if "MANUAL INTERVENTION REQUIRED" in line
                  and "rpc" not in line]
        notes = []
        if len(refused) != CLOSE_REFUSALS:
            notes.append(f"{len(refused)} closes refused, expected {CLOSE_REFUSALS}")
        if len(alerts) != 1 or f"long {amount} WLD/USDT:USDT" not in alerts[0]:
            notes.append(f"expected one alert naming long {amount} WLD/USDT:USDT: {alerts}")
        if "statarb entries resumed" not in log:
            notes.append("entries were not resumed after the close")
        return notes

    return _scenario("close_keeps_failing", workdir, act, arm=arm, after=after)


def liquidation_one_leg(workdir: Path | None = None) -> ScenarioResult:
    """The exchange liquidates the x leg once both legs are open: the y leg is now alone."""

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        run.sim.faults.add("liquidate", symbol=X_SYMBOL, ratio=1.0)
        return []

    return _scenario("liquidation_one_leg", workdir, act)


def delist_one_leg(workdir: Path | None = None) -> ScenarioResult:
    """The exchange delists ARB once both legs are open and settles its position: the y leg
    is alone, and ARB refuses new orders (-1121)."""

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        run.sim.faults.add("delist", symbol=X_SYMBOL, settle=True)
        return []

    return _scenario("delist_one_leg", workdir, act)


def forceexit_one_leg(workdir: Path | None = None) -> ScenarioResult:
    """``/forceexit`` of the x leg through the REST API: the partner must follow."""

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        client = run.client()
        x = next(t for t in client.status() if t["pair"].startswith("ARB/"))
        client.forceexit(x["trade_id"])
        return []

    return _scenario("forceexit_one_leg", workdir, act)


# ------------------------------------------------------------------ partial exits
# The sweep of partial exits: both legs open, the couple's exit starts, and one leg's
# close fills only in part (the rest cancelled by the exchange, or left resting). Leaving
# means flat: whatever the fill, both legs must end closed within the naked bound, and
# Freqtrade's trades must match the exchange (the judge checks both).
EXIT_FILLS = (0.1, 0.4, 0.9)
EXIT_RESTS = ("cancel", "open")


def _exit_started(run: LiveRun, trigger: str) -> None:
    """Start the couple's exit: ``force`` a ``/forceexit`` of the WLD leg (ARB follows
    through the supervisor); ``all`` a ``/forceexit all``, both legs in one call, as a
    signal exit sends them in one loop."""
    if trigger == "force":
        _force_exit_async(run, Y_SYMBOL)
        return
    client = run.client()
    threading.Thread(target=_quiet, args=(lambda: client.forceexit("all"),),
                     daemon=True).start()


def _quiet(call: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):
        call()


def _partial_exit(symbol: str, ratio: float, rest: str, trigger: str = "force",
                  crash: bool = False, workdir: Path | None = None) -> ScenarioResult:
    """Both legs open; the next order of ``symbol`` (its close) fills ``ratio`` and the
    rest is cancelled or rests; the exit starts by ``trigger``. With ``crash`` the bot is
    killed -9 right after the partial fill (before it hears of it) and restarted on the
    same database."""
    name = _partial_exit_name(symbol, ratio, rest, trigger, crash)
    notes: list[str] = []

    def act(run: LiveRun) -> list[str]:
        run.wait_both_open()
        run.sim.faults.add("partial", symbol=symbol, ratio=ratio, rest=rest)
        if crash:
            _kill_when(run, lambda e: e["event"] == "fill" and e["reason"] == "partial"
                       and e["symbol"] == symbol)
        _exit_started(run, trigger)
        if crash:
            return _await_crash_and_restart(run, notes)
        return notes

    return _scenario(name, workdir, act)


def _partial_exit_name(symbol: str, ratio: float, rest: str, trigger: str,
                       crash: bool) -> str:
    coin = symbol.removesuffix("USDT").lower()
    return (("crash_" if crash else "") + f"partial_exit_{coin}_{round(ratio * 100)}_{rest}"
            + ("" if trigger == "force" else f"_{trigger}"))


def _partial_exit_scenarios() -> list[Callable[..., ScenarioResult]]:
    out = []
    cases = [(s, f, r, "force", False) for s in (Y_SYMBOL, X_SYMBOL) for f in EXIT_FILLS
             for r in EXIT_RESTS]
    cases += [(Y_SYMBOL, 0.4, "open", "all", False), (X_SYMBOL, 0.1, "cancel", "all", False),
              (Y_SYMBOL, 0.4, "cancel", "force", True), (X_SYMBOL, 0.4, "cancel", "force", True)]
    for symbol, fill, rest, trigger, crash in cases:
        def scenario(workdir: Path | None = None, _c=(symbol, fill, rest, trigger, crash)
                     ) -> ScenarioResult:
            return _partial_exit(*_c, workdir=workdir)
        coin = symbol.removesuffix("USDT").lower()
        scenario.__name__ = _partial_exit_name(symbol, fill, rest, trigger, crash)
        scenario.__doc__ = (f"{'/forceexit all' if trigger == 'all' else '/forceexit WLD'}; "
                            f"the {coin.upper()} close fills {fill:.0%}, the rest "
                            f"{'is cancelled' if rest == 'cancel' else 'rests'}"
                            + ("; kill -9 right after the fill, restart" if crash else ""))
        out.append(scenario)
    return out


SCENARIOS: dict[str, Callable[..., ScenarioResult]] = {
    f.__name__: f
    for f in (
        partial_fill_first_leg_60, partial_fill_first_leg_10, reject_second_leg_margin,
        rate_limit_second_leg, ghost_order_second_leg, timeout_no_order_second_leg,
        drop_mid_entry, close_keeps_failing, liquidation_one_leg, delist_one_leg,
        forceexit_one_leg,
        partial_fill_second_leg_30, partial_fill_second_leg_60, partial_fill_second_leg_90,
        reduce_arb_30, reduce_wld_20, reduce_arb_70, partner_close_refused,
        # the crash sweep, entry then exit, in the order of the instants
        crash_before_first_order, kill9_between_legs, crash_after_first_fill,
        crash_second_order_open, crash_second_fill_on_exchange, crash_both_recorded,
        crash_before_first_exit, crash_first_exit_on_exchange, crash_after_first_exit_fill,
        crash_second_exit_on_exchange, crash_exit_both_recorded,
        # the partial-exit sweep
        *_partial_exit_scenarios(),
    )
}


def run_scenarios(names: Sequence[str] | None = None) -> list[ScenarioResult]:
    """Run the named scenarios (all by default) one after the other, reporting each on
    stderr as it ends so a long run shows progress."""
    results = []
    for name in names or list(SCENARIOS):
        started = time.monotonic()
        result = SCENARIOS[name]()
        print(f"{name}: {result.outcome} in {time.monotonic() - started:.0f} s "
              f"({result.reason})", file=sys.stderr, flush=True)
        results.append(result)
    return results


def render(results: Sequence[ScenarioResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"chaos, live mode (naked bound {NAKED_BOUND_S:.0f} s = 3 loops of "
                        f"{THROTTLE_S:.0f} s + {ORDER_LATENCY_S:.0f} s order latency)")
    numbers = ("naked s", "bound s", "restart s", "outage s", "orders", "dups")
    for col in ("scenario", "outcome", *numbers, "final state"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for r in results:
        outcome = "[green]PASS[/]" if r.passed else f"[red]FAIL[/] {r.reason}"
        table.add_row(r.scenario, outcome, f"{r.naked_s:.1f}", f"{r.bound_s:.1f}",
                      f"{r.restart_s:.1f}", f"{r.outage_s:.1f}", str(r.orders_sent),
                      str(r.duplicates), r.final_state)
    Console(width=200).print(table)
    for r in results:
        print(f"{r.scenario}: logs in {r.workdir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statarb.harness.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), metavar="NAME",
                        help="run only this scenario (repeatable); one of: "
                        + ", ".join(SCENARIOS))
    args = parser.parse_args(argv)
    results = run_scenarios(args.only)
    render(results)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
