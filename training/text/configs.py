"""RoBERTa configurations of the report encoder.

``base`` is NeuroBERT-sized (768-d, 12 layers, 10k vocabulary, 512 tokens) for GPU;
``small`` (256-d, 4 layers) trains on CPU; ``tiny`` is for tests and smoke runs.
"""

from __future__ import annotations

from typing import Any

from dicom_node.errors import TrainingError

TEXT_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 1_000,
        "max_length": 128,
    },
    "small": {
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
        "vocab_size": 4_000,
        "max_length": 256,
    },
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 10_000,
        "max_length": 512,
    },
}


def roberta_config(name: str, vocab_size: int | None = None) -> tuple[dict[str, Any], int]:
    """(``RobertaConfig`` kwargs, max_length) of a named config.

    ``vocab_size`` overrides the config's (use the trained tokenizer's size).
    Position embeddings are ``max_length + 2`` (RoBERTa's padding-index offset).
    """
    if name not in TEXT_CONFIGS:
        raise TrainingError(f"text encoder config {name!r} is not one of {sorted(TEXT_CONFIGS)}")
    spec = dict(TEXT_CONFIGS[name])
    max_length = int(spec.pop("max_length"))
    if vocab_size is not None:
        spec["vocab_size"] = vocab_size
    spec.update(
        {
            "max_position_embeddings": max_length + 2,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "layer_norm_eps": 1e-5,
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
        }
    )
    return spec, max_length
