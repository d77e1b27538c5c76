"""Attacks on CTC line recognizers and what adversarial training is built from: the
perturbation layer (``perturb``), label confusion with the confusable table
(``confusion``) and the white-box attacks with their registry (``attacks``). Attacking a
store and the human-check pages are evaluation (``ocr_robust.evaluation``); the training
modes that use these are in ``ocr_robust.training.modes``."""

__all__: list[str] = []
