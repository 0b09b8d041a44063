"""The report encoder at inference: tokenizer + RoBERTa + mean pooling -> unit vectors.

A NeuroBERT-style encoder (RoBERTa architecture, a tokenizer trained on the
report corpus). A report or a sentence is embedded as the attention-masked mean
of the last hidden states, L2-normalised. Training lives in :mod:`training.text`;
this module only loads and encodes, so the node needs no training code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


def load_tokenizer(tokenizer_file: str | Path) -> PreTrainedTokenizerFast:
    """A fast tokenizer from a ``tokenizers`` JSON file, with RoBERTa's special tokens."""
    return PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), **SPECIAL_TOKENS)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of ``hidden`` (B, T, D) over the positions where ``attention_mask`` (B, T) is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1.0)
    return summed / counts


class ReportEncoder:
    """Embeds report texts or query sentences into the shared embedding space.

    Args:
        model: a RoBERTa encoder (``RobertaModel``; the MLM head is not needed).
        tokenizer: the report-corpus tokenizer.
        max_length: token limit per text (longer texts are truncated).
    """

    def __init__(
        self, model: RobertaModel, tokenizer: PreTrainedTokenizerFast, max_length: int = 128
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def dim(self) -> int:
        """Embedding size (the model's hidden size)."""
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return next(self.model.parameters()).device

    @classmethod
    def from_parts(
        cls,
        config: Mapping[str, Any],
        tokenizer_file: str | Path,
        state_dict: Mapping[str, Tensor] | None = None,
        max_length: int = 128,
        device: str | torch.device = "cpu",
    ) -> ReportEncoder:
        """Build from a ``RobertaConfig`` dict, a tokenizer file and (optionally) weights.

        Raises:
            RuntimeError: the state dict does not fit the configuration (strict loading).
        """
        model = RobertaModel(RobertaConfig(**dict(config)), add_pooling_layer=False)
        if state_dict is not None:
            model.load_state_dict(
                {k: v.float() for k, v in state_dict.items()},
                strict=True,
            )
        model.to(device).eval()  # type: ignore[arg-type]  # transformers wraps .to
        return cls(model, load_tokenizer(tokenizer_file), max_length=max_length)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Padded, truncated token ids and attention mask on the model's device."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {
            "input_ids": batch["input_ids"].to(self.device),
            "attention_mask": batch["attention_mask"].to(self.device),
        }

    def forward_pooled(self, texts: Sequence[str]) -> Tensor:
        """Mean-pooled, *unnormalised* embeddings with gradients (for training)."""
        batch = self.tokenize(texts)
        hidden = self.model(**batch).last_hidden_state
        return mean_pool(hidden, batch["attention_mask"])

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Tensor:
        """L2-normalised embeddings (N, D) of ``texts``, on the CPU, in float32."""
        if isinstance(texts, str):
            texts = [texts]
        was_training = self.model.training
        self.model.eval()
        try:
            chunks = [
                torch.nn.functional.normalize(
                    self.forward_pooled(texts[i : i + batch_size]).float(), dim=-1
                ).cpu()
                for i in range(0, len(texts), batch_size)
            ]
        finally:
            self.model.train(was_training)
        if not chunks:
            return torch.zeros((0, self.dim))
        return torch.cat(chunks)
