"""``freqtrade trade`` in LIVE futures mode (``dry_run: false``, dummy keys) against the
simulator shifted to now: it must start, load balances and positions, trade through the
signed endpoints and ask for nothing the simulator does not serve.

Same replay instant as the dry-run end-to-end test, where WLD~ARB opens on the first loop,
so the journal must show both legs opened close together.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freqtrade_client import FtRestClient

from statarb.harness.offline import shifted_clock
from statarb.sim import SimServer
from statarb.sim.journal import naked_intervals
from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
from tests.bots import THROTTLE_S
from tests.offline import (
    API_CONFIG,
    API_CREDENTIALS,
    FREQTRADE,
    REPLAY_START,
    REPO,
    free_port,
    offline_env,
    stop_process,
    wait_for,
)
from tests.shared_data import DATADIR, MARKETS, require_shared

pytestmark = pytest.mark.slow

LIVE_KEYS = {
    "FREQTRADE__EXCHANGE__KEY": "sim-dummy-key",
    "FREQTRADE__EXCHANGE__SECRET": "sim-dummy-secret",
}


@pytest.fixture
def live_bot(tmp_path: Path) -> Iterator[dict[str, Any]]:
    require_shared()
    user_data = tmp_path / "user_data"
    for sub in ("data", "logs"):
        (user_data / sub).mkdir(parents=True)
    api_port = free_port()
    extra = tmp_path / "config.live.json"
    extra.write_text(
        json.dumps(
            {
                "dry_run": False,
                "user_data_dir": str(user_data),
                "api_server": {"listen_port": api_port},
                "internals": {"process_throttle_secs": THROTTLE_S},
            }
        )
    )
    log = tmp_path / "freqtrade.log"
    clock = shifted_clock(REPLAY_START, run_s=150)
    with SimServer(datadir=DATADIR, markets=MARKETS, port=0, clock=clock) as sim:
        overlay = write_overlay(DEFAULT_OVERLAY, sim.port, DATADIR, tmp_path)
        cmd = [
            FREQTRADE,
            "trade",
            "--config",
            "config.json",
            "--config",
            API_CONFIG,
            "--config",
            str(overlay),
            "--config",
            str(extra),
            "--strategy",
            "CointPairsStrategy",
            "--db-url",
            f"sqlite:///{tmp_path / 'live.sqlite'}",
        ]
        out = log.open("w")
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=offline_env(**API_CREDENTIALS, **LIVE_KEYS),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            client = FtRestClient(
                f"http://127.0.0.1:{api_port}",
                API_CREDENTIALS["FREQTRADE__API_SERVER__USERNAME"],
                API_CREDENTIALS["FREQTRADE__API_SERVER__PASSWORD"],
            )
            yield {"client": client, "proc": proc, "log": log, "sim": sim}
        finally:
            stop_process(proc)
            out.close()


def test_live_mode_runs_against_the_private_api(live_bot) -> None:
    client: FtRestClient = live_bot["client"]
    proc, log, sim = live_bot["proc"], live_bot["log"], live_bot["sim"]
    wait_for("the REST API", lambda: client.ping() == {"status": "pong"}, 60, proc, log)
    config = client.show_config()
    assert config["dry_run"] is False and config["trading_mode"] == "futures"
    balance = wait_for(
        "the live balance",
        lambda: b if (b := client.balance()) and b.get("currencies") else None,
        60,
        proc,
        log,
    )
    usdt = next(c for c in balance["currencies"] if c["currency"] == "USDT")
    assert 9_000 < usdt["balance"] + usdt["used"] <= 10_000

    trades = wait_for(
        "both legs of a couple",
        lambda: s if len(s := client.status()) == 2 else None,
        120,
        proc,
        log,
    )
    time.sleep(2 * THROTTLE_S)  # a few more loops: polls, position and balance refreshes
    pairs = {t["pair"].split("/")[0] + "USDT": t for t in trades}
    with sim.private.lock:
        positions = {s: p.amount for s, p in sim.account.positions.items() if p.amount}
    assert set(positions) == set(pairs)
    for symbol, trade in pairs.items():
        assert float(abs(positions[symbol])) == pytest.approx(trade["amount"])
        assert (positions[symbol] < 0) == trade["is_short"]
    entries = sim.journal.entries()
    fills = [e for e in entries if e["event"] == "fill"]
    assert len(fills) == 2 and all(e["reason"] == "fill" for e in fills)
    a, b = sorted(pairs)
    naked = naked_intervals(entries, a, b) + naked_intervals(entries, b, a)
    naked_ms = sum(end - start for start, end in naked)
    print(
        f"\nlive legs opened; one leg alone for {naked_ms} ms; "
        f"{sim.stats.total} requests, private: "
        + ", ".join(
            f"{p}={n}"
            for p, n in sorted(sim.stats.by_path.items())
            if p in {path for _, path in sim.private.routes}
        )
    )
    assert naked_ms < THROTTLE_S * 1000
    assert not sim.stats.unhandled, dict(sim.stats.unhandled)
    text = log.read_text()
    assert " - ERROR - " not in text, text[-4000:]
