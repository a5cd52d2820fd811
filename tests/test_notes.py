"""The Notes page (pages/5_Notes.py, ui/notes.py): the documents the app cites by file are
readable inside the app; a crafted ``?doc=`` never reads another file."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui import notes

ROOT = Path(__file__).resolve().parent.parent


def test_every_document_the_app_cites_is_on_the_notes_page():
    cited = set()
    for f in [ROOT / "app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("ui/*.py")]:
        cited |= set(re.findall(r"docs/([a-z_]+\.md)", f.read_text(encoding="utf-8")))
    shown = {file for file, _, _ in notes.DOCS.values()}
    assert cited and cited <= shown, cited - shown


def test_text_drops_html_comments_and_unknown_keys_raise(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "science.md").write_text("# T\n<!-- AUTO:x -->\n| a |\n<!-- /AUTO:x -->\n")
    assert "<!--" not in notes.text_of("science", tmp_path) and "| a |" in notes.text_of("science", tmp_path)
    for bad in ("../../etc/passwd", "science.md", "", "SCIENCE"):
        with pytest.raises(notes.NoteError):
            notes.text_of(bad, tmp_path)
    with pytest.raises(notes.NoteError, match="cannot be read"):
        notes.text_of("probes", tmp_path)  # missing file
    (tmp_path / "docs" / "probes.md").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(notes.NoteError, match="cannot be read"):
        notes.text_of("probes", tmp_path)


def test_sections_split_at_level_two_outside_code_and_join_back():
    text = "# Title\nintro\n## One\na\n```bash\n## not a heading\n```\n## Two\nb\n"
    parts = notes.sections(text)
    assert [t for t, _ in parts] == ["Title", "One", "Two"]
    assert "".join(p for _, p in parts) == text
    assert notes.headings(text) == [(1, "Title"), (2, "One"), (2, "Two")]
    assert [t for t, _ in notes.sections("no headings at all\n")] == ["Overview"]


@pytest.mark.parametrize("key", list(notes.DOCS))
def test_every_committed_document_reads_and_has_sections(key):
    text = notes.text_of(key)
    assert "<!--" not in text and len(notes.sections(text)) >= 2


def open_notes(app_env, **params) -> AppTest:
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.query_params.clear()
    at.query_params.update(params)
    at.switch_page("pages/5_Notes.py").run()
    assert not at.exception, at.exception
    return at


def test_page_opens_the_linked_document_and_refuses_a_crafted_one(app_env):
    at = open_notes(app_env, doc="replication")
    assert at.radio(key="notes_doc").value == "replication"
    body = "\n".join(m.value for m in at.markdown)
    assert "Replicating the authors' logged runs" in body and "<!--" not in body
    assert not at.warning

    at = open_notes(app_env, doc="../../etc/passwd")
    assert any("Link setting ignored" in w.value for w in at.warning)
    assert at.radio(key="notes_doc").value == "science"
    assert "The science behind the app" in "\n".join(m.value for m in at.markdown)


def test_picking_a_section_shows_only_that_section(app_env):
    at = open_notes(app_env, doc="calibration")
    parts = notes.sections(notes.text_of("calibration"))
    at.selectbox(key="notes_section_calibration").set_value(2).run()
    body = "\n".join(m.value for m in at.markdown)
    assert parts[1][1].strip() in body and parts[0][1].strip() not in body
    assert at.query_params["doc"] == ["calibration"] or at.query_params["doc"] == "calibration"


def test_the_section_is_in_the_link_and_a_bad_one_warns(app_env):
    parts = notes.sections(notes.text_of("replication"))
    at = open_notes(app_env, doc="replication", section="2")
    assert at.selectbox(key="notes_section_replication").value == 2
    body = "\n".join(m.value for m in at.markdown)
    assert parts[1][1].strip() in body and parts[0][1].strip() not in body
    at.selectbox(key="notes_section_replication").set_value(3).run()
    assert at.query_params["section"] in ("3", ["3"])
    at = open_notes(app_env, doc="replication", section="999")
    assert any("Link setting ignored: `section`" in w.value for w in at.warning)
    assert at.selectbox(key="notes_section_replication").value == 0
