"""``/couples`` in Freqtrade's Telegram bot and ``GET /api/v1/statarb/couples`` in its REST API.

Why patches: Freqtrade 2026.9 has no way for a strategy or plugin to add a Telegram command
or a REST route. ``Telegram._init`` builds its fixed list of ``CommandHandler`` s and
``/help`` is one literal text; the REST routers are module-level ``APIRouter`` s included
by ``ApiServer.configure_app``. Nothing in Freqtrade's files is edited: the import hook of
:mod:`statarb.ft.plugins` runs the two patches below right after Freqtrade's modules are
executed.

- :func:`patch_telegram_couples` (``freqtrade.rpc.telegram``):
  ``Telegram._startup_telegram`` (run by ``_init`` once every Freqtrade handler is added,
  before the application starts) also adds ``CommandHandler("couples", ...)``; ``Telegram._help``
  sends Freqtrade's own text with the ``/couples`` line added
  (:func:`statarb.core.couple_status.with_couples_help`). The new handler is wrapped in
  Freqtrade's ``authorized_only``, so the chat id / authorized users checks are Freqtrade's.
- :func:`patch_api_trading` (``freqtrade.rpc.api_server.api_trading``): one more route on
  Freqtrade's trading router, ``GET /statarb/couples``; ``configure_app`` includes that
  router under ``/api/v1`` behind ``http_basic_or_jwt_token`` and ``is_trading_mode``, so
  the route has Freqtrade's normal authentication (basic auth or JWT).

Both patches check first that the methods they rely on look like Freqtrade 2026.9's
(names, coroutine functions, and the few source lines the patch depends on) and raise
:class:`UnsupportedFreqtradeLayout` naming the installed version otherwise: a bot without
``/couples`` or with an unauthenticated route would be worse than one that refuses to start.

The data comes from :func:`couples_report`: the open trades as Freqtrade's RPC reports them
(``RPC._rpc_trade_status``: amount, stake, total P&L at the current rate), their custom
data, the strategy's current z-score of each couple and the pairlist's published selection.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from statarb.core.couple_status import (
    CouplesReport,
    LegInput,
    SelectionView,
    as_float,
    build_report,
    format_couples,
    with_couples_help,
)
from statarb.ft import FREQTRADE_VERSION

__all__ = [
    "COMMAND",
    "FREQTRADE_VERSION",
    "ROUTE",
    "UnsupportedFreqtradeLayout",
    "couple_zscore",
    "couples_messages",
    "couples_report",
    "patch_api_trading",
    "patch_telegram_couples",
]

logger = logging.getLogger(__name__)

COMMAND = "couples"
ROUTE = "/statarb/couples"
"""Path on Freqtrade's trading router; served as ``/api/v1/statarb/couples``."""


class UnsupportedFreqtradeLayout(RuntimeError):
    """A Freqtrade method the patches replace does not look like Freqtrade 2026.9's."""


def _refuse(what: str) -> UnsupportedFreqtradeLayout:
    return UnsupportedFreqtradeLayout(
        f"statarb cannot add /{COMMAND} to freqtrade {FREQTRADE_VERSION}: {what}. statarb "
        "patches freqtrade 2026.9's Telegram bot and REST API; install that version "
        "(`make install`) or remove the plugin hook (`python -m statarb.ft.plugins remove`)."
    )


def _source(func: Any, what: str) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError) as exc:
        raise _refuse(f"cannot read the source of {what} ({exc})") from exc


# ------------------------------------------------------------------ the data


def couple_zscore(strategy: Any, y_pair: str, x_pair: str, beta: float, half_life: float,
                  now: datetime) -> float:
    """z-score of a couple at the last closed candle, as the strategy's exit decision sees it.

    :meth:`statarb.ft.couples.CouplePlan.couple_z`, the computation behind the exit
    decision. NaN (never an error: the bot loop must not crash on a status request) when
    the strategy has no panel yet, a coin is not in it or the window does not fit.
    """
    plan = getattr(strategy, "couples", None)
    if getattr(plan, "universe", None) is None or not hasattr(plan, "couple_z"):
        return math.nan
    try:
        held = plan.couple_z(y_pair, x_pair, beta, half_life, now)
        return math.nan if held is None else held[0]
    except (ValueError, IndexError, TypeError) as exc:
        logger.debug("statarb: no current z-score for %s~%s: %s", y_pair, x_pair, exc)
        return math.nan


def _open_legs(rpc: Any) -> list[LegInput]:
    from freqtrade.persistence import Trade
    from freqtrade.rpc.rpc import RPCException

    try:
        statuses = rpc._rpc_trade_status()
    except RPCException:  # Freqtrade's "no active trade"
        return []
    trades = {t.id: t for t in Trade.get_open_trades()}
    legs = []
    for s in statuses:
        trade = trades.get(s["trade_id"])
        custom = ({d.cd_key: d.value for d in trade.get_all_custom_data()}
                  if trade is not None else {})
        open_date = (trade.open_date_utc if trade is not None
                     else datetime.fromtimestamp(s["open_timestamp"] / 1000, tz=UTC))
        profit = as_float(s.get("profit_abs"))
        # Freqtrade leaves total_profit_abs at 0.0 when there is no price: NaN, not "flat".
        total = as_float(s.get("total_profit_abs")) if math.isfinite(profit) else math.nan
        legs.append(LegInput(
            trade_id=int(s["trade_id"]), pair=str(s["pair"]), is_short=bool(s["is_short"]),
            amount=as_float(s.get("amount")), stake_amount=as_float(s.get("stake_amount")),
            profit_abs=total, open_rate=as_float(s.get("open_rate")),
            current_rate=as_float(s.get("current_rate")), open_date=open_date, custom=custom,
        ))
    return legs


def _selection(config: dict[str, Any]) -> tuple[SelectionView | None, list[str]]:
    """The pairlist's latest selection: the file it wrote."""
    from statarb.core import published

    path = published.selection_path(config.get("user_data_dir"))
    if path is None or not path.is_file():
        return None, []
    try:
        selection = published.read(path)
    except ValueError as exc:
        return None, [str(exc)]
    return SelectionView.from_selection(selection), []


def couples_report(rpc: Any, config: dict[str, Any], now: datetime | None = None
                   ) -> CouplesReport:
    """Open couples of the bot behind ``rpc`` and the pairlist's selection."""
    now = now or datetime.now(UTC)
    strategy = getattr(getattr(rpc, "_freqtrade", None), "strategy", None)
    notes: list[str] = []
    if getattr(getattr(strategy, "couples", None), "universe", None) is None:
        notes.append("current z-scores appear after the strategy's first analysed candle")

    def z_now(y: LegInput, x: LegInput, beta: float, half_life: float) -> float:
        return couple_zscore(strategy, y.pair, x.pair, beta, half_life, now)

    selection, selection_notes = _selection(config)
    return build_report(_open_legs(rpc), z_now, selection=selection,
                        stake_currency=str(config.get("stake_currency", "")), now=now,
                        notes=[*notes, *selection_notes])


def couples_messages(rpc: Any, config: dict[str, Any]) -> list[str]:
    """The ``/couples`` reply; a failure is the reply's text, never an exception."""
    try:
        return format_couples(couples_report(rpc, config))
    except Exception as exc:  # a status request must never take the bot down
        logger.exception("statarb: /%s failed", COMMAND)
        return [f"statarb /{COMMAND} failed: `{str(exc).replace('`', chr(39))}` "
                "(details in the bot's log)"]


# ------------------------------------------------------------------ Telegram


class _HelpWithCouples:
    """Freqtrade's ``Telegram`` object as ``_help`` sees it, whose ``_send_msg`` adds the
    ``/couples`` line: the help stays Freqtrade's own text, in one message."""

    def __init__(self, telegram: Any) -> None:
        self._statarb_telegram = telegram

    def __getattr__(self, name: str) -> Any:
        return getattr(self._statarb_telegram, name)

    async def _send_msg(self, msg: str, *args: Any, **kwargs: Any) -> None:
        await self._statarb_telegram._send_msg(with_couples_help(msg), *args, **kwargs)


def patch_telegram_couples(module: ModuleType) -> None:
    """Add ``/couples`` to ``module.Telegram`` (Freqtrade's ``freqtrade.rpc.telegram``) and
    list it in ``/help``. Idempotent; raises :class:`UnsupportedFreqtradeLayout` when the
    module does not look like Freqtrade 2026.9's."""
    telegram = getattr(module, "Telegram", None)
    if telegram is None:
        raise _refuse(f"{module.__name__} has no Telegram class")
    if getattr(telegram, "_statarb_couples_patched", False):
        return
    authorized_only = getattr(module, "authorized_only", None)
    command_handler = getattr(module, "CommandHandler", None)
    parse_mode = getattr(module, "ParseMode", None)
    startup = getattr(telegram, "_startup_telegram", None)
    help_handler = getattr(telegram, "_help", None)
    raw_help = getattr(help_handler, "__wrapped__", None)
    send = getattr(telegram, "_send_msg", None)
    for name, value in (("authorized_only", authorized_only),
                        ("CommandHandler", command_handler), ("ParseMode", parse_mode)):
        if value is None:
            raise _refuse(f"{module.__name__}.{name} is missing")
    for name, func in (("Telegram._startup_telegram", startup),
                       ("Telegram._help (undecorated)", raw_help),
                       ("Telegram._send_msg", send)):
        if not inspect.iscoroutinefunction(func):
            raise _refuse(f"{name} is not the coroutine function it is in 2026.9")
    init = _source(telegram._init, "Telegram._init")
    if ("self._app.add_handler(handle)" not in init
            or "run_until_complete(self._startup_telegram())" not in init
            or not init.index("add_handler") < init.index("_startup_telegram()")):
        raise _refuse("Telegram._init no longer adds its handlers before running "
                      "_startup_telegram()")
    if "await self._send_msg(message" not in _source(raw_help, "Telegram._help"):
        raise _refuse("Telegram._help no longer sends its text with one _send_msg call")

    async def _statarb_couples(self: Any, update: Any, context: Any) -> None:
        """Handler for /couples: open couples and the pairlist's selection."""
        for text in couples_messages(self._rpc, self._config):
            await self._send_msg(text, parse_mode=parse_mode.MARKDOWN)

    async def _help(self: Any, update: Any, context: Any) -> None:
        await raw_help(_HelpWithCouples(self), update, context)

    _help.__doc__ = raw_help.__doc__

    async def _startup_telegram(self: Any) -> None:
        self._app.add_handler(command_handler(COMMAND, self._statarb_couples))
        logger.info("statarb: Telegram command /%s added", COMMAND)
        await startup(self)

    _startup_telegram.__doc__ = startup.__doc__
    telegram._statarb_couples = authorized_only(_statarb_couples)
    telegram._help = authorized_only(_help)
    telegram._startup_telegram = _startup_telegram
    telegram._statarb_couples_patched = True


# ------------------------------------------------------------------ REST API

_TRADING_ROUTER = re.compile(
    r"include_router\(\s*api_trading,[^)]*dependencies=\[\s*Depends\(http_basic_or_jwt_token\)",
    re.S,
)


def statarb_couples(rpc: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The REST answer (:meth:`statarb.core.couple_status.CouplesReport.to_dict`).

    A failure is Freqtrade's ``RPCException``, which its app answers with a 502 and the
    message (``{"error": "Error querying /api/v1/statarb/couples: ..."}``), not a bare 500.
    """
    from freqtrade.rpc.rpc import RPCException

    try:
        return couples_report(rpc, config).to_dict()
    except Exception as exc:
        logger.exception("statarb: GET /api/v1%s failed", ROUTE)
        raise RPCException(f"statarb couples failed: {exc}") from exc


def patch_api_trading(module: ModuleType) -> None:
    """Add ``GET /statarb/couples`` to ``module.router`` (Freqtrade's
    ``freqtrade.rpc.api_server.api_trading``). Idempotent; raises
    :class:`UnsupportedFreqtradeLayout` unless Freqtrade includes that router behind its
    authentication as 2026.9 does."""
    import sys

    from fastapi import APIRouter, Depends

    router = getattr(module, "router", None)
    get_rpc = getattr(module, "get_rpc", None)
    get_config = getattr(module, "get_config", None)
    if not isinstance(router, APIRouter) or get_rpc is None or get_config is None:
        raise _refuse(f"{module.__name__} has no APIRouter `router`, get_rpc or get_config")
    if any(getattr(r, "path", None) == ROUTE for r in router.routes):
        return
    webserver = sys.modules.get("freqtrade.rpc.api_server.webserver")
    if webserver is None:
        import importlib

        webserver = importlib.import_module("freqtrade.rpc.api_server.webserver")
    configure = _source(webserver.ApiServer.configure_app, "ApiServer.configure_app")
    if not _TRADING_ROUTER.search(configure):
        # Without that include the route would be served without authentication.
        raise _refuse("ApiServer.configure_app no longer includes the trading router behind "
                      "http_basic_or_jwt_token")

    rpc_dependency, config_dependency = Depends(get_rpc), Depends(get_config)

    def couples(rpc: Any = rpc_dependency, config: Any = config_dependency) -> dict[str, Any]:
        """statarb: open couples (both legs, hedge ratio, entry and current z-score, time
        held, combined P&L) and the couples the pairlist selected, with their formation
        window."""
        return statarb_couples(rpc, config)

    route: Callable[..., Any] = router.get(ROUTE, tags=["Trading-info"], response_model=None,
                                           name="statarb_couples")
    route(couples)
