"""``python -m ocr_robust``: the ``ocr-robust`` command where no console script is installed."""
from .cli import main

raise SystemExit(main())
