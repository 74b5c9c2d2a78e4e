"""The Freqtrade version guard and the credentials file."""

from __future__ import annotations

import stat
from pathlib import Path

import freqtrade
import pytest

from statarb.ft import UnsupportedFreqtradeVersion, check_freqtrade_version
from statarb.tools.credentials import ensure_file


def test_installed_freqtrade_is_the_supported_one() -> None:
    assert check_freqtrade_version() == freqtrade.__version__ == "2026.9"


@pytest.mark.parametrize("version", ["2026.9", "2026.9-dev-abcdef", "docker-2026.9-abc"])
def test_builds_of_the_supported_release_pass(version: str) -> None:
    assert check_freqtrade_version(version) == version


@pytest.mark.parametrize("version", ["2026.8", "2026.10", "2025.9", "2026.90"])
def test_other_versions_fail_clearly(version: str) -> None:
    with pytest.raises(UnsupportedFreqtradeVersion, match=rf"found freqtrade {version}\..*2026\.9"):
        check_freqtrade_version(version)


def test_credentials_file_is_private_random_and_kept(tmp_path: Path) -> None:
    a, b = tmp_path / "a.env", tmp_path / "b.env"
    assert ensure_file(a) and ensure_file(b)
    assert stat.S_IMODE(a.stat().st_mode) == 0o600
    first = a.read_text()
    assert not ensure_file(a) and a.read_text() == first  # never overwritten
    values = dict(line.split("=", 1) for line in first.splitlines() if "=" in line)
    other = dict(line.split("=", 1) for line in b.read_text().splitlines() if "=" in line)
    assert set(values) == {
        f"FREQTRADE__API_SERVER__{k}"
        for k in ("USERNAME", "PASSWORD", "JWT_SECRET_KEY", "WS_TOKEN")
    }
    assert values["FREQTRADE__API_SERVER__PASSWORD"] != other["FREQTRADE__API_SERVER__PASSWORD"]
    assert len(values["FREQTRADE__API_SERVER__JWT_SECRET_KEY"]) >= 32
    assert not values["FREQTRADE__API_SERVER__PASSWORD"][0].isdigit()


def test_worker_retry_after_a_temporary_error_is_set_where_the_worker_reads_it() -> None:
    import freqtrade.worker as worker

    from statarb.ft.worker import set_error_retry

    before = worker.RETRY_TIMEOUT
    try:
        assert set_error_retry(2.0) == before
        assert worker.RETRY_TIMEOUT == 2.0  # the global _process_running sleeps on
    finally:
        set_error_retry(before)
