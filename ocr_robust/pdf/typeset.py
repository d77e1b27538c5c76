"""Pages typeset by real engines: LaTeX (pdflatex), LibreOffice (headless, ODT to PDF) and
HTML to PDF (WeasyPrint). Our own ``synth`` draws glyph by glyph; these engines justify
paragraphs, hyphenate, kern, form ligatures, and lay out tables, code listings, headings
and footnotes as real documents do. The labels still come from the PDF's text layer through
``ingest``, so they stay exact.

``plan_document`` draws a document (headings, paragraphs, a table, a code listing, a
numbered list, a footnote) from an RNG with the corpus's content generators; ``to_latex``,
``to_odt`` and ``to_html`` write it for one engine and one typeface; ``typeset`` runs the
engine in a temporary folder with a deadline. The engines are Debian packages (``make
engines``: texlive-latex-recommended, libreoffice-writer-nogui, weasyprint);
``available_engines`` says which are installed. Each engine's faces are split into
training and held-out typefaces like the synthetic corpus's (``HELDOUT_FAMILIES``).
"""

from __future__ import annotations

import html
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import content as C
from .fonts import HELDOUT_FAMILIES, all_faces

__all__ = ["ENGINES", "TIMEOUT_S", "LATEX_FONTS", "Block", "plan_document", "engine_fonts", "tex_escape", "to_latex",
           "to_html", "to_odt", "available_engines", "typeset", "typeset_corpus"]

ENGINES = ("latex", "office", "html")
TIMEOUT_S = 120  # one engine call; a document that takes longer is reported and skipped

# pdflatex font setups: (name, typeface it shows, preamble). T1 + Latin Modern underneath, so
# every symbol of the charset has a Type 1 glyph (TS1 falls back to Latin Modern's).
LATEX_FONTS = [
    ("lmodern", "Latin Modern Roman", ""),
    ("times", "Nimbus Roman", r"\usepackage{mathptmx}"),
    ("helvetica", "Nimbus Sans", r"\usepackage[scaled=0.92]{helvet}\renewcommand{\familydefault}{\sfdefault}"),
    ("palatino", "P052", r"\usepackage{mathpazo}"),
    ("charter", "Charter", r"\usepackage{charter}"),
    ("utopia", "Utopia", r"\usepackage{utopia}"),
    ("lmsans", "Latin Modern Sans", r"\renewcommand{\familydefault}{\sfdefault}"),
    ("bookman", "URW Bookman", r"\usepackage{bookman}"),
    ("newcent", "C059", r"\usepackage{newcent}"),
    ("avant", "URW Gothic", r"\usepackage{avant}\renewcommand{\familydefault}{\sfdefault}"),
]


@dataclass
class Block:
    kind: str  # heading | para | table | code | list
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    footnote: str = ""


def plan_document(rng: random.Random, blocks: int = 14) -> list[Block]:
    """A document of about ``blocks`` blocks: prose with a heading every few paragraphs, and
    a table, a code listing and a numbered list among them."""
    out = [Block("heading", C.sentence(rng, 2, 6).rstrip(".?!;:"))]
    for k in range(blocks):
        r = rng.random()
        if k and r < 0.15:
            out.append(Block("heading", C.sentence(rng, 2, 5).rstrip(".?!;:")))
        elif r < 0.25:
            head = rng.choice([["Test", "Result", "Unit", "Reference range", "Flag"], None])
            rows = [C.lab_row(rng) for _ in range(rng.randint(3, 8))]
            out.append(Block("table", rows=([head] if head else []) + rows))
        elif r < 0.33:
            out.append(Block("code", rows=[[C.code_line(rng)] for _ in range(rng.randint(3, 8))]))
        elif r < 0.4:
            out.append(Block("list", rows=[[C.sentence(rng, 4, 14)] for _ in range(rng.randint(2, 5))]))
        else:
            note = C.sentence(rng, 5, 14) if rng.random() < 0.15 else ""
            out.append(Block("para", C.paragraph(rng), footnote=note))
    return out


def engine_fonts(engine: str, heldout: bool = False) -> list[str]:
    """The typefaces ``engine`` can set: LaTeX's font packages, or the system faces' families
    (LibreOffice and WeasyPrint find them through fontconfig); training or held-out ones."""
    if engine == "latex":
        names = [n for n, fam, _ in LATEX_FONTS]
        fam = {n: f for n, f, _ in LATEX_FONTS}
        return [n for n in names if (fam[n] in HELDOUT_FAMILIES) == heldout]
    if engine not in ENGINES:
        raise ValueError(f"unknown typesetting engine {engine!r}; choose from {', '.join(ENGINES)}")
    fams = sorted({f.typeface for f in all_faces().values() if f.source.startswith("/usr/share/fonts")})
    return [f for f in fams if (f in HELDOUT_FAMILIES) == heldout]


# --- LaTeX --------------------------------------------------------------------------------

_TEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
        "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "|": r"\textbar{}", "µ": r"\textmu{}", "°": r"\textdegree{}", "±": r"\textpm{}", "×": r"\texttimes{}",
        "·": r"\textperiodcentered{}", "€": r"\texteuro{}", "£": r"\pounds{}", "¥": r"\textyen{}", "§": r"\S{}",
        "©": r"\textcopyright{}", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''",
        '"': r"\textquotedbl{}",
        "-": "-{}", "'": r"\textquotesingle{}", "`": r"\textasciigrave{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in text)


def to_latex(blocks: list[Block], font: str, size: int = 10, rng: random.Random | None = None) -> str:
    rng = rng or random.Random(0)
    pre = {n: p for n, _, p in LATEX_FONTS}[font]
    cls = rng.choice(["article", "article", "report"])
    geometry = rng.choice(["a4paper,margin=2.5cm", "letterpaper,margin=1in", "a4paper,margin=3cm"])
    body = []
    for b in blocks:
        if b.kind == "heading":
            body.append(rf"\section*{{{tex_escape(b.text)}}}")
        elif b.kind == "para":
            note = rf"\footnote{{{tex_escape(b.footnote)}}}" if b.footnote else ""
            body.append(tex_escape(b.text) + note + "\n")
        elif b.kind == "table":
            ncol = max(len(r) for r in b.rows)
            rows = [" & ".join(tex_escape(c) for c in r + [""] * (ncol - len(r))) + r" \\" for r in b.rows]
            body.append(r"\begin{center}\begin{tabular}{" + "l" * ncol + "}\n" + "\n".join(rows)
                        + "\n\\end{tabular}\\end{center}")
        elif b.kind == "code":
            lines = "\n".join(r"\texttt{" + tex_escape(r[0]).replace(" ", r"\ ") + r"}\\" for r in b.rows)
            body.append(r"\noindent{\small" + "\n" + lines + "}\n")
        elif b.kind == "list":
            body.append(r"\begin{enumerate}" + "".join(rf"\item {tex_escape(r[0])}" + "\n" for r in b.rows)
                        + r"\end{enumerate}")
    return (rf"\documentclass[{size}pt]{{{cls}}}" "\n"
            r"\usepackage[T1]{fontenc}\usepackage[utf8]{inputenc}\usepackage{lmodern}\usepackage{textcomp}" "\n"
            rf"\usepackage[{geometry}]{{geometry}}" "\n" + pre + "\n"
            r"\pagestyle{plain}\begin{document}" "\n" + "\n\n".join(body) + "\n" r"\end{document}" "\n")


# --- HTML (WeasyPrint) and ODT (LibreOffice) -------------------------------------------------

def to_html(blocks: list[Block], font: str, size: float = 10, rng: random.Random | None = None) -> str:
    rng = rng or random.Random(0)
    align = rng.choice(["justify", "left"])
    mono = rng.choice(["Liberation Mono", "DejaVu Sans Mono", "Noto Mono", "Nimbus Mono PS"])
    e = html.escape
    body, notes = [], []
    for b in blocks:
        if b.kind == "heading":
            body.append(f"<h2>{e(b.text)}</h2>")
        elif b.kind == "para":
            if b.footnote:
                notes.append(b.footnote)
            body.append(f"<p>{e(b.text)}{f'<sup>{len(notes)}</sup>' if b.footnote else ''}</p>")
        elif b.kind == "table":
            body.append("<table>" + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
                        + "</table>")
        elif b.kind == "code":
            body.append("<pre>" + "\n".join(e(r[0]) for r in b.rows) + "</pre>")
        elif b.kind == "list":
            body.append("<ol>" + "".join(f"<li>{e(r[0])}</li>" for r in b.rows) + "</ol>")
    if notes:
        body.append('<div class="notes">' + "".join(f"<p>{k + 1} {e(n)}</p>" for k, n in enumerate(notes)) + "</div>")
    css = (f"@page {{ size: {rng.choice(['A4', 'Letter'])}; margin: {rng.choice([18, 22, 25])}mm }} "
           f"body {{ font-family: '{font}'; font-size: {size}pt; line-height: {rng.choice([1.2, 1.35, 1.5])} }} "
           f"p {{ text-align: {align}; hyphens: auto; margin: 0 0 0.6em 0 }} h2 {{ font-size: 1.3em }} "
           f"pre {{ font-family: '{mono}'; font-size: 0.9em }} td {{ padding: 1px 10px 1px 0 }} "
           f".notes p {{ font-size: 0.8em }}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>{css}</style></head>'
            f"<body>{''.join(body)}</body></html>")


def to_odt(blocks: list[Block], font: str, size: float = 10, rng: random.Random | None = None) -> str:
    """A flat ODT (``.fodt``) document: one XML file LibreOffice opens as a Writer document."""
    rng = rng or random.Random(0)
    e = html.escape
    align = rng.choice(["justify", "start"])
    mono = rng.choice(["Liberation Mono", "DejaVu Sans Mono", "Noto Mono"])
    body = []
    for b in blocks:
        if b.kind == "heading":
            body.append(f'<text:h text:style-name="H" text:outline-level="2">{e(b.text)}</text:h>')
        elif b.kind == "para":
            note = (f'<text:note text:note-class="footnote"><text:note-citation>*</text:note-citation><text:note-body>'
                    f'<text:p text:style-name="P">{e(b.footnote)}</text:p></text:note-body></text:note>'
                    if b.footnote else "")
            body.append(f'<text:p text:style-name="P">{e(b.text)}{note}</text:p>')
        elif b.kind == "table":
            ncol = max(len(r) for r in b.rows)
            rows = "".join("<table:table-row>" + "".join(
                f'<table:table-cell><text:p text:style-name="T">{e(c)}</text:p></table:table-cell>'
                for c in r + [""] * (ncol - len(r))) + "</table:table-row>" for r in b.rows)
            body.append(f'<table:table table:name="t{len(body)}"><table:table-column table:number-columns-repeated='
                        f'"{ncol}"/>{rows}</table:table>')
        elif b.kind == "code":
            body += [f'<text:p text:style-name="Code">{e(r[0]).replace("  ", " <text:s/>")}</text:p>' for r in b.rows]
        elif b.kind == "list":
            body += [f'<text:p text:style-name="P">{k + 1}. {e(r[0])}</text:p>' for k, r in enumerate(b.rows)]
    para = ('<style:style style:name="{}" style:family="paragraph"><style:paragraph-properties fo:text-align="{}" '
            'fo:margin-bottom="{}"/><style:text-properties style:font-name="{}" fo:font-size="{}pt" '
            'fo:font-weight="{}"/></style:style>')
    styles = "".join([
        para.format("P", align, "0.15cm", "Body", size, "normal"),
        para.format("T", "start", "0cm", "Body", size, "normal"),
        para.format("H", "start", "0.2cm", "Body", round(size * 1.3, 1), "bold"),
        para.format("Code", "start", "0cm", "Mono", round(size * 0.9, 1), "normal"),
    ])
    page = rng.choice([("21cm", "29.7cm"), ("21.59cm", "27.94cm")])
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" \
xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" \
xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.3" \
office:mimetype="application/vnd.oasis.opendocument.text">
<office:font-face-decls><style:font-face style:name="Body" svg:font-family="&apos;{e(font)}&apos;"/>
<style:font-face style:name="Mono" svg:font-family="&apos;{mono}&apos;" style:font-pitch="fixed"/>\
</office:font-face-decls>
<office:automatic-styles><style:page-layout style:name="pm"><style:page-layout-properties fo:page-width="{page[0]}"
 fo:page-height="{page[1]}" fo:margin-top="2cm" fo:margin-bottom="2cm" fo:margin-left="{rng.choice(["2cm", "2.5cm"])}"
 fo:margin-right="2cm"/></style:page-layout>{styles}</office:automatic-styles>
<office:master-styles><style:master-page style:name="Standard" style:page-layout-name="pm"/></office:master-styles>
<office:body><office:text>{"".join(body)}</office:text></office:body></office:document>
'''


# --- running the engines ------------------------------------------------------------------------

_TOOLS = {"latex": "pdflatex", "office": "soffice", "html": "weasyprint"}


def available_engines() -> list[str]:
    return [e for e in ENGINES if shutil.which(_TOOLS[e])]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
                          env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(cwd), "LANG": "C.UTF-8"})


def typeset(engine: str, source: str, out_pdf: Path) -> None:
    """Typeset ``source`` (LaTeX, flat ODT or HTML text) with ``engine`` into ``out_pdf``;
    ``RuntimeError`` with the engine's own message when no PDF comes out."""
    if engine not in ENGINES:
        raise ValueError(f"unknown typesetting engine {engine!r}; choose from {', '.join(ENGINES)}")
    tool = shutil.which(_TOOLS[engine])
    if tool is None:
        raise RuntimeError(f"{_TOOLS[engine]} is not installed (make engines)")
    with tempfile.TemporaryDirectory(prefix=f"ocr-robust-{engine}-") as tmp:
        t = Path(tmp)
        src = t / {"latex": "doc.tex", "office": "doc.fodt", "html": "doc.html"}[engine]
        src.write_text(source, encoding="utf-8")
        if engine == "latex":  # -no-shell-escape: a document never runs commands
            cmd = [tool, "-interaction=nonstopmode", "-no-shell-escape", "-halt-on-error", src.name]
        elif engine == "office":
            cmd = [tool, f"-env:UserInstallation=file://{t}/profile", "--headless", "--norestore",
                   "--convert-to", "pdf", "--outdir", str(t), src.name]
        else:
            cmd = [tool, src.name, "doc.pdf"]
        try:
            r = _run(cmd, t)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{engine}: took longer than {TIMEOUT_S} s") from None
        pdf = t / "doc.pdf"
        if not pdf.is_file() or pdf.stat().st_size == 0:
            log = (t / "doc.log").read_text(errors="replace") if (t / "doc.log").is_file() else r.stdout + r.stderr
            errs = [ln for ln in log.splitlines() if ln.startswith("!") or "rror" in ln]
            raise RuntimeError(f"{engine} made no PDF: {(errs or [log.strip()[-300:]])[0][:300]}")
        shutil.copy(pdf, out_pdf)


_WRITERS = {"latex": to_latex, "office": to_odt, "html": to_html}


def typeset_corpus(out: str | Path, engines: list[str], documents: int, seed: int = 0, heldout: bool = False,
                   progress: bool = False) -> dict:
    """``documents`` documents per engine under ``out`` (``ENGINE_NNNN.pdf``), each in a
    typeface drawn from that engine's training (or held-out) faces and a body size of 8-12 pt;
    a record per document in ``typeset.jsonl``. Failed documents are reported, not fatal."""
    import json

    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records, failed = [], []
    bar = tqdm(total=documents * len(engines), desc="typeset", unit="doc", disable=not progress)
    for engine in engines:
        fonts = engine_fonts(engine, heldout)
        if not fonts:
            raise RuntimeError(f"{engine}: no {'held-out' if heldout else 'training'} typeface on this machine")
        for k in range(documents):
            rng = random.Random(f"ocr-robust-typeset:{seed}:{engine}:{k}")
            font, size = rng.choice(fonts), rng.choice([8, 9, 10, 10, 11, 12])
            if engine == "latex":
                size = min((10, 11, 12), key=lambda s: abs(s - size))
            blocks = plan_document(rng, rng.randint(8, 24))
            name = f"{engine}_{k:04d}.pdf"
            try:
                typeset(engine, _WRITERS[engine](blocks, font, size, rng), out / name)
                records.append({"file": name, "engine": engine, "font": font, "size": size, "blocks": len(blocks)})
            except RuntimeError as e:
                failed.append({"file": name, "engine": engine, "font": font, "reason": str(e)})
            bar.update(1)
    bar.close()
    with open(out / "typeset.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return {"out": str(out), "documents": len(records), "failed": failed, "engines": engines}
