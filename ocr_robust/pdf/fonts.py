"""Font faces for the synthetic corpus, and named lists of them.

Two sources. *Packaged* faces always exist: PyMuPDF's Base-14 fonts, the ``pymupdf-fonts``
package and the DejaVu and STIX faces inside matplotlib (a dependency). *System* faces are
found at run time in the font folders (``/usr/share/fonts``, TeX's OpenType folders,
``~/.fonts``, and ``OCR_ROBUST_FONT_DIRS``): every OpenType/TrueType file whose names say it
is a text face (not math, symbols, initials or small caps) and which covers the whole
``latin`` charset. ``make fonts`` installs Debian's font packages (Latin Modern, TeX Gyre,
URW base35, Liberation, Carlito/Caladea, Noto, FreeFont, Libertine, ...), which give a few
hundred faces in over a hundred families.

Held out for evaluation are whole typeface *families* (``HELDOUT_FAMILIES``: every style of
Ubuntu, PT Sans, Go Mono, ...), plus the packaged faces of ``HELDOUT``. The named lists
``train`` and ``heldout`` are disjoint; default training configs use ``train`` only.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import pymupdf

from .select import resolve_names
from .sfnt import read_sfnt

__all__ = ["FontFace", "HELDOUT", "HELDOUT_FAMILIES", "FONT_DIRS", "font_dirs", "classify", "face_from_file",
           "system_faces", "all_faces", "is_heldout", "font_lists", "resolve_fonts", "load_font", "text_width"]


@dataclass(frozen=True)
class FontFace:
    key: str  # the name users type
    source: str  # builtin name for pymupdf.Font(fontname=...), or a font file path
    family: str  # serif | sans | mono
    style: str  # regular | bold | italic | bolditalic | light
    typeface: str = ""  # the typographic family ("Liberation Serif"); held out as a whole
    width: str = "normal"  # normal | condensed

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
# System typeface families held out as a whole (every style), chosen across serif, sans,
# mono and condensed faces. Every held-out (class, style) has a training counterpart (a test
# checks): Roboto Slab, held out until 2026-12-01, trains now as the only other light serif.
# Common document faces (Latin Modern, TeX Gyre, Nimbus, Liberation, Carlito) stay in
# training: a default model must read them.
HELDOUT_FAMILIES = {
    "PT Serif", "PT Serif Caption", "PT Sans", "PT Sans Caption", "PT Sans Narrow", "PT Mono",
    "Go", "Go Medium", "Go Mono", "Gentium Plus", "Gentium Book Plus", "Cantarell", "Oxygen-Sans",
    "Oxygen Mono", "Anonymous Pro", "Anonymous Pro Minus", "Linux Biolinum O",
    # design clones together
    "TeX Gyre Schola", "C059", "TeX Gyre Adventor", "URW Gothic", "URW Bookman", "TeX Gyre Bonum",
    "Open Sans Condensed", "Inconsolata",
}
FONT_DIRS = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path("/usr/share/texmf/fonts/opentype"),
             Path("/usr/share/texlive/texmf-dist/fonts/opentype"), Path.home() / ".fonts",
             Path.home() / ".local/share/fonts"]
# not text faces: math, symbols, decorative capitals, small caps (their lower case is not lower case)
_NOT_TEXT = re.compile(r"math|symbol|music|initials|keyboard|small ?caps|\bcaps\b|emoji|icon|dingbat|integrals|"
                       r"sizes?\w*sym|nonunicode|variants|ornament|chancery|chorus|z003|script|handwrit", re.I)
_MONO = re.compile(r"mono|code|courier|consol|typewriter|cousine|hack\b|inconsolata|fixed", re.I)
_SERIF = re.compile(r"serif(?! *sans)|roman|times|tinos|caladea|garamond|libertine(?! *mono)|gentium|charis|"
                    r"didot|bookman|goudy|junicode|p052|c059|stix|slab|palatino|schola|bonum|pagella|termes|"
                    r"century|baskerville|bodoni|georgia|cambria|mincho|book", re.I)
_SANS = re.compile(r"sans|gothic|grotesk|biolinum|arimo|carlito|lato|roboto|inter|cantarell|quicksand|"
                   r"comfortaa|oxygen|\bgo\b|b612|andika|helvet|arial|adventor|heros|cursor|calibri|verdana", re.I)


def font_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("OCR_ROBUST_FONT_DIRS", "").split(os.pathsep) if p]
    return [*extra, *FONT_DIRS]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def classify(name: str, fixed_pitch: bool, serif: bool | None) -> str:
    """Serif | sans | mono, from the family name first (the font tables are often silent or
    wrong), then the PANOSE/IBM class, else sans."""
    if fixed_pitch or _MONO.search(name):
        return "mono"
    if re.search(r"slab", name, re.I):
        return "serif"
    if _SANS.search(name):
        return "sans"
    if _SERIF.search(name):
        return "serif"
    return "serif" if serif else "sans"


def face_from_file(path: Path, chars: str) -> FontFace | None:
    """A :class:`FontFace` for a text face covering ``chars``, else ``None``."""
    try:
        info = read_sfnt(path.read_bytes())
    except (OSError, ValueError):
        return None
    full = f"{info.family} {info.subfamily}"
    if _NOT_TEXT.search(full) or _NOT_TEXT.search(path.name):
        return None
    try:
        font = pymupdf.Font(fontfile=str(path))
    except Exception:  # MuPDF refuses the file
        return None
    if any(not font.has_glyph(ord(c)) for c in chars if not c.isspace()):
        return None
    bold, light = info.weight >= 600, info.weight <= 300
    style = "light" if light else ("bold" if bold else "") + ("italic" if info.italic else "")
    condensed = info.width <= 4 or bool(re.search(r"condensed|narrow|compressed", full, re.I))
    return FontFace(_slug(full.replace(info.family, info.family + " ")) or path.stem.lower(), str(path),
                    classify(info.family, info.fixed_pitch, info.serif), style or "regular", info.family,
                    "condensed" if condensed else "normal")


@lru_cache(maxsize=1)
def system_faces() -> dict[str, FontFace]:
    """Text faces found in :func:`font_dirs` that cover the ``latin`` charset, by key."""
    from ..charset import Charset

    chars = "".join(Charset.load("latin").chars)
    known = {Path(f).stem.lower() for _, f, _, _ in _SYSTEM}
    faces: dict[str, FontFace] = {}
    files = sorted({p.resolve() for d in font_dirs() if d.is_dir() for p in d.rglob("*")
                    if p.suffix.lower() in (".ttf", ".otf")})
    for path in files:
        if path.stem.lower() in known:
            continue
        face = face_from_file(path, chars)
        if face is not None and face.key not in faces:
            faces[face.key] = face
    return faces


@lru_cache(maxsize=1)
def all_faces() -> dict[str, FontFace]:
    faces = {f.key: FontFace(f.key, f.source, f.family, f.style, f.key.split("-")[0]) for f in _PACKAGED}
    for key, fname, family, style in _SYSTEM:
        for d in _SYSTEM_DIRS:
            if (d / fname).is_file():
                faces[key] = FontFace(key, str(d / fname), family, style, key.split("-")[0],
                                      "condensed" if "condensed" in key else "normal")
                break
    for key, face in system_faces().items():
        faces.setdefault(key, face)
    return faces


def is_heldout(face: FontFace) -> bool:
    return face.key in HELDOUT or face.typeface in HELDOUT_FAMILIES


def font_lists() -> dict[str, list[str]]:
    """Named lists of available face keys."""
    faces = all_faces()
    keys = list(faces)
    packaged = {f.key for f in _PACKAGED} | {k for k, *_ in _SYSTEM}
    lists = {
        "all": keys,
        "heldout": [k for k in keys if is_heldout(faces[k])],
        "train": [k for k in keys if not is_heldout(faces[k])],
        "packaged": [k for k in keys if k in packaged],
        "system": [k for k in keys if k not in packaged],
    }
    lists["heldout-packaged"] = [k for k in lists["heldout"] if k in packaged]
    lists["train-packaged"] = [k for k in lists["train"] if k in packaged]
    for family in ("serif", "sans", "mono"):
        lists[family] = [k for k in keys if faces[k].family == family]
    lists["condensed"] = [k for k in keys if faces[k].width == "condensed"]
    return lists


def resolve_fonts(spec: str | list[str] | None) -> list[str]:
    """Face keys from names and/or list names, e.g. ``"train"`` or ``"times,mono"``."""
    return resolve_names("train" if spec is None else spec, all_faces(), font_lists(), "font")


@cache
def load_font(key: str) -> pymupdf.Font:
    face = all_faces()[key]
    if face.is_file:
        return pymupdf.Font(fontfile=face.source)
    return pymupdf.Font(fontname=face.source)


@cache
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
