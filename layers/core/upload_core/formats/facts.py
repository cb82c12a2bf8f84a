"""What a walker measured, and the limits it enforces while it walks."""

from __future__ import annotations

from dataclasses import dataclass

from upload_core.formats.errors import Reason, StructureError


@dataclass(frozen=True, slots=True)
class StructureLimits:
    max_width: int
    max_height: int
    # Per frame (and the canvas) ...
    max_pixels: int
    # ... and summed over every frame of an animation (an animation bomb is many modest frames).
    max_total_pixels: int
    max_frames: int
    # Bytes that are not image data: metadata (EXIF, XMP, ICC), comments, unknown chunks.
    max_metadata_bytes: int
    # JPEG only: further images after the first EOI pass when an MPF index accounts for them.
    allow_indexed_jpeg_trailers: bool = False


@dataclass(frozen=True, slots=True)
class ImageFacts:
    width: int
    height: int
    # Exact: every frame was counted (1 for a still image).
    frames: int
    # Sum of every frame's width x height (the canvas's for a still image).
    total_pixels: int
    metadata_bytes: int
    # True when the file carries animation (APNG acTL, GIF with >1 frame, WebP ANIM, AVIF sequence).
    animated: bool = False


class FrameCounter:
    """Counts and measures frames as a walker meets them, failing at the first one over a limit,
    so a walker never has to hold a list of frames."""

    def __init__(self, limits: StructureLimits) -> None:
        self._limits = limits
        self.frames = 0
        self.total_pixels = 0

    def check_canvas(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise StructureError(Reason.CORRUPT_HEADER, f"canvas {width}x{height}")
        if width > self._limits.max_width or height > self._limits.max_height:
            raise StructureError(Reason.DIMENSIONS_TOO_LARGE, f"canvas {width}x{height}")
        if width * height > self._limits.max_pixels:
            raise StructureError(Reason.TOO_MANY_PIXELS, f"canvas {width}x{height}")

    def add_frame(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise StructureError(Reason.BAD_STRUCTURE, f"frame {self.frames + 1} is {width}x{height}")
        if width > self._limits.max_width or height > self._limits.max_height:
            raise StructureError(Reason.DIMENSIONS_TOO_LARGE, f"frame {self.frames + 1} is {width}x{height}")
        pixels = width * height
        if pixels > self._limits.max_pixels:
            raise StructureError(Reason.TOO_MANY_PIXELS, f"frame {self.frames + 1} is {width}x{height}")
        self.frames += 1
        if self.frames > self._limits.max_frames:
            raise StructureError(Reason.TOO_MANY_FRAMES, f"more than {self._limits.max_frames} frames")
        self.total_pixels += pixels
        if self.total_pixels > self._limits.max_total_pixels:
            raise StructureError(Reason.TOO_MANY_PIXELS, f"{self.total_pixels} pixels over {self.frames} frames")


class MetadataBudget:
    """Counts bytes that are not image data and fails as soon as they pass the limit."""

    def __init__(self, limits: StructureLimits) -> None:
        self._limit = limits.max_metadata_bytes
        self.used = 0

    def spend(self, n: int, what: str) -> None:
        self.used += n
        if self.used > self._limit:
            raise StructureError(Reason.TOO_MUCH_METADATA, f"{self.used} bytes of metadata ({what})")
