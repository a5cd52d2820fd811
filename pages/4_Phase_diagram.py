"""Phase diagram: depth × γ (Fig. 2a,b) and learning rate × weight decay (Fig. 14), from the
committed sweeps in pretrained/ (docs/science.md §4–5). Click a cell to open its runs."""
import streamlit as st

from ui import lesson, loaders, phase_charts, phase_data, phase_views, sidebar, url_state

large = sidebar.sidebar()
st.title("Phase diagram: which initializations reason, which memorize?")
st.markdown(
    "The paper's central figure: sweep the settings, train every cell with several seeds, and colour each cell "
    "by how the model answers the held-out pair. **Hatched, faded** cells did not fit the seen pairs (test "
    "accuracy below 90 %), as the paper shades them. Click a cell to open its runs.")

picked = phase_views.pick_table()
if picked is not None:
    name, df, meta = picked
    cfg = phase_data.config_of(meta)
    st.markdown(phase_data.INTRO[phase_data.kind_of(name)])
    regime = phase_data.regime_note(cfg)
    if regime is not None:
        st.info(regime + " " + lesson.faithful_sentence(loaders.faithful_facts(str(loaders.pretrained_dir()))),
                icon="ℹ️")
        st.page_link("pages/5_Notes.py", label="The replication at the paper's width, epoch by epoch (Notes)",
                     icon=":material/description:", query_params={"doc": "replication"})
    x, y = meta["columns"]["axes"][:2]
    if not meta["columns"]["best_over"]:
        st.caption("This diagram has one learning rate per cell, so the paper's rule reduces to the mean over seeds.")
    url_state.phase_view_from_url(list(phase_data.REDUCTIONS))  # ?reduction=, once per distinct value
    view = st.radio("Reduction", list(phase_data.REDUCTIONS), key="phase_view", horizontal=True,
                    format_func=phase_data.REDUCTIONS.get, persist_state="session")
    cell_df = phase_data.cells(df, meta, view)
    url_state.phase_cell_from_url(list(cell_df["cell"]))  # ?cell=, before a click may replace it
    selected = phase_views.apply_click(cell_df)  # also the select box's choice below (same state)
    url_state.phase_to_url(name, view, selected)
    url_state.share_box("/Phase_diagram", url_state.PHASE_KEYS)
    frame = phase_data.long_frame(cell_df, meta, cfg)
    # one chart per panel, in columns: side by side on a screen, stacked on a phone (one faceted
    # chart was wider than a phone and cut to its first panel)
    panels = list(dict.fromkeys(frame["panel"]))
    for i, (col, panel) in enumerate(zip(st.columns(len(panels)), panels)):
        chart = phase_charts.heatmap(frame[frame["panel"] == panel], x, y, selected, large, by_seed=view == "seed")
        col.altair_chart(chart, on_select="rerun", key=phase_views.chart_key(i), selection_mode="cell")
    st.caption(f"{len(df)} runs · {cfg.model.d_model}-wide model, {cfg.train.n_train:,} sequences × "
               f"{cfg.train.epochs} epochs · hover a cell for its numbers; click it (double-click clears).")
    st.altair_chart(phase_charts.outcome_dots(phase_data.run_frame(df, meta), x, y, large))

    st.subheader("Compared with the paper")
    paper_cells = phase_data.cells(df, meta, "paper")
    st.markdown("\n".join(f"- {s}" for s in phase_data.comparison(paper_cells, meta, cfg)))
    st.caption(phase_data.time_note(df, meta))

    st.subheader("One cell")
    cell = phase_views.cell_select(cell_df, [x, y])
    if cell is not None:
        phase_views.cell_panel(cell, df, meta, large)
        phase_views.recompute_panel(name, cell, df, meta)
    with st.expander("Recompute the whole diagram (command line)"):
        st.markdown("A full diagram is too long for the shared server queue. This command recomputes it with "
                    "the same configuration, skips runs already finished in its output folder, and republishes "
                    "the table here:")
        st.code(phase_views.whole_diagram_command(name, meta), language="bash")
