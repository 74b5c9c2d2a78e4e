"""Control endpoints under ``/_sim``: faults, journal, account state, reset.

They drive a scenario from outside the process (a shell, another test harness) the way
``server.faults`` and ``server.journal`` drive it from Python. The prefix is outside every
Binance API path ccxt is pointed at (``/fapi``, ``/sapi``, ``/api`` ...), so a trading
client can never reach them by accident. Bodies are JSON:

* ``POST /_sim/faults`` ``{"kind": "partial", "symbol": "BTCUSDT", "ratio": 0.3}`` or a list
  of such objects -> the armed faults; ``GET`` lists pending ones; ``DELETE`` clears them.
* ``GET /_sim/journal?since=<seq>&symbol=<symbol>`` -> journal entries.
* ``GET /_sim/state`` -> wallet, positions and open orders.
* ``POST /_sim/reset`` ``{"wallet": 5000}`` (optional) -> fresh account, journal, faults.
"""

from __future__ import annotations

import json
from typing import Any

from statarb.sim.api import BinanceError, Query
from statarb.sim.faults import Fault
from statarb.sim.private import PrivateApi
from statarb.sim.private_json import num, order_json

PREFIX = "/_sim"


def _body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise BinanceError(400, -1100, "control body is not JSON") from None


def _fault(spec: Any) -> Fault:
    if not isinstance(spec, dict):
        raise BinanceError(400, -1100, "a fault is a JSON object")
    try:
        return Fault(**spec)
    except (TypeError, ValueError) as err:
        raise BinanceError(400, -1100, str(err)) from None


def state(api: PrivateApi) -> dict[str, Any]:
    acc = api.account
    return {
        "wallet": num(acc.wallet),
        "available": num(acc.available()),
        "positions": {
            s: {
                "amount": num(p.amount),
                "entry_price": num(p.entry_price),
                "realised_pnl": num(p.realised_pnl),
                "leverage": p.leverage,
                "isolated": p.isolated,
            }
            for s, p in acc.positions.items()
        },
        "open_orders": [order_json(o) for o in acc.orders.values() if o.is_open],
        "delisted": sorted(api.faults.delisted),
    }


def handle(api: PrivateApi, method: str, path: str, q: Query, raw_body: bytes) -> Any:
    """Serve one control request; unknown ones raise BinanceError (404)."""
    route = path[len(PREFIX) :]
    if route == "/faults":
        if method == "GET":
            return {
                "pending": api.faults.pending(),
                "dropping": api.faults.dropping(),
                "delisted": sorted(api.faults.delisted),
            }
        if method == "POST":
            body = _body(raw_body)
            specs = body if isinstance(body, list) else [body]
            faults = [_fault(s) for s in specs]
            try:
                return [api.faults.add(f).as_dict() for f in faults]
            except ValueError as err:
                raise BinanceError(400, -1100, str(err)) from None
        if method == "DELETE":
            api.faults.clear()
            return {}
    if route == "/journal" and method == "GET":
        since = int(q.get("since") or 0)
        return api.journal.entries(since, q.get("symbol") or None)
    if route == "/state" and method == "GET":
        with api.lock:
            return state(api)
    if route == "/reset" and method == "POST":
        body = _body(raw_body)
        api.reset(body.get("wallet") if isinstance(body, dict) else None)
        return {}
    raise BinanceError(404, -5000, f"Path {path}, Method {method} is invalid")
