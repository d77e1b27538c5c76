"""Run by ``torchrun`` from tests/test_distributed.py: each process trains through the real
Trainer in a gloo process group and rank 0 writes what the test checks as JSON.

    torchrun --nproc_per_node 2 tests/ddp_worker.py modes DATA OUT RESULT.json
        every training mode a few steps: the lines each rank trained on, whether the ranks'
        weights are equal after the run
    torchrun --nproc_per_node 2 tests/ddp_worker.py kill DATA OUT STEP
        the run of ``train_args`` in OUT, rank 1 sending itself SIGTERM after step STEP
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import torch

from ocr_robust.training import TrainConfig, Trainer, distributed
from ocr_robust.training.modes import MODES

# the options that keep each mode's step small on 24 lines
FAST = {"pgd-at": {"steps": 2}, "trades": {"steps": 2}, "free-at": {"replays": 2}, "nsl": {}, "fgsm-rs": {},
        "realtime": {}, "natural": {}}


def run_config(data: str, out: str, **kw) -> TrainConfig:
    """The config tests/test_distributed.py also gives ``ocr-robust train`` as flags."""
    return TrainConfig(**{"data": data, "val": data, "out": out, "epochs": 3, "batch_size": 4, "augment": 0.0,
                          "crop_jitter": 0.0, "device": "cpu", "seed": 1, "report_images": 0,
                          "mode": "realtime", **kw})


def checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.state_dict().values() if p.is_floating_point()))


def modes(data: str, out: str, result: str) -> None:
    w = distributed.world()
    report = {}
    for mode in MODES:
        t = Trainer(run_config(data, f"{out}/{mode}", mode=mode, epochs=1, mode_options=FAST.get(mode, {})),
                    progress=False)
        seen: list[int] = []
        step = t.mode.step

        def recording(model, batch, ctx, step=step, seen=seen):
            if ctx.replay == 0:
                seen.extend(int(i) for i in batch["indices"] if i >= 0)  # -1: a no-text image
            return step(model, batch, ctx)

        t.mode.step = recording  # type: ignore[method-assign]
        r = t.fit()
        lines = w.gather(seen)
        sums = w.gather(checksum(t.model))
        report[mode] = {"lines": lines, "checksums": sums, "steps": r["steps"], "val": r["best_val_word_acc"],
                        "train_lines": len(t.train_ds), "loss": r["history"][-1]["loss"]}
        if mode == "natural":  # validation sharded over the ranks, and on rank 0 alone
            sharded = t._validate().summary()
            t.cfg = replace(t.cfg, val_ranks="rank0")
            report[mode]["val_sharded"], report[mode]["val_rank0"] = sharded, t._validate().summary()
    if w.main:
        Path(result).write_text(json.dumps(report), encoding="utf-8")


def kill(data: str, out: str, at: int) -> None:
    w = distributed.world()
    t = Trainer(run_config(data, out), progress=False)

    def hook(trainer):
        if trainer.step == at and w.rank == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, to one rank only
        return None

    r = t.fit(on_step=hook)
    if w.main:
        print(json.dumps({"stopped": r["stopped"], "step": t.step}), flush=True)


if __name__ == "__main__":
    distributed.init_from_env("cpu")
    try:
        if sys.argv[1] == "modes":
            modes(*sys.argv[2:5])
        else:
            kill(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    finally:
        distributed.close()
