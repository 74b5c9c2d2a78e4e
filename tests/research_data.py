"""The small research setting several tests share: eight real pairs, short windows."""

from __future__ import annotations

import json

from tests.offline import REPO

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "AVAX/USDT:USDT",
         "LINK/USDT:USDT", "DOT/USDT:USDT", "ADA/USDT:USDT", "NEAR/USDT:USDT"]


SMALL = {"walk_forward": {"formation_days": 20, "reform_hours": 24, "z_window_hours": 60,
                          "horizon_hours": 168}}


def small_config() -> dict:
    config = json.loads((REPO / "config.json").read_text())
    config["exchange"]["pair_whitelist"] = PAIRS
    config["statarb"] = {**config["statarb"], **SMALL}
    return config
