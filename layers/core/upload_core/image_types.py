"""Image types this product accepts, recognised by their magic bytes (never by a declared type)."""

from __future__ import annotations

from dataclasses import dataclass

# Enough bytes to recognise every type below.
SNIFF_BYTES = 32


@dataclass(frozen=True, slots=True)
class ImageType:
    mime: str
    extensions: tuple[str, ...]
    pillow_format: str


JPEG = ImageType("image/jpeg", ("jpg", "jpeg", "jpe", "jfif"), "JPEG")
PNG = ImageType("image/png", ("png",), "PNG")
GIF = ImageType("image/gif", ("gif",), "GIF")
WEBP = ImageType("image/webp", ("webp",), "WEBP")
AVIF = ImageType("image/avif", ("avif",), "AVIF")
IMAGE_TYPES: dict[str, ImageType] = {t.mime: t for t in (JPEG, PNG, GIF, WEBP, AVIF)}


def sniff_image_type(head: bytes) -> ImageType | None:
    """The image type the first bytes announce, or None when they are not a supported image."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return AVIF
    return None


def looks_like_active_content(head: bytes) -> bool:
    """SVG, HTML and XML can carry script; refuse them whatever they are called."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html", b"<script", b"<!--", b"<head", b"<body"))
