"""``python -m ocr_robust``: the ``ocr-robust`` command where no console script is installed."""
from .cli import main

if __name__ == "__main__":  # the page workers' forkserver imports the main module as __mp_main__
    raise SystemExit(main())
