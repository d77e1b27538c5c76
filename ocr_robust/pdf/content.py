"""Text content for synthetic documents: lab reports, invoices, forms, prose, code, tables.

Every generator takes a ``random.Random`` and returns plain strings drawn from the ``latin``
charset, so a seed fixes the content. The vocabulary is built in: nothing is downloaded.
"""

from __future__ import annotations

import random
import re
import string

__all__ = ["LAB_TESTS", "QUALITATIVE", "LAB_NAMES", "FIRST", "LAST", "DOCTORS", "COMPANIES", "ITEMS", "STREETS",
           "CITIES", "PROSE_WORDS", "CODE_LINES", "person", "date", "ident", "money", "lab_row", "lab_header",
           "lab_footer", "invoice_header", "invoice_row", "invoice_footer", "form_line", "sentence", "paragraph",
           "IDENTIFIERS", "code_line", "wrap"]

LAB_TESTS = [
    # name, unit, low, high, decimals
    ("Ferritin", "ng/mL", 30, 400, 1), ("Haemoglobin", "g/dL", 12.0, 17.5, 1),
    ("Hemoglobin A1c", "%", 4.0, 5.6, 1), ("hCG", "mIU/mL", 0, 5, 1),
    ("beta-hCG (quantitative)", "mIU/mL", 0, 5, 0), ("HIV-1/2 Ag/Ab", "S/CO", 0, 0.9, 2),
    ("TSH", "µIU/mL", 0.4, 4.0, 2), ("Free T4", "pmol/L", 12, 22, 1), ("Free T3", "pmol/L", 3.1, 6.8, 1),
    ("Creatinine", "µmol/L", 59, 104, 0), ("Urea", "mmol/L", 2.5, 7.8, 1), ("eGFR", "mL/min/1.73 m2", 90, 120, 0),
    ("Glucose (fasting)", "mmol/L", 3.9, 5.6, 1), ("Cholesterol, total", "mmol/L", 0, 5.2, 2),
    ("HDL cholesterol", "mmol/L", 1.0, 1.9, 2), ("LDL cholesterol", "mmol/L", 0, 3.4, 2),
    ("Triglycerides", "mmol/L", 0, 1.7, 2), ("ALT (SGPT)", "U/L", 7, 56, 0), ("AST (SGOT)", "U/L", 10, 40, 0),
    ("Alkaline phosphatase", "U/L", 44, 147, 0), ("GGT", "U/L", 9, 48, 0), ("Bilirubin, total", "µmol/L", 5, 21, 0),
    ("WBC", "×10^9/L", 4.0, 11.0, 1), ("RBC", "×10^12/L", 4.2, 5.9, 2), ("Platelets", "×10^9/L", 150, 400, 0),
    ("Neutrophils", "%", 40, 70, 1), ("Lymphocytes", "%", 20, 40, 1), ("MCV", "fL", 80, 100, 1),
    ("CRP", "mg/L", 0, 5, 1), ("ESR", "mm/h", 0, 20, 0), ("Vitamin D (25-OH)", "nmol/L", 50, 125, 0),
    ("Vitamin B12", "pmol/L", 148, 616, 0), ("Folate", "nmol/L", 7, 45, 1), ("Sodium", "mmol/L", 135, 145, 0),
    ("Potassium", "mmol/L", 3.5, 5.1, 1), ("Calcium", "mmol/L", 2.15, 2.55, 2), ("Iron", "µmol/L", 10, 30, 1),
    ("Transferrin saturation", "%", 20, 50, 0), ("PSA", "ng/mL", 0, 4, 2), ("INR", "", 0.8, 1.2, 2),
    ("D-dimer", "µg/mL FEU", 0, 0.5, 2), ("Troponin I", "ng/L", 0, 26, 0), ("Procalcitonin", "ng/mL", 0, 0.5, 2),
    ("Cortisol (8 am)", "nmol/L", 140, 690, 0), ("Prolactin", "mIU/L", 86, 324, 0), ("Estradiol", "pmol/L", 45, 854, 0),
    ("Lipase", "U/L", 13, 60, 0), ("Amylase", "U/L", 28, 100, 0), ("Uric acid", "µmol/L", 200, 430, 0),
    ("Magnesium", "mmol/L", 0.7, 1.0, 2), ("Phosphate", "mmol/L", 0.8, 1.5, 2), ("Albumin", "g/L", 35, 50, 0),
    ("HBsAg", "IU/mL", 0, 0.05, 2), ("Anti-HCV", "S/CO", 0, 1.0, 2), ("Pregnancy test (urine)", "", 0, 0, 0),
]
QUALITATIVE = ["Negative", "Positive", "Non-reactive", "Reactive", "Not detected", "Detected", "Equivocal"]
LAB_NAMES = ["City Medical Laboratory", "St. Mary's Clinical Pathology", "Northgate Diagnostics Ltd.",
             "Riverside Hospital - Dept. of Biochemistry", "Lakeview Health Centre", "Apex Lab Services (UK)"]
FIRST = ["Anna", "James", "Maria", "Li", "Olga", "Ahmed", "Sofia", "Liam", "Chloe", "Yusuf", "Ilya",
         "Emma", "Noah", "Ines", "Lucas", "Mei", "Oliver", "Zoe", "Hugo", "Lena", "Ravi", "Ida"]
LAST = ["Smith", "Garcia", "Nguyen", "O'Brien", "Kowalski", "Rossi", "Ivanova", "Dubois",
        "Jensen", "Lindqvist", "Okafor", "Tanaka", "Hill", "McAllister", "Silva", "Novak", "Walsh"]
DOCTORS = ["Dr. A. Patel", "Dr. H. Lindgren", "Dr. M. Clarke, MD", "Dr. S. Okoye", "Prof. J. Weber"]
COMPANIES = ["Acme Supplies Ltd.", "Blue River GmbH", "Nordic Parts AB", "Orion Office Co.", "Zenith & Sons",
             "Kite Logistics S.A.", "Maple Leaf Trading Inc.", "Helix Biotech plc", "Quill Stationers"]
ITEMS = ["A4 copy paper, 80 g/m2 (box of 5)", "Toner cartridge TN-2420", "USB-C cable 2 m", "Office chair",
         "Nitrile gloves, size M (x100)", "Pipette tips 200 µL", "Centrifuge tubes 15 mL", "Consulting (hours)",
         "Shipping & handling", "Label printer roll 62 mm", "Ethernet switch 8-port", "Desk lamp LED 7 W",
         "Software licence (1 yr)", "Sample vials, amber", "Thermal paper 80x80", "Microscope slides (50)"]
STREETS = ["High Street", "Baker St.", "Rue de la Paix", "Hauptstrasse", "Main Ave.", "Elm Road", "Kings Way"]
CITIES = ["London", "Berlin", "Paris", "Dublin", "Oslo", "Vienna", "Leeds", "Lyon", "Bristol", "Zurich"]
PROSE_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her all she there would their we him been has when who will more no if out so said "
    "what up its about into than them can only other new some could time these two may then do first any "
    "my now such like our over man me even most made after also did many before must through back years "
    "where much your way well down should because each just those people how too little state good very "
    "make world still own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take three sample "
    "patient result report clinical laboratory reference range value normal elevated low high test blood "
    "serum plasma urine specimen collected received analysed method assay interpretation please note the "
    "results should be interpreted in the context of history and examination further testing is advised "
    "invoice payment due date account balance total amount order delivery quantity price tax discount "
    "terms conditions signature approved document page copy original confidential agreement contract"
).split()
CODE_LINES = [
    "for (int i = 0; i < n; i++) {", "    sum += a[i] * b[i];", "}", "def normalise(x, eps=1e-6):",
    "    return (x - x.mean()) / (x.std() + eps)", "if (status != 200) return -1;",
    "SELECT id, name FROM users WHERE age > 30;",
    "x = np.clip(img + delta, 0, 255)", "const url = `https://api.example.com/v2/items?id=${id}`;",
    "export PATH=$HOME/.local/bin:$PATH", "git commit -m \"fix: handle empty page\"", "#include <stdio.h>",
    "printf(\"%d items, %.2f%%\\n\", n, pct);", "{\"id\": 10293, \"ok\": true, \"tags\": [\"a\", \"b\"]}",
    "while (--count >= 0 && buf[count] == ' ');", "lambda l1, I1: l1 | I1 & 0x0F", "assert len(rows) == 42",
    "key = hash(str(O0) + str(l1))", "<a href=\"/docs/index.html\">Docs</a>", "ls -la /var/log | grep error",
]


def _num(rng: random.Random, lo: float, hi: float, decimals: int) -> str:
    span = hi - lo if hi > lo else max(hi, 1.0)
    v = rng.uniform(max(0.0, lo - 0.4 * span), hi + 0.6 * span)
    return f"{v:.{decimals}f}"


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def date(rng: random.Random) -> str:
    y, m, d = rng.randint(2015, 2026), rng.randint(1, 12), rng.randint(1, 28)
    fmt = rng.choice(["{y}-{m:02d}-{d:02d}", "{d:02d}/{m:02d}/{y}", "{d:02d}.{m:02d}.{y}", "{d} {mon} {y}"])
    mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][m - 1]
    return fmt.format(y=y, m=m, d=d, mon=mon)


def ident(rng: random.Random, prefix: str = "") -> str:
    alphabet = string.ascii_uppercase + string.digits
    body = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 9)))
    sep = rng.choice(["-", "", "/", " "])
    return f"{prefix}{sep}{body}" if prefix else body


def money(rng: random.Random) -> str:
    v = rng.uniform(0.5, 25000)
    cur = rng.choice(["€", "£", "$", "¥", "EUR ", "USD ", ""])
    s = f"{v:,.2f}"
    if rng.random() < 0.3:  # continental style 1.234,56
        s = s.replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{cur}{s}"


def lab_row(rng: random.Random) -> list[str]:
    """One lab-report table row: test, result, unit, reference range, flag."""
    name, unit, lo, hi, dec = rng.choice(LAB_TESTS)
    if hi == 0 or name.startswith(("HIV", "Anti-HCV", "HBsAg", "Pregnancy")) and rng.random() < 0.5:
        return [name, rng.choice(QUALITATIVE), unit, rng.choice(["Negative", "Non-reactive", "< 1.00"]), ""]
    value = _num(rng, lo, hi, dec)
    v = float(value)
    flag = "H" if v > hi else ("L" if v < lo else "")
    flag = rng.choice([flag, flag, f"{flag}*" if flag else "", {"H": "High", "L": "Low"}.get(flag, "")])
    fmt_range = rng.choice(["{lo} - {hi}", "{lo}-{hi}", "{lo} – {hi}", "< {hi}" if lo == 0 else "{lo} to {hi}"])
    rng_txt = fmt_range.format(lo=f"{lo:.{dec}f}", hi=f"{hi:.{dec}f}")
    return [name, value, unit, rng_txt, flag]


def lab_header(rng: random.Random) -> list[str]:
    return [
        rng.choice(LAB_NAMES),
        f"Patient: {person(rng)}    ID: {ident(rng, rng.choice(['P', 'MRN', 'PID']))}",
        f"DOB: {date(rng)}    Sex: {rng.choice(['F', 'M'])}    Age: {rng.randint(1, 95)} y",
        f"Collected: {date(rng)} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}    Received: {date(rng)}",
        f"Requested by: {rng.choice(DOCTORS)}    "
        f"Specimen: {rng.choice(['Serum', 'Plasma (EDTA)', 'Whole blood', 'Urine'])}",
    ]


def lab_footer(rng: random.Random) -> list[str]:
    return [
        "H = above reference range; L = below reference range; * = critical value, phoned to ward.",
        f"Validated by {rng.choice(DOCTORS)} on {date(rng)}. Accredited lab No. {rng.randint(1000, 99999)}.",
    ]


def invoice_header(rng: random.Random) -> list[str]:
    return [
        rng.choice(COMPANIES),
        f"{rng.randint(1, 250)} {rng.choice(STREETS)}, {rng.choice(CITIES)} {rng.randint(1000, 99999)}",
        f"Invoice No. {ident(rng, 'INV')}    Date: {date(rng)}    Due: {date(rng)}",
        f"Customer: {person(rng)}, {rng.choice(COMPANIES)}    VAT ID: {ident(rng, rng.choice(['GB', 'DE', 'FR']))}",
        f"Order ref. {ident(rng, 'PO')} · Account {rng.randint(10000000, 99999999)}",
    ]


def invoice_row(rng: random.Random) -> list[str]:
    qty = rng.randint(1, 250)
    price = rng.uniform(0.2, 900)
    return [rng.choice(ITEMS), str(qty), f"{price:.2f}", f"{qty * price:,.2f}"]


def invoice_footer(rng: random.Random) -> list[str]:
    iban = "".join(rng.choice(string.digits) for _ in range(18))
    return [
        f"Subtotal: {money(rng)}    VAT {rng.choice([5, 7, 10, 19, 20, 21])}%: {money(rng)}",
        f"Total due: {money(rng)}",
        f"IBAN: {rng.choice(['GB', 'DE', 'FR', 'IE'])}{rng.randint(10, 99)} "
        f"{iban[:4]} {iban[4:8]} {iban[8:12]} {iban[12:]}",
        f"Payment terms: {rng.choice([14, 30, 60])} days net. Late fees ± {rng.randint(1, 5)}% per month.",
    ]


def form_line(rng: random.Random) -> str:
    field = rng.choice(["Name", "Address", "Phone", "E-mail", "Date of birth", "Policy No.", "Signature",
                        "Tel.", "Ref.", "Claim ID", "Postcode", "Employer"])
    value = rng.choice([person(rng), date(rng), ident(rng),
                        f"+44 {rng.randint(1000, 9999)} {rng.randint(100000, 999999)}",
                        f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example.com".replace("'", ""),
                        f"{rng.randint(1, 99)} {rng.choice(STREETS)}", "____________"])
    box = rng.choice(["", "[x] ", "[ ] ", "§ "])
    return f"{box}{field}: {value}"


def sentence(rng: random.Random, min_words: int = 6, max_words: int = 22) -> str:
    words = [rng.choice(PROSE_WORDS) for _ in range(rng.randint(min_words, max_words))]
    for i in range(len(words)):
        r = rng.random()
        if r < 0.03:
            words[i] = str(rng.randint(0, 2026))
        elif r < 0.05:
            words[i] = f"({words[i]})"
        elif r < 0.08:
            words[i] = words[i] + ","
        elif r < 0.09:
            words[i] = f"“{words[i]}”"
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "?", "!", ";", ":"])


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))


IDENTIFIERS = ["count", "idx", "buf", "rows", "img", "delta", "total", "l1", "I1", "O0", "lr", "eps", "cfg", "page",
               "x", "y", "n", "result", "tmp", "value", "fp", "conn", "node", "key", "ll", "Il"]


def code_line(rng: random.Random) -> str:
    """A code-like line: a template with its numbers and some identifiers redrawn."""
    line = re.sub(r"\d+", lambda m: str(rng.randint(0, 10 ** len(m.group()) * 3)), rng.choice(CODE_LINES))
    for name in ("count", "rows", "n", "x", "id"):
        if rng.random() < 0.5:
            line = re.sub(rf"(?<![\\\w]){name}\b", rng.choice(IDENTIFIERS), line)
    return line


def wrap(text: str, width_pt: float, measure) -> list[str]:
    """Greedy word wrap: ``measure(s)`` gives the width of ``s`` in points."""
    lines: list[str] = []
    cur = ""
    for w in text.split():
        cand = f"{cur} {w}" if cur else w
        if cur and measure(cand) > width_pt:
            lines.append(cur)
            cur = w
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return lines
