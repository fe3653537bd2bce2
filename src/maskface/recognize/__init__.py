"""Face recognition: embedders (SFace baseline, masked-face adapted model) and the pipeline's
recognition stage."""

from __future__ import annotations

from pathlib import Path

from maskface.errors import InputError
from maskface.recognize.base import Embedder, MaskAwareEmbedder, l2_normalize
from maskface.recognize.faces import PickedFace, central_face, single_face
from maskface.recognize.onnx_embedder import OnnxEmbedder, SFaceEmbedder
from maskface.recognize.recognizer import Recognizer

EMBEDDERS = ("sface", "sface_masked")
#: the embedder used when none is named: SFace for unmasked faces, the adapter for masked ones
#: (measured better on masked LFW pairs, identical on unmasked ones; docs/recognition.md)
DEFAULT_EMBEDDER = "sface_masked"

#: Open-set cosine thresholds per embedder, chosen on LFW (see docs/recognition.md).
THRESHOLDS = {"sface": 0.363}


def create_embedder(name: str | Path = "default") -> Embedder:
    """An embedder by name (``sface``, ``sface_masked``, ``default``) or from an ONNX file.

    ``sface_masked`` is mask-aware: pass ``masked`` flags to ``embed`` (the pipeline's
    :class:`Recognizer` does); faces not flagged get SFace's own vectors.
    """
    name = str(name)
    if name == "default":
        name = DEFAULT_EMBEDDER
    if name == "sface":
        return SFaceEmbedder()
    if name == "sface_masked":
        adapter = OnnxEmbedder("recognizer_sface_masked", name="sface_masked")
        return MaskAwareEmbedder(SFaceEmbedder(), adapter, label="sface+masked_adapter")
    if name.endswith(".onnx"):
        return OnnxEmbedder(Path(name))
    raise InputError(f"unknown embedder '{name}'; choose one of: {', '.join(EMBEDDERS)} "
                     "or give an .onnx file")


def default_threshold(embedder: Embedder) -> float:
    """The embedder's calibrated open-set threshold (from its metadata or :data:`THRESHOLDS`)."""
    meta = getattr(embedder, "metadata", {}) or {}
    if "threshold" in meta:
        return float(meta["threshold"])
    return THRESHOLDS.get(embedder.name, 0.4)


__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "MaskAwareEmbedder", "OnnxEmbedder",
           "PickedFace",
           "Recognizer", "SFaceEmbedder", "central_face", "create_embedder",
           "default_threshold", "l2_normalize", "single_face"]
