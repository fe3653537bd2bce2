"""Embedders run on onnxruntime: SFace (the registered baseline) and this project's adapted model.

Contract shared by both graphs: input ``float32 (N, 3, 112, 112)`` **RGB** pixels in 0..255
(normalisation is inside the graph), output ``(N, D)`` raw embeddings. SFace's own OpenCV wrapper
(``cv2.FaceRecognizerSF``) swaps BGR to RGB before the network; we do the same, and the tests
check that our embeddings match it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from maskface.align import REID0095_TEMPLATE, realign
from maskface.errors import ModelError
from maskface.models import ort_session
from maskface.recognize.base import Embedder


class BatchedSession:
    """One onnxruntime session (a registered model name or a file), run on its first input in
    ``batch_size`` slices under a lock (one session, callers on several threads)."""

    def __init__(self, model: str | Path, threads: int | None = None, batch_size: int = 32):
        self.session = ort_session(model, threads)
        self.input = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def run(self, x: np.ndarray, extra: dict | None = None) -> np.ndarray:
        """The first output on ``x`` (N, ...), one flattened row per item."""
        out = []
        with self._lock:
            for i in range(0, len(x), self.batch_size):
                feed = {self.input: x[i : i + self.batch_size], **(extra or {})}
                out.append(self.session.run(None, feed)[0])
        return np.concatenate(out).reshape(len(x), -1)


class OnnxEmbedder(Embedder):
    """An embedder backed by one ONNX graph (a registered model name or a file path).

    Graphs with a fixed batch of 1 (SFace) are run one face at a time; graphs with a dynamic
    batch dimension are run ``batch_size`` faces at a time.
    """

    def __init__(self, model: str | Path = "sface", name: str | None = None,
                 batch_size: int = 32, threads: int | None = None):
        self._net = BatchedSession(model, threads, batch_size)
        session = self._net.session
        inputs = session.get_inputs()
        first = inputs[0]
        if len(first.shape) != 4 or list(first.shape[1:]) != [3, 112, 112]:
            raise ModelError(f"{model}: not a face embedder (input shape {first.shape})")
        # The SFace release declares its weights as graph inputs that no node reads; onnxruntime
        # still insists on a feed for each, so they get zeros (allocated once, never used).
        self._extra = {
            i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
            for i in inputs[1:]
        }
        if isinstance(first.shape[0], int):  # a fixed batch (SFace's release): one at a time
            self._net.batch_size = 1
        out_dim = session.get_outputs()[0].shape[-1]
        meta = session.get_modelmeta().custom_metadata_map
        self.name = name or meta.get("embedder_name") or Path(str(model)).stem
        self.dim = int(meta.get("embedding_dim", out_dim))
        self.metadata = {k: (json.loads(v) if v[:1] in "[{" else v) for k, v in meta.items()}

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(faces[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        return self._net.run(x, self._extra)


class SFaceEmbedder(OnnxEmbedder):
    """SFace (OpenCV Zoo, 2021dec int8), 128-d: the registered baseline recogniser.

    Runs ``sface_fast``, the same network and weights with a graph onnxruntime runs in ~0.55x
    the time (batched; ``scripts/export_sface_fast.py``); its vectors are SFace's.
    """

    def __init__(self, threads: int | None = None):
        super().__init__("sface_fast", name="sface", threads=threads)


class Reid0095Embedder(Embedder):
    """Intel's ``face-reidentification-retail-0095`` (Open Model Zoo, Apache-2.0), 256-d.

    Takes the project's 112x112 ArcFace crop like every embedder and re-warps it onto its own
    template (128x128, :data:`maskface.align.REID0095_TEMPLATE`); input BGR 0..255 as is (the
    IR folded its channel swap and scaling into the graph). Better than SFace on clean faces,
    much worse on masked ones: used in fusion (:class:`maskface.recognize.FusedEmbedder`).
    """

    name = "reid0095"
    dim = 256
    SIZE = 128

    def __init__(self, threads: int | None = None, batch_size: int = 32):
        self._net = BatchedSession("face_reid_0095", threads, batch_size)
        self.metadata = dict(self._net.session.get_modelmeta().custom_metadata_map)

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        return self._net.run(reid0095_input(faces))


def reid0095_input(faces: np.ndarray) -> np.ndarray:
    """reid0095's input ``(N, 3, 128, 128)`` float32 BGR 0..255 from 112x112 ArcFace crops."""
    crops = realign(faces, REID0095_TEMPLATE, Reid0095Embedder.SIZE)
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
