import math

import numpy as np
import pytest
import torch

from ocr_robust.charset import Charset
from ocr_robust.decoding import beam_search, decode, greedy, greedy_batch
from ocr_robust.models import REGISTRY, autocast, build_model, count_params, forward_flops, native_bf16

CS = Charset(list("abc"))  # a=1 b=2 c=3, blank=0


def frames(*rows):
    """Log-probs from rows of per-class probabilities (blank, a, b, c)."""
    p = np.array(rows, dtype=np.float64)
    return np.log(p / p.sum(1, keepdims=True))


@pytest.mark.parametrize("name", list(REGISTRY))
def test_forward_backward_on_variable_widths_reaches_every_parameter(name):
    torch.manual_seed(0)
    m = build_model(name, num_classes=10)
    for w in (4, 37, 128):  # including a width that is not a multiple of 4
        x = torch.rand(3, 1, 32, w) * 255
        out = m(x)
        assert out.shape == (w // 4, 3, 10)
        assert torch.allclose(out.exp().sum(-1), torch.ones(w // 4, 3), atol=1e-4)
    m.zero_grad()
    x = torch.rand(2, 1, 32, 64) * 255
    out = m(x)
    loss = torch.nn.functional.ctc_loss(out, torch.tensor([1, 2, 3, 4]), torch.tensor([16, 16]), torch.tensor([2, 2]))
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing
    assert count_params(m) > 0 and forward_flops(m, 256) > 1e6


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_mixed_precision_is_bfloat16_where_native_and_trains_every_parameter(device):
    """Where the device has bfloat16 (CUDA since Ampere, CPUs with AMX or AVX512-BF16) the
    backbone runs in it (no loss scaling needed); elsewhere autocast is off. Either way the
    log-probs stay close to float32's and every parameter gets a finite, non-zero gradient.
    (The CUDA case runs where a GPU is present.)"""
    torch.manual_seed(0)
    dev = torch.device(device)
    m = build_model("crnn-large", num_classes=10).to(dev)
    dtypes = []
    m.backbone.register_forward_hook(lambda mod, i, o: dtypes.append(o.dtype))
    x = torch.rand(4, 1, 32, 96, device=dev) * 255
    m.eval()
    with torch.no_grad():
        ref = m(x)
        with autocast(dev):
            low = m(x)
    assert dtypes == [torch.float32, torch.bfloat16 if native_bf16(dev) else torch.float32]
    assert (low.exp() - ref.exp()).abs().max() < 0.05
    m.train()
    with autocast(dev):
        out = m(x)
    loss = torch.nn.functional.ctc_loss(out.float(), torch.tensor([1, 2, 3, 4, 5, 6, 7, 8], device=dev),
                                        torch.full((4,), 24), torch.full((4,), 2))
    loss.backward()
    bad = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
           or p.grad.abs().sum() == 0]
    assert not bad


def test_small_model_is_cheaper_than_large():
    s, large = build_model("crnn-small"), build_model("crnn-large")
    assert forward_flops(s) < forward_flops(large) / 3 and count_params(s) < count_params(large)


def test_greedy_collapses_repeats_and_drops_blanks():
    lp = frames([.1, .8, .05, .05], [.1, .8, .05, .05], [.8, .1, .05, .05], [.1, .8, .05, .05], [.05, .05, .85, .05])
    d = greedy(lp, CS)
    assert d.text == "aab"
    assert d.confidence == pytest.approx((.8 * .8 * .8 * .8 * .85) ** (1 / 5))
    (b,) = greedy_batch(torch.tensor(lp)[:, None, :], [3], CS)
    assert b.text == "a"


def test_beam_search_sums_alignments_where_greedy_does_not():
    # Best path is blank-blank ("", p=.36) but "a" has total mass .64 over three alignments.
    lp = frames([.6, .4, 0.0001, 0.0001], [.6, .4, 0.0001, 0.0001])
    assert greedy(lp, CS).text == ""
    cands = beam_search(lp, CS, beam=4)
    assert cands[0][0] == "a"
    assert math.exp(cands[0][1]) == pytest.approx(.4 * .4 + .4 * .6 + .6 * .4, rel=1e-3)
    d = decode(lp, CS, "beam")
    assert d.text == "a" and d.confidence == pytest.approx(.64 ** 0.5, rel=1e-3)


def test_beam_keeps_repeated_characters_apart_only_with_a_blank():
    lp = frames([.01, .98, .005, .005], [.98, .01, .005, .005], [.01, .98, .005, .005])
    assert beam_search(lp, CS, beam=4)[0][0] == "aa"
    lp2 = frames([.01, .98, .005, .005], [.01, .98, .005, .005])
    assert beam_search(lp2, CS, beam=4)[0][0] == "a"


def test_lexicon_biasing_prefers_and_corrects_to_known_words():
    cs = Charset(list("abc "))
    # frames read "cab" or "cb" (b b collapses): b slightly ahead of a at frame 2
    lp = frames([.01, .01, .01, .96, .01], [.02, .45, .50, .01, .02], [.01, .01, .96, .01, .01])
    assert decode(lp, cs, "beam").text == "cb"
    assert decode(lp, cs, "beam", lexicon={"cab"}).text == "cab"


def test_cpus_without_bfloat16_instructions_train_in_float32(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    cpu = torch.device("cpu")
    assert not native_bf16(cpu)
    m = build_model("crnn-small", num_classes=10)
    with autocast(cpu):
        assert m(torch.rand(1, 1, 32, 64) * 255).dtype == torch.float32


def test_greedy_batch_reads_each_line_as_greedy_does_over_its_own_frames():
    cs = Charset.load("latin")
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.full(cs.num_classes, 0.05), size=(50, 7)) + 1e-12).astype(np.float32)  # T x N x C
    lp[:, :, 0] += 2.0  # mostly blank, as a trained model reads
    lengths = [50, 1, 13, 37, 50, 2, 25]
    got = greedy_batch(lp, lengths, cs)
    for n, k in enumerate(lengths):
        want = greedy(lp[:k, n], cs)
        assert got[n].text == want.text and got[n].confidence == pytest.approx(want.confidence, rel=1e-6)
    assert any(g.text for g in got) and len({g.text for g in got}) > 1  # real, different readings


def test_reading_batches_hold_similar_widths_within_a_pixel_budget():
    from ocr_robust.inference import width_batches

    widths = [int(w) for w in np.random.default_rng(1).integers(8, 2048, 300)]
    batches = width_batches(widths, 32, 64, 64 * 512 * 32)
    assert sorted(i for b in batches for i in b) == list(range(len(widths)))  # every line once
    for b in batches:
        assert len(b) <= 64
        assert len(b) == 1 or len(b) * max(widths[i] for i in b) * 32 <= 64 * 512 * 32
    narrow = [b for b in batches if max(widths[i] for i in b) <= 512]
    assert narrow and all(len(b) == 64 for b in narrow[:-1])  # narrow lines: full batches of 64
    assert width_batches([10, 3000, 20], 32, 64, 50_000) == [[0, 2], [1]]  # wider than the budget: alone
    assert width_batches(widths, 32, 64, None) == [sorted(range(len(widths)), key=lambda i: widths[i])[k:k + 64]
                                                    for k in range(0, len(widths), 64)]


def test_the_speed_candidates_cost_fewer_flops_or_drop_the_lstm_and_export_to_int8_with_parity(tiny_store, tmp_path):
    """The depthwise-separable backbone costs far fewer FLOPs than crnn-small's; the
    convolutional head has no LSTM, so static int8 quantises it with the backbone (its
    temporal convolutions read int8 weights); the ONNX export matches PyTorch."""
    import json

    import onnx

    from ocr_robust.export import export
    from ocr_robust.training import TrainConfig, Trainer

    flops = {n: forward_flops(build_model(n, num_classes=112), 256) for n in REGISTRY}
    assert flops["crnn-dw"] < 0.5 * flops["crnn-small"] and flops["crnn-dw-convhead"] < flops["crnn-small"]
    assert not any(isinstance(m, torch.nn.LSTM) for m in build_model("crnn-dw-convhead").modules())
    with pytest.raises(ValueError, match="block"):
        build_model({"block": "mobile"})
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(tmp_path / "run"), epochs=4, batch_size=8,
                      lr=3e-3, augment=0.0, seed=0, device="cpu", model="crnn-dw-convhead", report_images=0)
    Trainer(cfg, progress=False).fit()
    r = export(tmp_path / "run", tmp_path / "exp", quantize="int8", sample=str(tiny_store))
    assert r["parity"]["onnx"]["max_abs_diff"] < 1e-3 and r["parity"]["onnx"]["agreement"] == 1.0
    assert json.loads((tmp_path / "exp" / "model.json").read_text())["int8"]["method"] == "static QDQ"
    g = onnx.load(str(tmp_path / "exp" / "model.int8.onnx")).graph
    assert "LSTM" not in {n.op_type for n in g.node}
    made_by = {o: n for n in g.node for o in n.output}
    dims = {i.name: len(i.dims) for i in g.initializer}
    temporal = [n for n in g.node if n.op_type == "Conv" and made_by[n.input[1]].op_type == "DequantizeLinear"
                and dims.get(made_by[n.input[1]].input[0]) == 3]
    assert len(temporal) == 2  # the head's two 1-D convolutions run in int8
