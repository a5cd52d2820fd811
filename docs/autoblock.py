"""Rewrite a generated block of a Markdown file, between ``<!-- AUTO:name -->`` and
``<!-- /AUTO:name -->``; the docs/*.py scripts' ``--write``/``--table`` use it, so every number in
such a block comes from a command, never from a hand edit."""
from __future__ import annotations

from pathlib import Path


def write_block(path: Path, name: str, text: str) -> None:
    """Replace the block ``name`` of the file at ``path`` with ``text`` (appended, with its
    markers, when the file has no such block yet).

    Raises OSError when the file cannot be read or written, ValueError when only one marker is there."""
    begin, end = f"<!-- AUTO:{name} -->", f"<!-- /AUTO:{name} -->"
    md = path.read_text()
    if (begin in md) != (end in md):
        raise ValueError(f"{path}: {begin} and {end} must both be there or neither")
    if begin in md:
        head, rest = md.split(begin, 1)
        md = f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}"
    else:
        md += f"\n{begin}\n{text}\n{end}\n"
    path.write_text(md)
