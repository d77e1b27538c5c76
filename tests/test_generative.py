"""Generative augmentation (issue 21): region dropout, the patch GAN (seed 001) and the
distilled soft labels of fold teachers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch


def _batch(widths=(40, 64, 23), height=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = max(widths)
    x = torch.randint(0, 256, (len(widths), 1, height, w), generator=g).float()
    for i, wi in enumerate(widths):
        x[i, :, :, wi:] = 250.0  # the padding, as pad_batch leaves it
    return {"images": x, "widths": torch.tensor(widths), "texts": ["a"] * len(widths),
            "indices": torch.arange(len(widths))}


def test_generator_and_discriminator_shapes_and_gradients_reach_every_block():
    from ocr_robust.generative.patchgan import WINDOW, GeneratorConfig, PatchDiscriminator, PatchGenerator

    gen, disc = PatchGenerator(GeneratorConfig(channels=8)), PatchDiscriminator(channels=8)
    x = torch.rand(3, 1, 32, 37) * 255  # a width that is no multiple of 16
    mask = torch.zeros_like(x)
    mask[:, :, 4:20, 5:17] = 1
    y = gen(x, mask)
    assert y.shape == x.shape and float(y.detach().min()) >= 0 and float(y.detach().max()) <= 255
    y.mean().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in gen.parameters())
    p = disc(torch.rand(4, 1, 32, WINDOW) * 255)
    assert p.shape == (4,) and bool(((p > 0) & (p < 1)).all())
    p.sum().backward()
    assert all(q.grad is not None and float(q.grad.abs().sum()) > 0 for q in disc.parameters())


def test_the_generator_sees_no_pixel_under_its_hole():
    """The hole is blanked before the encoder: what was there cannot leak into the fill."""
    from ocr_robust.generative.patchgan import GeneratorConfig, PatchGenerator

    gen = PatchGenerator(GeneratorConfig(channels=8)).eval()
    x = torch.rand(1, 1, 32, 48) * 255
    mask = torch.zeros_like(x)
    mask[..., 8:24, 10:30] = 1
    other = x.clone()
    other[..., 8:24, 10:30] = 0.0
    assert torch.allclose(gen.generate(x, mask), gen.generate(other, mask))


def test_erase_boxes_follow_the_spec_inside_each_line():
    from ocr_robust.generative.erase import EraseSpec, erase_boxes

    spec = EraseSpec(p=1.0, area=(0.05, 0.1), aspect=(0.5, 2.0))
    rng = np.random.default_rng(0)
    widths = [int(w) for w in rng.integers(40, 400, 300)]
    boxes = erase_boxes(widths, 32, spec, rng)
    assert all(b is not None for b in boxes)
    for w, (y0, y1, x0, x1) in zip(widths, boxes):  # type: ignore[misc]
        h, bw = y1 - y0, x1 - x0
        assert 0 <= y0 < y1 <= 32 and 0 <= x0 < x1 <= w
        assert 0.04 <= h * bw / (32 * w) <= 0.115 and 0.4 <= h / bw <= 2.5  # rounding to whole pixels
    none = erase_boxes(widths, 32, EraseSpec(p=0.0), rng)
    assert all(b is None for b in none)
    with pytest.raises(ValueError, match="erase area"):
        EraseSpec(area=(0.3, 0.1))


@pytest.mark.parametrize("fill", ["flat", "noise", "patchgan"])
def test_region_dropout_changes_only_the_holes(fill):
    from ocr_robust.generative.erase import EraseSpec, RegionDropout, box_mask, erase_boxes
    from ocr_robust.generative.patchgan import GeneratorConfig, PatchGenerator

    gen = PatchGenerator(GeneratorConfig(channels=8)) if fill == "patchgan" else None
    spec = EraseSpec(p=1.0, area=(0.1, 0.3))
    b = _batch()
    out = RegionDropout(fill, spec, gen)(b, np.random.default_rng(3))
    boxes = erase_boxes([40, 64, 23], 32, spec, np.random.default_rng(3))  # the same draws
    mask = box_mask(tuple(b["images"].shape), boxes).bool()
    changed = out["images"] != b["images"]
    assert bool(changed.any()) and not bool((changed & ~mask).any())  # nothing outside a hole, padding included
    assert out["texts"] == b["texts"] and float(out["images"].min()) >= 0 and float(out["images"].max()) <= 255
    if fill == "flat":
        assert len(torch.unique(out["images"][0][mask[0]])) == 1


def test_augment_parses_strengths_and_fills():
    from ocr_robust.augment import AugmentPlan, parse_augment
    from ocr_robust.training import TrainConfig

    assert parse_augment(0.5) == AugmentPlan(0.5)
    assert parse_augment("cutout") == AugmentPlan(1.0, "flat")
    assert parse_augment("0,cutout:noise") == AugmentPlan(0.0, "noise")
    assert parse_augment("0.3,patchgan:gen/x") == AugmentPlan(0.3, "patchgan", "gen/x")
    for bad in ("patchgan", "cutout:blue", "cutout,cutout:noise", "-1"):
        with pytest.raises(ValueError):
            parse_augment(bad)
    with pytest.raises(ValueError, match="augment"):
        TrainConfig(data="x", augment="sparkles")
    with pytest.raises(ValueError, match="fold"):
        TrainConfig(data="x", fold="3/2")
    assert TrainConfig(data="x", augment="1.0").augment == 1.0  # as the flag gives it


def test_the_kl_term_is_zero_on_identical_posteriors_and_falls_when_the_student_learns_the_teacher():
    import torch.nn.functional as F

    from ocr_robust.training.distill import SoftTargets

    g = torch.Generator().manual_seed(0)
    T, N, C = 12, 3, 7
    widths, lengths = torch.tensor([48, 40, 20]), torch.tensor([3, 2, 1])
    teacher = F.log_softmax(torch.randn(T, N, C, generator=g), -1)
    temp = 2.0
    soft = SoftTargets(F.log_softmax(teacher / temp, -1), temp, weight=1.0)
    zero = soft.mix(torch.zeros(N), teacher, widths, lengths)
    assert torch.allclose(zero, torch.zeros(N), atol=1e-6)
    logits = torch.zeros(T, N, C, requires_grad=True)  # the student starts uniform
    opt = torch.optim.SGD([logits], lr=0.5)
    first = None
    for _ in range(30):
        kd = soft.mix(torch.zeros(N), F.log_softmax(logits, -1), widths, lengths).sum()
        first = float(kd.detach()) if first is None else first
        opt.zero_grad()
        kd.backward()
        opt.step()
    assert float(kd.detach()) < 0.2 * first
    # the frames past a line's width do not count: line 2 has 5 of 12
    far = teacher.clone()
    far[6:, 2] = F.log_softmax(torch.randn(6, C, generator=g), -1)
    assert torch.allclose(soft.mix(torch.zeros(N), far, widths, lengths)[2], zero[2], atol=1e-6)
    mixed = SoftTargets(soft.logp, temp, weight=0.25).mix(torch.full((N,), 4.0), teacher, widths, lengths)
    assert torch.allclose(mixed, torch.full((N,), 3.0), atol=1e-5)  # (1 - w) * CTC + w * 0


def test_each_line_gets_the_posterior_of_the_teacher_that_never_saw_it():
    import torch.nn as nn

    from ocr_robust.training.distill import Distiller, fold_of

    class Const(nn.Module):  # a teacher whose every frame says "class k"
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, x):
            out = torch.full((x.shape[-1] // 4, x.shape[0], 5), -20.0)
            out[..., self.k] = 0.0
            return out.log_softmax(-1)

    d = Distiller([Const(1), Const(3)], [0, 1], 2, seed=5, temperature=1.0, weight=0.5, device=torch.device("cpu"))
    b = _batch(widths=(40,) * 8)
    b["indices"] = torch.tensor([0, 1, 2, 3, 4, 5, 6, -1])  # -1: a no-text image
    soft = d(b)
    picked = soft.logp[0].argmax(-1).tolist()
    want = [1 if fold_of(i, 2, 5) == 0 else 3 for i in range(7)] + [1]
    assert picked == want and len(set(want)) == 2


def test_a_fold_teacher_trains_on_every_line_outside_its_fold(tiny_store, tmp_path):
    from ocr_robust.training import TrainConfig, Trainer
    from ocr_robust.training.distill import fold_of

    cfg = TrainConfig(data=str(tiny_store), out=str(tmp_path / "t"), epochs=1, batch_size=4, augment=0.0,
                      fold="1/3", seed=4, device="cpu", report_images=0)
    t = Trainer(cfg, progress=False)
    full = Trainer(TrainConfig(**{**cfg.__dict__, "fold": ""}), progress=False)
    kept, all_train = set(t.train_ds.indices), set(full.train_ds.indices)
    assert kept == {i for i in all_train if fold_of(i, 3, 4) != 1} and 0 < len(kept) < len(all_train)


def test_patchgan_and_a_distilled_student_run_on_real_lines_and_write_their_galleries(tiny_store, tmp_path):
    """`patchgan train` writes its generator and a gallery per epoch; `train --augment
    patchgan:GEN --distill-folds 2` trains the two fold teachers, then the student on
    cut-and-filled lines with their soft labels; a second call reuses the teachers."""
    gen, run = tmp_path / "gen", tmp_path / "student"
    cli = [sys.executable, "-m", "ocr_robust"]
    r = subprocess.run(cli + ["patchgan", "train", "--data", str(tiny_store), "--out", str(gen), "--epochs", "2",
                              "--steps-per-epoch", "2", "--batch-size", "4", "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads((gen / "patchgan.json").read_text())
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    page = (gen / "gallery" / "epoch-002" / "index.html").read_text()
    assert page.count("<tr>") == 8 and (gen / "gallery" / "epoch-002" / "000-1.png").is_file()
    train = cli + ["train", "--data", str(tiny_store), "--out", str(run), "--epochs", "1", "--batch-size", "8",
                   "--augment", f"0,patchgan:{gen}", "--erase-p", "1.0", "--distill-folds", "2", "--device", "cpu",
                   "--report-images", "0", "--quiet"]
    r = subprocess.run(train, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for k in (0, 1):
        assert (run / "teachers" / f"fold-{k}" / "best.safetensors").is_file()
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["distill_folds"] == 2 and cfg["teachers"].count("fold-") == 2
    assert (run / "best.safetensors").is_file()
    teacher = run / "teachers" / "fold-0" / "best.safetensors"
    before = teacher.stat().st_mtime_ns
    r = subprocess.run(train + ["--overwrite"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert teacher.stat().st_mtime_ns == before  # the finished teachers are reused, not trained again


def test_san_blocks_shapes_and_gradient_flow():
    from ocr_robust.generative.san import ADO, RPA, SAN, ChannelAttention, DownBlock, PixelNorm, SANConfig, UpBlock

    x = torch.randn(2, 8, 8, 16, requires_grad=True)
    for block, shape in ((PixelNorm(), (2, 8, 8, 16)), (ChannelAttention(8), (2, 8, 8, 16)), (RPA(8), (2, 8, 8, 16)),
                         (ADO(8), (2, 8, 8, 16)), (UpBlock(8, 4, 2), (2, 4, 16, 32)), (UpBlock(8, 8, 1), (2, 8, 8, 16)),
                         (DownBlock(8, 16, 2), (2, 16, 4, 8)), (DownBlock(8, 8, 1), (2, 8, 8, 16))):
        y = block(x)
        assert tuple(y.shape) == shape, type(block).__name__
        params = list(block.parameters())
        grads = torch.autograd.grad(y.square().mean(), [x] + params, allow_unused=True)
        assert all(g is not None and float(g.abs().sum()) > 0 for g in grads), type(block).__name__
    san = SAN(SANConfig(z_dim=16, channels=8, stages=3))
    img = san.G(torch.randn(3, 16))
    assert img.shape == (3, 1, 32, 128) and float(img.detach().min()) >= 0 and float(img.detach().max()) <= 255
    z = san.R(img)
    assert z.shape == (3, 16)
    z.square().mean().backward()
    assert all(p.grad is not None for p in list(san.G.parameters()) + list(san.R.parameters()))
    assert san.critic(z.detach()).shape == (3,)


def test_pixelnorm_gives_unit_mean_square_and_rpa_weights_live_in_0_1():
    from ocr_robust.generative.san import RPA, PixelNorm

    y = PixelNorm()(torch.randn(2, 6, 4, 4) * 7)
    assert torch.allclose(y.pow(2).mean(1), torch.ones(2, 4, 4), atol=1e-4)
    w = RPA(6).weights(torch.randn(2, 6, 8, 12))
    assert w.shape == (2, 6, 8, 12) and float(w.min()) > 0 and float(w.max()) < 1


def test_ado_zeroes_exactly_the_low_attention_features():
    from ocr_robust.generative.san import ADO

    ado = ADO(4, threshold=0.5)
    x = torch.randn(2, 4, 6, 6)
    a = ado.att(x)
    y = ado(x)
    low = a < 0.5
    assert bool(low.any()) and bool((~low).any())
    assert torch.equal(y[low], torch.zeros_like(y[low])) and torch.equal(y[~low], x[~low])


def test_after_a_step_the_shared_kernels_are_the_weighted_average():
    from ocr_robust.generative.san import SAN, SANConfig, SANTrainConfig, train_step

    san = SAN(SANConfig(z_dim=8, channels=4, stages=3, share_lambda=0.3))
    for a, b in san.pairs:  # shared from the start
        assert torch.equal(a.weight, b.weight)
    opts = {k: torch.optim.Adam(getattr(san, k).parameters(), lr=1e-2) for k in ("G", "R")}
    opts["critic"] = torch.optim.Adam(san.critic.parameters(), lr=1e-3)
    before = [a.weight.detach().clone() for a, _ in san.pairs]
    captured = []
    real_share = san.share

    def spy(lam=None):  # the weights each optimizer left, just before they are averaged
        captured.append([(a.weight.detach().clone(), b.weight.detach().clone()) for a, b in san.pairs])
        real_share(lam)

    san.share = spy  # type: ignore[method-assign]
    stats = train_step(san, opts, torch.rand(4, 1, 32, 128) * 255, SANTrainConfig(data="", out=""))
    assert all(np.isfinite(v) for v in stats.values())
    for (a, b), (wg, wr), w0 in zip(san.pairs, captured[0], before):
        assert not torch.equal(wg, wr) and not torch.equal(wg, w0)  # each optimizer moved its own copy
        assert torch.allclose(a.weight, 0.3 * wg + 0.7 * wr) and torch.equal(a.weight, b.weight)


def test_gradient_penalty_against_hand_worked_cases():
    import torch.nn as nn

    from ocr_robust.generative.san import gradient_penalty

    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0]]))  # the gradient is (3, 4) everywhere: norm 5
    gp = gradient_penalty(lambda v: lin(v).squeeze(-1), torch.randn(5, 2), torch.randn(5, 2))
    assert float(gp.detach()) == pytest.approx(16.0)

    def half_square(v):  # gradient v_hat itself
        return 0.5 * v.pow(2).sum(-1)

    real, fake = torch.tensor([[2.0, 0.0], [0.0, 4.0]]), torch.zeros(2, 2)
    # alpha 0.5: x_hat (1, 0) and (0, 2), norms 1 and 2 -> ((0)^2 + (1)^2) / 2
    assert float(gradient_penalty(half_square, real, fake, alpha=torch.full((2, 1), 0.5))) == pytest.approx(0.5)


def test_ingest_exports_backgrounds_that_touch_no_body_text(corpus, tmp_path):
    from ocr_robust.data.store import open_store
    from ocr_robust.pdf.ingest import IngestConfig, background_crops, ingest

    out = tmp_path / "bg"
    s = ingest(sorted(str(p) for p in corpus.glob("*.pdf")), IngestConfig(out=str(out), workers=1, backgrounds=6,
                                                                         watermarks="train"), progress=False)
    store = open_store(out)
    assert s["lines"] == len(store) > 0 and all(store.text(i) == "" for i in range(len(store)))
    page = np.full((200, 400), 255, np.uint8)
    page[50:70, 20:380] = 0  # one body line, at y 25-35 pt of a 2-px-per-pt raster
    crops = background_crops(page, [(10.0, 25.0, 190.0, 35.0)], 2.0, 20, np.random.default_rng(0), dpi=150)
    assert crops and all(float(c.min()) == 255 for c in crops)  # never a pixel of the line (nor its margin)
    page[120:190, 200:400] = 0  # a raster image (a screenshot) at x 100-200, y 60-95 pt
    crops = background_crops(page, [(10.0, 25.0, 190.0, 35.0)], 2.0, 20, np.random.default_rng(0), dpi=150,
                             avoid=[(100.0, 60.0, 200.0, 95.0)])
    assert crops and all(float(c.min()) == 255 for c in crops)  # nor of the image


def test_san_trains_for_a_few_steps_writes_its_gallery_and_plot_and_its_backgrounds_feed_training(
        corpus, tiny_store, tmp_path):
    """`san train` on ingested backgrounds writes san.safetensors, a gallery per epoch, the
    FID-like distance per epoch and its plot; `train --augment 0,san:SAN --notext-source
    san:SAN` composites its samples behind the lines and uses them as no-text images."""
    from ocr_robust.generative.backgrounds import BackgroundComposite, SANBackgrounds
    from ocr_robust.generative.san import load_san
    from ocr_robust.pdf.ingest import IngestConfig, ingest

    bg, san_dir = tmp_path / "bg", tmp_path / "san"
    ingest(sorted(str(p) for p in corpus.glob("*.pdf")), IngestConfig(out=str(bg), workers=1, backgrounds=8),
           progress=False)
    cli = [sys.executable, "-m", "ocr_robust"]
    r = subprocess.run(cli + ["san", "train", "--data", str(bg), "--out", str(san_dir), "--epochs", "2",
                              "--steps-per-epoch", "2", "--batch-size", "4", "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads((san_dir / "san.json").read_text())
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert all(np.isfinite(h["fid"]) and h["fid"] >= 0 for h in summary["history"])
    assert (san_dir / "fid.png").stat().st_size > 1000 and (san_dir / "gallery" / "epoch-002" / "index.html").is_file()
    san = load_san(san_dir)
    backs = SANBackgrounds(san)
    b = _batch(widths=(300, 40, 129))
    b["images"][:, :, :, :] = 255.0
    b["images"][:, :, 10:20, :20] = 0.0  # ink
    out = BackgroundComposite(backs, p=1.0, blend="darken")(b, np.random.default_rng(0))
    x, y = b["images"], out["images"]
    assert torch.equal(y[:, :, 10:20, :20], x[:, :, 10:20, :20])  # the ink stays ink
    assert bool((y[0, 0, :, 20:300] < 255).any()) and torch.equal(y[1, 0, :, 40:], x[1, 0, :, 40:])  # padding kept
    assert backs.notext(np.random.default_rng(1), 77, 32).shape == (32, 77)
    r = subprocess.run(cli + ["train", "--data", str(tiny_store), "--out", str(tmp_path / "run"), "--epochs", "1",
                              "--batch-size", "8", "--augment", f"0,san:{san_dir}", "--notext-source",
                              f"san:{san_dir}", "--notext-rate", "0.5", "--device", "cpu", "--report-images", "0",
                              "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_the_frechet_distance_is_zero_for_one_sample_and_the_squared_shift_for_a_moved_one():
    from ocr_robust.generative.san import frechet_distance

    a = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    moved = a + torch.tensor([3.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert frechet_distance(a, moved) == pytest.approx(9.0, rel=1e-6)  # same covariance: ||shift||^2
    wide = a * 2  # covariance 4I against ~I: trace term 4 * (1 + 4 - 2 * 2) = 4
    assert frechet_distance(a, wide) == pytest.approx(4.0, rel=0.1)


def test_the_fill_starts_from_the_level_around_the_hole():
    """The generator predicts an offset from its hole's surroundings: with a zero offset a
    hole in grey paper is filled grey, not white; deep in a big hole, the line's mean."""
    from ocr_robust.generative.patchgan import GeneratorConfig, PatchGenerator, surround_level

    x = torch.full((2, 1, 32, 96), 200.0)
    x[1] = 90.0
    mask = torch.zeros_like(x)
    mask[:, :, 8:20, 30:45] = 1
    lvl = surround_level(x, mask)
    assert torch.allclose(lvl[0][mask[0].bool()], torch.tensor(200.0)) and torch.allclose(lvl[1], torch.tensor(90.0))
    gen = PatchGenerator(GeneratorConfig(channels=8))
    torch.nn.init.zeros_(gen.decoder[-1].weight)
    torch.nn.init.zeros_(gen.decoder[-1].bias)
    assert torch.allclose(gen.fill(x, mask), x, atol=1e-3)
