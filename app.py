"""Entry point: ``streamlit run app.py``. Every ``pages/*.py`` becomes a page, sorted by file name;
its title comes from the name ("1_The_puzzle.py" -> "The puzzle")."""
import re
from pathlib import Path

import streamlit as st

st.set_page_config(page_title="Reasoning or memorizing? Initialization and composite functions", layout="wide")
pages = sorted((Path(__file__).parent / "pages").glob("*.py"), key=lambda p: p.name)
st.navigation([st.Page(f"pages/{p.name}", title=re.sub(r"^\d+_", "", p.stem).replace("_", " ")) for p in pages]).run()
