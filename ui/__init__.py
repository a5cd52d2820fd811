"""Streamlit-aware glue shared by the pages: cached loaders, the training job queue,
chart builders and the widgets the pages share (sidebar, task editor, run controls, job
panel, run report), and the cross-page session keys (``ui.state``).

``ui.jobs`` imports no Streamlit (its tests run without a Streamlit runtime; its jobs are
``python -m core train`` subprocesses); ``ui.loaders`` and the widget modules do.
``core/`` never imports anything from here.
"""
