"""``statarb-setup``: prepare a Freqtrade user's own ``user_data`` for the package.

Why one command: a wheel cannot put files where Freqtrade looks for them. Freqtrade loads
strategies from ``<user_data>/strategies`` and pairlists from its own package folder only,
and reads ``<user_data>/config.json`` when no ``--config`` is given. So, after
``pip install statarb`` into the environment that runs ``freqtrade``, and
``freqtrade create-userdir --userdir user_data``, this command

1. writes ``strategies/CointPairsStrategy.py`` (a subclass of
   :class:`statarb.ft.strategy.CointPairsStrategy` that adds nothing, so the strategy is
   upgraded with the package);
2. registers the pairlist with the plain ``freqtrade`` command (the ``.pth`` hook of
   :mod:`statarb.ft.plugins`, in this environment's site-packages);
3. writes ``config.json``: the package's config with its ``statarb`` section, without the
   checkout's ``strategy_path`` and ``user_data_dir``; with ``--simulator PORT`` it also
   writes ``config.simulator.json`` (every Binance URL at ``127.0.0.1:PORT``, where
   ``statarb-sim`` serves the shared data) and names it in ``add_config_files``.

It never overwrites a file that differs from what it would write, unless ``--force``:
a user's edited config or strategy is theirs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from statarb.ft import plugins

CONFIG_TEMPLATE = plugins.PLUGIN_FILES / "config.json"
STRATEGY_TEMPLATE = plugins.PLUGIN_FILES / "strategies" / "CointPairsStrategy.py"
SIMULATOR_OVERLAY = "config.simulator.json"
# Keys of the checkout's config that point into the checkout.
CHECKOUT_KEYS = ("strategy_path", "user_data_dir")


class SetupError(Exception):
    """A bad argument or a file the command will not overwrite; the message says which."""


def user_config(simulator_port: int | None) -> dict[str, Any]:
    """The config a user's ``user_data/config.json`` starts from."""
    config = json.loads(CONFIG_TEMPLATE.read_text(encoding="utf-8"))
    config.pop("$schema", None)
    for key in CHECKOUT_KEYS:
        config.pop(key, None)
    if simulator_port is not None:
        config["add_config_files"] = [SIMULATOR_OVERLAY]
    return config


def simulator_config(port: int) -> dict[str, Any]:
    """The offline overlay with every loopback URL at ``port`` (no ``datadir``: Freqtrade
    reads ``<user_data>/data/binance``)."""
    from statarb.sim.run import DEFAULT_OVERLAY, retarget

    config = retarget(json.loads(DEFAULT_OVERLAY.read_text(encoding="utf-8")), port)
    config.pop("datadir", None)
    return config


def _differs(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") != text


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=4) + "\n"


def setup(userdir: Path, simulator_port: int | None = None, force: bool = False) -> list[str]:
    """Do the three steps; return one line per file written or kept."""
    if not (userdir / "strategies").is_dir():
        raise SetupError(
            f"{userdir} is not a Freqtrade user directory (no strategies/ in it); "
            f"make it first: freqtrade create-userdir --userdir {userdir}"
        )
    if simulator_port is not None and not 0 < simulator_port < 65536:
        raise SetupError(f"--simulator {simulator_port}: a port is 1..65535")
    files = {
        userdir / "strategies" / STRATEGY_TEMPLATE.name:
            STRATEGY_TEMPLATE.read_text(encoding="utf-8"),
        userdir / "config.json": _json(user_config(simulator_port)),
    }
    if simulator_port is not None:
        files[userdir / SIMULATOR_OVERLAY] = _json(simulator_config(simulator_port))
    # Every file is checked before any is written: a refusal leaves the folder as it was.
    kept = [path for path, text in files.items() if _differs(path, text)]
    if kept and not force:
        raise SetupError(
            f"{', '.join(map(str, kept))} exists and differs from what statarb-setup writes; "
            "keep it (remove it first) or pass --force to overwrite it"
        )
    lines = []
    for path, text in files.items():
        same = path.exists() and not _differs(path, text)
        path.write_text(text, encoding="utf-8")
        lines.append(f"{'unchanged' if same else 'wrote'} {path}")
    lines.append(plugins.register())
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="statarb-setup",
        description="Prepare a Freqtrade user_data (made by freqtrade create-userdir) for "
        "CointPairsStrategy and the CointegrationFilter pairlist.",
    )
    parser.add_argument("--userdir", type=Path, default=Path("user_data"),
                        help="the Freqtrade user directory (default: user_data)")
    parser.add_argument("--simulator", type=int, metavar="PORT", default=None,
                        help="also point the config at statarb-sim on 127.0.0.1:PORT")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a config.json or strategy file that differs")
    args = parser.parse_args(argv)
    try:
        for line in setup(args.userdir, args.simulator, args.force):
            print(f"statarb-setup: {line}")
    except SetupError as exc:
        print(f"statarb-setup: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
