"""Entry point: ``streamlit run app.py``. Every ``pages/*.py`` becomes a page, sorted by file name
(so ``0_Lesson.py`` opens first); its title comes from the name ("1_The_puzzle.py" -> "The puzzle")."""
import re
from pathlib import Path

import streamlit as st

from ui.widgets import presenter_from_url

# Presenter mode (sidebar toggle, or ?presenter=1 in the link) folds the sidebar away for a projector.
st.set_page_config(page_title="Reasoning or memorizing? Initialization and composite functions", layout="wide",
                   initial_sidebar_state="collapsed" if presenter_from_url() else "auto")
pages = sorted((Path(__file__).parent / "pages").glob("*.py"), key=lambda p: p.name)
st.navigation([st.Page(f"pages/{p.name}", title=re.sub(r"^\d+_", "", p.stem).replace("_", " ")) for p in pages]).run()
