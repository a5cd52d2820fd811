"""Downloads for researchers (issue 9 item 7): a chart's data and drawing, and a whole run.

- ``chart_buttons``: under a chart, its data (CSV), its Vega-Lite spec and an SVG (drawn by
  ``vl-convert-python``, pinned in requirements.txt; without it the SVG button is left out and
  the spec can still be exported anywhere). Streamlit's chart toolbar adds PNG.
- ``run_card_export``: on a run card, the command that trains the run again
  (``ui.jobs.reproduce_command``, no path of the server in it) and the run as one zip archive
  (``core.export.run_archive``: the three files of a valid run folder, nothing else).

Every file is built only when its button is clicked (deferred downloads); a failure is a
sentence on the page, never a traceback.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core import export
from core.runs import Run

from .jobs import reproduce_command, shell_lines


def svg_available() -> bool:
    """Whether ``vl_convert`` (package ``vl-convert-python``) can be imported."""
    try:
        import vl_convert  # noqa: F401
    except ImportError:
        return False
    return True


def chart_svg(chart: Any) -> str:
    """The chart drawn as SVG text by vl-convert. A chart it cannot draw gives a small SVG that
    says so (a download never fails half-way).

    Raises:
        ImportError: vl-convert-python is not installed (check ``svg_available`` first).
    """
    import json

    import vl_convert as vlc
    spec = chart.to_dict()
    # ``chart_style`` sizes single views to their Streamlit column (autosize fit-x); a drawing has
    # no column, and vl-convert shrank such a plot to a few pixels wide: draw it at its own size
    if isinstance(spec.get("autosize"), dict) and str(spec["autosize"].get("type", "")).startswith("fit"):
        spec["autosize"] = {**spec["autosize"], "type": "pad"}
    try:
        return vlc.vegalite_to_svg(json.dumps(spec))
    except Exception as e:  # vl-convert raises plain ValueError/RuntimeError on a spec it cannot draw
        text = str(e).replace("&", "&amp;").replace("<", "&lt;")[:200]
        return ("<svg xmlns='http://www.w3.org/2000/svg' width='600' height='40'><text x='4' y='24'>"
                f"This chart could not be drawn as SVG: {text}</text></svg>")


def chart_buttons(chart: Any, frame: pd.DataFrame, name: str, key: str, where: Any = None) -> None:
    """CSV, Vega-Lite and (when available) SVG download buttons in one row under a chart."""
    row = (where or st).container(horizontal=True, gap="small")
    row.download_button("CSV", lambda: frame.to_csv(index=False), file_name=f"{name}.csv", mime="text/csv",
                        key=f"{key}_csv", on_click="ignore", help="the data drawn in this chart", type="tertiary",
                        icon=":material/download:")
    row.download_button("Vega-Lite", lambda: chart.to_json(), file_name=f"{name}.vl.json",
                        mime="application/json", key=f"{key}_vl", on_click="ignore", type="tertiary",
                        icon=":material/download:",
                        help="the chart's spec: open it in any Vega-Lite editor")
    if svg_available():
        row.download_button("SVG", lambda: chart_svg(chart), file_name=f"{name}.svg", mime="image/svg+xml",
                            key=f"{key}_svg", on_click="ignore", type="tertiary", icon=":material/download:",
                            help="the chart as a vector drawing (PNG: the chart's own menu, top right)")


def run_card_export(run: Run, key: str) -> None:
    """The reproduce command and the archive download of one run (a run card's last row)."""
    with st.container(border=True):
        st.markdown("**For researchers: reproduce or download this run**")
        threads = run.metrics.get("threads") if isinstance(run.metrics, dict) else None
        try:
            half = export.stored_dtype(run.path) == "F16"
            seconds = run.metrics.get("seconds") if isinstance(run.metrics, dict) else None
            long_run = isinstance(seconds, (int, float)) and seconds > 1800  # hours here: make it resumable
            cmd = reproduce_command(run.config, run.name, threads if isinstance(threads, int) else None, half,
                                    checkpoint_every=5 if long_run else None)
        except (ValueError, export.ExportError) as e:
            st.caption(f"No command line rebuilds this run's configuration ({e}).")
        else:
            st.code(shell_lines(cmd), language="bash", wrap_lines=True)
            if run.config.train.precision != "fp32":
                bits = (f"Trained under {run.config.train.precision} autocast: the low-order bits depend on the "
                        "CPU's kernels and thread count, so expect the same outcome, not the same weights "
                        "(README, Reproducibility).")
            else:
                bits = ("The same config, seed and CPU thread count on the same torch build give the same weights "
                        "and metrics (README, Reproducibility); another machine gives other low-order bits."
                        + ("" if isinstance(threads, int) else " This run did not record its thread count."))
            resumable = (" It took hours here: `--checkpoint-every 5` saves a checkpoint every 5 minutes, and"
                         " `python -m core train --resume runs/NAME` continues after an interruption." if long_run
                         else "")
            st.caption("Trains this configuration again from scratch into `runs/` (`python -m core train --help`). "
                       + bits + resumable)
        try:
            size = export.check_exportable(run.path, validate=False)  # loaded = validated; the click checks again
        except export.ExportError as e:
            st.caption(f"This run cannot be downloaded: {e}")
            return
        st.download_button(f"Download the run (config, weights, metrics) · zip, {size / 2**20:.1f} MiB before "
                           "compression", lambda: export.run_archive(run.path), file_name=export.archive_name(run.path),
                           mime="application/zip", key=f"{key}_zip", on_click="ignore",
                           icon=":material/folder_zip:",
                           help="config.json, weights.safetensors and metrics.json in one folder: unpack it and "
                                "open it with `python -m core eval FOLDER` or core.runs.load_run")
