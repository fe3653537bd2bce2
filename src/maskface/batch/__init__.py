"""Batch analysis of large image collections on Ray (local or a cluster), resumable."""

from maskface.batch.job import BatchSummary, FacePredictor, list_inputs, run_batch
from maskface.batch.manifest import InputFile, Manifest

__all__ = ["BatchSummary", "FacePredictor", "InputFile", "Manifest", "list_inputs",
           "run_batch"]
