"""Evaluation: everything that measures a model. ``metrics`` (word accuracy, CER, the
confusion counts), ``lines`` (reading a store and scoring it: ``evaluate``, ``bench``),
``suite`` (benchmark suites of synthetic and real documents), ``engines`` (ours and the
anchors: Tesseract, PP-OCRv6, PP-OCRv4), ``benchmark`` (the runner, its report and saliency
maps), ``attacks`` (robust accuracy under an attack on a store) and ``pages`` (the
epoch-end validation attack and its human-check page).

It sits above reading and the attacks and below training: nothing here imports
``ocr_robust.training``."""

__all__: list[str] = []
