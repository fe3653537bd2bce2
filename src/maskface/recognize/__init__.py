"""Face recognition: embedders (SFace baseline, masked-face adapted model) and the pipeline's
recognition stage."""

from __future__ import annotations

from pathlib import Path

from maskface.errors import InputError
from maskface.recognize.base import Embedder, MaskAwareEmbedder, l2_normalize
from maskface.recognize.faces import PickedFace, central_face, single_face
from maskface.recognize.fusion import FusedEmbedder
from maskface.recognize.onnx_embedder import OnnxEmbedder, Reid0095Embedder, SFaceEmbedder
from maskface.recognize.realign import MaskedRealigner, RealignedEmbedder
from maskface.recognize.recognizer import Recognizer

EMBEDDERS = ("sface", "sface_masked", "reid0095", "fused")
#: fitted fusion weights of ``fused`` (``scripts/fit_fusion.py``, validation identities only)
FUSION_FILE = Path(__file__).resolve().parents[1] / "weights" / "fusion.json"
#: the embedder used when none is named: SFace for unmasked faces, the adapter for masked ones
#: (measured better on masked LFW pairs, identical on unmasked ones; docs/recognition.md)
DEFAULT_EMBEDDER = "sface_masked"
#: the embedder to use with a gallery bound to each embedding space (``Gallery.model``, an
#: embedder's ``name``): ``sface`` and ``sface_masked`` share SFace's space
EMBEDDER_OF_SPACE = {"sface": DEFAULT_EMBEDDER, "sface+reid0095": "fused",
                     "reid0095": "reid0095"}
#: the embedding space each built-in embedder makes
SPACE_OF_EMBEDDER = {"sface": "sface", "sface_masked": "sface", "reid0095": "reid0095",
                     "fused": "sface+reid0095"}

#: Open-set cosine thresholds per embedder, chosen on LFW (see docs/recognition.md).
THRESHOLDS = {"sface": 0.363}


def create_embedder(name: str | Path = "default", realign: bool = True) -> Embedder:
    """An embedder by name (:data:`EMBEDDERS` or ``default``) or from an ONNX file.

    ``sface_masked`` and ``fused`` are mask-aware: pass ``masked`` flags to ``embed`` (the
    pipeline's :class:`Recognizer` does); faces not flagged get SFace's own vectors, faces
    flagged masked are re-aligned first (:mod:`maskface.recognize.realign`) unless
    ``realign=False``.
    """
    name = str(name)
    if name == "default":
        name = DEFAULT_EMBEDDER
    if name == "sface":
        return SFaceEmbedder()
    if name == "sface_masked":
        adapter = OnnxEmbedder("recognizer_sface_masked", name="sface_masked")
        emb = MaskAwareEmbedder(SFaceEmbedder(), adapter, label="sface+masked_adapter")
        return RealignedEmbedder(emb, MaskedRealigner()) if realign else emb
    if name == "reid0095":
        return Reid0095Embedder()
    if name == "fused":
        emb = fused_embedder()
        return RealignedEmbedder(emb, MaskedRealigner()) if realign else emb
    if name.endswith(".onnx"):
        return OnnxEmbedder(Path(name))
    raise InputError(f"unknown embedder '{name}'; choose one of: {', '.join(EMBEDDERS)} "
                     "or give an .onnx file")


def embedder_for_gallery(space: str) -> str:
    """The embedder name (:func:`create_embedder`) for a gallery bound to ``space``; an
    ONNX file's space must be named by the user."""
    if space in EMBEDDER_OF_SPACE:
        return EMBEDDER_OF_SPACE[space]
    raise InputError(f"the gallery holds '{space}' embeddings, made by a model that is not "
                     "built in: name its ONNX file with --model (or [models] embedder)")


def fusion_config() -> dict:
    """The shipped fusion weights and template rule (``weights/fusion.json``)."""
    import json

    return json.loads(FUSION_FILE.read_text())


def fused_embedder(weight_unmasked: float | None = None, weight_masked: float | None = None
                   ) -> FusedEmbedder:
    """``sface_masked`` fused with ``reid0095`` at score level, weights by probe mask state
    (the fitted ones unless given); without re-alignment, which ``create_embedder("fused")``
    wraps around it."""
    cfg = fusion_config()
    wu = cfg["weight_unmasked"] if weight_unmasked is None else weight_unmasked
    wm = cfg["weight_masked"] if weight_masked is None else weight_masked
    base = create_embedder("sface_masked", realign=False)  # the fused whole is re-aligned
    return FusedEmbedder(base, Reid0095Embedder(), wu, wm,
                         label=f"fused(sface_masked {wu:g}/{wm:g}, reid0095)")


def default_threshold(embedder: Embedder) -> float:
    """The embedder's calibrated open-set threshold (from its metadata or :data:`THRESHOLDS`)."""
    meta = getattr(embedder, "metadata", {}) or {}
    if "threshold" in meta:
        return float(meta["threshold"])
    if embedder.name in THRESHOLDS:
        return THRESHOLDS[embedder.name]
    from maskface.gallery.thresholds import model_thresholds

    fitted = model_thresholds(embedder.name)  # a fused space: its unmasked operating point
    return float(fitted["unmasked-unmasked"]) if fitted else 0.4


__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "EMBEDDER_OF_SPACE", "SPACE_OF_EMBEDDER",
           "Embedder", "FusedEmbedder", "MaskAwareEmbedder", "MaskedRealigner", "OnnxEmbedder",
           "PickedFace",
           "RealignedEmbedder", "Recognizer", "Reid0095Embedder", "SFaceEmbedder", "central_face",
           "create_embedder", "default_threshold", "embedder_for_gallery", "fused_embedder",
           "l2_normalize", "single_face"]
