"""Streamlit-aware glue shared by the pages: cached loaders, the training job queue,
chart builders and shared widgets.

``ui.jobs`` imports no Streamlit (the training subprocess imports it, and its tests run
without a Streamlit runtime); ``ui.loaders``, ``ui.widgets`` and ``ui.charts`` do.
``core/`` never imports anything from here.
"""
