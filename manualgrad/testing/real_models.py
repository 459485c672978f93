"""Real models, small: Hugging Face BERT, GPT-2 and Llama built from small configs (random
weights, nothing downloaded), a ``torch.nn.TransformerEncoderLayer`` stack, a small CNN with a
``ConvTranspose2d`` decoder, a ResNet-18 (torchvision's layout, narrow) and the README's MLP.
Each builder returns a :class:`RealModel`: a module whose forward computes the training loss (a
``ModelOutput`` with ``.loss`` for the transformers models) and the keyword inputs of one batch.
The real-model tests and ``manualgrad bench models`` use the same builders.

``transformers`` is in the ``[test]`` extra; it is imported only by the builders that need it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as TF
from torch import Tensor, nn

VOCAB, SEQUENCE, BATCH = 96, 16, 2


@dataclass
class RealModel:
    """A model whose ``model(**inputs)`` is (or holds, as ``.loss``) its training loss.

    ``labels``: for a transformers model built in float64, the token targets taken out of
    ``inputs``; the loss is then computed here from the logits in float64 (transformers'
    causal-LM loss casts the logits to float32 first, which would cap a float64 comparison at
    float32 precision). ``causal``: the labels are the next tokens (GPT-2, Llama)."""

    model: nn.Module
    inputs: dict[str, Any]
    causal: bool = False
    labels: Tensor | None = None

    def loss(self) -> Tensor:
        """One forward on the batch, reduced to the scalar loss."""
        output = self.model(**self.inputs)
        if isinstance(output, Tensor):
            return output
        if self.labels is None:
            return output.loss
        logits, labels = output.logits, self.labels
        if self.causal:
            logits, labels = logits[:, :-1], labels[:, 1:]
        return TF.cross_entropy(logits.flatten(0, 1), labels.flatten())


def _token_batch() -> dict[str, Tensor]:
    ids = torch.randint(0, VOCAB, (BATCH, SEQUENCE))
    return {"input_ids": ids, "labels": ids}


def _transformers_model(
    config_name: str, model_name: str, causal: bool, **config: Any
) -> RealModel:
    import transformers

    transformers.logging.set_verbosity_error()  # small-config warnings (bos/eos ids) are noise
    config_cls = getattr(transformers, config_name)
    model = getattr(transformers, model_name)(config_cls(vocab_size=VOCAB, **config))
    return RealModel(model, _token_batch(), causal)


def bert() -> RealModel:
    """``BertForMaskedLM``: hidden 32, 2 layers, 2 heads, GELU, dropout 0."""
    return _transformers_model(
        "BertConfig",
        "BertForMaskedLM",
        False,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQUENCE,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


def gpt2() -> RealModel:
    """``GPT2LMHeadModel``: width 32, 2 layers, 2 heads (HF ``Conv1D`` layers, tanh GELU)."""
    return _transformers_model(
        "GPT2Config",
        "GPT2LMHeadModel",
        True,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=SEQUENCE,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )


def llama() -> RealModel:
    """``LlamaForCausalLM``: hidden 32, 2 layers, 2 query heads sharing 1 key/value head
    (RMSNorm, rotary embeddings, SwiGLU)."""
    return _transformers_model(
        "LlamaConfig",
        "LlamaForCausalLM",
        True,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=SEQUENCE,
    )


class EncoderClassifier(nn.Module):
    """Token classification on two ``torch.nn.TransformerEncoderLayer`` s (post-norm, GELU)."""

    def __init__(self, width: int = 32, classes: int = 5) -> None:
        super().__init__()
        self.embed = nn.Linear(8, width)
        layer = nn.TransformerEncoderLayer(
            width, 2, 2 * width, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy of each position's class."""
        logits = self.head(self.encoder(self.embed(x)))
        return TF.cross_entropy(logits.flatten(0, 1), target.flatten())


def encoder() -> RealModel:
    """:class:`EncoderClassifier` on a batch of 16-step sequences."""
    return RealModel(
        EncoderClassifier(),
        {"x": torch.randn(BATCH, SEQUENCE, 8), "target": torch.randint(0, 5, (BATCH, SEQUENCE))},
    )


class ConvAutoencoder(nn.Module):
    """A strided-conv encoder and a ``ConvTranspose2d`` decoder, trained to reconstruct."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.decode = nn.Sequential(nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        """Mean squared reconstruction error."""
        return TF.mse_loss(self.decode(self.encode(x)), x)


def cnn() -> RealModel:
    """:class:`ConvAutoencoder` on 16×16 single-channel images."""
    return RealModel(ConvAutoencoder(), {"x": torch.rand(4, 1, 16, 16)})


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3×3 conv-BN pairs and a (projected) skip connection."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout — a 7×7/2 stem conv, BN, ReLU, 3×3/2 max pool, four
    stages of two :class:`BasicBlock` s (stride 2 from the second stage), global average pool,
    linear head — at ``width`` channels in the first stage (torchvision: 64), with the
    cross-entropy of ``classes`` classes."""

    def __init__(self, width: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, padding=1),
        )
        widths = [width, 2 * width, 4 * width, 8 * width]
        blocks, cin = [], width
        for stage, cout in enumerate(widths):
            blocks += [BasicBlock(cin, cout, 1 if stage == 0 else 2), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy of the image classes."""
        return TF.cross_entropy(self.fc(self.pool(self.blocks(self.stem(x)))), target)


def resnet() -> RealModel:
    """:class:`ResNet18` (width 16) on a batch of 4 RGB 64×64 images (2×2 in the last stage)."""
    return RealModel(
        ResNet18(), {"x": torch.randn(4, 3, 64, 64), "target": torch.randint(0, 10, (4,))}
    )


class ReadmeMLP(nn.Module):
    """The README's MLP (64 → 32 → 10, ReLU) with ``nn.CrossEntropyLoss``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy of the logits."""
        return self.criterion(self.net(x), target)


def mlp() -> RealModel:
    """:class:`ReadmeMLP` on a batch of 8."""
    return RealModel(ReadmeMLP(), {"x": torch.randn(8, 64), "target": torch.randint(0, 10, (8,))})


# name -> builder (build() seeds torch first, so a model is the same wherever it is built)
BUILDERS: dict[str, Callable[[], RealModel]] = {
    "bert": bert,
    "gpt2": gpt2,
    "llama": llama,
    "encoder": encoder,
    "cnn": cnn,
    "resnet": resnet,
    "mlp": mlp,
}


def build(name: str, dtype: torch.dtype = torch.float32) -> RealModel:
    """The model ``name`` of :data:`BUILDERS`, seeded (same weights and batch on every call), its
    parameters and floating inputs in ``dtype`` (see :class:`RealModel` for float64 labels)."""
    torch.manual_seed(0)
    built = BUILDERS[name]()
    built.model.to(dtype)
    built.inputs = {
        key: value.to(dtype) if value.is_floating_point() else value
        for key, value in built.inputs.items()
    }
    if dtype == torch.float64 and "labels" in built.inputs:
        built.labels = built.inputs.pop("labels")
    return built


__all__ = [
    "BUILDERS",
    "BasicBlock",
    "ConvAutoencoder",
    "EncoderClassifier",
    "ReadmeMLP",
    "RealModel",
    "ResNet18",
    "build",
]
