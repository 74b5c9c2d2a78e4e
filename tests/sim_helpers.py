"""Small helpers of the simulator tests: reading the shared feathers, GETs, the overlay."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from statarb.harness.offline import offline_env
from statarb.sim import DEFAULT_DATADIR, SimServer
from statarb.sim.run import DEFAULT_OVERLAY, retarget

HOUR = 3_600_000


FUTURES = DEFAULT_DATADIR / "futures"


REPO = Path(__file__).resolve().parents[1]


def subprocess_env() -> dict[str, str]:
    """Environment for child interpreters run from ``/`` (proves defaults ignore the cwd):
    the harness's offline environment, with the project on ``PYTHONPATH``."""
    return offline_env()


def feather(base: str, kind: str) -> pd.DataFrame:
    return pd.read_feather(FUTURES / f"{base}_USDT_USDT-1h-{kind}.feather")


def ms(dates: pd.Series) -> np.ndarray:
    return dates.dt.as_unit("ms").astype("int64").to_numpy()


def get(sim: SimServer, path: str, **params: Any) -> tuple[int, Any, dict[str, str]]:
    """GET ``path`` and return (status, parsed JSON body, headers), errors included."""
    url = f"{sim.url}{path}" + (f"?{urlencode(params)}" if params else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def overlay_exchange(sim: SimServer, key: str = "ccxt_config") -> dict[str, Any]:
    config = retarget(json.loads(DEFAULT_OVERLAY.read_text()), sim.port)
    return config["exchange"][key]
