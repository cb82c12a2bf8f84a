"""Structural walkers: each image format's container checked from the first byte to the last.

Every walker has the same shape::

    def walk(reader: ChunkReader, limits: StructureLimits) -> ImageFacts

It pulls the object's bytes from ``reader`` (one streaming pass, never seeking back), checks
that they fit the format exactly, and returns what it measured. Anything that does not fit
raises :class:`StructureError` with a stable :class:`Reason`. A walker returns only when it has
consumed the whole object: bytes after the format's end are ``trailing-data``.
"""
