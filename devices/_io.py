"""File output: atomic writes (a temporary file beside the target, then a rename) and the TOML
writer of device profiles."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path in ``path``'s folder (created if needed); on success it becomes
    ``path`` (mode 0644 less the umask), on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


#: TOML basic-string escapes with a short form; every other control character is written \\uXXXX
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_MUST_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_COMMENT_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a comment may hold tabs, nothing else


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quote, backslash and the control characters U+0000-U+001F
    and U+007F escaped (``\\n``-style where TOML has a short form, else ``\\uXXXX``)."""
    return '"' + _MUST_ESCAPE.sub(lambda m: _SHORT_ESCAPES.get(m[0], f"\\u{ord(m[0]):04X}"), text) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else toml_string(key)


def _toml_value(v) -> str:
    """A bool, string, number (written as a float: ``nan``, ``inf``, ``-inf`` included) or list."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(float(v))  # TOML floats, including nan, inf and -inf


def to_toml(doc: dict, comments: dict[str, str] | None = None) -> str:
    """Serialise a profile dict: scalars and lists at the top, tables of those (``{key: dict}``),
    and the array of tables ``memory`` (a list of dicts, each with a ``name``).

    Numbers are written as floats (a profile's numbers are). ``comments`` maps dotted keys
    (``peak.fp32``, ``memory.l2.energy_pj_per_byte``: the level's name) to trailing comments."""
    comments = comments or {}

    def line(key: str, v, dotted: str) -> str:
        note = comments.get(dotted)
        tail = f"  # {_COMMENT_CONTROL.sub(' ', note)}" if note else ""
        return f"{_toml_key(key)} = {_toml_value(v)}{tail}"

    out = [line(k, v, k) for k, v in doc.items() if not isinstance(v, dict) and k != "memory"]
    for k, v in doc.items():
        if isinstance(v, dict):
            out += ["", f"[{_toml_key(k)}]"] + [line(kk, vv, f"{k}.{kk}") for kk, vv in v.items()]
    for lv in doc.get("memory", []):
        out += ["", "[[memory]]"] + [line(kk, vv, f"memory.{lv['name']}.{kk}") for kk, vv in lv.items()]
    return "\n".join(out) + "\n"


def write_toml(path: str | os.PathLike, doc: dict, comments: dict[str, str] | None = None,
               header: str = "") -> Path:
    """Write `to_toml` of ``doc`` to ``path`` atomically (UTF-8), after ``header``: comment lines
    (each line of it prefixed with ``# ``). Returns the path."""
    head = "".join(f"# {_COMMENT_CONTROL.sub(' ', ln)}\n" for ln in header.splitlines())
    with atomic_path(path, ".toml") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(head + to_toml(doc, comments))
    return Path(path)
