"""The puzzle: the anchor task, its sixteen pairs, example sequences and the two possible
answers for the held-out pair (docs/science.md §1–2)."""
import json

import streamlit as st
import torch

from core.config import pair_key, parse_pair
from core.task import make_sequence, pair_target
from ui import glossary, sidebar, tables, task_editor
from ui.loaders import example_batch
from ui.tables import puzzle_answers

large = sidebar.sidebar()
st.title("The puzzle: reasoning or memorizing?")
st.markdown(
    "Four **anchor** tokens each stand for an arithmetic operation. A sequence holds one **key item** x "
    "followed by two adjacent anchors, and the answer is x passed through both operations. A transformer "
    "learns fifteen of the sixteen anchor pairs, one of them with a changed rule, so the unseen pair has "
    "two defensible answers: **compose** the single-anchor operations (inferential: reasoning) or **copy** "
    "its mirror pair (symmetric: memorizing). Which one it picks depends on how it was initialized.")

with st.expander("Change the rules (the Train page uses the same task)"):
    task = task_editor.task_editor("puzzle")
if task is None:
    st.error("These rules are impossible (the reason is under 'Change the rules'); restore the paper's task there.")
    st.stop()

st.subheader("The sixteen anchor pairs")
st.caption("Row: first anchor, column: second anchor. Each cell is the training target and the pair's role: "
           "blue pairs follow the composition, the vermillion pair's rule was changed, the purple pair is "
           "never shown in training.")
st.table(tables.pair_table(task, large))

st.subheader("Two possible answers for the unseen pair")
if not task.held_out:
    st.markdown("No pair is held out now, so every pair is trained and there is no unseen pair to answer. "
                "Hold one out under 'Change the rules' (the paper holds out (4,3)) to see its two answers.")
for line in puzzle_answers(task):
    st.markdown(line)
st.caption("The paper's finding: small initialization (large γ) gives the inferential answer, larger "
           "initialization (small γ) the symmetric one. Try it on the Train page.")

st.subheader("Example sequences")
c1, c2, _ = st.columns([2, 2, 2], vertical_alignment="bottom")
m = task.modulus
# persist_state: the radio keeps its choice across pages, and the table below is drawn from it
split = c1.radio(f"Split (m = {m})", ["train", "test"], horizontal=True, key="puzzle_split", persist_state="session",
                 help=f"train: key x at position p only if x mod {m} ≠ p; test: only if x mod {m} = p\n\n"
                      + glossary.tip("split"))
if c2.button("New examples", key="puzzle_new"):
    st.session_state["puzzle_seed"] = st.session_state.get("puzzle_seed", 0) + 1
batch = example_batch(json.dumps(task.to_dict()), split, 8, st.session_state.get("puzzle_seed", 0))
st.caption(f"Yellow: the key item x. Coloured pairs: the two anchors, in the colour of their pair's role. "
           "Every other token is noise; the model must answer at the last position. These are "
           f"**{split}**-split sequences: the last column checks x mod {m} = p for each ({tables.modulus_note(task)}).")
st.table(tables.sequence_table(task, batch, large))

st.subheader("Build your own sequence")
c1, c2, c3 = st.columns(3)
key = c1.number_input(f"Key item x ({task.item_min}–{task.item_max})", task.item_min, task.item_max,
                      min(max(80, task.item_min), task.item_max), key="puzzle_key", help=glossary.tip("key item"))
# The labels name each pair's role, which the held-out and overridden pairs decide: a widget
# keyed on them is rebuilt (labels redrawn) when they change.
roles = "_".join(f"{pair_key(p)}-{task.pair_type(p)[0]}" for p in task.pairs if task.pair_type(p) != "inferential")
pair = c2.selectbox("Anchor pair", [pair_key(p) for p in task.pairs],
                    index=task.pairs.index(task.held_out[0]) if task.held_out else 0,
                    key=f"puzzle_pair_{roles or 'all'}", format_func=lambda k: f"({k}) {task.pair_type(parse_pair(k))}")
pos = c3.number_input(f"Key position p (0–{task.seq_len - 3})", 0, task.seq_len - 3, min(2, task.seq_len - 3),
                      key="puzzle_pos")
try:
    a1, a2 = parse_pair(pair)
    seq = make_sequence(task, int(key), (a1, a2), int(pos), generator=torch.Generator().manual_seed(0))
except ValueError as e:
    st.error(f"Cannot build this sequence: {e}")
else:
    one = {"tokens": seq[None].numpy(), "key": [int(key)], "key_pos": [int(pos)], "a1": [a1], "a2": [a2]}
    st.table(tables.sequence_table(task, one, large))
