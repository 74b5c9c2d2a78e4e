"""How long Freqtrade's worker waits after a temporary exchange error.

Freqtrade's worker sleeps a fixed 30 s (``freqtrade.constants.RETRY_TIMEOUT``, read by
``freqtrade.worker`` at each error) whenever a bot loop ends in a temporary error such as
a dropped connection. For a pairs bot that is 30 s with one leg of a couple possibly
alone; the strategy shortens it to its ``statarb.live.error_retry_secs`` so the loop
resumes as soon as the link is back.
"""

from __future__ import annotations

from statarb.ft import FREQTRADE_VERSION

__all__ = ["FREQTRADE_VERSION", "set_error_retry"]


def set_error_retry(seconds: float) -> float:
    """Set the worker's wait after a temporary error; return the previous value."""
    import freqtrade.worker as worker  # Freqtrade-internal module global

    if not hasattr(worker, "RETRY_TIMEOUT"):
        raise RuntimeError(
            f"freqtrade {FREQTRADE_VERSION} has no freqtrade.worker.RETRY_TIMEOUT; "
            "statarb.ft.worker must be updated for this version"
        )
    previous = float(worker.RETRY_TIMEOUT)
    worker.RETRY_TIMEOUT = seconds
    return previous
