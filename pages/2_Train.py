"""Train: choose γ, depth, seed and the task, train in a background process, and read which
solution the model found for the held-out pair (docs/science.md §3–4)."""
import streamlit as st

from ui import widgets

widgets.sidebar()
st.title("Train a model: which solution does it find?")
st.markdown(
    "Pick the **initialization rate γ** (every weight starts at standard deviation d_in^-γ, so larger γ "
    "means smaller weights) and train. Watch the held-out pair: its **inferential** accuracy (blue) rises "
    "when the model composes the anchors' operations, its **symmetric** accuracy (vermillion) when it copies "
    "the mirror pair. Small γ tends to memorize, large γ to reason.")

preset, cfg = widgets.run_controls("train")
if cfg is not None:
    st.markdown(widgets.config_summary(cfg, preset))
widgets.job_panel("train", cfg, preset)

st.divider()
st.subheader("Open a saved run")
st.caption("Committed runs (pretrained/) and runs trained here (runs/). A finished training opens here.")
run = widgets.saved_run_picker("train")
if run is not None:
    widgets.run_report(run)
