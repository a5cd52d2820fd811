"""Notes: the project's documents (docs/*.md) inside the app, so the sentences that cite them
("docs/replication.md") can be followed from the hosted demo. ``?doc=`` picks one (ui/notes.py)."""
import streamlit as st

from ui import notes, sidebar, url_state

sidebar.sidebar()
st.title("Notes: how the runs were made and read")
st.markdown("The project's own documents, the ones the other pages cite by file name (docs/…). They are the "
            "files of the repository, shown as they are, with every command that reproduces a number in them.")

keys = list(notes.DOCS)
url_state.apply("doc", lambda r: url_state.parse_choice("doc", r, keys), url_state.set_state("notes_doc"))
if st.session_state.get("notes_doc") not in keys:
    st.session_state["notes_doc"] = keys[0]
key = st.radio("Document", keys, key="notes_doc", horizontal=True,
               format_func=lambda k: notes.DOCS[k][1])
url_state.write({"doc": key})
share_slot = st.container()  # filled once the section is known, so its link holds it
file, _, purpose = notes.DOCS[key]
st.caption(f"{purpose} File: docs/{file}.")
try:
    text = notes.text_of(key)
except notes.NoteError as e:
    st.error(f"This document cannot be shown: {e}.", icon="⚠️")
    st.stop()
parts = notes.sections(text)
titles = ["The whole document"] + [t for t, _ in parts]
skey = f"notes_section_{key}"
url_state.apply("section", lambda r: url_state.parse_int("section", r, 0, len(parts)), url_state.set_state(skey))
pick = st.selectbox("Section", range(len(titles)), format_func=titles.__getitem__, key=skey,
                    help="Show one section only (handy on a phone or a projector).")
url_state.write({"section": str(pick) if pick else None})
url_state.share_box("/Notes", ["doc", "section"], where=share_slot)
# a wide table scrolls inside its own box (on a phone it made the whole page scroll sideways)
st.html("<style>[data-testid='stMarkdownContainer'] table {display: block; overflow-x: auto; max-width: 100%}</style>")
st.divider()
st.markdown(text if pick == 0 else parts[pick - 1][1])
