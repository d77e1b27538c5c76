"""Training on several processes (torchrun, gloo on the CPU): every mode trains with equal
replicas, the ranks share each epoch without overlap, a SIGTERM to one rank stops all and the
resumed run equals the uninterrupted one, and ingest shards are read back as one store."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from ocr_robust.data.dataset import BucketBatchSampler, split_for_world
from ocr_robust.data.sampler import HardExampleSampler
from ocr_robust.data.store import open_store
from ocr_robust.evaluation.metrics import Scores
from ocr_robust.pdf.select import shard_of
from ocr_robust.training import distributed
from ocr_robust.training.distributed import scaled_lr

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_worker.py")


def torchrun(*args: str, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def train_flags(data, out) -> list[str]:
    """``ddp_worker.run_config`` as ``ocr-robust train`` flags."""
    return ["train", "--data", str(data), "--val", str(data), "--out", str(out), "--epochs", "3", "--batch-size", "4",
            "--augment", "0", "--crop-jitter", "0", "--device", "cpu", "--seed", "1", "--report-images", "0",
            "--mode", "realtime", "--quiet"]


# --- the pieces, in one process ------------------------------------------------------------

@pytest.mark.parametrize("n,batch,world", [(24, 4, 2), (25, 4, 2), (23, 8, 3), (5, 4, 2), (10, 3, 1)])
def test_split_for_world_gives_every_rank_as_many_batches_and_every_line_once(n, batch, world):
    batches = BucketBatchSampler(list(range(n)), batch, seed=3).batches()
    out = split_for_world(batches, world)
    assert len(out) % world == 0 and sorted(i for b in out for i in b) == list(range(n))
    assert max(map(len, out)) <= batch and min(map(len, out)) >= 1
    if len(batches) % world == 0:
        assert out == batches  # nothing to split: the one-process order, unchanged


def test_both_samplers_shard_an_epoch_into_disjoint_equal_shares_deterministically():
    widths = [int(w) for w in np.random.default_rng(0).integers(20, 400, 50)]
    for make in (lambda: BucketBatchSampler(widths, 4, seed=5), lambda: HardExampleSampler(widths, 4, seed=5)):
        shares = []
        for rank in range(3):
            s = make()
            s.set_world(rank, 3)
            s.set_epoch(2)
            shares.append(list(s))
            assert len(shares[-1]) == len(s)
            assert list(s) == shares[-1]  # the same seed and epoch: the same share
        assert len({len(sh) for sh in shares}) == 1
        flat = [i for sh in shares for b in sh for i in b]
        one = make()
        one.set_epoch(2)
        whole = one.batches()
        assert sorted(flat) == sorted(i for b in whole for i in b)  # the one epoch, split
        if isinstance(make(), BucketBatchSampler):
            assert sorted(flat) == list(range(50))  # each line once over the ranks


def test_hard_example_tables_merge_to_the_same_table_on_every_rank():
    a, b = HardExampleSampler([50] * 6, 2), HardExampleSampler([50] * 6, 2)
    a.update([0, 1, 2], [1.0, 4.0, 2.0], [True, False, False])
    b.update([2, 3], [6.0, 0.5], [True, True])  # line 2 drawn on both ranks (a hard extra)
    total = a.feedback_table() + b.feedback_table()
    for s in (a, b):
        s.merge(lambda _: total)
    assert np.array_equal(a.loss, b.loss, equal_nan=True) and np.array_equal(a.correct, b.correct)
    assert a.loss[:4].tolist() == [1.0, 4.0, 4.0, 0.5] and np.isnan(a.loss[4])
    assert a.correct[:4].tolist() == [True, False, True, True]
    assert a.weights().tolist() == b.weights().tolist()  # the next epoch's draws are the same on both


def test_validation_shards_merge_to_the_scores_of_the_whole_set():
    preds = ["the cat", "a dog", "", "rn m", "l1 O0"]
    truths = ["the cat", "a fog", "", "rn rn", "l1 00"]
    whole = Scores().update(preds, truths)
    merged = Scores.merged([Scores().update(preds[:2], truths[:2]), Scores().update(preds[2:], truths[2:])])
    assert merged.summary() == whole.summary()


def test_learning_rate_scaling_rule_and_its_default():
    from ocr_robust.training import TrainConfig

    assert TrainConfig(data="x").lr_scaling == "sqrt"
    assert scaled_lr(1e-3, 4, "sqrt") == pytest.approx(2e-3)
    assert scaled_lr(1e-3, 4, "linear") == pytest.approx(4e-3)
    assert scaled_lr(1e-3, 4, "none") == 1e-3 and scaled_lr(1e-3, 1, "sqrt") == 1e-3
    with pytest.raises(ValueError, match="lr_scaling"):
        TrainConfig(data="x", lr_scaling="cubic")


def test_one_process_has_no_process_group_and_a_world_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    w = distributed.init_from_env("cpu")
    assert (w.rank, w.size, w.main) == (0, 1, True) and distributed.rank_seed(7, 0) == 7


def test_ingest_shards_split_the_pdf_list_and_their_stores_read_as_one(corpus, tmp_path):
    pdfs = sorted(str(p) for p in corpus.glob("*.pdf"))
    shards = [shard_of(list(reversed(pdfs)), f"{i}/2") for i in range(2)]  # any listing order
    assert sorted(shards[0] + shards[1]) == pdfs and not set(shards[0]) & set(shards[1])
    outs = []
    for i in range(2):
        out = tmp_path / f"shard{i}"
        p = subprocess.run([sys.executable, "-m", "ocr_robust", "ingest", str(corpus), "--out", str(out), "--shard",
                            f"{i}/2", "--workers", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        outs.append(out)
    whole = open_store(",".join(map(str, outs)))
    parts = [open_store(o) for o in outs]
    assert len(whole) == sum(len(s) for s in parts) > 0
    assert [whole.text(i) for i in range(len(whole))] == [s.text(j) for s in parts for j in range(len(s))]
    (tmp_path / "stores.txt").write_text("shard0\nshard1\n", encoding="utf-8")
    assert len(open_store(tmp_path / "stores.txt")) == len(whole)  # a manifest reads the same
    bad = subprocess.run([sys.executable, "-m", "ocr_robust", "ingest", str(corpus), "--out", str(tmp_path / "x"),
                          "--shard", "2/2"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--shard" in bad.stderr and not (tmp_path / "x").exists()


# --- two ranks for real ---------------------------------------------------------------------

def test_every_mode_trains_on_two_gloo_ranks_with_equal_replicas_and_disjoint_lines(tiny_store, tmp_path):
    from ocr_robust.data.store import FolderStore, FolderWriter

    src, halves = FolderStore(tiny_store), []
    for k in range(2):  # two shards, read as one store by both ranks
        halves.append(tmp_path / f"half{k}")
        with FolderWriter(halves[-1]) as w:
            for i in range(k, len(src), 2):
                w.add(f"{i}.png", src.text(i), src.image_bytes(i))
    result = tmp_path / "modes.json"
    torchrun(str(WORKER), "modes", ",".join(map(str, halves)), str(tmp_path / "runs"), str(result))
    report = json.loads(result.read_text())
    assert report["natural"]["train_lines"] == len(src)
    sharded, rank0 = report["natural"]["val_sharded"], report["natural"]["val_rank0"]
    assert sorted(map(tuple, sharded.pop("per_line"))) == sorted(map(tuple, rank0.pop("per_line")))
    assert sharded == rank0 and sharded["lines"] == len(src)  # the same figures either way
    assert set(report) == {"natural", "realtime", "pgd-at", "fgsm-rs", "free-at", "nsl", "trades"}
    for mode, r in report.items():
        a, b = r["checksums"]
        assert a == b, f"{mode}: the ranks' weights differ after training ({a} vs {b})"
        assert math.isfinite(r["loss"]) and r["steps"] > 0, mode
        r0, r1 = (set(x) for x in r["lines"])
        if mode == "realtime":  # the hard sampler: every line once, hard ones again, no batch on both ranks
            assert r0 | r1 == set(range(r["train_lines"])), mode
        else:
            assert not r0 & r1, f"{mode}: the ranks trained on the same lines"
            assert sorted(r["lines"][0] + r["lines"][1]) == list(range(r["train_lines"])), mode


def test_sigterm_to_one_rank_stops_both_and_the_resumed_run_equals_the_uninterrupted_one(tiny_store, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    torchrun("-m", "ocr_robust", *train_flags(tiny_store, straight))
    p = torchrun(str(WORKER), "kill", str(tiny_store), str(killed), "4")
    stop = json.loads(p.stdout.strip().splitlines()[-1])
    assert stop["stopped"] == "signal on another rank" and stop["step"] == 5  # rank 0 stopped with rank 1
    state = (killed / "last.state.pt")
    assert state.is_file()
    single = tmp_path / "single"  # the same checkpoint, resumed on one process
    single.mkdir()
    for f in killed.iterdir():
        if f.is_file():
            (single / f.name).write_bytes(f.read_bytes())
    torchrun("-m", "ocr_robust", *train_flags(tiny_store, killed), "--resume")
    want, got = load_file(str(straight / "last.safetensors")), load_file(str(killed / "last.safetensors"))
    assert want.keys() == got.keys()
    for k in want:
        assert np.array_equal(want[k], got[k]), k  # exact: same world size, same data order and draws
    one = subprocess.run([sys.executable, "-m", "ocr_robust", *train_flags(tiny_store, single), "--resume"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    assert "saved by 2 process(es), on 1: the data order changes" in one.stderr
    assert len((single / "metrics.jsonl").read_text().splitlines()) == 3  # it finished the run's 3 epochs
