"""Train: choose γ, depth, seed and the task, train in a background process, and read which
solution the model found for the held-out pair (docs/science.md §3–4)."""
import streamlit as st

from core.presets import PRESETS, get_preset
from ui import job_panel, lesson, run_controls, run_report, sidebar, url_state

sidebar.sidebar()
st.title("Train a model: which solution does it find?")
st.markdown(
    "Pick the **initialization rate γ** (every weight starts at standard deviation d_in^-γ, so larger γ "
    "means smaller weights) and train. Watch the held-out pair: its **inferential** accuracy (blue) rises "
    "when the model composes the anchors' operations, its **symmetric** accuracy (vermillion) when it copies "
    "the mirror pair. Small γ tends to memorize, large γ to reason.")

# ?preset=&gamma=&depth=&seed=&epochs= (once per distinct value), written back as they change
url_state.train_from_url("train", list(PRESETS),
                         lambda n: (get_preset(n).model.n_layers, get_preset(n).train.epochs))
preset, cfg = run_controls.run_controls("train")
url_state.train_to_url("train")
url_state.share_box("/Train", url_state.TRAIN_KEYS)
if cfg is not None:
    st.markdown(run_report.config_summary(cfg, preset))
    st.caption(lesson.spread_caption(cfg))
job_panel.job_panel("train", cfg, preset)

st.divider()
st.subheader("Open a saved run")
st.caption("Committed runs (pretrained/) and runs trained here (runs/). A finished training opens here.")
run = run_report.saved_run_picker("train", cfg)
if run is not None:
    differs = run_report.setting_difference(run.config, cfg) if cfg is not None else []
    if differs:
        st.caption("This saved run is not the setting chosen above: " + "; ".join(differs) +
                   ". **Train** trains the setting above; this box opens any saved run.")
        # the caption at the top counts the chosen setting's seeds; this one the saved run's
        st.caption(lesson.spread_caption(run.config, what="this saved run's setting (all but the seed)"))
    run_report.run_report(run)
