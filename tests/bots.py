"""A dry-run bot the end-to-end tests start, stop, kill and restart on one database."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from freqtrade_client import FtRestClient

from statarb.sim import SimServer
from statarb.sim.run import DEFAULT_OVERLAY, write_overlay
from tests.offline import (
    API_CONFIG,
    API_CREDENTIALS,
    FREQTRADE,
    REPO,
    free_port,
    offline_env,
    stop_process,
    wait_for,
)
from tests.shared_data import DATADIR

THROTTLE_S = 2  # process_throttle_secs of this run: one bot loop
PARTNER_CLOSED = ("partner_exit", "reconcile_close")
"""How the partner of a leg a user force-exits is recorded: ``partner_exit`` when it is
closed after its partner was seen flat (the strategy's exit check, or the supervisor),
``reconcile_close`` when the supervisor closed it first, seeing the couple leaving while the
forced leg's order was still open (seen on a loaded machine). Both are the couple leaving."""


class Bot:
    """A `freqtrade trade --dry-run` process on a temp user dir, restartable on the same
    database; `stop()` always leaves nothing running."""

    def __init__(self, tmp_path: Path, sim: SimServer, api_verbosity: str = "error", *,
                 datadir: Path = DATADIR, config: dict | None = None) -> None:
        """``config``: more settings for the run (a timeframe, a whitelist), merged by
        Freqtrade as one more ``--config``."""
        self.tmp, self.sim = tmp_path, sim
        self.config = dict(config or {})
        self.api_verbosity = api_verbosity  # "info": uvicorn logs every request
        self.user_data = tmp_path / "user_data"
        for sub in ("data", "logs", "backtest_results"):
            (self.user_data / sub).mkdir(parents=True, exist_ok=True)
        self.db = tmp_path / "dryrun.sqlite"
        self.overlay = write_overlay(DEFAULT_OVERLAY, sim.port, datadir, tmp_path)
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        api_port = free_port()
        extra = self.tmp / "config.e2e.json"
        extra.write_text(json.dumps({
            **self.config,
            "user_data_dir": str(self.user_data),
            "api_server": {"listen_port": api_port, "verbosity": self.api_verbosity},
            "internals": {"process_throttle_secs": THROTTLE_S},
        }))
        self.url = f"http://127.0.0.1:{api_port}"
        self.runs += 1
        self.log = self.tmp / f"freqtrade-{self.runs}.log"
        cmd = [
            FREQTRADE, "trade", "--config", "config.json", "--config", API_CONFIG,
            "--config", str(self.overlay),
            "--config", str(extra), "--strategy", "CointPairsStrategy",
            "--db-url", f"sqlite:///{self.db}",
        ]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=offline_env(**API_CREDENTIALS),
                                         stdout=out, stderr=subprocess.STDOUT)
        self.client = FtRestClient(
            self.url,
            API_CREDENTIALS["FREQTRADE__API_SERVER__USERNAME"],
            API_CREDENTIALS["FREQTRADE__API_SERVER__PASSWORD"],
        )
        wait_for("the REST API", lambda: self.client.ping() == {"status": "pong"}, 60,
              self.proc, self.log)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.proc)


@contextlib.contextmanager
def running_bot(tmp_path: Path, sim: SimServer, **kwargs) -> Iterator[Bot]:
    """A started :class:`Bot` (``kwargs`` as for it), stopped however the block ends."""
    runner = Bot(tmp_path, sim, **kwargs)
    try:
        runner.start()
        yield runner
    finally:
        runner.stop()
