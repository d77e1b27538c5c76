"""CRNN/CTC line recognizers, registered by name.

Contract: input ``N x 1 x 32 x W`` float pixels in 0..255 (see ``ocr_robust.data.dataset``),
output log-probabilities ``T x N x C`` with ``T = W // 4`` and class 0 the CTC blank. The
model normalises its input itself, so attacks and the adversarial layer work in pixel space.

The backbone is plain torch.nn (no torchvision). Height 32 is reduced to 1 by pooling and a
final full-height convolution; width is reduced 4x, so a character of 8-16 px gets 2-4
frames. ``crnn-small`` is built for CPU speed: the backbone dominates the cost, so its
early, full-resolution layers are narrow and the width goes into the later, 4x-reduced
layers where it buys accuracy per FLOP. Both registered models start with a stride-2
convolution (``stem_stride=2``) instead of a full-resolution convolution and a pooling: the
full-resolution layer's normalisation, activation and pooling cost more time than its
FLOPs suggest (they are memory-bound). Weights are kept channels-last, which the CPU
(oneDNN) and CUDA convolutions prefer. Together: 1.61x the training speed of the first
models on the 2-core CPU (``benchmarks/bench_train_step.py``).

Two further choices, for speed (issue 23; their accuracy and speed are on the Pareto plot of
``benchmarks/bench_architectures.py``): ``block="dw"`` makes every convolution after the stem
depthwise-separable (MobileNet v1: a per-channel 3x3 and a 1x1 that mixes channels, each
with batch norm and ReLU), about 1/8 of a full 3x3's FLOPs at these widths; ``head="conv"``
replaces the BiLSTM by temporal convolutions over the frames (1-D, kernel 5, each with batch
norm and ReLU), which run in parallel over the frames and quantise to int8 like the
backbone, where the LSTM is sequential and stays fp32.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from .images import HEIGHT, PIXEL_MAX, output_frames

__all__ = ["ModelConfig", "REGISTRY", "BLOCKS", "HEADS", "conv_bn", "dw_bn", "ConvHead", "CRNN", "build_model",
           "native_bf16", "autocast", "model_state", "count_params", "forward_flops"]


@dataclass
class ModelConfig:
    name: str = "crnn-small"
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 96])
    rnn_hidden: int = 96
    rnn_layers: int = 1
    dropout: float = 0.1
    stem_stride: int = 1  # 1: conv + 2x2 max-pool at full resolution (the first models); 2: one stride-2 conv
    block: str = "conv"  # "conv": full 3x3 convolutions; "dw": depthwise-separable ones after the stem
    head: str = "lstm"  # "lstm": a BiLSTM of rnn_hidden per direction; "conv": rnn_layers temporal convolutions
    height: int = HEIGHT
    num_classes: int = 112  # charset size + 1 (blank)


REGISTRY: dict[str, ModelConfig] = {
    "crnn-small": ModelConfig("crnn-small", [16, 32, 64, 96], 96, 1, 0.1, stem_stride=2),
    "crnn-large": ModelConfig("crnn-large", [32, 64, 128, 256], 192, 2, 0.2, stem_stride=2),
    # issue 23's candidates for speed at equal accuracy (benchmarks/bench_architectures.py)
    "crnn-dw": ModelConfig("crnn-dw", [16, 48, 96, 160], 96, 1, 0.1, stem_stride=2, block="dw"),
    "crnn-convhead": ModelConfig("crnn-convhead", [16, 32, 64, 96], 64, 2, 0.1, stem_stride=2, head="conv"),
    "crnn-dw-convhead": ModelConfig("crnn-dw-convhead", [16, 48, 96, 160], 64, 2, 0.1, stem_stride=2, block="dw",
                                    head="conv"),
}
BLOCKS = ("conv", "dw")
HEADS = ("lstm", "conv")


def conv_bn(cin: int, cout: int, k=3, s=1, p=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def dw_bn(cin: int, cout: int, k=3, s=1, p=1) -> nn.Sequential:
    """Depthwise-separable: a per-channel ``k`` convolution, then a 1x1 that mixes channels."""
    return nn.Sequential(nn.Conv2d(cin, cin, k, s, p, groups=cin, bias=False), nn.BatchNorm2d(cin),
                         nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class ConvHead(nn.Module):
    """Temporal convolutions over the frames (``T x N x C`` in and out): ``layers`` of a 1-D
    convolution of ``kernel`` frames, batch norm and ReLU. Returns ``(output, output)`` so
    that the CRNN calls it as it calls its LSTM (TorchScript needs one signature)."""

    def __init__(self, cin: int, hidden: int, layers: int, kernel: int = 5):
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Conv1d(cin if i == 0 else hidden, hidden, kernel, padding=kernel // 2, bias=False),
                       nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*blocks)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(f.permute(1, 2, 0)).permute(2, 0, 1)  # T x N x C -> N x C x T and back
        return out, out


class CRNN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.height != 32:
            raise ValueError("the CRNN backbone is built for input height 32")
        if cfg.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {cfg.block!r}")
        if cfg.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {cfg.head!r}")
        self.cfg = cfg
        self.pixel_max = float(PIXEL_MAX)  # an attribute, so that TorchScript can compile forward
        c1, c2, c3, c4 = cfg.channels
        if cfg.stem_stride == 1:
            stem = [conv_bn(1, c1), nn.MaxPool2d(2, 2)]
        elif cfg.stem_stride == 2:
            stem = [conv_bn(1, c1, s=2), nn.Identity()]  # the same parameter names as the pooled stem
        else:
            raise ValueError(f"stem_stride must be 1 or 2, got {cfg.stem_stride}")
        conv = conv_bn if cfg.block == "conv" else dw_bn
        self.backbone = nn.Sequential(
            *stem,  # 16 x W/2
            conv(c1, c2), nn.MaxPool2d(2, 2),  # 8 x W/4
            conv(c2, c3), conv(c3, c3), nn.MaxPool2d((2, 1), (2, 1)),  # 4 x W/4
            conv(c3, c4), conv(c4, c4), nn.MaxPool2d((2, 1), (2, 1)),  # 2 x W/4
            conv(c4, c4, k=(2, 3), p=(0, 1)),  # 1 x W/4
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn: nn.Module
        if cfg.head == "lstm":
            self.rnn = nn.LSTM(c4, cfg.rnn_hidden, num_layers=cfg.rnn_layers, bidirectional=True,
                               dropout=cfg.dropout if cfg.rnn_layers > 1 else 0.0)
        else:  # as many output features as the BiLSTM's two directions
            self.rnn = ConvHead(c4, 2 * cfg.rnn_hidden, cfg.rnn_layers)
        self.head = nn.Linear(2 * cfg.rnn_hidden, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x / self.pixel_max - 0.5) / 0.5
        f = self.backbone(x)  # N x C x 1 x T
        f = f.squeeze(2).permute(2, 0, 1)  # T x N x C
        f, _ = self.rnn(self.dropout(f))
        return self.head(self.dropout(f)).log_softmax(-1)

    @staticmethod
    def output_lengths(widths: torch.Tensor) -> torch.Tensor:
        """Frames each line of a given (unpadded) input width really has."""
        return output_frames(widths)


def build_model(name_or_cfg: str | ModelConfig | dict, num_classes: int | None = None) -> CRNN:
    if isinstance(name_or_cfg, str):
        if name_or_cfg not in REGISTRY:
            raise ValueError(f"unknown model {name_or_cfg!r}; choose from {', '.join(REGISTRY)}")
        cfg = ModelConfig(**asdict(REGISTRY[name_or_cfg]))
    elif isinstance(name_or_cfg, dict):
        cfg = ModelConfig(**name_or_cfg)
    else:
        cfg = name_or_cfg
    if num_classes is not None:
        cfg.num_classes = num_classes
    return CRNN(cfg).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stub lacks it


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU that has it, or a CPU
    with AMX or AVX512-BF16 instructions (recent Xeon and EPYC cores)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                    or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
    return False


def autocast(device: torch.device, enabled: bool = True) -> torch.autocast:
    """Mixed precision for a forward pass: bfloat16 where the device computes it natively
    (``native_bf16``), else float32.

    bfloat16 keeps float32's exponent range, so the CTC gradients need no loss scaling.
    float16 without a GradScaler would let small gradients underflow to zero, so GPUs
    without bfloat16 (before Ampere) run in float32, and so do CPUs without bfloat16
    instructions, where emulating it is slower than float32. On a CPU with AMX a training
    step of ``crnn-small`` takes 0.55-0.6x the float32 time. The CTC loss itself is always
    computed in float32 (``losses.ctc_per_line``)."""
    on = enabled and native_bf16(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


@contextlib.contextmanager
def model_state(model: torch.nn.Module, train: bool = False, grads: bool = True):
    """Run the model in train or eval state, restoring its own state afterwards. In eval
    state on CUDA with ``grads`` (attacks, saliency), cuDNN is off: its RNN has no backward
    pass in eval mode."""
    was = model.training
    model.train(train)
    cudnn = torch.backends.cudnn.flags(enabled=False) if (not train and grads and next(model.parameters()).is_cuda) \
        else contextlib.nullcontext()
    try:
        with cudnn:
            yield model
    finally:
        model.train(was)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: CRNN, width: int = 256) -> int:
    """Multiply-accumulates x 2 of one forward pass on a 32 x ``width`` line (convolutions, linear, LSTM)."""
    flops = 0

    def conv_hook(m: nn.Conv2d | nn.Conv1d, inp, out):
        nonlocal flops
        k = math.prod(m.kernel_size) * (m.in_channels // m.groups)
        flops += 2 * out.numel() * k

    def lin_hook(m: nn.Linear, inp, out):
        nonlocal flops
        flops += 2 * out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv1d))]
    hooks += [m.register_forward_hook(lin_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.full((1, 1, HEIGHT, width), 255.0))
    model.train(was_training)
    for h in hooks:
        h.remove()
    T = out.shape[0]
    r = model.rnn
    if not isinstance(r, nn.LSTM):
        return flops  # a convolutional head: counted by the hooks
    for layer in range(r.num_layers):
        inp = r.input_size if layer == 0 else 2 * r.hidden_size
        # 4 gates: input and recurrent matmuls, both directions
        flops += 2 * 2 * T * 4 * r.hidden_size * (inp + r.hidden_size)
    return flops
