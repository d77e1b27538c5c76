"""Adversarial training and attacks for CTC line recognizers: the realtime adversary with
confusable-character targets (``modes.RealtimeMode``), the baseline defences, the
perturbation layer (``perturb``), label confusion (``confusion``), white-box attacks
(``attacks``, ``evaluate``) and the epoch-end validation attack pages (``report``)."""

__all__: list[str] = []
