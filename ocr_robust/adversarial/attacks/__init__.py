"""White-box attacks on CTC line recognizers, one file each, and their registry:
FGSM (``fgsm``), PGD with L-inf or L2, random start, restarts and the worst iterate kept
(``pgd``), APGD, step-size free (``apgd``), the black-box Square attack (``square``),
untargeted, and
the targeted confusable attack (``confusable``: success = the model reads the confused
label exactly). All are settings of the one loop in ``loop.py``.

Attacks take ``torch.autograd.grad`` with respect to the input only, so the model's
parameter gradients stay as they were; they run the model in the state its caller set
(:func:`ocr_robust.models.model_state`). On CUDA cuDNN refuses RNN backward in eval mode, so
``model_state(grads=True)`` switches cuDNN off there.

Budgets (``eps``, step sizes) are in 0..1 image units (``4/255``); the perturbation lives in
the model's 0..255 pixel space and never touches a line's padding.
"""

from .apgd import apgd
from .confusable import confusable_attack, seeded_confusions
from .fgsm import fgsm
from .loop import AttackResult, perturb, read_texts
from .pgd import pgd
from .registry import ATTACKS, AttackSpec, RegisteredAttack, get_attack, register_attack
from .square import square

__all__ = ["AttackResult", "read_texts", "perturb", "fgsm", "pgd", "apgd", "square", "confusable_attack",
           "seeded_confusions", "ATTACKS", "AttackSpec", "RegisteredAttack", "get_attack", "register_attack"]
