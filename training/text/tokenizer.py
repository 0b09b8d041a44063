"""Training the report tokenizer (byte-level BPE, RoBERTa's special tokens) on a corpus."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import ByteLevelBPETokenizer
from tokenizers.processors import RobertaProcessing

from dicom_node.errors import TrainingError

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(
    texts: Iterable[str], out_file: Path, vocab_size: int = 10_000, min_frequency: int = 2
) -> Path:
    """Train a lower-casing byte-level BPE tokenizer and save it as ``tokenizers`` JSON.

    The special tokens get ids 0-4 in :data:`SPECIAL_TOKENS` order (``<pad>`` = 1,
    as in RoBERTa); sequences are wrapped as ``<s> ... </s>``.
    """
    tokenizer = ByteLevelBPETokenizer(lowercase=True)
    tokenizer.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    if bos is None or eos is None:
        raise TrainingError("tokenizer training lost the special tokens")
    tokenizer.post_processor = RobertaProcessing(("</s>", eos), ("<s>", bos))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out_file))
    return out_file
