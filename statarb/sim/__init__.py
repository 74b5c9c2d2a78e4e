"""Local Binance USDT-M public REST simulator, so Freqtrade and ccxt run fully offline.

Serves recorded exchangeInfo and the shared feather data on 127.0.0.1 with Binance's own
request semantics and error codes, cut at a replay clock so nothing after "now" leaks.
Standard library + pandas only: the ``statarb`` core must import without freqtrade.

    with SimServer(port=0, clock=ReplayClock.fixed("2025-06-01T00:00:00Z")) as sim:
        ccxt.binanceusdm({"urls": {"api": {"fapiPublic": sim.url + "/fapi/v1"}}})

For ``freqtrade trade --dry-run``, which only acts on candles dated near its wall clock,
shift the replay to now: every served time moves by a whole number of hours
(``sim.offset_ms``) and the replay runs in real time from ``start``'s hour::

    SimServer(port=0, clock=ReplayClock.shifted_to_now("2025-06-01T10:00:00Z"))

It also runs a simulated futures account behind the signed endpoints (any signature, any
API key), so ``freqtrade trade`` with ``dry_run: false`` trades against the replay: orders
match at the replayed price (:mod:`statarb.sim.matching`), faults are scripted per scenario
(``sim.faults.add("partial", symbol="BTCUSDT", ratio=0.3)`` or ``POST /_sim/faults``, see
:mod:`statarb.sim.faults`) and every order event lands in ``sim.journal``
(``GET /_sim/journal``).
"""

from statarb.sim.clock import ReplayClock, parse_instant
from statarb.sim.faults import Fault
from statarb.sim.journal import naked_intervals
from statarb.sim.market_data import DEFAULT_DATADIR, DEFAULT_MARKETS, REPO_ROOT, MarketData
from statarb.sim.server import SimServer

__all__ = [
    "DEFAULT_DATADIR",
    "DEFAULT_MARKETS",
    "REPO_ROOT",
    "Fault",
    "MarketData",
    "ReplayClock",
    "SimServer",
    "naked_intervals",
    "parse_instant",
]
