"""Shared by the benchmarks' ``--only-costs`` options: rewrite the device-cost part of a stored report
with the current ``devices`` cost model and leave every measured figure (accuracies, timings, dates)
as the full run wrote it.

A refreshed section carries one dated note (:func:`note`); a later refresh replaces it and keeps the
date of the measured figures it names.
"""
from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path

#: What the last cost-model change did (devices/: GPU GEMV products untiled, fastconv efficiency; c9d2248).
CHANGE = ("GPU matrix-vector products run as GEMV kernels (no tile quantization), FFT-eligible "
          "convolutions at their own efficiency")
#: ``also`` for reports whose device figures came from before the ONNX / published-measurements merge.
BEFORE_2FE4750 = " (the replaced figures also predated the cost-model changes merged in 2fe4750)"
_NOTE = re.compile(r"^Device costs recomputed on \d{4}-\d\d-\d\d .*?the other figures are from (.+?)\.$",
                   re.M)


def measured_on(report: Path) -> str:
    """The date of the report's measured figures: the one an earlier note names, else the date of the
    report's last commit (``git log``), else "an earlier run"."""
    found = _NOTE.search(report.read_text()) if report.is_file() else None
    if found:
        return found.group(1)
    try:
        day = subprocess.run(["git", "log", "-1", "--format=%cs", "--", report.name], cwd=report.parent,
                             capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        day = ""
    return day or "an earlier run"


def note(command: str, since: str, also: str = "") -> str:
    """The one-line note under a refreshed section: today's date, the command, what changed (``also``:
    a clause on other changes the replaced figures predated), the date of the rest."""
    return (f"Device costs recomputed on {datetime.date.today().isoformat()} (`{command}`) after the "
            f"cost-model change: {CHANGE}{also}; the other figures are from {since}.")


def strip_notes(text: str) -> str:
    """``text`` without the notes an earlier refresh put under its tables (each after a blank line)."""
    return re.sub(r"\n\nDevice costs recomputed on \d{4}-\d\d-\d\d [^\n]*", "", text)


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with the section that starts at the line ``heading`` (up to the next heading of the same
    or a higher level, or the end) replaced by ``section``."""
    start = text.index(heading + "\n")
    level = len(heading) - len(heading.lstrip("#"))
    ends = [m.start() + 1 for m in re.finditer(r"\n#{1,%d} " % level, text[start + len(heading):])]
    end = start + len(heading) + ends[0] if ends else len(text)
    tail = text[end:]
    return text[:start] + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
