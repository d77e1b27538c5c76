"""The layering users rely on: reading a line loads no training code, and the modules
below training never import it (docs/ARCHITECTURE.md)."""

import ast
import subprocess
import sys
from pathlib import Path

import ocr_robust

PKG = Path(ocr_robust.__file__).parent
# the only modules allowed to import the training code: the command line and the demo drive it
ABOVE_TRAINING = {"cli", "demo", "training"}


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports (relative imports resolved against the package)."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def test_no_module_below_training_imports_it():
    offenders = {}
    for f in PKG.rglob("*.py"):
        top = f.relative_to(PKG).parts[0].removesuffix(".py")
        if top in ABOVE_TRAINING:
            continue
        bad = sorted(m for m in _imports(f) if m == "ocr_robust.training" or m.startswith("ocr_robust.training."))
        if bad:
            offenders[str(f.relative_to(PKG))] = bad
    assert offenders == {}


def test_reading_a_line_loads_no_training_code(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from ocr_robust.inference import Recognizer, default_model\n"
        "import ocr_robust.export, ocr_robust.service\n"
        "img = np.full((32, 96), 255, np.uint8); img[10:22, 10:80] = 0\n"
        "Recognizer(default_model()).recognize([img])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('ocr_robust.training', 'ocr_robust.adversarial', "
        "'ocr_robust.augment', 'ocr_robust.data.sampler', 'ocr_robust.data.dataset', 'ocr_robust.evaluation'))))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_evaluation_never_imports_training_and_the_attacks_never_import_evaluation():
    """Layers (docs/ARCHITECTURE.md): attacks < evaluation < training."""
    offenders = {}
    below = {"evaluation": ("ocr_robust.training",), "adversarial": ("ocr_robust.training", "ocr_robust.evaluation")}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG)
        banned = below.get(rel.parts[0])
        if not banned:
            continue
        bad = sorted(m for m in _imports(f) if m.startswith(banned))
        if bad:
            offenders[str(rel)] = bad
    assert offenders == {}
