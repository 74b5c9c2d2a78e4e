"""The couple ledger kept in Freqtrade's trade database.

Why there: the ledger must survive a crash and be written before an order is sent, when
no trade exists yet to carry custom data. Freqtrade's key-value store is a table of the
same trade database (``KeyValueStore``), committed on every write, so the ledger lives and
dies with the trades it describes (a ``--db-url`` of its own per bot, backups included).
One row per couple: key ``statarb:<couple id>``, value the ledger's compact JSON.

Freqtrade-internal: its key-value model has no listing call, so listing reads the model.
"""

from __future__ import annotations

import logging

from freqtrade.persistence import KeyValueStore
from freqtrade.persistence.key_value_store import _KeyValueStoreModel

from statarb.core.ledger import CoupleLedger
from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "KEY_PREFIX", "delete", "load_all", "save"]

logger = logging.getLogger(__name__)

KEY_PREFIX = "statarb:"
KEY_MAX = 50  # Freqtrade's key column


def _key(couple_id: str) -> str:
    key = KEY_PREFIX + couple_id
    if len(key) > KEY_MAX:
        raise ValueError(f"couple id {couple_id!r} makes a ledger key longer than {KEY_MAX}")
    return key


def save(ledger: CoupleLedger) -> None:
    """Write (or replace) a couple's entry; committed before this returns."""
    KeyValueStore.store_value(_key(ledger.couple_id), ledger.to_json())  # type: ignore[arg-type]


def delete(couple_id: str) -> None:
    KeyValueStore.delete_value(_key(couple_id))  # type: ignore[arg-type]


def load_all() -> dict[str, CoupleLedger]:
    """Every couple's entry, by couple id. A row that does not parse is logged and left
    in place for a person to look at (never silently dropped)."""
    session = _KeyValueStoreModel.session
    rows = session.query(_KeyValueStoreModel).filter(
        _KeyValueStoreModel.key.startswith(KEY_PREFIX)).all()
    out: dict[str, CoupleLedger] = {}
    for row in rows:
        try:
            ledger = CoupleLedger.from_json(row.string_value or "")
        except ValueError as exc:
            logger.error("statarb: ledger row %s cannot be read (%s); left as it is",
                         row.key, exc)
            continue
        out[ledger.couple_id] = ledger
    return out
