"""Inside the model: every mechanism figure of [INIT] (docs/science.md §5, Fig. 3–5 and 10–13), computed
live from any saved run, two runs side by side under the same controls."""
import streamlit as st

from ui import probe_data, probe_views, sidebar, state, url_state

sidebar.sidebar()

st.title("Inside the model: why one model reasons and another memorizes")
st.markdown(
    "Two models can both answer every seen anchor pair correctly and still disagree on the held-out pair (4,3). "
    "These views open them up with the paper's own tools: where attention moves information, which "
    "intermediate results the vectors carry, and how simple the learned weights are. By default it opens on "
    "the committed pair that shows the result most clearly: a run whose verdict is **symmetric** next to one "
    "whose verdict is **inferential**, of the same task, width and schedule, differing only in γ and perhaps the seed "
    "(clear verdicts first, then the widest model, then one seed for both). When no such pair is committed, the committed run with the **smallest γ** "
    "(largest initialization, expected to memorize) sits next to the one with the **largest γ** (expected to "
    "reason); at "
    "equal γ, a run that fits the seen pairs comes first. Every number is computed live from the "
    "weights; each chart has a PNG button in its toolbar (hover it) and CSV / spec / SVG downloads below it; "
    "**Replay training** plays a run back from its stored history.")

paths = probe_views.pick_runs()
if paths:
    large = state.large_fonts()
    url_state.inside_view_from_url(probe_views.VIEWS)  # ?view=flow|fused|…, once per distinct value
    # above the tabs, filled once the open tab is known. (After a tab click Streamlit 1.67's address bar
    # shows the new ?view= only from the next interaction on; the link in the box is current at once.)
    share_slot = st.container()
    tabs = st.tabs([v.name for v in probe_views.VIEWS], key="inside_view", on_change="rerun")
    open_view = next((v.name for v, tab in zip(probe_views.VIEWS, tabs) if tab.open), None)
    url_state.inside_to_url(paths, probe_views.url_roots(), probe_data.available_runs(), open_view,
                            probe_views.VIEWS)
    url_state.share_box("/Inside_the_model", url_state.INSIDE_KEYS, where=share_slot)
    for tab, view in zip(tabs, probe_views.VIEWS):
        if tab.open:
            with tab:
                view.render(paths, large)
