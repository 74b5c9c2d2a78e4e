"""HTTP front of the simulator: routing, Binance-shaped errors, request accounting.

Standard library only (``ThreadingHTTPServer``), bound to loopback by default. Every
response is JSON, including unknown paths and internal failures, because ccxt decides how
to react from the body and a stack trace or an HTML page would turn a clear error into a
parse failure. Requests are counted per path so tests can prove that a freqtrade run really
went through the simulator and that nothing unhandled was asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from statarb.sim import control
from statarb.sim.api import EXCHANGE_INFO, ROUTES, BinanceError
from statarb.sim.clock import HOUR_MS, ReplayClock, format_instant
from statarb.sim.control import PREFIX as CONTROL_PREFIX
from statarb.sim.faults import FaultBook
from statarb.sim.journal import Journal
from statarb.sim.market_data import DEFAULT_DATADIR, DEFAULT_MARKETS, MarketData
from statarb.sim.matching import Account
from statarb.sim.private import Dropped, PrivateApi, Stall
from statarb.sim.shift import shift_answer, shift_query

logger = logging.getLogger("statarb.sim")


class RequestStats:
    """Thread-safe counters: requests per path, and paths we could not serve."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_path: Counter[str] = Counter()
        self.unhandled: Counter[str] = Counter()
        self._minute = 0
        self._minute_weight = 0

    def record(self, path: str, handled: bool) -> int:
        """Count one request; return the weight used in the current wall-clock minute."""
        minute = int(time.time() // 60)
        with self._lock:
            self.by_path[path] += 1
            if not handled:
                self.unhandled[path] += 1
            if minute != self._minute:
                self._minute, self._minute_weight = minute, 0
            self._minute_weight += 1
            return self._minute_weight

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_path.values())


class _Handler(BaseHTTPRequestHandler):
    """One request: route, call the pure handler, serialise."""

    server: _SimHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: ccxt's aiohttp session reuses connections
    timeout = 60  # idle keep-alive connections must not pin a thread forever
    # Malformed requests are answered by the stdlib's send_error: make that JSON too.
    error_content_type = "application/json"
    error_message_format = '{"code": -1000, "msg": "%(code)d %(message)s"}'

    def do_GET(self) -> None:
        started = time.perf_counter()
        length = self.headers.get("Content-Length", "0")
        raw = b""
        if length.isdigit() and int(length) > 0:
            raw = self.rfile.read(int(length))  # read the body so keep-alive stays aligned
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        try:
            status, body, handled = self._dispatch(path, parts.query, raw)
        except Dropped:
            self.server.stats.record(path, True)
            self._cut()
            return
        except Stall as stall:
            self.server.stats.record(path, True)
            time.sleep(stall.seconds)
            if stall.respond is None:
                self._cut()
                return
            status, body, handled = stall.respond, _json(_timeout_body()), True
        weight = self.server.stats.record(path, handled)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-MBX-USED-WEIGHT-1M", str(weight))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        logger.debug(
            "%s %s -> %d (%d bytes, %.1f ms)",
            self.command,
            self.path,
            status,
            len(body),
            (time.perf_counter() - started) * 1000,
        )

    def _cut(self) -> None:
        """Close the connection with no answer, the way a dropped link looks to the client."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            linger = struct.pack("ii", 1, 0)  # reset, not a graceful close
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)

    def _dispatch(self, path: str, query: str, raw: bytes) -> tuple[int, bytes, bool]:
        private = self.server.private
        try:
            if path.startswith(CONTROL_PREFIX + "/") or path == CONTROL_PREFIX:
                params = dict(parse_qsl(query, keep_blank_values=True))
                return 200, _json(control.handle(private, self.command, path, params, raw)), True
            params = dict(parse_qsl(query, keep_blank_values=True))
            if raw and "json" not in self.headers.get("Content-Type", ""):
                params.update(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
            api_key = self.headers.get("X-MBX-APIKEY")
            # A bare request (no key, no signature) is no API call at all: answered as an
            # unknown path, like before the account existed, and counted as unhandled.
            signed = bool(api_key) or "signature" in params
            if signed and private.handles(self.command, path):
                return 200, _json(private.handle(self.command, path, params, api_key)), True
        except BinanceError as err:
            return err.status, _json(err.body()), True
        except (Dropped, Stall):
            raise
        except Exception:
            logger.exception("internal error serving %s %s", self.command, self.path)
            return 500, _json(_internal_error()), True
        return self._dispatch_public(path, query)

    def _dispatch_public(self, path: str, query: str) -> tuple[int, bytes, bool]:
        if self.command != "GET":
            logger.info("unhandled %s %s", self.command, path)
            return 404, _json(_not_found(self.command, path)), False
        if path == EXCHANGE_INFO:
            return 200, self.server.private.exchange_info_bytes(), True
        handler = ROUTES.get(path)
        if handler is None:
            logger.info("unhandled GET %s", self.path)
            return 404, _json(_not_found("GET", path)), False
        params = dict(parse_qsl(query, keep_blank_values=True))
        clock = self.server.clock
        offset = clock.offset_ms
        try:
            if offset:
                params = shift_query(params, offset)
            result = handler(self.server.market_data, clock.now_ms(), params, offset)
            if offset:
                result = shift_answer(path, result, offset)
        except BinanceError as err:
            return err.status, _json(err.body()), True
        except Exception:
            logger.exception("internal error serving %s", self.path)
            return 500, _json(_internal_error()), True
        return 200, _json(result), True

    # Every method goes through the same routing; unknown ones get Binance's JSON 404.
    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stdlib's stderr access log; do_GET logs one line per request."""

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug("http: " + format, *args)


def _not_found(method: str, path: str) -> dict[str, Any]:
    return {"code": -5000, "msg": f"Path {path}, Method {method} is invalid"}


def _internal_error() -> dict[str, Any]:
    return {"code": -1000, "msg": "An unknown error occurred while processing the request."}


def _timeout_body() -> dict[str, Any]:
    return {
        "code": -1007,
        "msg": "Timeout waiting for response from backend server. "
        "Send status unknown; execution status unknown.",
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        market_data: MarketData,
        clock: ReplayClock,
        private: PrivateApi,
    ) -> None:
        super().__init__(address, _Handler)
        self.market_data = market_data
        self.clock = clock
        self.private = private
        self.stats = RequestStats()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up (a dropped link, a bot killed mid-request) is part of the
        scenarios, not a simulator error: log it quietly instead of the stdlib's
        traceback on stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            logger.debug("client %s went away: %s", client_address, exc)
            return
        super().handle_error(request, client_address)


class SimServer:
    """The simulator as a context manager: ``with SimServer(port=0) as sim: sim.url``.

    ``port=0`` asks the OS for a free port (tests run in parallel without clashes). With no
    clock the replay instant is frozen at the end of the data, so a plain start serves
    everything and leaks nothing from after the recording.

    ``shift_to_now=True`` presents the replay as happening now (see
    :meth:`ReplayClock.shifted_to_now`): the replay runs at speed 1 from the given clock's
    current instant (its hour plus the wall clock's minutes), and every time served is
    :attr:`offset_ms` later than the data. A clock already shifted is used as it is.
    """

    def __init__(
        self,
        datadir: Path | str = DEFAULT_DATADIR,
        markets: Path | str = DEFAULT_MARKETS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: ReplayClock | None = None,
        market_data: MarketData | None = None,
        shift_to_now: bool = False,
        wallet: float = 10_000,
        slippage_bps: float = 0,
    ) -> None:
        self.market_data = market_data or MarketData(datadir, markets)
        if shift_to_now and clock is None:
            # Shifting the end of the data to now would serve no new candle, ever.
            raise ValueError("shift_to_now needs a clock at the replay start")
        if shift_to_now and clock is not None and not clock.shifted:
            clock = ReplayClock.shifted_to_now(clock.now_ms())
        self.clock = clock or ReplayClock.fixed(self.market_data.data_end_ms())
        if self.clock.shifted:
            hour = self.clock.start_ms // HOUR_MS * HOUR_MS
            logger.info(
                "replay %s shown as %s (offset %d ms = %+d h); replay starts at %s",
                format_instant(hour),
                format_instant(self.clock.shown(hour)),
                self.offset_ms,
                self.offset_ms // HOUR_MS,
                format_instant(self.clock.start_ms),
            )
        self.private = PrivateApi(
            self.market_data, self.clock, wallet=wallet, slippage_bps=slippage_bps
        )
        self._httpd = _SimHTTPServer((host, port), self.market_data, self.clock, self.private)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765`` (append ``/fapi/v1/...``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def offset_ms(self) -> int:
        """How much later than the data every served time is (0 unless shifted to now)."""
        return self.clock.offset_ms

    @property
    def stats(self) -> RequestStats:
        return self._httpd.stats

    @property
    def faults(self) -> FaultBook:
        """Arm faults: ``sim.faults.add("reject", symbol="BTCUSDT", code=-2019)``."""
        return self.private.faults

    @property
    def journal(self) -> Journal:
        """Every order event and position change of the simulated account."""
        return self.private.journal

    @property
    def account(self) -> Account:
        """The simulated account (read it under ``sim.private.lock`` while trading runs)."""
        return self.private.account

    def reset(self, wallet: float | None = None) -> None:
        """Fresh account, empty journal, no faults."""
        self.private.reset(wallet)

    def start(self) -> SimServer:
        """Serve in a daemon thread and return immediately."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"statarb-sim:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` or an exception (Ctrl-C)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop accepting requests and release the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
