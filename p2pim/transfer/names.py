"""Safe local names for the paths a peer offers: the peer is not trusted to name our files.

A path on the wire is a POSIX-style relative path ("photos/2024/a.jpg"). It is made safe so:

1. It is split on "/" and also on "\\", so a Windows peer's separator cannot smuggle a name
   with a backslash in it. Empty components, "." and ".." are dropped ("../../x" -> x,
   "/etc/x" -> etc/x, "a/../../x" -> a/x): the result never leaves the download folder and
   is never absolute.
2. Each component is normalised to NFC, then loses every control character (Unicode Cc,
   including NUL and DEL), every format character (Cf: bidi overrides and isolates, LRM/RLM,
   zero-width characters, BOM), line and paragraph separators (Zl, Zp) and lone surrogates,
   then is normalised to NFC again (a removed character may have kept two others apart).
   Invisible characters must not let "evil\\u202etxt.exe" pass for "evilexe.txt".
3. Characters that are illegal or dangerous on common filesystems, <>:"|?* and any
   remaining "/" or "\\", become "_".
4. Leading and trailing whitespace and trailing dots are stripped (Windows drops trailing
   dots and spaces silently, so two different names could land on one file). A component
   that is then empty, "." or ".." is dropped. Leading "-" and "." are kept: names are never
   passed to a shell, and dot files are legitimate.
5. Windows device names (CON, PRN, AUX, NUL, COM0-COM9, LPT0-LPT9, also with superscript
   digits, CONIN$, CONOUT$), in any case and also with an extension ("nul.txt",
   "COM1.tar.gz"), get a "_" prefix.
6. Each component is cut to at most MAX_COMPONENT_BYTES bytes of UTF-8, never inside a
   character nor between a letter and its combining marks, keeping the extension if it is
   short (at most 16 bytes, no whitespace; ".tar.gz" and the like count as one).
7. At most MAX_DEPTH components are kept: the first MAX_DEPTH - 1 directories and the file
   name. If the whole path, joined with "/", is longer than MAX_PATH_BYTES bytes of UTF-8,
   directories are dropped from the middle, keeping the first one and the file name.
8. The last component is the file name. If nothing usable is left, it is FALLBACK_NAME.

Sanitising is idempotent: a sanitised path sanitises to itself.
"""

from __future__ import annotations

import re
import unicodedata

MAX_COMPONENT_BYTES = 255  # a file name on common filesystems
MAX_PATH_BYTES = 1024  # whole relative path, UTF-8
MAX_DEPTH = 32  # directory levels
FALLBACK_NAME = "unnamed"

MAX_EXTENSION_BYTES = 16  # longer "extensions" are part of the name ("Mr. Smith's notes")

_SEPARATORS = re.compile(r"[/\\]")
_FORBIDDEN = re.compile(r'[<>:"|?*/\\]')
_REMOVED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)


def sanitize_component(name: str) -> str | None:
    """One path component made safe, or None if nothing usable is left ('.', '..', empty)."""
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _REMOVED_CATEGORIES)
    name = unicodedata.normalize("NFC", name)
    name = _strip(_FORBIDDEN.sub("_", name))
    if _is_reserved(name):
        name = "_" + name
    # The cut keeps the start, so a "_" prefix survives it; stripping may then uncover a
    # device name ("CON" + 300 spaces + "x"), hence the second check.
    name = _strip(_truncate(name, MAX_COMPONENT_BYTES))
    if _is_reserved(name):
        name = _strip(_truncate("_" + name, MAX_COMPONENT_BYTES))
    # Stripping trailing dots has already turned "." and ".." into "".
    return name or None


def sanitize_path(path: str) -> tuple[str, ...]:
    """The safe components of a received relative path; always at least one component
    (FALLBACK_NAME if nothing usable is left)."""
    parts = [
        safe for part in _SEPARATORS.split(path) if (safe := sanitize_component(part)) is not None
    ]
    if not parts:
        return (FALLBACK_NAME,)
    if len(parts) > MAX_DEPTH:
        parts = [*parts[: MAX_DEPTH - 1], parts[-1]]
    # Three components of at most 255 bytes always fit, so the first and last are never dropped.
    while len(_utf8("/".join(parts))) > MAX_PATH_BYTES and len(parts) > 2:
        del parts[len(parts) // 2]
    return tuple(parts)


def numbered(name: str, n: int) -> str:
    """The n-th alternative (n >= 1) of a sanitised file name that is taken:
    'a.tar.gz' -> 'a (1).tar.gz', '.bashrc' -> '.bashrc (1)'. It is sanitised too."""
    if n < 1:
        raise ValueError(f"alternatives are numbered from 1, not {n}")
    stem, extension = _split_extension(name)
    tail = f" ({n}){extension}"
    budget = MAX_COMPONENT_BYTES - len(_utf8(tail))
    if budget < 4:  # not even one character of the name would be left
        raise ValueError(f"alternative {n} of {name!r} cannot be a short enough file name")
    return _prefix(stem, budget) + tail


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def _strip(name: str) -> str:
    name = name.lstrip()
    end = len(name)
    while end and (name[end - 1].isspace() or name[end - 1] == "."):
        end -= 1
    return name[:end]


def _is_reserved(name: str) -> bool:
    # Windows ignores the extension and trailing spaces when it looks for a device name.
    return name.split(".", 1)[0].rstrip().upper() in _RESERVED


def _split_extension(name: str) -> tuple[str, str]:
    """(stem, extension) where the extension is short enough to be worth keeping; a name
    that starts with its only dot (".bashrc") has none."""
    dot = name.rfind(".")
    extension = name[dot:]
    if (
        dot <= 0
        or len(extension) < 2
        or len(_utf8(extension)) > MAX_EXTENSION_BYTES
        or any(ch.isspace() for ch in extension)
    ):
        return name, ""
    inner = name.rfind(".", 0, dot)
    if (
        inner > 0
        and name[inner:dot].lower() == ".tar"
        and len(_utf8(name[inner:])) <= MAX_EXTENSION_BYTES
    ):
        dot = inner
    return name[:dot], name[dot:]


def _truncate(name: str, limit: int) -> str:
    if len(_utf8(name)) <= limit:
        return name
    stem, extension = _split_extension(name)
    return _prefix(stem, limit - len(_utf8(extension))) + extension


def _prefix(text: str, limit: int) -> str:
    """The longest start of text within limit bytes of UTF-8 that ends before a character
    that is not a combining mark: a letter keeps its accents, and the cut stays in NFC."""
    size = 0
    cut = 0
    for index, ch in enumerate(text):
        if not unicodedata.combining(ch):
            cut = index
        size += len(_utf8(ch))
        if size > limit:
            # A run of marks longer than the limit has no such place: cut inside it.
            return text[: cut or index]
    return text
