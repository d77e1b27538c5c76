"""Reading the few facts of an OpenType/TrueType file that font discovery needs (family and
style names, weight, width, serif or sans, fixed pitch) from its ``name``, ``OS/2`` and
``post`` tables, without a font library."""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["SfntInfo", "read_sfnt"]


@dataclass(frozen=True)
class SfntInfo:
    family: str  # typographic family ("Latin Modern Roman", "Liberation Sans")
    subfamily: str  # style name ("Bold Italic", "Condensed Light")
    weight: int  # OS/2 usWeightClass, 100..900
    width: int  # OS/2 usWidthClass, 1..9 (5 normal, below condensed)
    italic: bool
    fixed_pitch: bool
    serif: bool | None  # from PANOSE or the IBM font class; None when the file does not say


def _tables(data: bytes) -> dict[str, tuple[int, int]]:
    if data[:4] not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
        raise ValueError("not an OpenType/TrueType font")
    n = struct.unpack_from(">H", data, 4)[0]
    out = {}
    for i in range(n):
        tag, _, off, length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if off + length > len(data):
            raise ValueError(f"table {tag!r} runs past the end of the file")
        out[tag.decode("latin-1")] = (off, length)
    return out


def _names(data: bytes, off: int) -> dict[int, str]:
    _, count, strings = struct.unpack_from(">HHH", data, off)
    found: dict[int, tuple[int, str]] = {}
    for i in range(count):
        pid, eid, lang, nid, length, soff = struct.unpack_from(">HHHHHH", data, off + 6 + 12 * i)
        raw = data[off + strings + soff: off + strings + soff + length]
        if pid == 3 and eid in (0, 1, 10) and lang == 0x409:  # Windows Unicode, US English: preferred
            rank, text = 0, raw.decode("utf-16-be", "replace")
        elif pid == 1 and eid == 0 and lang == 0:  # Macintosh Roman
            rank, text = 1, raw.decode("mac-roman", "replace")
        elif pid in (0, 3):
            rank, text = 2, raw.decode("utf-16-be", "replace")
        else:
            continue
        if nid not in found or rank < found[nid][0]:
            found[nid] = (rank, text.strip())
    return {k: v for k, (_, v) in found.items()}


def read_sfnt(data: bytes) -> SfntInfo:
    """The facts above from a font file's bytes; ``ValueError`` for anything else."""
    try:
        t = _tables(data)
        names = _names(data, t["name"][0]) if "name" in t else {}
        family = names.get(16) or names.get(1) or ""
        sub = names.get(17) or names.get(2) or ""
        weight, width, italic, serif = 400, 5, "italic" in sub.lower() or "oblique" in sub.lower(), None
        if "OS/2" in t:
            off = t["OS/2"][0]
            weight, width = struct.unpack_from(">HH", data, off + 4)
            fam_class = struct.unpack_from(">h", data, off + 30)[0] >> 8
            panose = data[off + 32: off + 42]
            fs_sel = struct.unpack_from(">H", data, off + 62)[0]
            italic = italic or bool(fs_sel & 0x201)  # ITALIC or OBLIQUE
            if panose[0] == 2 and panose[1] >= 2:  # Latin text: its serif style
                serif = panose[1] not in (11, 12, 13)  # normal, obtuse, perpendicular sans
            elif 1 <= fam_class <= 7:
                serif = True
            elif fam_class == 8:
                serif = False
        fixed = False
        if "post" in t:
            fixed = struct.unpack_from(">I", data, t["post"][0] + 12)[0] != 0
    except (struct.error, KeyError, IndexError) as e:
        raise ValueError(f"malformed font tables ({e})") from None
    if not family:
        raise ValueError("the font names no family")
    return SfntInfo(family, sub, int(weight), int(width), italic, fixed, serif)
