"""AppTest checks of the puzzle page (pages/1_The_puzzle.py), reached through app.py."""
from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

torch.set_num_threads(1)


@pytest.fixture
def at(app_env):
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()  # the app opens on the Lesson (app.py); the puzzle is the second page
    at.switch_page("pages/1_The_puzzle.py").run()
    assert not at.exception
    return at


def texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_puzzle_page_shows_pairs_roles_and_answers(at):
    assert at.title[0].value.startswith("The puzzle")
    grid = at.table[0].value  # the 4x4 grid of anchor pairs, with targets and roles
    assert grid.shape == (4, 4)
    assert grid.loc["first 4 (x−8)", "then 3 (x−2)"].startswith("? · held out (x−10 or x−6)")
    assert grid.loc["first 3 (x−2)", "then 4 (x−8)"] == "x−6 · overridden"
    assert grid.loc["first 1 (x+5)", "then 2 (x+1)"] == "x+6 · inferential"
    assert "x−10: inferential" in texts(at) and "x−6: symmetric" in texts(at)
    examples = at.table[1].value
    assert len(examples) == 8 and (examples["key split (test: x mod 7 = p)"] == "train").all()  # m named
    assert not at.error


def test_changing_an_operation_changes_the_answers(at):
    at.number_input(key="puzzle_op_4").set_value(-9).run()
    assert not at.exception and not at.error
    assert "x−11: inferential" in texts(at)  # (4,3) now composes to -9 - 2
    assert at.table[0].value.loc["first 4 (x−9)", "then 4 (x−9)"] == "x−18 · inferential"


def test_impossible_settings_show_core_errors(at):
    at.multiselect(key="puzzle_held").select("3,4").run()  # (3,4) is also the overridden pair
    assert not at.exception
    assert any("both held out and overridden" in e.value for e in at.error)
    assert not at.table  # nothing is drawn from an impossible task
    at.multiselect(key="puzzle_held").unselect("3,4").run()
    assert not at.error and at.table
    at.number_input(key="puzzle_op_4").set_value(-40).run()  # 20 - 40 - 2 < 0: negative targets
    assert not at.exception
    assert any("smallest target" in e.value for e in at.error)


def test_task_is_shared_with_the_train_page(at):
    at.selectbox(key="puzzle_ovr_pair").set_value("none").run()
    at.multiselect(key="puzzle_held").select("3,4").run()  # the appendix-E variant
    assert not at.error
    at.switch_page("pages/2_Train.py").run()
    assert not at.exception
    assert "held out (4,3), (3,4)" in texts(at)
    assert at.multiselect(key="train_held").value == ["4,3", "3,4"]


def test_sequence_builder_and_new_examples(at):
    first = at.table[1].value.copy()
    at.button(key="puzzle_new").click().run()
    assert not at.table[1].value.equals(first)
    at.radio(key="puzzle_split").set_value("test").run()
    assert (at.table[1].value["key split (test: x mod 7 = p)"] == "test").all()
    own = at.table[2].value
    assert own.loc[0, "pos 2"] == 80 and own.loc[0, "target"] == "? (70 or 74)"  # key 80, pair (4,3)
    key, pos = at.number_input(key="puzzle_key"), at.number_input(key="puzzle_pos")
    assert (key.min, key.max) == (20, 99)  # the item range: a key outside it cannot be typed
    assert (pos.min, pos.max) == (0, 6)    # the key needs two anchors and the answer after it (n = 9)
    pos.set_value(6).run()
    assert not at.exception and not at.error
    assert at.table[2].value.loc[0, "pos 6"] == 80


def pair_box(at):
    (box,) = [b for b in at.selectbox if b.label == "Anchor pair"]
    return box


def test_without_a_held_out_pair(at):
    before = pair_box(at)
    assert "(4,3) held out" in before.options
    at.multiselect(key="puzzle_held").unselect("4,3").run()
    assert not at.exception
    after = pair_box(at)
    assert "(4,3) inferential" in after.options and not any("held out" in o for o in after.options)
    # a new widget identity, so the browser redraws the labels (a kept widget showed "(4,3) held out")
    assert after.id != before.id
    text = texts(at)
    assert "No pair is held out" in text and "x−10: inferential" not in text


def test_split_radio_names_m_and_keeps_its_choice_across_pages(at):
    radio = at.radio(key="puzzle_split")
    assert radio.label == "Split (m = 7)" and "x mod 7" in radio.help
    radio.set_value("test").run()
    at.switch_page("pages/2_Train.py").run()
    at.switch_page("pages/1_The_puzzle.py").run()
    assert not at.exception
    assert at.radio(key="puzzle_split").value == "test"  # the radio and the table it draws agree
    assert (at.table[1].value["key split (test: x mod 7 = p)"] == "test").all()


def test_both_unseen_variant_is_composition_only(at):
    at.selectbox(key="puzzle_ovr_pair").set_value("none").run()
    at.multiselect(key="puzzle_held").select("3,4").run()
    assert not at.exception and not at.error
    text = texts(at)
    assert "x−10 or x−10" not in text and "x−10: symmetric" not in text
    assert "(4,3): x−10 either way (composition only)" in text
    assert any("Appendix E" in i.value for i in at.info) and not at.warning
    assert at.table[0].value.loc["first 4 (x−8)", "then 3 (x−2)"] == "? · held out (x−10 either way: composition only)"
