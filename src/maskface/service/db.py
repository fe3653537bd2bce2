"""The service's tables live in the shared store (:mod:`maskface.storage`) with the gallery, so
one database holds everything a deployment must back up."""

from maskface.storage import StoreError

__all__ = ["StoreError"]
