"""CTC losses shared by every training mode and attack.

``ctc_per_line`` is the one definition: each line's CTC loss divided by its target length
(at least 1, so an empty target, a no-text image, keeps its plain loss). Its mean over a
batch equals ``F.ctc_loss(..., reduction="mean")``. Impossible alignments (a target longer
than the frames allow) give 0 instead of infinity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import CRNN

__all__ = ["ctc_per_line", "ctc_loss", "encode_targets", "padded_targets", "reads_exactly", "frame_kl"]


def ctc_per_line(logp: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                 widths: torch.Tensor) -> torch.Tensor:
    """``logp`` T x N x C; returns N losses (float32), each normalised by its target length."""
    dev = logp.device
    frames = CRNN.output_lengths(widths).to(dev)
    lengths = target_lengths.to(dev)
    loss = F.ctc_loss(logp.float(), targets.to(dev), frames, lengths, blank=0, reduction="none",
                      zero_infinity=True)
    return loss / lengths.clamp(min=1).float()


def ctc_loss(logp: torch.Tensor, batch: dict) -> torch.Tensor:
    """Mean CTC loss per line of a collated batch (see ``ctc_per_line``)."""
    return ctc_per_line(logp, batch["targets"], batch["target_lengths"], batch["widths"]).mean()


def encode_targets(texts: list[str], charset) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated CTC targets and their lengths for ``texts``."""
    ids = [charset.encode(t) for t in texts]
    return (torch.tensor([i for x in ids for i in x], dtype=torch.long),
            torch.tensor([len(x) for x in ids], dtype=torch.long))


def padded_targets(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Concatenated CTC targets as an ``N x L`` matrix, padded with -1."""
    n, longest = len(target_lengths), int(target_lengths.max()) if len(target_lengths) else 0
    cols = torch.arange(max(longest, 1), device=targets.device)
    keep = cols[None, :] < target_lengths.to(targets.device)[:, None]
    out = torch.full((n, max(longest, 1)), -1, dtype=torch.long, device=targets.device)
    out[keep] = targets.long()
    return out


def reads_exactly(logp: torch.Tensor, widths: torch.Tensor, padded: torch.Tensor,
                  target_lengths: torch.Tensor) -> torch.Tensor:
    """Whether each line's greedy reading of ``logp`` (T x N x C) is exactly its target
    (``padded``, N x L from :func:`padded_targets`): best path, repeats merged, blanks
    dropped, all on the logits' device with no loop over frames or lines."""
    dev = logp.device
    best = logp.detach().argmax(-1)  # T x N
    T, n = best.shape
    valid = torch.arange(T, device=dev)[:, None] < CRNN.output_lengths(widths).to(dev)[None, :]
    prev = torch.cat([torch.zeros(1, n, dtype=best.dtype, device=dev), best[:-1]])  # class 0 is the blank
    kept = (best != prev) & (best != 0) & valid  # the frames that emit a character
    pos = kept.long().cumsum(0) - 1  # which character of the reading each emits
    padded = padded.to(dev)
    L = padded.shape[1]
    want = padded.gather(1, pos.clamp(0, L - 1).t()).t()  # T x N: the target's character at that position
    wrong = kept & ((pos >= L) | (want != best))
    return (kept.sum(0) == target_lengths.to(dev)) & ~wrong.any(0)


def frame_kl(logp_ref: torch.Tensor, logp: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """Per line, the summed KL(ref || other) of the per-frame distributions over the line's
    valid frames (T x N x C log-probabilities in)."""
    T = logp.shape[0]
    frames = CRNN.output_lengths(widths).to(logp.device)
    valid = (torch.arange(T, device=logp.device)[:, None] < frames[None, :]).float()  # T x N
    kl = (logp_ref.float().exp() * (logp_ref.float() - logp.float())).sum(-1)  # T x N
    return (kl * valid).sum(0)
