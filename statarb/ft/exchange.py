"""Exchange state the strategy needs beyond Freqtrade's public strategy API.

Why here: restart reconciliation compares the trade database with the exchange's
positions, and the strategy interface offers no positions call; the exchange object
behind the DataProvider is Freqtrade-internal.
"""

from __future__ import annotations

from typing import Any

from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "open_positions"]


def open_positions(dp: Any) -> dict[str, float]:
    """Signed position size (base currency, negative = short) per pair, from the exchange.

    Raises whatever the exchange raises: the caller decides whether to retry.
    """
    exchange = dp._exchange  # Freqtrade-internal: the Exchange instance behind the dp
    out: dict[str, float] = {}
    for pos in exchange.fetch_positions():
        contracts = float(pos.get("contracts") or 0.0)
        if not contracts:
            continue
        size = contracts * float(pos.get("contractSize") or 1.0)
        out[pos["symbol"]] = -size if pos.get("side") == "short" else size
    return out
