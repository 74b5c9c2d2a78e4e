"""The package as a Freqtrade user installs it: built wheel, fresh venv, their own user_data.

Runs the shell blocks of docs/install.md exactly as written, in a folder outside the
checkout with only ``../shared`` beside it, in a fresh venv that gets Freqtrade and the
wheel built here from local wheels (``make test`` fills ``.venv/wheelhouse`` once; pip
reads ``PIP_NO_INDEX``/``PIP_FIND_LINKS``/``PIP_CONSTRAINT``, so the command the user
types is the one run, and nothing reaches the network).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.offline import REPO, offline_env
from tests.shared_data import SHARED, require_shared

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("checkout")]  # port 8765

DOC = REPO / "docs" / "install.md"
WHEELHOUSE = REPO / ".venv" / "wheelhouse"
PORT = 8765
# What the wheel and the sdist must hold for a user's Freqtrade to find the product.
SHIPPED = (
    "statarb/ft/strategy.py",
    "statarb/ft/pairlist.py",
    "statarb/ft/plugin_files/pairlists/CointegrationFilter.py",
    "statarb/ft/plugin_files/strategies/CointPairsStrategy.py",
    "statarb/ft/plugin_files/config.json",
    "statarb/sim/config.offline.json",
)


def shell_blocks(text: str) -> list[str]:
    """The ```sh blocks of a Markdown text, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from this checkout (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True, capture_output=True, text=True, env=offline_env(), timeout=300,
    )
    return out


def test_the_wheel_and_the_sdist_hold_the_strategy_and_the_pairlist(dist: Path) -> None:
    wheel = next(dist.glob("statarb-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names, sorted(set(SHIPPED) - names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: GPL-3.0-or-later" in metadata
    assert "Requires-Dist: freqtrade[hyperopt,plot]==2026.9" in metadata
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "statarb-setup = statarb.ft.userdir:main" in entry_points
    sdist = next(dist.glob("statarb-*.tar.gz"))
    with tarfile.open(sdist) as archive:
        members = {m.split("/", 1)[1] for m in archive.getnames() if "/" in m}
    assert set(SHIPPED) | {"LICENSE", "pyproject.toml"} <= members


def test_the_checkout_shims_are_the_shipped_files() -> None:
    """``strategies/`` and ``pairlists/`` in the checkout hold no second copy of anything."""
    shipped = REPO / "statarb" / "ft" / "plugin_files"
    assert (REPO / "strategies" / "CointPairsStrategy.py").read_text() == (
        shipped / "strategies" / "CointPairsStrategy.py").read_text()
    assert (REPO / "pairlists").resolve() == (shipped / "pairlists").resolve()
    assert (REPO / "config.json").resolve() == (shipped / "config.json").resolve()


def test_a_user_installs_the_wheel_into_their_own_freqtrade(
    dist: Path, tmp_path: Path
) -> None:
    require_shared()
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail(f"{WHEELHOUSE} is not filled: run `make test` (it fills it once)")
    with socket.socket() as probe:  # the blocks start statarb-sim on PORT, as written
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is taken (a simulator left running by another test?): "
                        "the install blocks would talk to it instead of their own")
    blocks = shell_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 3, f"docs/install.md: expected 3 sh blocks, found {len(blocks)}"
    (tmp_path / "shared").symlink_to(SHARED.resolve())
    bot = tmp_path / "bot"
    bot.mkdir()
    shutil.copy(next(dist.glob("statarb-*.whl")), bot)
    env = offline_env(
        COLUMNS="250",
        PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE),
        PIP_CONSTRAINT=str(REPO / "requirements.lock"), PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.pop("PYTHONPATH", None)  # nothing of the checkout on the path
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    outputs = []
    for i, block in enumerate(blocks):
        # One shell for all blocks, as a user in one terminal (the first activates the
        # venv); a marker between blocks to check each block's output on its own.
        script += f"echo '@@block {i}'\n{block}"
    proc = subprocess.run(["bash", "-c", script], cwd=bot, env=env, capture_output=True,
                          text=True, timeout=1500)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    outputs = re.split(r"^@@block \d+$", proc.stdout, flags=re.M)[1:]
    install, backtest, pairlist = outputs
    assert " - ERROR - " not in output, output[-8000:]

    # Installed from the wheel, not from the checkout.
    site = subprocess.run(
        [str(bot / ".venv/bin/python"), "-c", "import statarb; print(statarb.__file__)"],
        capture_output=True, text=True, env=env, check=True).stdout
    assert str(bot / ".venv") in site and str(REPO) not in site
    listed = r"CointPairsStrategy\s*[│|]\s*CointPairsStrategy\.py\s*[│|]\s*OK"
    assert re.search(listed, install), install
    config = json.loads((bot / "user_data" / "config.json").read_text())
    assert "statarb" in config and "strategy_path" not in config
    assert config["add_config_files"] == ["config.simulator.json"]

    # A real backtest on the downloaded data: couples traded, legs in pairs.
    match = re.search(r"│\s*TOTAL\s*│\s*(\d+)\s*│", backtest)
    assert match, backtest[-6000:]
    trades = int(match.group(1))
    assert trades >= 2 and trades % 2 == 0, backtest[-6000:]
    assert "No data found" not in output

    # test-pairlist through the registered CointegrationFilter: coins of couples only.
    whitelist = re.search(r"Pairs for .*?: \n?(\[.*?\])", pairlist, flags=re.S)
    assert whitelist, pairlist[-4000:]
    pairs = json.loads(whitelist.group(1).replace("'", '"'))
    assert 2 <= len(pairs) < len(config["exchange"]["pair_whitelist"]), pairs
    assert "CointegrationFilter" in output


def test_the_dockerfile_runs_the_commands_of_the_venv_test() -> None:
    """No Docker here: the image must at least use the install and set-up commands the venv
    test runs (Freqtrade's derived-image recipe: ``FROM freqtradeorg/freqtrade``)."""
    dockerfile = (REPO / "Dockerfile").read_text()
    doc = shell_blocks(DOC.read_text(encoding="utf-8"))[0]
    assert "FROM freqtradeorg/freqtrade:2026.9" in dockerfile
    pip_line = next(line for line in doc.splitlines() if "pip install" in line)
    packages = pip_line.split("install", 1)[1].replace("--quiet", "").split()
    run_lines = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    pip_run = next(line for line in run_lines if "pip install" in line)
    assert all(p.rsplit("/", 1)[-1] in pip_run for p in packages), (packages, pip_run)
    assert any("freqtrade create-userdir --userdir user_data" in line for line in run_lines)
    assert any("statarb-setup --userdir user_data" in line for line in run_lines)
    compose = (REPO / "docker-compose.yml").read_text()
    assert "dockerfile: Dockerfile" in compose and "statarb-setup" in compose
