"""Training modes are one registered class each: the Trainer takes every choice a mode makes
(sampler, no-text rate, replays, validation attack) from the class, never from its name."""

import pytest

from ocr_robust.data.sampler import HardExampleSampler
from ocr_robust.training import MODES, TrainConfig, Trainer, TrainingMode, register_mode
from ocr_robust.training.modes.natural import NaturalMode


def test_a_new_mode_is_one_registered_class(tiny_store, tmp_path):

    class Twice(NaturalMode):  # a natural step on each batch, replayed twice, with hard-example sampling
        name = "twice-for-test"
        replays = 2
        sampler = "hard"
        notext_rate = 0.25
        steps: list[int] = []

        def step(self, model, batch, ctx):
            self.steps.append(ctx.replay)
            return super().step(model, batch, ctx)

    try:
        register_mode(Twice)
        cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "r"), epochs=1, batch_size=8,
                          augment=0.0, mode="twice-for-test", report_images=0, device="cpu")
        t = Trainer(cfg, progress=False)
        assert isinstance(t.sampler, HardExampleSampler) and t.notext_rate == 0.25 and t.replays == 2
        r = t.fit()
        assert r["epochs"] == 1 and Twice.steps == [0, 1] * len(t.sampler)
        # the config still overrides what the mode would choose
        t = Trainer(TrainConfig(**{**cfg.__dict__, "sampler": "bucket", "notext_rate": 0.0}), progress=False)
        assert not isinstance(t.sampler, HardExampleSampler) and t.notext_rate == 0.0
        with pytest.raises(ValueError, match="taken"):
            register_mode(Twice)
    finally:
        MODES.pop("twice-for-test", None)


def test_every_mode_declares_its_hooks():
    assert {"natural", "realtime", "pgd-at", "free-at", "fgsm-rs", "nsl", "trades"} <= set(MODES)
    for name, cls in MODES.items():
        assert issubclass(cls, TrainingMode) and cls.name == name
        assert cls.sampler in ("bucket", "hard") and cls.replays >= 1 and 0 <= cls.notext_rate < 1
    assert MODES["realtime"].sampler == "hard" and MODES["realtime"].notext_rate == 0.05
    assert MODES["natural"]().val_attack() == {} and MODES["natural"]().confuser_for(None) is None


def test_the_realtime_validation_attack_takes_sign_steps():
    """S8's easy share and the human-check page: PGD-style sign steps within the adversary's
    budget (raw-gradient steps would change strength with the gradient's scale)."""
    import pytest

    va = MODES["realtime"]().val_attack()
    assert va["rule"] == "sign" and va["steps"] >= 10 and va["step_size"] == pytest.approx(va["eps"] / 4)
    assert MODES["realtime"](norm="l2", eps=0.5).val_attack()["rule"] == "l2"


def test_every_realtime_stop_rule_can_fire(tiny_store):
    """Success, the L2 plateau and the last step each end lines; a rule that could only fire
    at the last step is refused; a line with no confused target stays clean, one pass."""
    import pytest
    import torch

    from ocr_robust.charset import Charset
    from ocr_robust.data.dataset import LineDataset, collate
    from ocr_robust.models import build_model
    from ocr_robust.training import StepContext

    cs = Charset.load("latin")
    ds = LineDataset.open(tiny_store, cs)
    batch = collate([ds[i] for i in range(8)])
    model = build_model("crnn-small", num_classes=cs.num_classes)
    ctx = StepContext(torch.device("cpu"), False, 0, 0, cs, {}, seed=0)
    with pytest.raises(ValueError, match="can never stop a line before the last"):
        MODES["realtime"](max_inner_steps=3, plateau_patience=2)
    flat = MODES["realtime"](max_inner_steps=4, plateau_tol=1e9, plateau_patience=1)  # every L2 counts as flat
    stats = flat.step(model, batch, ctx)
    assert stats["inner_steps"] == 2.0  # stopped by the plateau at step 2 of 4, every line
    model.zero_grad()
    full = MODES["realtime"](max_inner_steps=4, plateau_tol=0.0)
    assert full.step(model, batch, ctx)["inner_steps"] == 4.0  # nothing else stops an untrained model's lines
    model.zero_grad()
    none = MODES["realtime"](max_inner_steps=4, plateau_tol=0.0, fallback="none")

    class Nothing:  # what fallback "none" gives a line without a confusable character: its own text
        charset = cs

        def confuse(self, text, rng):
            return text

    none.confuser = Nothing()
    s = none.step(model, batch, ctx)  # nothing to confuse: every line once, clean, no "success"
    assert s["inner_steps"] == 1.0 and s["adv_success"] == 0.0 and s["delta_linf"] == 0.0


def test_realtime_runs_the_model_on_the_active_lines_only(tiny_store):
    """A line that has stopped leaves the batch: the later inner steps forward only the
    lines still searching (here the odd ones; the even ones have nothing to confuse)."""
    import torch

    from ocr_robust.charset import Charset
    from ocr_robust.data.dataset import LineDataset, collate
    from ocr_robust.models import build_model
    from ocr_robust.training import StepContext

    cs = Charset.load("latin")
    ds = LineDataset.open(tiny_store, cs)
    batch = collate([ds[i] for i in range(8)])
    model = build_model("crnn-small", num_classes=cs.num_classes)
    ctx = StepContext(torch.device("cpu"), False, 0, 0, cs, {}, seed=0)
    mode = MODES["realtime"](max_inner_steps=4, plateau_tol=0.0)
    texts = batch["texts"]

    class Odd:  # the even lines keep their own text: no target, trained clean once
        charset = cs

        def confuse(self, text, rng):
            k = texts.index(text)
            return text if k % 2 == 0 else text + "x"

    mode.confuser = Odd()
    rows = []
    hook = model.register_forward_hook(lambda m, inp, out: rows.append(inp[0].shape[0]))
    try:
        stats = mode.step(model, batch, ctx)
    finally:
        hook.remove()
    assert rows == [8, 4, 4, 4] and stats["inner_steps"] == (4 + 4 * 4) / 8


def test_realtime_presets_and_the_sign_adversary():
    """``preset=seed`` is the seed's configuration, any option given replaces the preset's,
    and the sign adversary moves each pixel by exactly its step."""
    import pytest
    import torch

    from ocr_robust.adversarial.perturb import make_adv_optimizer

    seed = MODES["realtime"](preset="seed")
    assert (seed.norm, seed.eps, seed.adv_optimizer, seed.adv_lr, seed.max_inner_steps) == (None, None, "sgd",
                                                                                           20000.0, 3)
    d = MODES["realtime"]()
    assert d.preset == "default" and d.norm == "linf" and d.adv_optimizer == "sign"
    assert d.adv_lr == pytest.approx(4.0)  # "4/255" in pixels
    mixed = MODES["realtime"](preset="seed", max_inner_steps=5, plateau_patience=2)
    assert mixed.max_inner_steps == 5 and mixed.adv_optimizer == "sgd"
    with pytest.raises(ValueError, match="unknown realtime preset"):
        MODES["realtime"](preset="fastest")
    delta = torch.zeros(2, 3, requires_grad=True)
    opt = make_adv_optimizer("sign", [delta], 2.0)
    delta.grad = torch.tensor([[1e-9, -5.0, 0.0], [3.0, -1e-6, 2.0]])
    opt.step()
    assert delta.detach().tolist() == [[-2.0, 2.0, 0.0], [-2.0, 2.0, -2.0]]


def test_realtime_random_start_trains_its_first_step_on_a_noisy_line_within_the_budget(tiny_store):
    """``start`` draws the perturbation uniformly in its box, inside the budget and off the
    padding, the same for the same seed and step: the first inner step reads a noisy image,
    not the clean one; the default (the seed's S1) starts at zero."""
    import torch

    from ocr_robust.charset import Charset
    from ocr_robust.data.dataset import LineDataset, collate
    from ocr_robust.models import build_model
    from ocr_robust.training import StepContext

    cs = Charset.load("latin")
    ds = LineDataset.open(tiny_store, cs)
    batch = collate([ds[i] for i in range(6)])
    model = build_model("crnn-small", num_classes=cs.num_classes)
    ctx = StepContext(torch.device("cpu"), False, 0, 0, cs, {}, seed=0)
    x = batch["images"]
    pad = torch.arange(x.shape[-1])[None, :] >= batch["widths"][:, None]

    def first_input(**opts):
        mode = MODES["realtime"](eps="4/255", max_inner_steps=2, **opts)
        mode.trace = []
        mode.step(model, batch, ctx)
        model.zero_grad()
        return mode.trace[0][1][0][0]

    assert torch.equal(first_input(), x)
    noisy = first_input(start="2/255")
    d = noisy - x
    assert d.abs().max() <= 2.0 + 1e-4 and d.abs().mean() > 0.25  # white paper clips the upward half
    assert float(d.abs().amax(dim=(1, 2))[pad].max()) == 0.0  # the padding is never touched
    assert torch.equal(noisy, first_input(start="2/255"))
    assert first_input(start="8/255").sub(x).abs().max() <= 4.0 + 1e-4  # projected into eps 4/255


def test_realtime_low_frequency_adversary_trains_on_a_smooth_shade_change_within_the_budget(tiny_store):
    """``basis=lowfreq``: the second inner step reads the line plus a perturbation that is a
    bilinear upsampling of a coarse grid (neighbouring pixels differ little), inside eps and
    off the padding, and the weights get the gradient of both images."""
    import torch

    from ocr_robust.charset import Charset
    from ocr_robust.data.dataset import LineDataset, collate
    from ocr_robust.models import build_model
    from ocr_robust.training import StepContext

    cs = Charset.load("latin")
    ds = LineDataset.open(tiny_store, cs)
    batch = collate([ds[i] for i in range(6)])
    model = build_model("crnn-small", num_classes=cs.num_classes)
    ctx = StepContext(torch.device("cpu"), False, 0, 0, cs, {}, seed=0)
    mode = MODES["realtime"](basis="lowfreq", cell=8, eps="16/255", adv_lr="16/255", max_inner_steps=2)
    mode.trace = []
    stats = mode.step(model, batch, ctx)
    assert stats["inner_steps"] > 1 and all(p.grad is not None for p in model.parameters() if p.requires_grad)
    (x0, _), (x1, live) = mode.trace[0][1]
    d = (x1 - x0)[live]
    assert 0 < d.abs().max() <= 16 + 1e-3
    # the grid steps by at most 2 x 16 levels, spread over a cell of 8 pixels: at most 4 a pixel
    full = mode.layer.full()[live]
    pad = torch.arange(x0.shape[-1])[None, :] >= batch["widths"][live.cpu()][:, None]
    inside = ~pad[:, 1:]  # the line ends with a step to the untouched padding
    assert ((full[..., 1:] - full[..., :-1]).abs().amax(dim=(1, 2))[inside]).max() <= 4 + 1e-3
    assert float(d.abs().amax(dim=(1, 2))[pad].max()) == 0.0
    with torch.no_grad():
        assert mode.layer(batch["images"]).shape == batch["images"].shape
