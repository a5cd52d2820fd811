"""Storage of live class answers: one SQLite file shared by every session and process.

A lecturer starts a **class** (a 6-character code from an unambiguous alphabet, alive for
``ttl_s`` seconds, default 24 h), **opens** prediction questions in it, students **answer**
(one answer per browser token and question: answering again replaces the answer, never adds
one) and the lecturer **reveals** the counts. Nothing personal is stored: a class holds its code,
the SHA-256 of the lecturer's secret key and its times; an answer holds the question id, a
random browser token chosen by the app and the option index.

Every limit is enforced here, whatever the caller: alive classes (``max_classes``), questions
per class (``MAX_QUESTIONS``), answers per question (``max_answers``), the formats of codes,
question ids, tokens and options, and the option index. Every refusal is a ``ClassError``
whose message is one sentence for the user; ``sqlite3.Error`` escapes only for an unreadable
database file.

Concurrency: one connection per call (safe from any thread or process), WAL journal,
``busy_timeout`` so writers wait for each other instead of failing, writes inside
``BEGIN IMMEDIATE`` (the answer cap is exact under concurrency), parameterized SQL only.
No Streamlit here: the UI is ``ui/classroom.py``.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: readable from a projector
CODE_LENGTH = 6
CODE_RE = re.compile(f"[{ALPHABET}]{{{CODE_LENGTH}}}")
QID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_RAW_CODE = 32          # characters of user input looked at before it is refused unread
MAX_QUESTIONS = 50         # per class
MAX_OPTIONS = 10           # per question
MAX_OPTION_CHARS = 200
DEFAULT_TTL_S = 24 * 3600.0
DEFAULT_MAX_CLASSES = 100
DEFAULT_MAX_ANSWERS = 500
BAD_CODE = ("This is not a class code: a code is 6 letters and digits, like K7QF3M, without 0, 1, I, L or O"
            " (they are easily misread).")


class ClassError(ValueError):
    """A refused class operation; ``str(err)`` is one sentence to show the user."""


@dataclass(frozen=True)
class ClassInfo:
    """A live class: its ``code`` and its ``created``/``expires`` times (Unix seconds)."""
    code: str
    created: float
    expires: float


@dataclass(frozen=True)
class Question:
    """A question of a class: its ``options`` (labels) and ``state`` (``"open"`` or ``"revealed"``)."""
    qid: str
    options: tuple[str, ...]
    state: str


def normalize_code(raw: object) -> str:
    """The class code in ``raw`` as stored (upper case; spaces and dashes dropped: ``"k7q f3m"``
    -> ``"K7QF3M"``). Raises ``ClassError`` (``BAD_CODE``) for anything else: not a string,
    longer than ``MAX_RAW_CODE``, other characters or length."""
    if not isinstance(raw, str) or len(raw) > MAX_RAW_CODE:
        raise ClassError(BAD_CODE)
    code = raw.strip().upper().replace(" ", "").replace("-", "")
    if not CODE_RE.fullmatch(code):
        raise ClassError(BAD_CODE)
    return code


def new_token() -> str:
    """A random browser token or lecturer key (32 URL-safe characters, 192 bits, ``secrets``)."""
    return secrets.token_urlsafe(24)


def _check_token(token: object, what: str = "browser token") -> str:
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise ClassError(f"This {what} is malformed; reload the page from the class link.")
    return token


def _check_qid(qid: object) -> str:
    if not isinstance(qid, str) or not QID_RE.fullmatch(qid):
        raise ClassError("A question id is 1-64 letters, digits, '_', '.' or '-'.")
    return qid


def _check_options(options: object) -> tuple[str, ...]:
    if (not isinstance(options, (list, tuple)) or not 2 <= len(options) <= MAX_OPTIONS
            or not all(isinstance(o, str) and 0 < len(o) <= MAX_OPTION_CHARS for o in options)):
        raise ClassError(f"A question has 2-{MAX_OPTIONS} options, each 1-{MAX_OPTION_CHARS} characters.")
    return tuple(options)


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ClassStore:
    """Classes, questions and answers in the SQLite file ``path`` (created with its folder).

    ``ttl_s``: seconds a class lives; ``max_classes``: classes alive at once; ``max_answers``:
    answers per question; ``clock``: the time source (Unix seconds; tests pass a fake one).
    Raises ``sqlite3.DatabaseError`` when ``path`` exists but is not a database.
    """

    def __init__(self, path: str | Path, ttl_s: float = DEFAULT_TTL_S, max_classes: int = DEFAULT_MAX_CLASSES,
                 max_answers: int = DEFAULT_MAX_ANSWERS, clock: Callable[[], float] = time.time,
                 busy_timeout_ms: int = 30_000):
        self.path = Path(path)
        self.ttl_s, self.max_classes, self.max_answers = float(ttl_s), int(max_classes), int(max_answers)
        self.clock, self.busy_timeout_ms = clock, int(busy_timeout_ms)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript("""
                CREATE TABLE IF NOT EXISTS classes (
                    code TEXT PRIMARY KEY, lecturer_hash TEXT NOT NULL,
                    created REAL NOT NULL, expires REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS questions (
                    code TEXT NOT NULL REFERENCES classes(code) ON DELETE CASCADE, qid TEXT NOT NULL,
                    options TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (code, qid));
                CREATE TABLE IF NOT EXISTS answers (
                    code TEXT NOT NULL, qid TEXT NOT NULL, token TEXT NOT NULL, option INTEGER NOT NULL,
                    at REAL NOT NULL, PRIMARY KEY (code, qid, token),
                    FOREIGN KEY (code, qid) REFERENCES questions(code, qid) ON DELETE CASCADE);
            """)

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms:d}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` (the write lock taken up front), committed on
        success and rolled back on any exception."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _live(self, db: sqlite3.Connection, code: str) -> ClassInfo:
        row = db.execute("SELECT code, created, expires FROM classes WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise ClassError(f"No class has the code {code}: check it with your lecturer "
                             f"(codes last {self.ttl_s / 3600:g} h).")
        if row[2] <= self.clock():
            raise ClassError(f"Class {code} has expired (codes last {self.ttl_s / 3600:g} h); "
                             "ask your lecturer for a new one.")
        return ClassInfo(*row)

    def _lecturer(self, db: sqlite3.Connection, code: str, lecturer_key: object) -> ClassInfo:
        info = self._live(db, code)
        (stored,) = db.execute("SELECT lecturer_hash FROM classes WHERE code = ?", (code,)).fetchone()
        if not isinstance(lecturer_key, str) or not secrets.compare_digest(stored, _key_hash(lecturer_key)):
            raise ClassError(f"Only the lecturer who started class {code} can do this.")
        return info

    def _question(self, db: sqlite3.Connection, code: str, qid: str) -> Question | None:
        row = db.execute("SELECT options, state FROM questions WHERE code = ? AND qid = ?", (code, qid)).fetchone()
        return None if row is None else Question(qid, tuple(json.loads(row[0])), row[1])

    # -- classes ----------------------------------------------------------------------------
    def start_class(self, lecturer_key: str) -> str:
        """Start a class owned by whoever holds ``lecturer_key`` (a ``new_token()``; only its
        SHA-256 is stored) and return its code. Purges expired classes first. Raises
        ``ClassError`` when ``max_classes`` classes are alive or the key is malformed."""
        _check_token(lecturer_key, "lecturer key")
        now = self.clock()
        self.purge_expired(now)
        with self._write() as db:
            (alive,) = db.execute("SELECT COUNT(*) FROM classes WHERE expires > ?", (now,)).fetchone()
            if alive >= self.max_classes:
                raise ClassError(f"{alive} classes are running, the most this server allows; "
                                 "try again later or end an old class.")
            for _ in range(20):
                code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
                cur = db.execute("INSERT OR IGNORE INTO classes VALUES (?, ?, ?, ?)",
                                 (code, _key_hash(lecturer_key), now, now + self.ttl_s))
                if cur.rowcount == 1:
                    return code
        raise ClassError("No free class code was found; try again.")  # 31^6 codes: not expected

    def join(self, code: object) -> ClassInfo:
        """The live class with this code (user input: normalized by ``normalize_code``). Raises
        ``ClassError`` for a malformed, unknown or expired code."""
        code = normalize_code(code)
        with self._connect() as db:
            return self._live(db, code)

    def is_lecturer(self, code: object, lecturer_key: object) -> bool:
        """Whether ``lecturer_key`` is the key class ``code`` was started with (False for any bad
        input, unknown or expired class)."""
        try:
            code = normalize_code(code)
            with self._connect() as db:
                self._lecturer(db, code, lecturer_key)
        except ClassError:
            return False
        return True

    def end_class(self, code: str, lecturer_key: str) -> None:
        """Delete the class, its questions and answers (lecturer only; ``ClassError`` otherwise)."""
        code = normalize_code(code)
        with self._write() as db:
            self._lecturer(db, code, lecturer_key)
            db.execute("DELETE FROM classes WHERE code = ?", (code,))

    def purge_expired(self, now: float | None = None) -> int:
        """Delete every class (with its questions and answers) expired at ``now`` (Unix seconds,
        default the clock); return how many classes were deleted."""
        now = self.clock() if now is None else now
        with self._write() as db:
            return db.execute("DELETE FROM classes WHERE expires <= ?", (now,)).rowcount

    # -- questions --------------------------------------------------------------------------
    def open_question(self, code: str, qid: str, options: list[str] | tuple[str, ...], lecturer_key: str) -> None:
        """Open question ``qid`` with these option labels for answers (lecturer only). Opening a
        revealed question again keeps its answers; opening it with different options deletes
        them (they answered another question). Raises ``ClassError`` for bad input, a foreign
        key, or more than ``MAX_QUESTIONS`` questions."""
        code, qid, options = normalize_code(code), _check_qid(qid), _check_options(options)
        with self._write() as db:
            self._lecturer(db, code, lecturer_key)
            old = self._question(db, code, qid)
            if old is None:
                (n,) = db.execute("SELECT COUNT(*) FROM questions WHERE code = ?", (code,)).fetchone()
                if n >= MAX_QUESTIONS:
                    raise ClassError(f"A class holds at most {MAX_QUESTIONS} questions; start a new class.")
            elif old.options != options:
                db.execute("DELETE FROM answers WHERE code = ? AND qid = ?", (code, qid))
            db.execute("INSERT INTO questions VALUES (?, ?, ?, 'open') ON CONFLICT(code, qid) "
                       "DO UPDATE SET options = excluded.options, state = 'open'", (code, qid, json.dumps(options)))

    def reveal(self, code: str, qid: str, lecturer_key: str) -> None:
        """Close question ``qid`` to answers and let students see the counts (lecturer only)."""
        code, qid = normalize_code(code), _check_qid(qid)
        with self._write() as db:
            self._lecturer(db, code, lecturer_key)
            if db.execute("UPDATE questions SET state = 'revealed' WHERE code = ? AND qid = ?",
                          (code, qid)).rowcount == 0:
                raise ClassError("This question was not asked in this class yet.")

    def question(self, code: str, qid: str) -> Question | None:
        """Question ``qid`` of the live class ``code``, or None when not opened yet. Raises
        ``ClassError`` for a bad, unknown or expired code or a bad question id."""
        code, qid = normalize_code(code), _check_qid(qid)
        with self._connect() as db:
            self._live(db, code)
            return self._question(db, code, qid)

    # -- answers ----------------------------------------------------------------------------
    def answer(self, code: str, qid: str, token: str, option_index: int) -> None:
        """Record browser ``token``'s answer ``option_index`` (0-based) to the open question
        ``qid``, replacing its earlier answer (``INSERT ... ON CONFLICT DO UPDATE``). Raises
        ``ClassError`` for a bad code/token/index, a question not open, or a question already
        holding ``max_answers`` answers from other tokens."""
        code, qid, token = normalize_code(code), _check_qid(qid), _check_token(token)
        if isinstance(option_index, bool) or not isinstance(option_index, int):
            raise ClassError("The answer must be one of the options.")
        with self._write() as db:
            self._live(db, code)
            q = self._question(db, code, qid)
            if q is None or q.state != "open":
                raise ClassError("This question is not open for answers"
                                 + (" any more." if q is not None else " yet."))
            if not 0 <= option_index < len(q.options):
                raise ClassError("The answer must be one of the options.")
            (n,) = db.execute("SELECT COUNT(*) FROM answers WHERE code = ? AND qid = ? AND token != ?",
                              (code, qid, token)).fetchone()
            if n >= self.max_answers:
                raise ClassError(f"This question already has {n} answers, the most it takes.")
            db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?) ON CONFLICT(code, qid, token) "
                       "DO UPDATE SET option = excluded.option, at = excluded.at",
                       (code, qid, token, option_index, self.clock()))

    def my_answer(self, code: str, qid: str, token: str) -> int | None:
        """The option index browser ``token`` answered to ``qid``, or None."""
        code, qid, token = normalize_code(code), _check_qid(qid), _check_token(token)
        with self._connect() as db:
            row = db.execute("SELECT option FROM answers WHERE code = ? AND qid = ? AND token = ?",
                             (code, qid, token)).fetchone()
        return None if row is None else int(row[0])

    def counts(self, code: str, qid: str) -> list[int]:
        """Answers per option of question ``qid`` (one int per option; ``[]`` when the question
        was not opened). Raises ``ClassError`` for a bad, unknown or expired code."""
        code, qid = normalize_code(code), _check_qid(qid)
        with self._connect() as db:
            self._live(db, code)
            q = self._question(db, code, qid)
            if q is None:
                return []
            out = [0] * len(q.options)
            for option, n in db.execute("SELECT option, COUNT(*) FROM answers WHERE code = ? AND qid = ? "
                                        "GROUP BY option", (code, qid)):
                if 0 <= option < len(out):
                    out[option] = n
            return out
