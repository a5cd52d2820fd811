"""docs/walkdown.py's table reads the runs on disk (issue 10, item 4), and docs/autoblock.py
rewrites only its own block of a Markdown file."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))

import autoblock  # noqa: E402
import walkdown  # noqa: E402


def test_gamma_prime_matches_the_two_translations():
    # same std: 400^-0.8 = 64^-γ'; same forward scale: 400^(0.5-0.8) = 64^(0.5-γ')
    assert 64 ** -walkdown.gamma_prime(0.8, 64, "std") == pytest.approx(400 ** -0.8, rel=1e-2)
    assert 64 ** (0.5 - walkdown.gamma_prime(0.8, 64, "scale")) == pytest.approx(400 ** -0.3, rel=1e-2)
    assert walkdown.gamma_prime(0.5, 64, "scale") == 0.5


def test_table_has_a_row_per_run_found_with_its_peak_and_verdict(tmp_path, make_run):
    pts = walkdown.points(widths=(64,))
    assert len(pts) == 4
    make_run(tmp_path, pts[0]["name"], inferential=0.95, symmetric=0.0, seen=0.99)
    make_run(tmp_path, pts[3]["name"], inferential=0.0, symmetric=0.98, seen=0.99)
    text = walkdown.table(pts, tmp_path)
    rows = [r for r in text.splitlines()[2:]]
    assert len(rows) == 2, text  # the two runs not on disk are left out
    assert "| 64 | 0.5 | std | 0.72 | 1 | fp32 |" in rows[0] and "inferential |" in rows[0]
    assert "0.95 (epoch 2)" in rows[0] and "x−10 95 %" in rows[0]
    assert "| 64 | 0.8 | scale | 0.932 | 1 |" in rows[1] and "symmetric |" in rows[1]


def test_bf16_points_have_their_own_folders_and_command(tmp_path, make_run):
    fp32, bf16 = walkdown.points((256,)), walkdown.points((256,), precision="bf16")
    assert [p["gamma"] for p in fp32] == [p["gamma"] for p in bf16]
    assert bf16[0]["name"] == "w256_bf16_std_p0.5_g0.54_s1" and fp32[0]["name"] == "w256_std_p0.5_g0.54_s1"
    assert "train.precision=bf16" in walkdown.command(bf16[0]) and "train.precision=fp32" in walkdown.command(fp32[0])
    make_run(tmp_path, bf16[1]["name"], inferential=0.2, symmetric=0.7, seen=0.97)
    row = walkdown.table(fp32 + bf16, tmp_path).splitlines()[2]
    assert row.startswith("| 256 | 0.5 | scale | 0.5 | 1 | bf16 |")


def test_write_block_replaces_only_its_block(tmp_path):
    md = tmp_path / "a.md"
    md.write_text("intro\n<!-- AUTO:t -->\nold\n<!-- /AUTO:t -->\nafter\n")
    autoblock.write_block(md, "t", "new")
    assert md.read_text() == "intro\n<!-- AUTO:t -->\nnew\n<!-- /AUTO:t -->\nafter\n"
    autoblock.write_block(md, "u", "more")  # no block yet: appended
    assert md.read_text().endswith("<!-- AUTO:u -->\nmore\n<!-- /AUTO:u -->\n")
    md.write_text("<!-- AUTO:t -->\nhalf")
    with pytest.raises(ValueError):
        autoblock.write_block(md, "t", "x")
