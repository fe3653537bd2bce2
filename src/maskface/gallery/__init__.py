"""The gallery of enrolled people: SQLite storage and 1:N / 1:1 matching.

Example::

    from maskface.gallery import Gallery
    with Gallery("people.db", model="sface", dim=128) as g:
        alice = g.enroll("Alice", embeddings)            # (K, 128) unit vectors
        match = g.identify(query_embeddings, threshold=0.4)[0]
        print(match.name if match.known else "unknown", match.score)
        g.delete(alice.id)                               # erases every embedding of Alice
"""

from maskface.gallery.duplicates import (
    Duplicate,
    duplicate_threshold,
    find_duplicate,
    store_unless_duplicate,
)
from maskface.gallery.index import AutoIndex, ExactIndex, GalleryIndex, IVFIndex
from maskface.gallery.store import (
    AuditEvent,
    DuplicateNameError,
    Gallery,
    GalleryChangedError,
    GalleryError,
    Match,
    Person,
    UnknownPersonError,
    check_name,
    default_db_path,
)

__all__ = ["AuditEvent", "AutoIndex", "Duplicate", "DuplicateNameError", "ExactIndex", "Gallery",
           "GalleryChangedError", "GalleryError", "GalleryIndex", "IVFIndex", "Match", "Person",
           "UnknownPersonError", "check_name", "default_db_path", "duplicate_threshold",
           "find_duplicate", "store_unless_duplicate"]
