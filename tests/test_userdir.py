"""``statarb-setup``: what it writes into a user's user_data, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statarb.ft import plugins, userdir
from statarb.sim.run import DEFAULT_OVERLAY


@pytest.fixture(autouse=True)
def _no_site_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The .pth hook is the plugin module's business (tests/test_pairlist.py); here it
    must not be written into the test environment."""
    monkeypatch.setattr(plugins, "register", lambda: "registered (test)")


def make_userdir(tmp_path: Path) -> Path:
    root = tmp_path / "user_data"
    (root / "strategies").mkdir(parents=True)
    return root


def test_writes_the_strategy_the_config_and_the_simulator_overlay(tmp_path: Path) -> None:
    root = make_userdir(tmp_path)
    lines = userdir.setup(root, simulator_port=9123)
    strategy = root / "strategies" / "CointPairsStrategy.py"
    assert strategy.read_text() == userdir.STRATEGY_TEMPLATE.read_text()
    config = json.loads((root / "config.json").read_text())
    template = json.loads(userdir.CONFIG_TEMPLATE.read_text())
    assert config["statarb"] == template["statarb"]
    assert "strategy_path" not in config and "user_data_dir" not in config
    assert config["add_config_files"] == ["config.simulator.json"]
    overlay = json.loads((root / "config.simulator.json").read_text())
    urls = json.dumps(overlay)
    assert "127.0.0.1:9123" in urls and "127.0.0.1:8765" not in urls
    assert "datadir" not in overlay
    assert set(overlay) == set(json.loads(DEFAULT_OVERLAY.read_text())) - {"datadir"}
    assert lines[-1] == "registered (test)"
    # A second run changes nothing and says so.
    assert all(line.startswith("unchanged") for line in userdir.setup(root, 9123)[:-1])


def test_without_the_simulator_the_config_talks_to_binance(tmp_path: Path) -> None:
    root = make_userdir(tmp_path)
    userdir.setup(root)
    config = json.loads((root / "config.json").read_text())
    assert "add_config_files" not in config
    assert not (root / "config.simulator.json").exists()


def test_a_folder_that_is_not_a_user_directory_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(userdir.SetupError, match=r"freqtrade create-userdir --userdir"):
        userdir.setup(tmp_path / "nowhere")


def test_an_edited_config_is_kept_unless_forced(tmp_path: Path, capsys) -> None:
    root = make_userdir(tmp_path)
    (root / "config.json").write_text('{"mine": true}\n')
    assert userdir.main(["--userdir", str(root)]) == 2
    assert "config.json exists and differs" in capsys.readouterr().err
    assert (root / "config.json").read_text() == '{"mine": true}\n'
    assert not (root / "strategies" / "CointPairsStrategy.py").exists()  # nothing written
    assert userdir.main(["--userdir", str(root), "--force"]) == 0
    assert "statarb" in json.loads((root / "config.json").read_text())


def test_a_bad_port_is_refused_by_value(tmp_path: Path) -> None:
    with pytest.raises(userdir.SetupError, match=r"--simulator 70000: a port is 1\.\.65535"):
        userdir.setup(make_userdir(tmp_path), simulator_port=70000)


def test_the_checkout_ships_every_folder_freqtrade_makes_in_user_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone's ``user_data`` already has each folder Freqtrade's start-up makes:
    two freqtrade commands started at once there (two test workers, a user's backtest
    beside ``make sim``) otherwise race to make them, and the second dies with
    ``FileExistsError`` in ``create_userdata_dir``."""
    from freqtrade.configuration.directory_operations import create_userdata_dir

    shipped = Path(__file__).resolve().parents[1] / "user_data"
    clone = tmp_path / "user_data"
    for keep in shipped.glob("*/.gitkeep"):  # the folders a clone gets (git keeps no empty one)
        (clone / keep.parent.name).mkdir(parents=True)
    made: list[str] = []
    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: made.append(self.name))
    create_userdata_dir(str(clone), create_dir=False)
    assert made == [], f"user_data/{made} must ship with the checkout (a .gitkeep in each)"
