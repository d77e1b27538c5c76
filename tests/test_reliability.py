"""Crash safety: kill -9 in the middle of training and resume exactly; untrusted checkpoints
and exports never run code."""

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from ocr_robust.cli import main
from ocr_robust.errors import InputError
from ocr_robust.training import TrainConfig, Trainer


def _args(store, out, mode, epochs):
    return ["train", "--data", str(store), "--val", str(store), "--out", str(out), "--mode", mode, "--epochs",
            str(epochs), "--batch-size", "8", "--augment", "0", "--seed", "5", "--report-images", "0", "--quiet"]


@pytest.mark.parametrize("mode,epochs,kill_after", [("natural", 10, 4), ("realtime", 6, 2)])
def test_kill_9_mid_training_then_resume_gives_the_weights_of_an_uninterrupted_run(tiny_store, tmp_path, mode, epochs,
                                                                                   kill_after):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(_args(tiny_store, straight, mode, epochs)) == 0
    proc = subprocess.Popen([sys.executable, "-m", "ocr_robust.cli", *_args(tiny_store, killed, mode, epochs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= kill_after:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: whatever is on disk is what resume gets
    proc.wait()
    done = len(metrics.read_text().splitlines())
    assert kill_after <= done < epochs
    assert main(_args(tiny_store, killed, mode, epochs) + ["--resume"]) == 0
    a, b = load_file(str(straight / "last.safetensors")), load_file(str(killed / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(metrics.read_text().splitlines()) >= epochs  # the epoch cut short is redone, not lost


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_planted_pickle_in_a_checkpoint_is_refused_and_never_run(tiny_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=1, batch_size=8,
                      augment=0.0)
    Trainer(cfg, progress=False).fit()
    state = tmp_path / "run" / "last.state.pt"
    with open(state, "wb") as f:
        pickle.dump({"epoch": 1, "payload": _Evil()}, f)
    with pytest.raises(InputError, match="refused: not a plain training state"):
        Trainer(cfg, progress=False).resume()
    assert not (tmp_path / "PWNED").exists()
    # a pickle where safetensors weights belong: refused by name, never unpickled
    with open(tmp_path / "run" / "best.safetensors", "wb") as f:
        pickle.dump(_Evil(), f)
    assert main(["recognize", "--model", str(tmp_path / "run"), str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "PWNED").exists()


def test_odd_and_hostile_images_decode_or_fail_by_name(tmp_path):
    import io
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    from ocr_robust.images import decode_grey, image_size

    buf = io.BytesIO()
    Image.new("CMYK", (40, 12), (0, 0, 0, 40)).save(buf, "JPEG")
    img = decode_grey(buf.getvalue(), "cmyk.jpg")
    assert img.shape == (12, 40) and img.dtype == np.uint8
    # a PNG whose header claims 100000 x 100000 pixels: the size is known before decoding,
    # and decoding it fails with the file's name instead of allocating 10 GB
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))
    assert image_size(bomb) == (100000, 100000)
    with pytest.raises(InputError, match="bomb.png: cannot decode"):
        decode_grey(bomb, "bomb.png")
    for name, data in (("empty.png", b""), ("zero.png", b"\x89PNG\r\n\x1a\n")):
        with pytest.raises(InputError, match=name):
            decode_grey(data, name)


def test_non_finite_steps_are_skipped_counted_and_too_many_stop_the_run_intact(tiny_store, tmp_path):
    import math

    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=3, batch_size=8,
                      augment=0.0, max_bad_steps=3)
    t = Trainer(cfg, progress=False)
    real_step = t.mode.step
    poisoned = {1, 2}  # steps whose gradients are NaN

    def step(model, batch, ctx):
        out = real_step(model, batch, ctx)
        if ctx.step in poisoned:
            for p in model.parameters():
                p.grad.fill_(math.nan)
        return out

    t.mode.step = step
    r = t.fit()
    assert r["epochs"] == 3 and r["bad_steps"] == 2
    assert all(torch.isfinite(v).all() for v in load_file(str(tmp_path / "run" / "last.safetensors")).values())
    # from step 4 on every step is bad: 3 in a row stop the run, the epoch-1 checkpoint intact
    cfg2 = TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "run2")})
    t2 = Trainer(cfg2, progress=False)
    t2.mode.step = step
    poisoned.clear()
    poisoned.update(range(3, 100))
    with pytest.raises(FloatingPointError, match=r"3 non-finite steps in a row \(last at epoch 2, batch 3"):
        t2.fit()
    state = torch.load(tmp_path / "run2" / "last.state.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
