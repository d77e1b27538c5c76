import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ocr_robust.cli import main
from ocr_robust.data.store import FolderStore
from ocr_robust.errors import InputError
from ocr_robust.export import export
from ocr_robust.images import decode_grey
from ocr_robust.inference import Recognizer
from ocr_robust.runs import load_run
from ocr_robust.training import TrainConfig, Trainer


def test_few_steps_lower_the_loss_and_write_a_run(tiny_run):
    out, r = tiny_run
    losses = [h["loss"] for h in r["history"]]
    assert r["epochs"] == 12 and r["steps"] == 36
    assert losses[-1] < 0.7 * losses[0]
    for f in ("config.yaml", "charset.txt", "best.safetensors", "last.safetensors", "last.state.pt", "metrics.jsonl"):
        assert (out / f).is_file()
    model, charset, cfg = load_run(out)
    assert cfg["mode"] == "natural" and charset.num_classes == model.cfg.num_classes


def test_interrupted_then_resumed_run_equals_the_uninterrupted_one(tiny_run, tiny_store, tmp_path):
    out, _ = tiny_run
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=12, batch_size=8,
                      lr=3e-3, augment=0.0, seed=1, device="cpu")  # bit-exact: CPU (see tiny_run)
    assert Trainer(cfg, progress=False).fit(max_epochs=5)["epochs"] == 5
    t = Trainer(cfg, progress=False)
    assert t.resume() and t.epoch == 5 and t.step == 15
    r = t.fit()
    assert r["epochs"] == 12 and r["steps"] == 36
    from safetensors.torch import load_file
    a, b = load_file(str(out / "last.safetensors")), load_file(str(tmp_path / "run" / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = TrainConfig(**{**cfg.__dict__, "epochs": 20})
    with pytest.raises(InputError, match="resume with the run's own epochs"):
        Trainer(other, progress=False).resume()


def test_one_cycle_follows_steps_or_the_time_budget_whichever_runs_out_first(tiny_store, tmp_path):
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=10, batch_size=8,
                      lr=1e-3, augment=0.0, warmup=0.1)
    t = Trainer(cfg, progress=False)
    n = t.total_steps
    assert n == 30
    assert t._lr_factor(0) == pytest.approx(1 / 25) and t._lr_factor(3) == pytest.approx(1.0)
    factors = [t._lr_factor(s) for s in range(3, n + 1)]
    assert all(a >= b for a, b in zip(factors, factors[1:])) and factors[-1] < 1e-5
    # with a time limit, half the budget spent counts as half the schedule even at step 0
    t.cfg = dataclasses.replace(t.cfg, time_limit_min=1.0)
    t._session_t0, t._seconds_base = time.perf_counter() - 20.0, 10.0
    assert t._lr_factor(0) == pytest.approx(t._lr_factor(n // 2), abs=0.02)
    t._session_t0 = time.perf_counter() - 60.0
    assert t._lr_factor(0) < 1e-5
    # a time-limited run keeps its spent time across a resume
    cfg2 = TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "run2"), "time_limit_min": 5.0})
    Trainer(cfg2, progress=False).fit(max_epochs=2)
    t2 = Trainer(cfg2, progress=False)
    assert t2.resume() and t2.train_seconds > 0


def test_on_step_hook_stops_the_run_and_its_time_is_not_training_time(tiny_store, tmp_path):
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=10, batch_size=8,
                      lr=1e-3, augment=0.0)
    t = Trainer(cfg, progress=False)
    seen = []

    def hook(tr: Trainer) -> str | None:
        seen.append(tr.training_seconds())
        time.sleep(0.3)  # a slow check (say, a validation pass) must not count as training
        return "target reached" if tr.step == 4 else None

    r = t.fit(on_step=hook)
    assert r["stopped"] == "target reached" and r["steps"] == 4 and len(seen) == 4
    # the wall-clock run holds the four pauses; the training time does not
    assert r["seconds"] - t.training_seconds() == pytest.approx(4 * 0.3, abs=0.1)
    assert all(a < b for a, b in zip(seen, seen[1:])) and seen[-1] < t.training_seconds()
    t2 = Trainer(cfg, progress=False)
    assert t2.resume() and t2.step == 4  # stopped by the hook: a checkpoint to continue from


def test_export_parity_and_recognize_agree_with_pytorch(tiny_run, tiny_store, tmp_path):
    out, _ = tiny_run
    r = export(out, tmp_path / "exp")
    assert r["parity"]["onnx"]["max_abs_diff"] < 1e-3 and r["parity"]["onnx"]["agreement"] == 1.0
    meta = json.loads((tmp_path / "exp" / "model.json").read_text())
    assert meta["input"]["height"] == 32 and meta["charset"][0] == " " and meta["blank"] == 0
    store = FolderStore(tiny_store)
    images = [decode_grey(store.image_bytes(i), "x") for i in range(len(store))]
    a = Recognizer(out).recognize(images)
    b = Recognizer(tmp_path / "exp").recognize(images)
    assert [d.text for d in a] == [d.text for d in b]
    assert all(abs(x.confidence - y.confidence) < 1e-3 for x, y in zip(a, b))
    from ocr_robust.images import pad_batch, resize_to_height
    batch, _ = pad_batch([resize_to_height(im) for im in images[:8]])
    ra, rb = Recognizer(out), Recognizer(tmp_path / "exp")
    assert np.allclose(ra.logprobs(batch), rb.logprobs(batch), atol=1e-3)


def test_bench_and_recognize_from_the_command_line(tiny_run, tiny_store, tmp_path, capsys):
    out, _ = tiny_run
    assert main(["bench", "--model", str(out), "--data", str(tiny_store), "--json", str(tmp_path / "b.json")]) == 0
    table = capsys.readouterr().out
    assert "word acc" in table and str(tiny_store)[-20:] in table
    (row,) = json.loads((tmp_path / "b.json").read_text())
    assert row["lines"] == 24 and 0 <= row["word_acc"] <= 1 and row["lines_per_s"] > 0
    img = FolderStore(tiny_store).path / FolderStore(tiny_store).name(0)
    assert main(["recognize", "--model", str(out), str(img), str(img)]) == 0
    assert capsys.readouterr().out.count("\n") == 2  # one line per image, even when it reads nothing
    rc = main(["recognize", "--model", str(tmp_path), str(img)])
    err = capsys.readouterr().err
    assert rc == 2 and "not a model: expected a training run" in err


def test_train_command_reports_skipped_lines(tiny_store, tmp_path, capsys):
    import shutil
    data = tmp_path / "d"
    shutil.copytree(tiny_store, data)
    with open(data / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("images/0.png\tStraße\nimages/nope.png\tmissing\n")
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--epochs", "1", "--quiet",
               "--augment", "0"])
    err = capsys.readouterr().err
    assert rc == 0 and "2 lines skipped" in err and "labels.tsv:26" in err and "'ß'" in err


def test_shipped_configs_load_and_bad_keys_name_the_file(tmp_path):
    for f in sorted((Path(__file__).parent.parent / "configs").glob("*.yaml")):
        cfg = TrainConfig.from_yaml(f, data="x")
        assert cfg.model in ("crnn-small", "crnn-large") and cfg.data == "x"
    (tmp_path / "bad.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.yaml: unknown config keys: learning_rate"):
        TrainConfig.from_yaml(tmp_path / "bad.yaml")


def test_init_from_weights_of_another_architecture_is_refused(tiny_store, tmp_path):
    from ocr_robust.charset import Charset
    from ocr_robust.models import build_model
    from ocr_robust.runs import save_weights

    n = Charset.load("latin").num_classes
    old = build_model({"name": "crnn-small", "channels": [16, 32, 64, 96], "rnn_hidden": 96, "num_classes": n})
    assert old.cfg.stem_stride == 1  # a model saved before the stride-2 stem: same tensor names and shapes
    save_weights(old, tmp_path / "old.safetensors")
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=1, batch_size=8,
                      init_from=str(tmp_path / "old.safetensors"))
    with pytest.raises(InputError, match="another architecture.*stem_stride 1 \\(this run: 2\\)"):
        Trainer(cfg, progress=False)
    save_weights(build_model("crnn-small", n), tmp_path / "new.safetensors")
    cfg = dataclasses.replace(cfg, init_from=str(tmp_path / "new.safetensors"))
    Trainer(cfg, progress=False)  # the same architecture loads


def test_a_run_whose_config_builds_no_model_is_one_error_naming_config_yaml(tiny_run, tmp_path):
    import shutil

    import yaml

    out, _ = tiny_run
    bad = tmp_path / "bad-run"
    shutil.copytree(out, bad)
    cfg = yaml.safe_load((bad / "config.yaml").read_text(encoding="utf-8"))
    cfg["model_config"]["stem_stride"] = 3
    (bad / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.raises(InputError, match=r"config\.yaml.*stem_stride must be 1 or 2"):
        load_run(bad)
    del cfg["model_config"]
    (bad / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.raises(InputError, match=r"config\.yaml.*model_config"):
        load_run(bad)


def test_full_run_script_builds_sharded_corpus_trains_and_benches(tiny_store, tmp_path):
    """benchmarks/full_run.sh end to end at toy size: two synth shards with their own seeds
    in one LMDB store, the shipped full config (model and epochs overridden), the bench
    table over the three held-out sets; a second call with --resume reuses the corpus."""
    root = Path(__file__).resolve().parents[1]
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in ("test-clean", "test-watermark", "test-lowres"):
        (tests / name).symlink_to(tiny_store, target_is_directory=True)
    env = {**os.environ, "OCR": f"{sys.executable} -m ocr_robust", "PAGES": "3", "SHARDS": "2"}
    work = tmp_path / "work"
    cmd = ["bash", str(root / "benchmarks" / "full_run.sh"), str(work), str(tests),
           "--model", "crnn-small", "--epochs", "1", "--device", "cpu", "--quiet"]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    shards = sorted(p.name for p in (work / "pdf").iterdir())
    assert shards == ["s1", "s2"]
    assert [json.loads((work / "pdf" / s / "synth.json").read_text())["pages"] for s in shards] == [2, 1]
    ingest = json.loads((work / "lines" / "train.lmdb" / "ingest.json").read_text())
    assert ingest["files"] == 2 and ingest["pages_ok"] == 3 and ingest["lines"] > 100
    rows = json.loads((work / "bench.json").read_text())
    assert [Path(r["data"]).name for r in rows] == ["test-clean", "test-watermark", "test-lowres"]
    assert all(r["lines"] == 24 for r in rows)
    stamp = (work / "lines" / "train.lmdb" / "ingest.json").stat().st_mtime_ns
    table = (work / "bench.json").stat().st_mtime_ns
    again = subprocess.run(cmd + ["--resume"], cwd=root, env={**env, "BENCH": "0"}, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "synth:" not in again.stdout and (work / "lines" / "train.lmdb" / "ingest.json").stat().st_mtime_ns == stamp
    assert (work / "bench.json").stat().st_mtime_ns == table  # BENCH=0: no benchmark


def test_full_run_script_refuses_missing_test_stores_before_any_work(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OCR": f"{sys.executable} -m ocr_robust", "PAGES": "2", "SHARDS": "1"}
    done = subprocess.run(["bash", str(root / "benchmarks" / "full_run.sh"), str(tmp_path / "work"),
                           str(tmp_path / "nowhere")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert f"{tmp_path / 'nowhere'}/test-clean: no such test store" in done.stderr
    assert not (tmp_path / "work").exists()
