"""Font faces for the synthetic corpus, and named lists of them.

Faces come from packages only: PyMuPDF's Base-14 fonts, the ``pymupdf-fonts`` package,
the DejaVu and STIX faces that ship inside matplotlib (a dependency) and, when installed,
Debian's DejaVu package (it adds the condensed and extra-light DejaVu faces). Every face
listed here covers the whole ``latin`` charset (checked by a test). The named lists let a
benchmark hold faces out of training: ``train`` and ``heldout`` are disjoint and default
training configs use ``train`` only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pymupdf

from .select import resolve_names


@dataclass(frozen=True)
class FontFace:
    key: str  # the name users type
    source: str  # builtin name for pymupdf.Font(fontname=...), or a font file path
    family: str  # serif | sans | mono
    style: str  # regular | bold | italic | bolditalic | light

    @property
    def is_file(self) -> bool:
        return "/" in self.source


_PACKAGED = [
    FontFace("helvetica", "helv", "sans", "regular"),
    FontFace("helvetica-oblique", "heit", "sans", "italic"),
    FontFace("helvetica-bold", "hebo", "sans", "bold"),
    FontFace("times", "tiro", "serif", "regular"),
    FontFace("times-italic", "tiit", "serif", "italic"),
    FontFace("times-bold", "tibo", "serif", "bold"),
    FontFace("courier", "cour", "mono", "regular"),
    FontFace("courier-oblique", "coit", "mono", "italic"),
    FontFace("courier-bold", "cobo", "mono", "bold"),
    FontFace("firago", "figo", "sans", "regular"),
    FontFace("firago-bold", "figbo", "sans", "bold"),
    FontFace("firago-italic", "figit", "sans", "italic"),
    FontFace("firamono", "fimo", "mono", "regular"),
    FontFace("firamono-bold", "fimbo", "mono", "bold"),
    FontFace("notosans", "notos", "sans", "regular"),
    FontFace("notosans-bold", "notosbo", "sans", "bold"),
    FontFace("notosans-italic", "notosit", "sans", "italic"),
    FontFace("spacemono", "spacemo", "mono", "regular"),
    FontFace("spacemono-bold", "spacembo", "mono", "bold"),
    FontFace("ubuntu", "ubuntu", "sans", "regular"),
    FontFace("ubuntu-bold", "ubuntubo", "sans", "bold"),
    FontFace("ubuntu-italic", "ubuntuit", "sans", "italic"),
    FontFace("ubuntumono", "ubuntm", "mono", "regular"),
    FontFace("cascadia", "cascadia", "mono", "regular"),
    FontFace("cascadia-bold", "cascadiab", "mono", "bold"),
    FontFace("cascadia-italic", "cascadiai", "mono", "italic"),
    FontFace("helvetica-boldoblique", "hebi", "sans", "bolditalic"),
    FontFace("firago-bolditalic", "figbi", "sans", "bolditalic"),
    FontFace("notosans-bolditalic", "notosbi", "sans", "bolditalic"),
    FontFace("cascadia-bolditalic", "cascadiabi", "mono", "bolditalic"),
]

def _matplotlib_fonts() -> list[Path]:
    spec = importlib.util.find_spec("matplotlib")  # located, not imported: importing it is slow
    if spec is None or not spec.origin:
        return []
    return [Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"]


_SYSTEM_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), *_matplotlib_fonts()]
_SYSTEM = [
    ("dejavusans", "DejaVuSans.ttf", "sans", "regular"),
    ("dejavusans-bold", "DejaVuSans-Bold.ttf", "sans", "bold"),
    ("dejavuserif", "DejaVuSerif.ttf", "serif", "regular"),
    ("dejavuserif-italic", "DejaVuSerif-Italic.ttf", "serif", "italic"),
    ("dejavusansmono", "DejaVuSansMono.ttf", "mono", "regular"),
    ("dejavusans-condensed", "DejaVuSansCondensed.ttf", "sans", "regular"),
    ("dejavusans-oblique", "DejaVuSans-Oblique.ttf", "sans", "italic"),
    ("dejavusans-boldoblique", "DejaVuSans-BoldOblique.ttf", "sans", "bolditalic"),
    ("dejavusans-extralight", "DejaVuSans-ExtraLight.ttf", "sans", "light"),
    ("dejavusans-condensed-bold", "DejaVuSansCondensed-Bold.ttf", "sans", "bold"),
    ("dejavusans-condensed-oblique", "DejaVuSansCondensed-Oblique.ttf", "sans", "italic"),
    # STIX General (matplotlib's copy): a Times-style serif with all four styles. Before it the
    # training faces had no serif italic at all, and held-out serif-italic pages were the
    # worst-read pages of the watermark test set (times-italic "return" read as "retum").
    ("stix", "STIXGeneral.ttf", "serif", "regular"),
    ("stix-bold", "STIXGeneralBol.ttf", "serif", "bold"),
    ("stix-italic", "STIXGeneralItalic.ttf", "serif", "italic"),
    ("stix-bolditalic", "STIXGeneralBolIta.ttf", "serif", "bolditalic"),
]

# Held out of every default training config: whole families the trainer never sees
# (Ubuntu, Space Mono) plus an italic serif and a bold mono of otherwise-seen families.
HELDOUT = [
    "ubuntu", "ubuntu-bold", "ubuntu-italic", "ubuntumono",
    "spacemono", "spacemono-bold", "times-italic", "courier-bold",
    "dejavuserif", "dejavuserif-italic", "dejavusansmono",
]


@lru_cache(maxsize=1)
def all_faces() -> dict[str, FontFace]:
    faces = {f.key: f for f in _PACKAGED}
    for key, fname, family, style in _SYSTEM:
        for d in _SYSTEM_DIRS:
            if (d / fname).is_file():
                faces[key] = FontFace(key, str(d / fname), family, style)
                break
    return faces


def font_lists() -> dict[str, list[str]]:
    """Named lists of available face keys."""
    faces = all_faces()
    keys = list(faces)
    lists = {
        "all": keys,
        "heldout": [k for k in keys if k in HELDOUT],
        "train": [k for k in keys if k not in HELDOUT],
        "packaged": [f.key for f in _PACKAGED],
    }
    for family in ("serif", "sans", "mono"):
        lists[family] = [k for k in keys if faces[k].family == family]
    return lists


def resolve_fonts(spec: str | list[str] | None) -> list[str]:
    """Face keys from names and/or list names, e.g. ``"train"`` or ``"times,mono"``."""
    return resolve_names("train" if spec is None else spec, all_faces(), font_lists(), "font")


@lru_cache(maxsize=None)
def load_font(key: str) -> pymupdf.Font:
    face = all_faces()[key]
    if face.is_file:
        return pymupdf.Font(fontfile=face.source)
    return pymupdf.Font(fontname=face.source)


@lru_cache(maxsize=None)
def _advances(key: str) -> dict[str, float]:
    return {}


def text_width(key: str, text: str, size: float) -> float:
    """Advance width of ``text`` in points (cached per glyph; PyMuPDF's per-call
    ``Font.text_length`` is slow for the many measurements layout makes)."""
    adv = _advances(key)
    total = 0.0
    for c in text:
        a = adv.get(c)
        if a is None:
            a = adv[c] = load_font(key).text_length(c, fontsize=1.0)
        total += a
    return total * size
