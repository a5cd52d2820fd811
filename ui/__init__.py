"""Streamlit-aware glue shared by the pages: cached loaders, the training job queue,
chart builders and shared widgets.

``ui.jobs`` imports no Streamlit (its tests run without a Streamlit runtime; its jobs are
``python -m core train`` subprocesses); ``ui.loaders``, ``ui.widgets`` and ``ui.charts`` do.
``core/`` never imports anything from here.
"""
