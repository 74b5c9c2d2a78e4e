"""The only place that touches Freqtrade internals.

Freqtrade's internal APIs (data handlers, candle types, pairlist loading) change between
releases without notice. Every use of them goes through this package, which refuses to
run on a Freqtrade version it was not written for instead of failing somewhere deep in a
bot loop.
"""

from __future__ import annotations

SUPPORTED_FREQTRADE_VERSIONS: tuple[str, ...] = ("2026.9",)


class UnsupportedFreqtradeVersion(RuntimeError):
    """Raised when the installed Freqtrade is not one this package was written for."""


def check_freqtrade_version(version: str | None = None) -> str:
    """Return the installed Freqtrade version, or raise if it is not supported.

    ``version`` overrides the detected one (for tests). Development builds such as
    ``2026.9-dev-abc`` or ``docker-2026.9-...`` are accepted when their release matches.
    """
    if version is None:
        # Package metadata, not ``import freqtrade``: the plugin hook runs this while
        # Freqtrade itself is being imported.
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            version = dist_version("freqtrade")
        except PackageNotFoundError as exc:  # pragma: no cover - depends on the environment
            raise UnsupportedFreqtradeVersion(
                "freqtrade is not installed; run `make install` "
                f"(statarb needs freqtrade {' or '.join(SUPPORTED_FREQTRADE_VERSIONS)})"
            ) from exc
    release = version.removeprefix("docker-").split("-dev")[0].split("-")[0]
    if release not in SUPPORTED_FREQTRADE_VERSIONS:
        raise UnsupportedFreqtradeVersion(
            f"statarb was written for freqtrade {', '.join(SUPPORTED_FREQTRADE_VERSIONS)} "
            f"and relies on its internals; found freqtrade {version}. Install the pinned "
            "version with `make install` (or pip install 'freqtrade==2026.9')."
        )
    return version


FREQTRADE_VERSION = check_freqtrade_version()
