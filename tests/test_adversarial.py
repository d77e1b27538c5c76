"""The realtime adversary, the attacks and the defences, on a tiny model and real lines."""

import json
import random

import numpy as np
import pytest
import torch
from conftest import short_lines

from ocr_robust.adversarial.attacks import confusable_attack, fgsm, pgd
from ocr_robust.adversarial.confusion import (
    TextConfuser,
    confuse_class,
    confuse_multilabel,
    confuse_segmentation,
    random_edit,
)
from ocr_robust.adversarial.perturb import AdversarialLayer, parse_eps
from ocr_robust.charset import Charset, ConfusableTable
from ocr_robust.cli import main
from ocr_robust.data.dataset import collate
from ocr_robust.data.notext import KINDS, add_notext, make_notext
from ocr_robust.data.sampler import HardExampleSampler
from ocr_robust.losses import ctc_per_line
from ocr_robust.models import build_model, model_state
from ocr_robust.training import MODES, StepContext, TrainConfig, Trainer
from ocr_robust.training.modes.realtime import RealtimeMode

CS = Charset.load("latin")
TABLE = ConfusableTable.load("confusables", CS)


@pytest.fixture(scope="module")
def small_store(lines_store, tmp_path_factory):
    return short_lines(lines_store, tmp_path_factory.mktemp("small"), 16, min_len=3, max_len=16)


@pytest.fixture(scope="module")
def trained(small_store, tmp_path_factory):
    """A run of the small model, two epochs of natural training."""
    out = tmp_path_factory.mktemp("nat")
    cfg = TrainConfig(data=str(small_store), val=str(small_store), out=str(out), epochs=2, batch_size=8, lr=5e-3,
                      augment=0.0, seed=0, report_images=0)
    r = Trainer(cfg, progress=False).fit()
    from ocr_robust.runs import load_run
    model, _, _ = load_run(out)
    return out, model, r


def batch_of(store, n=8):
    from ocr_robust.data.dataset import LineDataset
    ds = LineDataset.open(store, CS)
    return collate([ds[i] for i in range(n)])


def ctx(step=0, **kw):
    return StepContext(torch.device("cpu"), False, 0, step, CS, {}, seed=0, **kw)


# --- label confusion --------------------------------------------------------------------------------------------

def test_text_confusion_only_makes_table_substitutions():
    conf = TextConfuser(TABLE, CS, rate=0.2, max_subs=3)
    rng = random.Random(1)
    pairs = {(e.source, e.target) for e in TABLE.entries}
    for text in ["hCG 12.5 mIU/mL", "Ferritin 0.81 ng/ml", "modern illicit 1O0", "Rn turn clam"]:
        for _ in range(30):
            subs = TABLE.substitutions(text, rng, conf.n_subs(text))
            assert subs and all((s, t) in pairs for _, s, t in subs)
            out = conf.confuse(text, rng)
            assert out != text


def test_lines_without_confusables_and_empty_lines_get_a_fallback():
    conf = TextConfuser(TABLE, CS)
    rng = random.Random(0)
    plain = "# JL#"
    assert not TABLE.candidates(plain)
    import editdistance
    for _ in range(20):
        out = conf.confuse(plain, rng)
        assert out != plain and editdistance.eval(out, plain) == 1 and not CS.missing(out)
    assert conf.confuse("", rng).strip() and conf.confuse("   ", rng).strip()  # adversary aims at hallucination
    assert TextConfuser(TABLE, CS, fallback="none").confuse(plain, rng) == plain
    assert random_edit("a", ["b"], rng) != "a"


def test_generic_confusions():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (200,), generator=g)
    c = confuse_class(y, 5, g)
    assert (c != y).all() and c.min() >= 0 and c.max() < 5
    oh = torch.nn.functional.one_hot(y, 5).float()
    assert (confuse_class(oh, 5, g).argmax(1) != y).all()
    m = torch.tensor([[1, 0, 1], [0, 0, 0]])
    assert confuse_multilabel(m).tolist() == [[0, 1, 0], [1, 1, 1]]
    assert confuse_multilabel(m, "zeros").sum() == 0
    mask = torch.randint(0, 4, (8, 8), generator=g)
    r = confuse_segmentation(mask, 4, "remap", g)
    assert (r != mask).all()
    # a remap is a permutation: equal classes stay equal
    for k in range(4):
        assert r[mask == k].unique().numel() <= 1
    assert confuse_segmentation(mask, 4, "zeros").sum() == 0


# --- the adversarial layer --------------------------------------------------------------------------------------

def test_adversarial_layer_is_zero_at_reset_and_clipped_and_bounded():
    x = torch.rand(3, 1, 32, 40) * 255
    widths = torch.tensor([40, 20, 8])
    for norm, eps in ((None, None), ("linf", 4 / 255), ("l2", 1.0)):
        layer = AdversarialLayer(norm, eps)
        d = layer.reset(x, widths)
        assert d.requires_grad and torch.equal(d, torch.zeros_like(x)) and torch.equal(layer(x), x)
        d.data.normal_(0, 500.0)
        layer.project()
        y = layer(x)
        assert y.min() >= 0 and y.max() <= 255
        assert torch.equal(((x + d) >= 0) & ((x + d) <= 255), torch.ones_like(x, dtype=torch.bool))
        assert d[1, ..., 20:].abs().max() == 0 and d[2, ..., 8:].abs().max() == 0  # padding untouched
        if norm == "linf":
            assert d.abs().max() <= 4 + 1e-4
        if norm == "l2":
            assert d.flatten(1).norm(dim=1).max() <= 255 + 1e-3
        d2 = layer.reset(x, widths)  # the next batch starts from zero again
        assert d2.abs().max() == 0
    assert parse_eps("4/255") == pytest.approx(4 / 255) and parse_eps(0.5) == 0.5 and parse_eps(None) is None
    with pytest.raises(ValueError):
        parse_eps("four")


def test_a_low_frequency_perturbation_is_a_smooth_grid_inside_its_budget_and_the_line():
    x = torch.rand(2, 1, 32, 48) * 255
    widths = torch.tensor([48, 20])
    for norm, eps in (("linf", 16 / 255), ("l2", 1.0)):
        layer = AdversarialLayer(norm, eps, basis="lowfreq", cell=8)
        d = layer.reset(x, widths)
        assert d.shape == (2, 1, 4, 6) and d.requires_grad and torch.equal(layer(x), x)
        d.data.normal_(0, 500.0)
        layer.project()
        full = layer.full()
        assert full[1, ..., 20:].abs().max() == 0  # padding untouched
        if norm == "linf":
            assert full.abs().max() <= 16 + 1e-4 and d.abs().max() <= 16 + 1e-4
        else:
            assert full.flatten(1).norm(dim=1).max() <= 255 + 1e-3
        # smooth: neighbouring pixels differ by at most a cell's share of the grid's step
        step = (d[..., :, 1:] - d[..., :, :-1]).abs().max()
        assert (full[0, ..., 1:] - full[0, ..., :-1]).abs().max() <= step / 8 + 1e-4
        y = layer(x)
        assert y.min() >= 0 and y.max() <= 255
        (g,) = torch.autograd.grad(layer(x)[:, :, :, :10].sum(), d)  # the grid gets the gradient
        assert g[:, :, :, :2].abs().sum() > 0 and g[:, :, :, 3:].abs().sum() == 0
    with pytest.raises(ValueError, match="basis"):
        AdversarialLayer("linf", 0.1, basis="strokes")


# --- the realtime step ------------------------------------------------------------------------------------------

def test_realtime_step_routes_gradients_and_equals_the_big_batch_gradient(small_store, trained):
    _, model0, _ = trained
    model = build_model(model0.cfg)
    model.load_state_dict(model0.state_dict())
    model.eval()  # BN and dropout fixed, so a big batch and its pieces see the same network
    batch = batch_of(small_store)
    mode = RealtimeMode(preset="seed", max_inner_steps=4, adv_lr=30000.0, plateau_tol=0.0)
    mode.trace = []
    params = [p for p in model.parameters()]
    for p in params:
        p.grad = None
    stats = mode.step(model, batch, ctx())
    grads = [p.grad.clone() for p in params]
    confused, steps = mode.trace[0]
    assert torch.equal(steps[0][0], batch["images"])  # S1: the perturbation starts at zero
    assert 1 <= len(steps) <= 4 and stats["inner_steps"] >= 1
    # the big batch: every intermediate image of every line still active at that step
    xs = torch.cat([x[a] for x, a in steps])
    idx = torch.cat([torch.nonzero(a).flatten() for _, a in steps])
    sub = collate([{"image": np.zeros((32, 4), np.uint8), "text": batch["texts"][i],
                    "target": CS.encode(batch["texts"][i]), "index": 0} for i in idx.tolist()])
    for p in params:
        p.grad = None
    ctc_per_line(model(xs), sub["targets"], sub["target_lengths"], batch["widths"][idx]).mean().backward()
    for g, p in zip(grads, params):
        assert torch.allclose(g, p.grad, rtol=1e-4, atol=1e-6)  # L1 only, scaled to the big-batch mean
    # the perturbation's first update is the adversary's SGD step on L2 alone
    if len(steps) > 1:
        from ocr_robust.losses import encode_targets
        x = batch["images"].clone().requires_grad_(True)
        t, lengths = encode_targets(confused, CS)
        (g,) = torch.autograd.grad(ctc_per_line(model(x), t, lengths, batch["widths"]).sum(), x)
        active = steps[0][1].view(-1, 1, 1, 1).float()
        from ocr_robust.adversarial.perturb import width_mask
        expect = (batch["images"] - 30000.0 * g * active * width_mask(x, batch["widths"])).clamp(0, 255)
        assert torch.allclose(steps[1][0], expect, atol=1e-3)


def test_realtime_weights_never_see_l2(small_store, trained):
    """With the confused label equal to the true one, L2 = L1: if L2 reached the weights
    the gradient would double; it must equal the natural gradient on the same images."""
    _, model0, _ = trained
    model = build_model(model0.cfg)
    model.load_state_dict(model0.state_dict())
    model.eval()
    batch = batch_of(small_store)
    mode = RealtimeMode(max_inner_steps=1)
    mode.confuser_for(CS).confuse = lambda text, rng: text
    for p in model.parameters():
        p.grad = None
    mode.step(model, batch, ctx())
    got = [p.grad.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    ctc_per_line(model(batch["images"]), batch["targets"], batch["target_lengths"], batch["widths"]).mean().backward()
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(got, model.parameters()))


# --- attacks ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm,eps", [("linf", 4 / 255), ("l2", 0.5)])
def test_attacks_raise_the_loss_stay_in_budget_and_leave_the_model_alone(small_store, trained, norm, eps):
    _, model, _ = trained
    model.train()
    batch = batch_of(small_store)
    x, w = batch["images"], batch["widths"]
    args = (model, x, w, batch["targets"], batch["target_lengths"])
    with model_state(model, train=False):
        clean = ctc_per_line(model(x), batch["targets"], batch["target_lengths"], w)
        for r in (fgsm(*args, eps=eps, norm=norm), pgd(*args, eps=eps, norm=norm, steps=5, restarts=2,
                                                       generator=torch.Generator().manual_seed(0))):
            d = r.x_adv - x
            if norm == "linf":
                assert d.abs().max() <= eps * 255 + 1e-3
            else:
                assert d.flatten(1).norm(dim=1).max() <= eps * 255 + 1e-3
            assert r.x_adv.min() >= 0 and r.x_adv.max() <= 255
            assert r.loss.sum() > clean.sum()
            assert torch.allclose(r.loss, ctc_per_line(model(r.x_adv), batch["targets"], batch["target_lengths"], w),
                                  atol=1e-4)
    assert model.training  # state restored
    assert all(p.grad is None for p in model.parameters())  # attacks differentiate the input only


class ToyCTC(torch.nn.Module):
    """A toy recognizer with the CRNN contract: each 4-pixel column strip is classified
    on its own by one linear map (T = W / 4 frames)."""

    def __init__(self, classes):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Conv2d(1, classes, (32, 4), stride=(1, 4))

    def forward(self, x):
        return self.proj(x / 255.0 - 0.5).squeeze(2).permute(2, 0, 1).log_softmax(-1)


def test_targeted_confusable_attack_reaches_its_target(small_store):
    model = ToyCTC(CS.num_classes)
    batch = batch_of(small_store)
    conf = TextConfuser(TABLE, CS)
    confused = [conf.confuse(t, random.Random(i)) for i, t in enumerate(batch["texts"])]
    with model_state(model):
        r = confusable_attack(model, batch["images"], batch["widths"], confused, CS, eps=128 / 255, steps=100,
                              step_size=4 / 255)
    assert int(r.success.sum()) >= 5 and (r.x_adv - batch["images"]).abs().max() <= 128 + 1e-3
    assert all(t == c for t, c, s in zip(r.texts, confused, r.success.tolist()) if s)


# --- training modes, sampler, no-text, stop rules ---------------------------------------------------------------

@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_training_mode_runs_and_learns(small_store, trained, tmp_path, mode):
    init, _, _ = trained
    opts = {"realtime": {"max_inner_steps": 2}, "pgd-at": {"steps": 2}, "trades": {"steps": 2},
            "free-at": {"replays": 2}}.get(mode, {})
    cfg = TrainConfig(data=str(small_store), val=str(small_store), out=str(tmp_path / mode), epochs=1, batch_size=8,
                      lr=1e-3, augment=0.0, mode=mode, mode_options=opts, init_from=str(init), report_images=2)
    t = Trainer(cfg, progress=False)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    r = t.fit()
    assert r["epochs"] == 1 and np.isfinite(r["history"][0]["loss"]) and r["bad_steps"] == 0
    assert any(not torch.equal(before[k], v) for k, v in t.model.state_dict().items())
    assert (tmp_path / mode / "adversarial" / "epoch-001" / "index.html").is_file()


def test_stop_file_ends_training_with_a_checkpoint_and_resume_is_exact(small_store, tmp_path):
    def cfg(out):
        return TrainConfig(data=str(small_store), val=str(small_store), out=str(out), epochs=2, batch_size=4,
                           lr=2e-3, augment=0.0, mode="realtime", mode_options={"max_inner_steps": 2},
                           report_images=0, seed=3, device="cpu")  # bit-exact: CPU (CUDA's CTC backward is not)
    straight = Trainer(cfg(tmp_path / "a"), progress=False)
    assert straight.fit()["stopped"] == "epochs"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "STOP").write_text("")
    t = Trainer(cfg(tmp_path / "b"), progress=False)
    r = t.fit()
    assert r["stopped"].startswith("stop file") and t.batch_in_epoch == 1
    assert (tmp_path / "b" / "last.state.pt").is_file() and (tmp_path / "b" / "last.safetensors").is_file()
    (tmp_path / "b" / "STOP").unlink()
    t2 = Trainer(cfg(tmp_path / "b"), progress=False)
    assert t2.resume() and t2.batch_in_epoch == 1 and t2.step == 1
    assert t2.fit()["stopped"] == "epochs"
    a = straight.model.state_dict()
    assert all(torch.equal(a[k], v) for k, v in t2.model.state_dict().items())


def test_stop_criteria(small_store, trained, tmp_path):
    init, _, _ = trained
    base = dict(data=str(small_store), val=str(small_store), epochs=6, batch_size=8, lr=1e-9, augment=0.0,
                init_from=str(init), report_images=0)
    r = Trainer(TrainConfig(out=str(tmp_path / "v"), stop_val_patience=2, **base), progress=False).fit()
    assert r["stopped"].startswith("validation plateau") and r["epochs"] == 3
    r = Trainer(TrainConfig(out=str(tmp_path / "l"), stop_loss_patience=1, stop_min_delta=10.0, **base),
                progress=False).fit()
    assert r["stopped"].startswith("loss plateau") and r["epochs"] == 2
    r = Trainer(TrainConfig(out=str(tmp_path / "e"), stop_easy_share=0.0, mode="realtime", **base),
                progress=False).fit()
    assert r["stopped"].startswith("easy share") and r["epochs"] == 1
    rec = json.loads((tmp_path / "e" / "metrics.jsonl").read_text().splitlines()[0])
    assert 0.0 <= rec["val_easy_share"] <= 1.0


def test_hard_example_sampler_visits_all_and_favours_hard_lines():
    widths = [10 + (i % 7) for i in range(100)]
    s = HardExampleSampler(widths, 8, seed=0, extra=0.5)
    s.update(range(100), [5.0 if i < 10 else 0.1 for i in range(100)], [i >= 10 for i in range(100)])
    for epoch in range(3):
        s.set_epoch(epoch)
        drawn = [i for b in s for i in b]
        assert set(drawn) == set(range(100)) and len(drawn) == 150 and len(list(s)) == len(s)
        counts = np.bincount(drawn, minlength=100)
        assert counts[:10].mean() > 3 * counts[10:].mean()
    s2 = HardExampleSampler(widths, 8, seed=0, extra=0.5)
    s2.load_state_dict(s.state_dict())
    s2.set_epoch(2)
    assert s2.batches() == s.batches()


def test_notext_images_have_empty_labels(small_store):
    rng = np.random.default_rng(0)
    for kind in KINDS:
        img = make_notext(rng, 100, kind=kind)
        assert img.shape == (32, 100) and img.dtype == np.uint8
    batch = batch_of(small_store, 8)
    out = add_notext(batch, 0.5, rng)
    assert len(out["texts"]) == 12 and out["texts"][8:] == [""] * 4 and out["images"].shape[0] == 12
    assert out["target_lengths"][8:].sum() == 0 and (out["widths"][8:] <= out["images"].shape[-1]).all()
    assert out["targets"].numel() == batch["targets"].numel()


def test_notext_rules_draw_ink_on_paper_reproducibly():
    """The ``rules`` kind draws rules, bars or boxes (grey ink on a light paper) in nearly
    every image, and the same generator state draws the same image."""
    imgs = [make_notext(np.random.default_rng(s), 160, kind="rules") for s in range(60)]
    assert all(i.shape == (32, 160) and i.dtype == np.uint8 for i in imgs)
    inked = [int(i.max()) - int(i.min()) > 40 for i in imgs]
    assert sum(inked) >= 55  # a light blur or a grey rule on grey paper may fall under 40 levels
    assert all(np.median(i) >= 150 for i in imgs)  # paper stays paper: marks, not fills
    assert np.array_equal(make_notext(np.random.default_rng(3), 160, kind="rules"), imgs[3])
    with pytest.raises(ValueError, match="rules"):
        make_notext(np.random.default_rng(0), 10, kind="nope")


def test_notext_kinds_are_chosen_by_the_config(tmp_path):
    """``notext_source: procedural:KIND,...`` draws only those kinds; the default leaves
    ``rules`` out; an unknown kind is one clear error naming it."""
    from ocr_robust.data.notext import DEFAULT_KINDS, procedural

    assert "rules" not in DEFAULT_KINDS and set(DEFAULT_KINDS) < set(KINDS)
    solid = procedural(("solid",))
    rng = np.random.default_rng(0)
    assert all(np.ptp(solid(rng, 80, 32)) == 0 for _ in range(20))  # flat grey every time
    TrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), notext_source="procedural:rules,watermark")
    with pytest.raises(ValueError, match="'nope'"):
        TrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), notext_source="procedural:rules,nope")


def test_attack_command(trained, small_store, tmp_path, capsys):
    run, _, _ = trained
    rc = main(["attack", "--model", str(run), "--data", str(small_store), "--attack", "pgd", "--eps", "2/255,8/255",
               "--steps", "3", "--json", str(tmp_path / "a.json"), "--save-examples", str(tmp_path / "ex")])
    out = capsys.readouterr().out
    assert rc == 0 and "robust acc" in out
    rows = json.loads((tmp_path / "a.json").read_text())
    assert [r["eps_text"] for r in rows] == ["2/255", "8/255"] and rows[0]["lines"] == 16
    assert rows[1]["robust_word_acc"] <= rows[0]["robust_word_acc"] <= rows[0]["clean_word_acc"]
    assert (tmp_path / "ex").is_dir() and list((tmp_path / "ex").glob("*/index.html"))
    rc = main(["attack", "--model", str(run), "--data", str(small_store), "--attack", "confusable", "--eps", "16/255",
               "--steps", "20", "--limit", "8"])
    assert rc == 0 and "%" in capsys.readouterr().out


def test_attack_command_reports_bad_lines_and_empty_stores(trained, small_store, tmp_path, capsys):
    import shutil
    run, _, _ = trained
    data = tmp_path / "d"
    shutil.copytree(small_store, data)
    with open(data / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("images/0.png\tStraße\n")
    assert main(["attack", "--model", str(run), "--data", str(data), "--steps", "1", "--limit", "4"]) == 0
    err = capsys.readouterr().err
    assert "1 lines skipped" in err and "'ß'" in err
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "labels.tsv").write_text("images/0.png\tStraße\n", encoding="utf-8")
    shutil.copytree(small_store / "images", tmp_path / "e" / "images")
    assert main(["attack", "--model", str(run), "--data", str(tmp_path / "e"), "--steps", "1"]) == 2
    assert "no usable lines to attack" in capsys.readouterr().err


def test_sigterm_finishes_the_step_saves_and_resume_continues(small_store, tmp_path, monkeypatch):
    import os
    import signal

    from ocr_robust import training
    from ocr_robust.training.modes.natural import NaturalMode

    class SelfSignalling(NaturalMode):
        name = "self-signalling"

        def step(self, model, batch, ctx):
            if ctx.step == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-step, as from a scheduler
            return super().step(model, batch, ctx)

    monkeypatch.setitem(training.MODES, "self-signalling", SelfSignalling)
    cfg = TrainConfig(data=str(small_store), val=str(small_store), out=str(tmp_path / "r"), epochs=2, batch_size=4,
                      augment=0.0, mode="self-signalling", report_images=0)
    t = Trainer(cfg, progress=False)
    before = signal.getsignal(signal.SIGTERM)
    r = t.fit()
    assert r["stopped"] == "signal SIGTERM" and t.step == 2 and t.batch_in_epoch == 2
    assert signal.getsignal(signal.SIGTERM) == before  # the previous handler is back
    t2 = Trainer(cfg, progress=False)
    assert t2.resume() and t2.step == 2
    monkeypatch.setitem(training.MODES, "self-signalling", NaturalMode)
    t2.mode = NaturalMode()
    assert t2.fit()["stopped"] == "epochs" and t2.epoch == 2


def test_a_new_attack_is_one_registered_function(trained, small_store, monkeypatch):
    """The attack registry: an attack registered by name runs in ``attack_store`` (and so in
    ``ocr-robust attack`` and the benchmark) with its spec; targeted attacks get targets."""
    from ocr_robust.adversarial.attacks import ATTACKS, AttackResult, AttackSpec, read_texts, register_attack
    from ocr_robust.adversarial.perturb import project_, to_pixels, width_mask
    from ocr_robust.evaluation.attacks import attack_store
    from ocr_robust.runs import load_torch_model

    monkeypatch.setattr("ocr_robust.adversarial.attacks.registry.ATTACKS", dict(ATTACKS))
    seen: list[AttackSpec] = []

    @register_attack("sign-noise")
    def sign_noise(model, x, batch, spec, *, charset, generator=None, confused=None):
        """Random +-eps noise: the blind baseline a gradient attack must beat."""
        seen.append(spec)
        mask = width_mask(x, batch["widths"])
        delta = to_pixels(spec.eps) * torch.randint(0, 2, x.shape, generator=generator).float().mul(2).sub(1)
        project_(delta, x, "linf", to_pixels(spec.eps), mask)
        with torch.no_grad():
            logp = model((x + delta).clamp(0, 255))
        return AttackResult((x + delta).clamp(0, 255), torch.zeros(x.shape[0]), torch.ones(x.shape[0]),
                            texts=read_texts(logp, batch["widths"], charset))

    with pytest.raises(ValueError, match="registered twice"):
        register_attack("sign-noise")(sign_noise)
    run, _, _ = trained
    model, charset, _ = load_torch_model(run)
    row = attack_store(model, charset, small_store, "sign-noise", "8/255", steps=3)
    assert seen and seen[0].eps == pytest.approx(8 / 255) and seen[0].steps == 3
    assert row["attack"] == "sign-noise" and row["lines"] == 16 and row["targeted_success"] is None
    pgd_row = attack_store(model, charset, small_store, "pgd", "8/255", steps=3)
    assert pgd_row["robust_word_acc"] <= row["robust_word_acc"]
    with pytest.raises(ValueError, match="unknown attack 'nope'; choose from .*pgd.*sign-noise"):
        attack_store(model, charset, small_store, "nope")
