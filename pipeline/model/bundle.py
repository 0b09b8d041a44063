"""Load, validate and use a model bundle at inference.

Usage (the analysis task calls exactly this)::

    from pipeline.model import load_bundle
    bundle = load_bundle(path, device="cpu")   # validates, loads, embeds the query bank
    bundle.sequences                           # e.g. ["T2", "FLAIR", "DWI"]
    bundle.preprocess_spec                     # pipeline.preprocess.PreprocessSpec
    emb = bundle.encode_image("T2", tensor)    # (1,D,H,W) or (B,1,D,H,W) -> (B, E) unit vectors
    result = bundle.score({"T2": emb, ...}, extra_queries={"cyst": ["arachnoid cyst"]})
    result.triage.present, result.findings["haemorrhage"].score

From a study folder (the same path ``prepare`` uses for training)::

    from pipeline.series import select_series
    from pipeline.model.inputs import study_inputs
    made = study_inputs(select_series(folder), bundle.preprocess_spec, bundle.sequences)
    embeddings = bundle.embed_inputs({s: i.tensor for s, i in made.inputs.items()})
    result = bundle.score(embeddings)      # made.skipped says which sequences were missing

Validation refuses, with :class:`~dicom_node.errors.BundleError`, a bundle whose
manifest is missing or invalid, whose weights or tokenizer do not match their
hashes (corruption), whose device UID does not derive from the weights, or whose
weights do not fit the networks the manifest describes (mismatch).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn

from dicom_node.errors import BundleError
from pipeline.model.manifest import MANIFEST_FILE, Manifest, sha256_file
from pipeline.model.networks import build_network
from pipeline.model.queries import TRIAGE_FINDING, FindingQuery
from pipeline.model.scoring import EmbeddedQueries, FusedScores, fused_scores
from pipeline.model.text_encoder import ReportEncoder

if TYPE_CHECKING:
    from pipeline.preprocess import PreprocessSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FindingResult:
    """One finding's exam-level result."""

    finding_id: str
    display_name: str
    score: float
    """Exam score in (0, 1) after fusion of the sequences."""
    threshold: float | None
    """Threshold at the stored operating point (None for user-added or uncalibrated queries)."""
    operating_point: str | None
    present: bool | None
    """``score >= threshold``; None when there is no threshold."""
    per_sequence: dict[str, float] = field(default_factory=dict)
    user_defined: bool = False


@dataclass(frozen=True)
class StudyScores:
    """Every finding's result for one study, and the triage call."""

    findings: dict[str, FindingResult]
    triage: FindingResult | None
    """The ``abnormal`` finding's result (None when the bank has no such finding)."""
    sequences_used: list[str]
    device_uid: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "device_uid": self.device_uid,
            "sequences_used": list(self.sequences_used),
            "triage": None if self.triage is None else asdict(self.triage),
            "findings": {k: asdict(v) for k, v in self.findings.items()},
        }


def read_manifest(path: Path) -> Manifest:
    """A bundle folder's validated manifest, without loading any weights.

    Raises:
        BundleError: the manifest is missing, not JSON, or invalid.
    """
    manifest_path = path / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"bundle {path}: {MANIFEST_FILE} not found")
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"bundle {path}: {MANIFEST_FILE} is not readable JSON: {exc}") from exc
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise BundleError(f"bundle {path}: invalid {MANIFEST_FILE}: {exc}") from exc


def _check_hash(path: Path, expected: str, what: str) -> None:
    if not path.is_file():
        raise BundleError(f"bundle file {path.name} ({what}) not found in {path.parent}")
    actual = sha256_file(path)
    if actual != expected:
        raise BundleError(
            f"bundle file {path.name} ({what}) is corrupted or replaced: sha256 {actual} "
            f"differs from the manifest's {expected}"
        )


def _split_state(weights: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def _load_state(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    own = module.state_dict()
    converted = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    try:
        module.load_state_dict(converted, strict=True)
    except RuntimeError as exc:
        raise BundleError(f"weights of {what} do not match the manifest's network: {exc}") from exc


class ModelBundle:
    """A loaded, validated bundle: encoders on ``device``, query bank embedded.

    Create with :func:`load_bundle`. Thread safety: inference only (no_grad); use
    one bundle per worker process.
    """

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        text_encoder: ReportEncoder,
        image_encoders: dict[str, nn.Module],
        device: torch.device,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.text_encoder = text_encoder
        self.image_encoders = image_encoders
        self.device = device
        self._extra_cache: dict[tuple[str, ...], Tensor] = {}
        self.queries = self._embed_bank()

    def use_operating_points(self, points: Mapping[str, str]) -> None:
        """Call the named findings at other operating points than the manifest's.

        ``points``: finding id -> a point whose threshold the bundle stores (both
        ``sens90`` and ``youden`` are calibrated for every finding that had positives
        in the validation split; a finding without thresholds is never called and
        keeps its entry). The weights, the scores and the device UID are unchanged;
        only the present/absent calls move.

        Raises:
            BundleError: a finding the bundle lacks, or a point it has no threshold for.
        """
        bank = {f.id: f for f in self.manifest.queries.findings}
        chosen: dict[str, str] = {}
        for fid, point in points.items():
            if fid not in bank:
                raise BundleError(
                    f"operating point for {fid!r}: bundle {self.name} has no such finding"
                )
            stored = bank[fid].thresholds
            if stored and point not in stored:
                raise BundleError(
                    f"operating point {point!r} for {fid!r}: bundle {self.name} stores "
                    f"thresholds {sorted(stored)}"
                )
            if stored:
                chosen[fid] = point
        queries = self.manifest.queries.with_thresholds({}, chosen)
        self.manifest = self.manifest.model_copy(update={"queries": queries})

    # -- description -------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Bundle name."""
        return self.manifest.name

    @property
    def version(self) -> str:
        """Semantic version."""
        return self.manifest.version

    @property
    def device_uid(self) -> str:
        """UID that changes whenever the weights change."""
        return self.manifest.device_uid

    @property
    def sequences(self) -> list[str]:
        """Sequences with an image encoder, in manifest order."""
        return list(self.manifest.sequences)

    @property
    def embed_dim(self) -> int:
        """Size of the shared embedding space."""
        return self.text_encoder.dim

    @property
    def preprocess_spec(self) -> PreprocessSpec:
        """The preprocessing the encoders were trained with (identical at inference)."""
        from pipeline.preprocess import PreprocessSpec

        try:
            return PreprocessSpec.model_validate(self.manifest.preprocessing)
        except ValidationError as exc:
            raise BundleError(
                f"bundle {self.path}: preprocessing {self.manifest.preprocessing!r} "
                f"is not a valid PreprocessSpec: {exc}"
            ) from exc

    # -- encoding ------------------------------------------------------------------------
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Unit embeddings (N, E) of sentences or reports."""
        return self.text_encoder.encode(texts)

    @torch.no_grad()
    def encode_image(self, sequence: str, tensor: Tensor) -> Tensor:
        """Unit embeddings (B, E) of preprocessed volumes of ``sequence``.

        Args:
            sequence: one of :attr:`sequences`.
            tensor: ``(1, D, H, W)`` (one volume from ``pipeline.preprocess.preprocess``)
                or ``(B, 1, D, H, W)``.
        """
        if sequence not in self.image_encoders:
            raise BundleError(f"sequence {sequence!r} has no encoder in bundle {self.name}")
        if tensor.ndim == 4:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 5:
            raise BundleError(
                f"image tensor for {sequence} must be (1,D,H,W) or (B,1,D,H,W); "
                f"got {tuple(tensor.shape)}"
            )
        net = self.image_encoders[sequence]
        out = net(tensor.to(self.device, torch.float32))
        return torch.nn.functional.normalize(out.float(), dim=-1).cpu()

    def embed_inputs(self, inputs: Mapping[str, Any]) -> dict[str, Tensor]:
        """Unit embeddings (1, E) of one study's preprocessed volumes, by sequence.

        Args:
            inputs: sequence -> (1, D, H, W) array or tensor (e.g. the ``tensor`` of each
                :class:`pipeline.model.inputs.SequenceInput`); sequences without an
                encoder in this bundle are ignored.
        """
        out = {}
        for seq, volume in inputs.items():
            if seq in self.image_encoders:
                tensor = volume if isinstance(volume, Tensor) else torch.from_numpy(volume)
                out[seq] = self.encode_image(seq, tensor)
        return out

    # -- scoring -------------------------------------------------------------------------
    def _embed_bank(self) -> EmbeddedQueries:
        bank = self.manifest.queries
        return EmbeddedQueries(
            normal=self.encode_texts(bank.normal_references),
            findings={f.id: self.encode_texts(f.sentences) for f in bank.findings},
            bank_ids=tuple(bank.finding_ids),
        )

    def _queries_with(self, extra: Mapping[str, Sequence[str]] | None) -> EmbeddedQueries:
        if not extra:
            return self.queries
        findings = dict(self.queries.findings)
        clash = sorted(set(extra) & set(findings))
        if clash:
            # Replacing a calibrated finding's sentences would keep its threshold.
            raise BundleError(
                f"user queries {clash} have the ids of findings of bundle {self.name}; "
                "choose other ids"
            )
        for fid, sentences in extra.items():
            key = tuple(s.strip() for s in sentences if s.strip())
            if not key:
                raise BundleError(f"extra query {fid!r} has no sentences")
            if key not in self._extra_cache:
                self._extra_cache[key] = self.encode_texts(list(key))
            findings[fid] = self._extra_cache[key]
        return EmbeddedQueries(
            normal=self.queries.normal, findings=findings, bank_ids=self.queries.bank_ids
        )

    def score_batch(
        self,
        embeddings_by_sequence: Mapping[str, Tensor],
        extra_queries: Mapping[str, Sequence[str]] | None = None,
    ) -> FusedScores:
        """Scores of a batch of studies (each sequence's embeddings are (B, E))."""
        unknown = set(embeddings_by_sequence) - set(self.sequences)
        if unknown:
            raise BundleError(f"sequences {sorted(unknown)} have no encoder in bundle {self.name}")
        return fused_scores(
            embeddings_by_sequence, self._queries_with(extra_queries), self.manifest.scoring
        )

    def score(
        self,
        embeddings_by_sequence: Mapping[str, Tensor],
        extra_queries: Mapping[str, Sequence[str]] | None = None,
    ) -> StudyScores:
        """Zero-shot scores and present/absent calls for ONE study.

        Args:
            embeddings_by_sequence: sequence -> unit embedding (E,) or (1, E), from
                :meth:`encode_image`; sequences the study lacks are left out.
            extra_queries: user-added findings, id -> sentences; embedded on the fly
                (cached), scored but not called (no calibrated threshold).
        """
        if not embeddings_by_sequence:
            raise BundleError("no sequence embeddings given: the study has no usable sequence")
        batch = {}
        for seq, emb in embeddings_by_sequence.items():
            e = emb.reshape(1, -1) if emb.ndim == 1 else emb
            if e.shape[0] != 1:
                raise BundleError(f"score() takes one study; {seq} has {e.shape[0]} embeddings")
            batch[seq] = e
        fused = self.score_batch(batch, extra_queries)
        bank = {f.id: f for f in self.manifest.queries.findings}
        results: dict[str, FindingResult] = {}
        for fid, score in fused.exam.items():
            finding: FindingQuery | None = bank.get(fid)
            value = float(score[0])
            threshold = None if finding is None else finding.threshold
            results[fid] = FindingResult(
                finding_id=fid,
                display_name=fid if finding is None else finding.display_name,
                score=value,
                threshold=threshold,
                operating_point=None if finding is None else finding.operating_point,
                present=None if threshold is None else value >= threshold,
                per_sequence={seq: float(s[fid][0]) for seq, s in fused.per_sequence.items()},
                user_defined=finding is None,
            )
        return StudyScores(
            findings=results,
            triage=results.get(TRIAGE_FINDING),
            sequences_used=[s for s in self.sequences if s in batch],
            device_uid=self.device_uid,
        )


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> ModelBundle:
    """Validate a bundle folder and load it, ready for inference.

    Raises:
        BundleError: missing/invalid manifest, corrupted weights or tokenizer, a
            device UID not derived from the weights, or weights that do not fit.
    """
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"bundle path {root} is not a directory")
    manifest = read_manifest(root)
    weights_path = root / manifest.weights.file
    _check_hash(weights_path, manifest.weights.sha256, "weights")
    tokenizer_path = root / manifest.text_encoder.tokenizer_file
    _check_hash(tokenizer_path, manifest.text_encoder.tokenizer_sha256, "tokenizer")
    try:
        weights = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"bundle {root}: cannot read {weights_path.name}: {exc}") from exc
    torch_device = torch.device(device)

    known_prefixes = ("text.", *(f"image.{s}." for s in manifest.sequences))
    stray = sorted(k for k in weights if not k.startswith(known_prefixes))
    if stray:
        raise BundleError(f"bundle {root}: weights for unknown networks: {stray[:5]}")

    text_state = _split_state(weights, "text.")
    try:
        text = ReportEncoder.from_parts(
            manifest.text_encoder.config,
            tokenizer_path,
            state_dict=None,
            max_length=manifest.text_encoder.max_length,
            device="cpu",
        )
    except (TypeError, ValueError, OSError) as exc:
        raise BundleError(f"bundle {root}: text encoder cannot be built: {exc}") from exc
    _load_state(text.model, text_state, "the text encoder")
    text.model.to(torch_device).eval()  # type: ignore[arg-type]  # transformers wraps .to

    images: dict[str, nn.Module] = {}
    for seq in manifest.sequences:
        spec = manifest.image_encoders[seq]
        net = build_network(spec.class_name, spec.init_args)
        _load_state(net, _split_state(weights, f"image.{seq}."), f"the {seq} image encoder")
        images[seq] = net.to(torch_device).eval()
    logger.info(
        "loaded bundle %s %s (device UID %s, sequences %s)",
        manifest.name,
        manifest.version,
        manifest.device_uid,
        ",".join(manifest.sequences),
    )
    return ModelBundle(root, manifest, text, images, torch_device)
