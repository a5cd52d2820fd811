"""Live class answers: the SQLite store (ui/classroom_store.py) and its Streamlit widgets
(ui/classroom.py) through a small harness page, plus a phone-sized browser check."""
from __future__ import annotations

import io
import multiprocessing
import sqlite3
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest

from _browser import ROOT, open_page, require_browser, screenshot_dir, streamlit_server
from ui.classroom_store import BAD_CODE, CODE_RE, MAX_QUESTIONS, ClassError, ClassStore, new_token, normalize_code

OPTIONS = ["70 (x−10: apply anchor 4, then anchor 3)", "74 (x−6: copy the answer of (3,4))"]  # as the lesson
QID = "predict-43"
HOSTILE = ["", "abc", "A" * 5000, "'; DROP TABLE classes;--", "ABCDEF' OR '1'='1", "ABCDE%", "ÄBCDEF",
           "\x00BCDEF", "ABCDEFG", "0OI1L5", "%27%3B--", "<script>alert(1)</script>"]


class Clock:
    """A settable fake time source (Unix seconds)."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    return ClassStore(tmp_path / "classes.sqlite3", ttl_s=3600, max_classes=3, max_answers=5, clock=clock)


@pytest.fixture
def lesson(store):
    """``(code, lecturer key)`` of a class with question QID open."""
    key = new_token()
    code = store.start_class(key)
    store.open_question(code, QID, OPTIONS, key)
    return code, key


def rows(store: ClassStore, table: str) -> int:
    with sqlite3.connect(store.path) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# -- store semantics ---------------------------------------------------------------------------
def test_codes_are_short_unambiguous_and_typed_loosely(store):
    code = store.start_class(new_token())
    assert CODE_RE.fullmatch(code) and not set(code) & set("0O1IL")
    assert store.join(f" {code[:3].lower()}-{code[3:].lower()} ").code == code
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_one_answer_per_browser_and_a_new_answer_replaces_it(store, lesson):
    code, _ = lesson
    me, other = new_token(), new_token()
    store.answer(code, QID, me, 0)
    store.answer(code, QID, me, 1)
    store.answer(code, QID, me, 1)
    assert store.counts(code, QID) == [0, 1] and store.my_answer(code, QID, me) == 1
    store.answer(code, QID, other, 0)
    assert store.counts(code, QID) == [1, 1] and rows(store, "answers") == 2


def test_reveal_closes_answers_and_reopening_keeps_them(store, lesson):
    code, key = lesson
    store.answer(code, QID, new_token(), 1)
    store.reveal(code, QID, key)
    assert store.question(code, QID).state == "revealed"
    with pytest.raises(ClassError, match="not open for answers any more"):
        store.answer(code, QID, new_token(), 0)
    store.open_question(code, QID, OPTIONS, key)
    assert store.counts(code, QID) == [0, 1]
    store.open_question(code, QID, ["other", "options"], key)  # another question under the same id
    assert store.counts(code, QID) == [0, 0]


def test_questions_not_opened_take_no_answers(store, lesson):
    code, _ = lesson
    assert store.question(code, "later") is None and store.counts(code, "later") == []
    with pytest.raises(ClassError, match="not open for answers yet"):
        store.answer(code, "later", new_token(), 0)


def test_only_the_lecturer_opens_reveals_and_ends(store, lesson):
    code, key = lesson
    for wrong in [new_token(), "", None, key + "x"]:
        assert not store.is_lecturer(code, wrong)
        with pytest.raises(ClassError, match="Only the lecturer"):
            store.open_question(code, "q2", OPTIONS, wrong)
        with pytest.raises(ClassError, match="Only the lecturer"):
            store.reveal(code, QID, wrong)
        with pytest.raises(ClassError, match="Only the lecturer"):
            store.end_class(code, wrong)
    assert store.is_lecturer(code, key)
    store.end_class(code, key)
    assert rows(store, "classes") == rows(store, "questions") == 0
    with pytest.raises(ClassError, match="No class has the code"):
        store.join(code)


def test_codes_expire_and_purging_deletes_their_answers(store, lesson, clock):
    code, key = lesson
    store.answer(code, QID, new_token(), 0)
    clock.now += 3599
    assert store.join(code).code == code
    clock.now += 1
    for call in [lambda: store.join(code), lambda: store.answer(code, QID, new_token(), 0),
                 lambda: store.counts(code, QID), lambda: store.open_question(code, QID, OPTIONS, key)]:
        with pytest.raises(ClassError, match=f"Class {code} has expired"):
            call()
    assert store.purge_expired() == 1
    assert rows(store, "classes") == rows(store, "questions") == rows(store, "answers") == 0
    with pytest.raises(ClassError, match="No class has the code"):
        store.join(code)


def test_alive_classes_are_bounded_and_expired_ones_make_room(store, clock):
    for _ in range(3):
        store.start_class(new_token())
    with pytest.raises(ClassError, match="3 classes are running"):
        store.start_class(new_token())
    clock.now += 3600
    store.start_class(new_token())  # the three expired ones were purged
    assert rows(store, "classes") == 1


def test_answers_per_question_are_bounded_but_answers_can_still_change(store, lesson):
    code, _ = lesson
    tokens = [new_token() for _ in range(5)]
    for t in tokens:
        store.answer(code, QID, t, 0)
    with pytest.raises(ClassError, match="already has 5 answers"):
        store.answer(code, QID, new_token(), 0)
    store.answer(code, QID, tokens[0], 1)
    assert store.counts(code, QID) == [4, 1]


def test_questions_per_class_are_bounded(store, lesson):
    code, key = lesson
    for i in range(MAX_QUESTIONS - 1):
        store.open_question(code, f"q{i}", OPTIONS, key)
    with pytest.raises(ClassError, match=f"at most {MAX_QUESTIONS} questions"):
        store.open_question(code, "one-too-many", OPTIONS, key)


@pytest.mark.parametrize("index", [-1, 2, True, "1", 1.0, None])
def test_option_index_is_validated(store, lesson, index):
    code, _ = lesson
    with pytest.raises(ClassError, match="one of the options"):
        store.answer(code, QID, new_token(), index)
    assert rows(store, "answers") == 0


@pytest.mark.parametrize("token", ["", "short", "x" * 65, "a b c d e f g h i j k", "'; DELETE FROM answers;--xx", None])
def test_browser_tokens_are_validated(store, lesson, token):
    code, _ = lesson
    with pytest.raises(ClassError, match="token is malformed"):
        store.answer(code, QID, token, 0)


@pytest.mark.parametrize("qid", ["", "x" * 65, "q'; DROP TABLE questions;--", "q 1", None])
def test_question_ids_are_validated(store, lesson, qid):
    code, key = lesson
    with pytest.raises(ClassError, match="question id"):
        store.open_question(code, qid, OPTIONS, key)


@pytest.mark.parametrize("options", [[], ["only one"], ["a"] * 11, ["", "b"], ["x" * 201, "b"], "ab", [1, 2]])
def test_options_are_validated(store, lesson, options):
    code, key = lesson
    with pytest.raises(ClassError, match="2-10 options"):
        store.open_question(code, "q2", options, key)


@pytest.mark.parametrize("raw", HOSTILE + [None, 123, ["ABCDEF"]])
def test_bad_codes_are_refused_without_touching_the_database(store, lesson, raw):
    before = [rows(store, t) for t in ("classes", "questions", "answers")]
    for call in [lambda: store.join(raw), lambda: store.answer(raw, QID, new_token(), 0),
                 lambda: store.counts(raw, QID)]:
        with pytest.raises(ClassError) as err:
            call()
        assert str(err.value) in (BAD_CODE,) or str(err.value).startswith("No class has the code")
    assert [rows(store, t) for t in ("classes", "questions", "answers")] == before


def test_sql_in_option_labels_is_stored_as_text(store):
    key = new_token()
    code = store.start_class(key)
    labels = ["'); DROP TABLE answers;--", 'Robert"); DELETE FROM classes; --']
    store.open_question(code, "q", labels, key)
    store.answer(code, "q", new_token(), 1)
    assert store.question(code, "q").options == tuple(labels) and store.counts(code, "q") == [0, 1]


@settings(max_examples=300, deadline=None)
@given(hs.text(max_size=40))
def test_any_typed_code_is_a_code_or_the_one_message(raw):
    try:
        code = normalize_code(raw)
    except ClassError as err:
        assert str(err) == BAD_CODE
    else:
        assert CODE_RE.fullmatch(code)


def test_a_corrupt_database_file_is_refused_with_sqlite_error(tmp_path):
    bad = tmp_path / "classes.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        ClassStore(bad)


# -- 50 students at once --------------------------------------------------------------------------
def _student(path: str, code: str, option: int, start: "threading.Barrier | multiprocessing.Barrier") -> None:
    s = ClassStore(path)
    token = new_token()
    start.wait()
    s.answer(code, QID, token, option)


def _student_process(path: str, code: str, option: int, start, failures) -> None:
    try:
        _student(path, code, option, start)
    except BaseException as err:  # reported to the parent: a lost answer must fail the test
        failures.put(repr(err))


def test_fifty_students_answering_at_once_in_threads_lose_no_answer(tmp_path):
    s = ClassStore(tmp_path / "c.sqlite3")
    key = new_token()
    code = s.start_class(key)
    s.open_question(code, QID, OPTIONS, key)
    start, errors = threading.Barrier(50), []

    def run(i: int) -> None:
        try:
            _student(str(s.path), code, i % 2, start)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and s.counts(code, QID) == [25, 25]


def test_fifty_students_answering_at_once_in_processes_lose_no_answer(tmp_path):
    s = ClassStore(tmp_path / "c.sqlite3")
    key = new_token()
    code = s.start_class(key)
    s.open_question(code, QID, OPTIONS, key)
    ctx = multiprocessing.get_context("fork")
    start, failures = ctx.Barrier(50), ctx.Queue()
    procs = [ctx.Process(target=_student_process, args=(str(s.path), code, int(i < 20), start, failures))
             for i in range(50)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 50
    assert failures.empty()
    assert s.counts(code, QID) == [30, 20]


# -- the widgets, through a harness page -----------------------------------------------------------
def _harness() -> None:
    import streamlit as st

    from ui import classroom

    classroom.session_panel()
    pick = classroom.question_widget("predict-43", "Key 80, pair (4,3): which answer?",
                                     ["70 (x−10: apply anchor 4, then anchor 3)", "74 (x−6: copy the answer of (3,4))"])
    st.write(f"picked: {pick}")


@pytest.fixture
def class_db(app_env, tmp_path, monkeypatch):
    """The class database the app uses (ANCHOR_CLASS_DB under tmp_path) and a store on it."""
    path = tmp_path / "class.sqlite3"
    monkeypatch.setenv("ANCHOR_CLASS_DB", str(path))
    return ClassStore(path)


def app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(_harness, default_timeout=60)
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [m.value for m in at.warning] + [m.value for m in at.info]
                     + [m.value for m in at.success] + [m.value for m in at.caption])


def test_without_a_class_the_question_is_a_plain_choice(class_db):
    at = app()
    assert at.radio[0].value is None and "picked: None" in page_text(at)
    at.radio[0].set_value(1).run()
    assert "picked: 1" in page_text(at) and not at.warning


def test_lecturer_starts_asks_watches_and_reveals(class_db):
    at = app()
    at.sidebar.button(key="_class_start").click().run()
    code, key = at.query_params["class"], at.query_params["teach"]
    assert class_db.is_lecturer(code, key)
    assert f"Class code **{code}**" in page_text(at) and len(at.sidebar.get("image")) == 1
    assert any(f"?class={code}" in c.value and "teach" not in c.value for c in at.sidebar.code)  # the students' link
    at.button(key=f"_class_open_{QID}").click().run()
    assert class_db.question(code, QID).state == "open"
    for option in (1, 1, 0):
        class_db.answer(code, QID, new_token(), option)
    at.run()
    assert "3 answers so far" in page_text(at) and "picked: None" in page_text(at)
    at.button(key=f"_class_reveal_{QID}").click().run()
    assert class_db.question(code, QID).state == "revealed"
    assert "Revealed: 3 answers" in page_text(at) and "picked: 1" in page_text(at)  # the class's most common answer


def test_lecturer_reload_keeps_control_but_a_wrong_key_does_not(class_db):
    key = new_token()
    code = class_db.start_class(key)
    at = app({"class": code, "teach": key})
    assert at.button(key=f"_class_open_{QID}").label == "Ask the class"
    at = app({"class": code, "teach": new_token()})
    assert f"not valid for class {code}" in page_text(at) and "teach" not in at.query_params
    assert f"You answer in class **{code}**" in page_text(at)


def test_student_answers_and_changes_the_answer_without_adding_one(class_db):
    key = new_token()
    code = class_db.start_class(key)
    at = app({"class": code.lower()})
    assert f"You answer in class **{code}**" in page_text(at) and "waiting for your lecturer" in page_text(at)
    token = at.query_params["t"]
    class_db.open_question(code, QID, OPTIONS, key)
    at.run()
    at.radio(key=f"_class_answer_{QID}").set_value(1).run()
    assert class_db.counts(code, QID) == [0, 1] and f"Sent: **{OPTIONS[1]}**" in page_text(at)
    at.radio(key=f"_class_answer_{QID}").set_value(0).run()
    assert class_db.counts(code, QID) == [1, 0] and "picked: None" in page_text(at)  # not before the reveal
    reloaded = app({"class": code, "t": token})  # same browser, page reloaded
    assert reloaded.radio(key=f"_class_answer_{QID}").value == 0
    class_db.reveal(code, QID, key)
    reloaded.run()
    assert f"Yours: **{OPTIONS[0]}**" in page_text(reloaded) and "picked: 0" in page_text(reloaded)
    assert class_db.counts(code, QID) == [1, 0]


def test_student_who_missed_the_question_still_picks_for_the_lesson(class_db):
    key = new_token()
    code = class_db.start_class(key)
    class_db.open_question(code, QID, OPTIONS, key)
    class_db.reveal(code, QID, key)
    at = app({"class": code})
    assert "you did not" in page_text(at)
    at.radio(key=f"_class_plain_{QID}").set_value(1).run()
    assert "picked: 1" in page_text(at) and class_db.counts(code, QID) == [0, 0]


@pytest.mark.parametrize("raw", HOSTILE[:6] + ["K7QF3M"])
def test_a_crafted_or_unknown_class_link_is_a_message_and_no_effect(class_db, raw):
    code = class_db.start_class(new_token())
    at = app({"class": raw, "t": "'; DROP TABLE answers;--"})
    assert BAD_CODE in page_text(at) or "No class has the code K7QF3M" in page_text(at)
    assert "class" not in at.query_params and "t" not in at.query_params
    assert at.radio(key=f"_class_plain_{QID}").value is None  # the lesson goes on without a class
    assert class_db.join(code).code == code and rows(class_db, "classes") == 1


def test_an_expired_class_link_says_so(class_db):
    past = ClassStore(class_db.path, clock=lambda: 0.0)  # a class started in 1970
    code = past.start_class(new_token())
    at = app({"class": code})
    assert f"Class {code} has expired" in page_text(at) and "class" not in at.query_params


def test_a_typed_code_joins_and_a_wrong_one_says_why(class_db):
    code = class_db.start_class(new_token())
    at = app()
    at.sidebar.text_input(key="_class_join_code").set_value("nope!")
    at.sidebar.button[1].click().run()
    assert BAD_CODE in page_text(at)
    at.sidebar.text_input(key="_class_join_code").set_value(code.lower())
    at.sidebar.button[1].click().run()
    assert f"You answer in class **{code}**" in page_text(at) and at.query_params["class"] == code
    assert BAD_CODE not in page_text(at)


def test_a_corrupt_database_is_one_message(class_db):
    Path(class_db.path).unlink()
    for extra in ("-wal", "-shm"):
        Path(str(class_db.path) + extra).unlink(missing_ok=True)
    Path(class_db.path).write_bytes(b"garbage" * 1000)
    import streamlit as st

    st.cache_resource.clear()
    at = app({"class": "K7QF3M"})
    assert "cannot be used" in page_text(at)
    at.sidebar.button(key="_class_start").click().run()
    assert not at.exception and "cannot be used" in page_text(at)


def test_a_page_that_asks_itself_gets_nothing_without_a_class(class_db):
    def harness() -> None:
        import streamlit as st

        from ui import classroom

        st.write(f"picked: {classroom.question_widget('q', 'Which?', ['a', 'b'], ask_without_class=False)}")

    at = AppTest.from_function(harness, default_timeout=60).run()
    assert not at.exception and not at.radio and "picked: None" in page_text(at)


def test_role_says_who_the_session_is(class_db):
    def harness() -> None:
        import streamlit as st

        from ui import classroom

        st.write(f"role: {classroom.role()}")

    key = new_token()
    code = class_db.start_class(key)
    for query, expected in [({}, "None"), ({"class": code}, "student"), ({"class": code, "teach": key}, "lecturer"),
                            ({"class": "junk"}, "None")]:
        at = AppTest.from_function(harness, default_timeout=60)
        at.query_params.update(query)
        at.run()
        assert not at.exception and f"role: {expected}" in page_text(at)


def test_axis_labels_are_short_when_the_options_allow():
    from ui.classroom import axis_labels

    assert axis_labels(OPTIONS) == ["70", "74"]
    assert axis_labels(["70 (a)", "70 (b)"]) == ["70 (a)", "70 (b)"]  # the heads would not tell them apart
    assert axis_labels(["x" * 30 + " (a)", "b"]) == ["x" * 30 + " (a)", "b"]


def test_the_qr_code_holds_the_students_link(monkeypatch):
    import zxingcpp
    from PIL import Image

    from ui import classroom

    monkeypatch.delenv("ANCHOR_PUBLIC_URL", raising=False)
    # outside a browser st.context.url is None
    assert classroom.student_link("K7QF3M") == "http://localhost:8501/?class=K7QF3M"
    monkeypatch.setenv("ANCHOR_PUBLIC_URL", "https://explainer.example.org/anchor/")
    link = classroom.student_link("K7QF3M")
    assert link == "https://explainer.example.org/anchor/?class=K7QF3M"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(classroom.qr_png(link))))
    assert [d.text for d in decoded] == [link]


# -- in a browser: the lecturer on a laptop, a student on a 390 × 844 phone -------------------------
HARNESS = """import sys
sys.path.insert(0, {root!r})
import streamlit as st
from ui import classroom
classroom.session_panel()
st.title("Predict")
pick = classroom.question_widget({qid!r}, "The model trained with small weights is asked (4,3) for key 80: "
                                 "which answer does it give?", {options!r})
st.write(f"picked: {{pick}}")
"""
LONG = 60_000  # ms: generous, the machine may be busy


def axis_texts(page) -> list[str]:
    """The histogram's texts as drawn (axis labels, titles, counts)."""
    return page.locator('[data-testid="stVegaLiteChart"] svg text').all_text_contents()


def bar_heights(page) -> list[float]:
    """Heights (px) of the histogram's bars as drawn (Vega's SVG rects)."""
    bars = page.locator('[data-testid="stVegaLiteChart"] svg .mark-rect path')
    return [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]


def test_a_class_in_a_browser_lecturer_and_phone(tmp_path):
    require_browser()
    import zxingcpp
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    db = tmp_path / "class.sqlite3"
    script = tmp_path / "class_page.py"
    script.write_text(HARNESS.format(root=str(ROOT), qid=QID, options=OPTIONS))
    shots = screenshot_dir(tmp_path)
    env = {"ANCHOR_CLASS_DB": str(db), "ANCHOR_RUNS_DIR": str(tmp_path / "runs")}
    with streamlit_server(tmp_path, env, script) as url, sync_playwright() as p:
        browser, lecturer = open_page(p, 1280, 900, LONG)
        lecturer.goto(url)
        lecturer.get_by_role("button", name="Start a class").click()
        sidebar = lecturer.locator('[data-testid="stSidebar"]')
        expect(sidebar.locator("code")).to_contain_text("?class=")
        link = sidebar.locator("code").inner_text().strip()
        code = parse_qs(urlsplit(link).query)["class"][0]
        qr = sidebar.locator("img").first
        expect(qr).to_be_visible()
        assert [d.text for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))] == [link]
        lecturer.get_by_role("button", name="Project the QR code").click()
        dialog = lecturer.get_by_role("dialog")
        expect(dialog.get_by_text(code, exact=True)).to_be_visible()
        lecturer.wait_for_timeout(1000)
        lecturer.screenshot(path=str(shots / "class_lecturer_projected_qr.png"))
        assert [d.text for d in zxingcpp.read_barcodes(Image.open(io.BytesIO(dialog.locator("img").screenshot())))] \
            == [link]
        lecturer.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
        phone.goto(link)
        expect(phone.get_by_text(f"Class {code}: waiting for your lecturer")).to_be_visible()
        expect(phone.get_by_text(f"You answer in class {code}")).to_have_count(1)  # in the closed sidebar
        phone.screenshot(path=str(shots / "class_phone_waiting.png"), full_page=True)

        lecturer.get_by_role("button", name="Ask the class").click()
        expect(lecturer.get_by_text("0 answers so far")).to_be_visible()
        phone.get_by_text(OPTIONS[1]).click()
        expect(phone.get_by_text("Sent:")).to_be_visible()
        phone.wait_for_timeout(1000)
        phone.screenshot(path=str(shots / "class_phone_answered.png"), full_page=True)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone

        expect(lecturer.get_by_text("1 answer so far")).to_be_visible()  # the live histogram polled
        lecturer.mouse.move(5, 890)  # off the chart: its hover toolbar would cover the question's end
        lecturer.wait_for_timeout(1000)
        assert len(bar_heights(lecturer)) == 2 and min(bar_heights(lecturer)) >= 12  # two readable bars
        lecturer.screenshot(path=str(shots / "class_lecturer_live.png"), full_page=True)
        lecturer.get_by_role("button", name="Reveal the class's answers", exact=True).click()
        expect(lecturer.get_by_text("Revealed: 1 answer.")).to_be_visible()
        expect(phone.get_by_text("The class answered (1 answer).")).to_be_visible()  # the phone polled
        phone.wait_for_timeout(1000)
        phone.screenshot(path=str(shots / "class_phone_revealed.png"), full_page=True)
        assert len(bar_heights(phone)) == 2 and min(bar_heights(phone)) >= 12
        assert {"70", "74"} <= set(axis_texts(phone)) and not any("…" in t for t in axis_texts(phone))  # not cut
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()
    assert ClassStore(db).counts(code, QID) == [0, 1]


def test_a_localhost_link_is_flagged_for_the_lecturer():
    """Newcomer review: a lecturer on their laptop projected a QR code of http://localhost:8599."""
    from ui import classroom
    for link in ("http://localhost:8599/?class=AB", "http://127.0.0.1:8501/?class=AB", "http://[::1]:8501/?class=A"):
        assert classroom.local_only(link), link
    for link in ("http://192.168.1.20:8501/?class=AB", "https://demo.example.org/?class=AB"):
        assert not classroom.local_only(link), link
