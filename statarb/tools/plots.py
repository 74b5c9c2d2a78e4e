"""Interactive Plotly charts of couples, written as self-contained offline HTML.

Why Plotly: it ships with Freqtrade's plot extra, FreqUI users know it, and its HTML
works in any browser. plotly.js is written once per folder (``plotly.min.js``) and every
chart refers to it, so the folder works offline and stays small.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["couple_figure", "write_couple_charts"]


def couple_figure(
    log_prices: pd.DataFrame,
    y: str,
    x: str,
    alpha: float,
    beta: float,
    *,
    entry_z: float = 2.0,
    stop_z: float = 4.0,
    title: str | None = None,
) -> go.Figure:
    """Normalised prices, spread and z-score (with entry and stop bands) of one couple.

    The z-score uses the spread's mean and standard deviation over the plotted window,
    i.e. the formation statistics the couple was selected on.
    """
    ly, lx = log_prices[y], log_prices[x]
    spread = ly - beta * lx - alpha
    z = (spread - spread.mean()) / spread.std(ddof=1)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[0.4, 0.3, 0.3],
        subplot_titles=("Prices rebased to 1", "Spread log y - beta log x - alpha", "Z-score"),
    )
    for name, series in ((y, ly), (x, lx)):
        fig.add_trace(
            go.Scatter(x=series.index, y=np.exp(series - series.iloc[0]), name=name), 1, 1
        )
    fig.add_trace(go.Scatter(x=spread.index, y=spread, name="spread"), 2, 1)
    fig.add_trace(go.Scatter(x=z.index, y=z, name="z-score"), 3, 1)
    bands = ((entry_z, "entry", "orange"), (stop_z, "stop", "red"))
    for level, label, colour in bands:
        for sign in (1, -1):
            fig.add_hline(
                y=sign * level,
                line={"color": colour, "dash": "dash", "width": 1},
                annotation_text=f"{label} {sign * level:+g}",
                row=3,
                col=1,
            )
    fig.add_hline(y=0, line={"color": "grey", "width": 1}, row=3, col=1)
    fig.update_layout(
        title=title or f"{y} vs {x}  (beta {beta:.4f})",
        height=900,
        hovermode="x unified",
        template="plotly_white",
    )
    return fig


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")


def write_couple_charts(
    log_prices: pd.DataFrame,
    couples: pd.DataFrame,
    folder: Path,
    *,
    entry_z: float = 2.0,
    stop_z: float = 4.0,
    summary_columns: Sequence[str] = ("beta", "pvalue_adj", "half_life_hours", "crossings"),
) -> list[Path]:
    """One HTML chart per couple row (``y``, ``x``, ``alpha``, ``beta``) and an index.

    Returns the written chart paths; ``folder/index.html`` links them all.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows: list[str] = []
    for rank, couple in enumerate(couples.itertuples(index=False), start=1):
        fig = couple_figure(
            log_prices,
            couple.y,
            couple.x,
            couple.alpha,
            couple.beta,
            entry_z=entry_z,
            stop_z=stop_z,
        )
        name = f"{rank:02d}_{_slug(couple.y)}__{_slug(couple.x)}.html"
        fig.write_html(folder / name, include_plotlyjs="directory", full_html=True)
        written.append(folder / name)
        cells = "".join(
            f"<td>{getattr(couple, col):.4g}</td>"
            for col in summary_columns
            if hasattr(couple, col)
        )
        label = html.escape(f"{couple.y} vs {couple.x}")
        rows.append(f'<tr><td>{rank}</td><td><a href="{name}">{label}</a></td>{cells}</tr>')
    heads = "".join(f"<th>{html.escape(c)}</th>" for c in summary_columns if c in couples.columns)
    body = "\n".join(rows) or '<tr><td colspan="9">No couple was selected.</td></tr>'
    start, end = log_prices.index[0], log_prices.index[-1]
    (folder / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Selected couples</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 10px;text-align:left}</style>"
        f"</head><body><h1>Selected couples</h1><p>Formation window {start} .. {end}</p>"
        f"<table><tr><th>#</th><th>couple</th>{heads}</tr>\n{body}</table></body></html>\n",
        encoding="utf-8",
    )
    return written
