"""Report parts an experiment returns (tables, figures) and the SVG helper for figures."""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Any


@dataclasses.dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclasses.dataclass
class Figure:
    title: str
    svg: str
    """Inline SVG markup (no XML prolog), embedded as is in the HTML report."""
    caption: str = ""


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2, **kw: Any):
    """A matplotlib figure on the non-interactive SVG backend (imported lazily)."""
    import matplotlib

    matplotlib.use("svg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small, selectable, searchable

    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


def figure_svg(fig: Any) -> str:
    """Render a matplotlib figure to inline SVG and close it."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)  # date stamps, RDF links
    return re.sub(r"<!--.*?-->", "", svg, flags=re.S)
