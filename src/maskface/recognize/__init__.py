"""Face recognition: embedders (SFace baseline, masked-face adapted model) and the pipeline's
recognition stage."""

from __future__ import annotations

from pathlib import Path

from maskface.errors import InputError
from maskface.recognize.base import Embedder, l2_normalize
from maskface.recognize.faces import PickedFace, central_face, single_face
from maskface.recognize.onnx_embedder import OnnxEmbedder, SFaceEmbedder
from maskface.recognize.recognizer import Recognizer

EMBEDDERS = ("sface",)
#: the embedder used when none is named
DEFAULT_EMBEDDER = "sface"

#: Open-set cosine thresholds per embedder, chosen on LFW (see docs/recognition.md).
THRESHOLDS = {"sface": 0.363}


def create_embedder(name: str | Path = "default") -> Embedder:
    """An embedder by name (``sface``, ``default``) or from an ONNX file path."""
    name = str(name)
    if name == "default":
        name = DEFAULT_EMBEDDER
    if name == "sface":
        return SFaceEmbedder()
    if name.endswith(".onnx"):
        return OnnxEmbedder(Path(name))
    if name in EMBEDDERS:  # a project-trained embedder registered in maskface.models
        return OnnxEmbedder(name, name=name)
    raise InputError(f"unknown embedder '{name}'; choose one of: {', '.join(EMBEDDERS)} "
                     "or give an .onnx file")


def default_threshold(embedder: Embedder) -> float:
    """The embedder's calibrated open-set threshold (from its metadata or :data:`THRESHOLDS`)."""
    meta = getattr(embedder, "metadata", {}) or {}
    if "threshold" in meta:
        return float(meta["threshold"])
    return THRESHOLDS.get(embedder.name, 0.4)


__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "Embedder", "OnnxEmbedder", "PickedFace",
           "Recognizer", "SFaceEmbedder", "central_face", "create_embedder",
           "default_threshold", "l2_normalize", "single_face"]
