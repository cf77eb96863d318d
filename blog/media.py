"""Uploaded images: decoded, checked and re-encoded by Pillow, then stored under their hash.

Nothing an author (or an API client, or an import) sends is served as it came. The bytes must
decode as one of the formats below, within limits on bytes and pixels checked before decoding
(so a decompression bomb costs nothing); the picture is turned upright by its EXIF orientation
and written again without any metadata (EXIF, GPS, XMP, comments), and at a few narrower widths
in WebP. SVG is not an image here: it is a document that can run script, and is refused.

Every stored file is named by the SHA-256 of the re-encoded original, so its URL never changes
and can be cached for a year (`immutable`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from PIL import Image, UnidentifiedImageError, features
from sqlalchemy import select

from . import imagescan
from .database import in_chunks, insert_unless_taken, take_turns
from .extensions import db
from .models import Media
from .storage import CONTENT_TYPES, media_storage

log = logging.getLogger(__name__)

# 10 MB: a phone photo is 2-6 MB; more is a RAW file or a scan, not a picture for an article.
MAX_BYTES = 10 * 1024 * 1024
# 40 megapixels (8000 x 5000): decoded as RGBA that is 160 MB of memory, the most we accept.
MAX_PIXELS = 40_000_000
MAX_FRAMES = 200  # an animated GIF or WebP; every frame is decoded
# All frames together: each is decoded and encoded again. 30 million took 1.4 s for a GIF of
# plain frames and 2 s for one of screenshots (each frame's own palette, so each is quantized
# again); 20 million keeps an animation near the cost of the largest still picture.
MAX_ANIMATION_PIXELS = 20_000_000
# Writing a picture again costs far more in some formats than in JPEG or GIF, so they accept
# fewer pixels, checked before decoding like MAX_PIXELS. Each keeps the worst content we found
# near a second of CPU on two cores (Pillow 13: libwebp 1.6, libavif 1.4 with aom). At the
# limit, a still picture took: JPEG 1.2 s (40 MP of noise, progressive), PNG 1.1 s (24 MP
# screenshot; 1.5 s half-transparent, or a 10 MB file that is part photo), WebP 1.3 s (16 MP
# photo), AVIF 1.05 s (6 MP of noise; a photo 0.6 s). An animation: WebP 1.2 s (8 MP of
# noise), AVIF 0.8-1.2 s (5 MP of noise), PNG 0.8 s (12 MP of blocky noise; 20 MP took
# 1.3-1.8 s). PNG's is what a phone's 1170 x 20,000 screenshot needs. AVIF's was 40 MP: a
# noisy 8000 x 5000 took 17 s, and still 4 s at the fastest speed.
FORMAT_MAX_PIXELS = {"PNG": 24_000_000, "WEBP": 16_000_000, "AVIF": 6_000_000}
# An AVIF's transparency is a second picture to decode and write again: 6 MP of noise took 2.7 s
# of CPU with it, 1.5 s without. All frames together, for an animation.
AVIF_TRANSPARENT_MAX_PIXELS = 3_000_000
FORMAT_MAX_ANIMATION_PIXELS = {"WEBP": 8_000_000, "AVIF": 5_000_000, "PNG": 12_000_000}
FORMAT_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "AVIF": "AVIF"}
WIDTHS = (480, 960, 1600)  # the WebP variants (never wider than the original)
# WebP holds at most this many pixels on a side (libwebp refuses to write more).
WEBP_MAX_SIDE = 16383
# The copies of an ordinary picture add under 8 megapixels (1600 x 3400 and its narrower ones);
# a long picture's are as large as itself and would double its cost (1170 x 20,000: 1.2 s
# more), so past this it gets none and the page shows the original.
MAX_COPY_PIXELS = 8_000_000
# A reviewer is told when an original is heavier than this (a page should not carry 5 MB).
LARGE_ORIGINAL_BYTES = 1_500_000
LARGE_ORIGINAL_PIXELS = 4000 * 3000
JPEG_QUALITY = 85
JPEG_OPTIMIZE_MAX_PIXELS = 13_000_000  # a 4032 x 3024 phone photo is 12.2 MP
# lcms converted 40 MP of CMYK noise through its profile in 2.7 s on one core, against 0.34 s for
# Pillow's plain conversion: past this, a CMYK picture's colours are converted plainly.
CMYK_PROFILE_MAX_PIXELS = 16_000_000
WEBP_QUALITY = 80

# Pillow's format name -> the stored extension.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
if features.check("avif"):
    FORMATS["AVIF"] = "avif"
# Pillow's name for a file that is one of ours with more in it -> the format it is stored as. A
# JPEG followed by more pictures (MPO: the second eye or depth map many phone cameras add) is a
# photo like any other: the first picture is the one every viewer shows; the rest is dropped.
STORED_AS = {"MPO": "JPEG"}
KEPT_INFO = ("icc_profile", "transparency", "duration", "loop", "background")


class MediaError(Exception):
    """An upload that cannot be stored, with the HTTP status and a message for the author."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Processed:
    """An image ready to store: the clean original and its WebP variants by width."""

    sha256: str
    ext: str
    data: bytes
    width: int
    height: int
    variants: dict[int, bytes] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.sha256}.{self.ext}"


def _limit(name: str, default: int) -> int:
    """Read a limit from the configuration (the default in an importer's worker process)."""
    if not has_app_context():
        return default
    return int(current_app.config.get(name) or default)


def max_bytes() -> int:
    """Return the largest upload accepted, in bytes."""
    return _limit("MEDIA_MAX_BYTES", MAX_BYTES)


def _open(data: bytes) -> Image.Image:
    """Open (not decode) the bytes as one of our formats, or refuse them as not an image."""
    try:
        # Pillow's JPEG opener answers an MPO itself (MPO is no format of its own to ask for).
        return Image.open(io.BytesIO(data), formats=list(FORMATS))
    # RuntimeError: the AVIF reader's, for a file its decoder cannot open.
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, RuntimeError):
        names = ", ".join(sorted(FORMATS))
        raise MediaError(415, f"This file is not an image we accept ({names}).") from None


def _decode(data: bytes) -> Image.Image:
    """Check declared size, verify and fully decode an image; refuse bombs and broken files."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            canvas = imagescan.walk(data)
            image = _open(data)
            frames = _frames(image)
            _check_size(image, frames, canvas)
            image.verify()  # checks the file's structure (CRCs, chunk order)
            # verify() leaves the image unusable: open it again to decode every pixel.
            image = _open(data)
            image.load()
            size = image.size
            for index in range(1, frames):
                image.seek(index)  # reads the frame's header; load() decodes it
                if image.size != size:  # a GIF frame larger than the screen grows the canvas
                    size = image.size
                    _check_size(image, frames)
                image.load()
            image.seek(0)
        except MediaError:
            raise
        except imagescan.Refused as refused:
            raise MediaError(422, str(refused)) from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise MediaError(
                422, "This image declares more pixels than we decode (a decompression bomb?)."
            ) from None
        except (
            OSError,
            SyntaxError,
            ValueError,
            EOFError,
            IndexError,
            TypeError,
            RuntimeError,
        ) as error:
            raise MediaError(422, f"This image is damaged or incomplete ({error}).") from None
    return image


def _check_size(image: Image.Image, frames: int, size: tuple[int, int] | None = None) -> None:
    """Refuse an image whose size or frames are past a limit, before its pixels are decoded.

    Run on the size a file declares (a GIF's: the size its frames grow the canvas to), and
    again whenever a frame grows the canvas, in case Pillow reads a GIF otherwise than
    imagescan: only the first frame's size was checked, and a 9000 x 9000 frame after two
    small ones took 9 s.
    """
    width, height = size or image.size
    stored_as = _stored_format(image)
    name = FORMAT_NAMES.get(stored_as, stored_as)
    site_max_pixels = _limit("MEDIA_MAX_PIXELS", MAX_PIXELS)
    max_pixels = min(site_max_pixels, FORMAT_MAX_PIXELS.get(stored_as, site_max_pixels))
    if width < 1 or height < 1:
        raise MediaError(422, "This image has no pixels.")
    if width * height > site_max_pixels:
        raise MediaError(
            422,
            f"This image is {width:,} x {height:,} pixels, over the limit of "
            f"{site_max_pixels:,} pixels; scale it down before uploading.",
        )
    if width * height > max_pixels:
        raise MediaError(
            422,
            f"This {name} image is {width:,} x {height:,} pixels, over the limit of "
            f"{max_pixels:,} pixels for {name} (slow to write again); scale it down, "
            f"or upload it as a JPEG (up to {site_max_pixels:,} pixels).",
        )
    transparent_max = min(site_max_pixels, AVIF_TRANSPARENT_MAX_PIXELS)
    if stored_as == "AVIF" and image.mode == "RGBA" and frames * width * height > transparent_max:
        png_max = min(site_max_pixels, FORMAT_MAX_PIXELS["PNG"])
        in_frames = f" in {frames:,} frames" if frames > 1 else ""
        raise MediaError(
            422,
            f"This transparent AVIF image is {width:,} x {height:,} pixels{in_frames}, over the "
            f"limit of {transparent_max:,} pixels for a transparent AVIF (slow to write again); "
            f"scale it down, or upload it as PNG (up to {png_max:,} pixels).",
        )
    if image.format == "WEBP" and max(width, height) > WEBP_MAX_SIDE:
        # A lossless WebP's header has room for 16,384 and Pillow decodes it, but it cannot be
        # written again as WebP.
        raise MediaError(
            422,
            f"This WebP image is {width:,} x {height:,} pixels, more than the "
            f"{WEBP_MAX_SIDE:,} pixels a side WebP can be written at; crop it or "
            "upload it as PNG.",
        )
    if frames > MAX_FRAMES:
        raise MediaError(
            422, f"This animation has {frames:,} frames, over the limit of {MAX_FRAMES}."
        )
    max_animation = FORMAT_MAX_ANIMATION_PIXELS.get(stored_as, MAX_ANIMATION_PIXELS)
    if frames > 1 and frames * width * height > max_animation:
        kind = "" if max_animation == MAX_ANIMATION_PIXELS else f" for {name}"
        raise MediaError(
            422,
            f"This animation is {frames:,} frames of {width:,} x {height:,} pixels, over "
            f"the limit of {max_animation:,} pixels{kind} in all frames together; "
            "scale it down or shorten it.",
        )


def _stored_format(image: Image.Image) -> str:
    """Return the format an image is stored in: its own, or the one STORED_AS names for it."""
    return STORED_AS.get(str(image.format), str(image.format))


def _frames(image: Image.Image) -> int:
    """Return how many frames an image shows: an MPO's pictures after the first are not shown.

    They are never decoded or stored, so they count against no limit of an animation.
    """
    return 1 if image.format in STORED_AS else getattr(image, "n_frames", 1)


def _without_metadata(image: Image.Image) -> Image.Image:
    """Keep only what drawing needs (colour profile, transparency, timing); drop EXIF and GPS."""
    image.info = {k: v for k, v in image.info.items() if k in KEPT_INFO}
    return image


def _encode(image: Image.Image, pillow_format: str, animated: bool = False) -> bytes:
    """Write an image in a format with our settings, and never any EXIF (no `exif=` given)."""
    out = io.BytesIO()
    options: dict = {}
    if pillow_format == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        # Huffman tables made for the picture (optimize) cost little up to a phone photo's
        # 12 MP; at 40 MP they took 3 times the CPU and 106 MB more, for a file 5 % smaller.
        # progressive cost six times a plain save.
        optimize = image.width * image.height <= JPEG_OPTIMIZE_MAX_PIXELS
        options = {"quality": JPEG_QUALITY, "optimize": optimize}
    elif pillow_format == "PNG":
        # Level 6 (the default) took 10 s for an 18 MP PNG of grey noise and 3.2 s for a 7 MP
        # photo; zlib's fast levels (1-3) bound the match search: 1.0 s and 0.8 s, for files
        # 5-10 % larger (a page shows the WebP copies). optimize=True tripled the time for ~5 %.
        options = {"compress_level": 3}
    elif pillow_format == "WEBP":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        # method 3 took twice as long as 2 (a 12-megapixel photo 1.2 s, 0.56 s) for files
        # 2 % (a photo) to 12 % (a long screenshot) smaller.
        options = {"quality": WEBP_QUALITY, "method": 2}
    elif pillow_format == "AVIF":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if _has_alpha(image) else "RGB")
        # The default speed (6) took 5.7 s for a 12-megapixel photo; 10, the fastest, 1.1 s
        # for a file 5 % larger. The original is rarely served: the page shows the WebP copies.
        options = {"quality": 60, "speed": 10}
    if animated:
        options.update(save_all=True)
    icc = image.info.get("icc_profile")
    if icc and pillow_format != "GIF":
        options["icc_profile"] = icc
    image.save(out, pillow_format, **options)
    return out.getvalue()


def _in_rgb(image: Image.Image) -> Image.Image:
    """Return a CMYK picture in RGB, through its colour profile to sRGB when lcms reads it
    (up to CMYK_PROFILE_MAX_PIXELS).

    Every format is stored in RGB; its CMYK profile was kept on the RGB picture and its copies,
    where a browser would read RGB values through a CMYK profile. Other modes are returned as
    they are (_encode converts them where a format needs it, keeping an RGB profile).
    """
    if image.mode != "CMYK":
        return image
    info = {key: value for key, value in image.info.items() if key != "icc_profile"}
    profile = image.info.get("icc_profile")
    converted = None
    small = image.width * image.height <= CMYK_PROFILE_MAX_PIXELS
    if profile and small and features.check("littlecms2"):
        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a profile lcms cannot read or use: as if there were none
    if converted is None:
        converted = image.convert("RGB")
    converted.info = info
    return converted


# How to turn a picture upright for each EXIF orientation (1, or none: it is upright).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(image: Image.Image) -> Image.Image:
    """Return the picture turned as its EXIF orientation says (the image itself if upright).

    Only the orientation is read. Pillow's exif_transpose writes the whole EXIF again, which is
    dropped after anyway: a RATIONAL 0/0 there was a 500, and 10 MB of them took 5.4 s.
    """
    try:
        with warnings.catch_warnings():  # one per damaged tag: 65,000 of them flooded the log
            warnings.simplefilter("ignore")
            orientation = image.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - any damage to untrusted EXIF: leave the picture as it is
        return image
    method = _UPRIGHT.get(orientation) if isinstance(orientation, int) else None
    return image if method is None else image.transpose(method)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def process(data: bytes) -> Processed:
    """Decode, check and re-encode an upload; raise MediaError with a message when refused."""
    if not data:
        raise MediaError(422, "The file is empty.")
    if len(data) > max_bytes():
        raise MediaError(413, f"The file is larger than {max_bytes():,} bytes.")
    try:
        return _process(data)
    except MediaError:
        raise
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - Pillow on a damaged file raises nearly anything
        # A fuzzer found struct.error, UnboundLocalError, ZeroDivisionError and SyntaxError,
        # from decoding and from writing again (a second walk over the frames): each was a 500.
        log.warning("an image Pillow could not read or write again", exc_info=True)
        raise MediaError(
            422, "This image is damaged: it could not be read or written again."
        ) from None


def _process(data: bytes) -> Processed:
    """Decode, check and write again: process() without its guard against Pillow's errors."""
    image = _decode(data)
    pillow_format = _stored_format(image)
    animated = _frames(image) > 1
    if animated:
        # Every frame re-encoded as it is (an animation has no orientation to apply).
        clean = _without_metadata(image)
    else:
        clean = _without_metadata(_in_rgb(_upright(image)))
    original = _encode(clean, pillow_format, animated=animated)
    width, height = clean.size
    processed = Processed(
        sha256=hashlib.sha256(original).hexdigest(),
        ext=FORMATS[pillow_format],
        data=original,
        width=width,
        height=height,
    )
    if not animated:
        # Widest first, each scaled from the one before: far less work than from the original.
        source = clean
        for target in sorted(variant_widths(width, height), reverse=True):
            scaled = source
            if target < source.width:
                size = (target, max(1, round(height * target / width)))
                # A gap of 2 (thumbnail()'s) halves the work from 8000 pixels wide (0.47 s to
                # 0.2 s), and differs from a full Lanczos by under one level in 255.
                scaled = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
            if scaled is clean and pillow_format == "WEBP":
                # The same picture, encoder and settings: the original's very bytes.
                processed.variants[target] = original
            else:
                processed.variants[target] = _encode(scaled, "WEBP")
            source = scaled
        processed.variants = dict(sorted(processed.variants.items()))
    return processed


def variant_widths(width: int, height: int) -> list[int]:
    """Return the WebP widths made for an image this size: never upscaled, never too tall.

    A copy taller than WebP holds is made narrower instead, the widest that fits: srcset lists
    each copy by its width, so a copy must be exactly the width it is listed at and keep the
    picture's shape. A long picture gets no copies at all (past MAX_COPY_PIXELS they would cost
    as much as the picture, and offering only narrow ones would blur it on every screen), nor
    does one too thin for even a copy one pixel wide; the page shows the original.
    """
    fits = WEBP_MAX_SIDE * width // height  # the widest copy whose height WebP holds
    widths = sorted({w for target in WIDTHS if (w := min(target, width, fits)) >= 1})
    if sum(w * max(1, round(height * w / width)) for w in widths) > MAX_COPY_PIXELS:
        return []  # a long picture: copies would cost as much as the picture itself
    return widths


def variant_key(sha256: str, width: int) -> str:
    """Return the storage key of a WebP variant."""
    return f"{sha256}-{width}.webp"


def save(processed: Processed, uploaded_by_id: int | None, article_id: int | None = None) -> Media:
    """Store a processed image and its uploader's row (not committed); return that row.

    Kept apart from process() so a view can decode (slow) outside any database transaction.
    Each uploader has a row of their own (Media says why); the files are shared. A row can
    outlive its files (the database copied to a new server or bucket without them), so
    uploading a known picture again writes back whichever of its files are missing: its
    uploader's obvious remedy then works.
    """
    rows = picture_rows(processed.sha256)
    storage = media_storage()
    # Files first, row second: a row never points at files that are not there (a crash between
    # leaves unreferenced files, harmless and content-addressed).
    files = [
        (variant_key(processed.sha256, width), variant, CONTENT_TYPES["webp"])
        for width, variant in processed.variants.items()
    ]
    files.append((processed.key, processed.data, CONTENT_TYPES[processed.ext]))
    for key, data, kind in files:
        # Content-addressed, so a file that is there is the right one: asking is cheaper than
        # sending the bytes again.
        if not rows or not storage.exists(key):
            storage.put(key, data, kind)
    for row in rows:
        if row.uploaded_by_id == uploaded_by_id:
            return row
    # The same person may be adding the same picture at this moment (two tabs, a retried
    # request: it looked and found no row too): the first one in keeps its row, and this one
    # gets it.
    insert_unless_taken(
        Media,
        [
            {
                "sha256": processed.sha256,
                "ext": processed.ext,
                "width": processed.width,
                "height": processed.height,
                "bytes": len(processed.data),
                "widths": ",".join(str(w) for w in processed.variants),
                "uploaded_by_id": uploaded_by_id,
                "article_id": article_id,
            }
        ],
    )
    mine = select(Media).where(  # == None is IS NULL: an import's pictures
        Media.sha256 == processed.sha256, Media.uploaded_by_id == uploaded_by_id
    )
    return db.session.scalars(mine.order_by(Media.id).limit(1)).one()


def picture_rows(sha256: str) -> list[Media]:
    """Take the picture's turn (to the end of the transaction), then return its rows.

    Uploads and deletes of one picture must not interleave: a delete of its last row removes
    its files, and an upload in between either found the row and skipped writing them, or
    wrote them just before they went. Each then left a row whose image was broken.
    """
    take_turns(f"media:{sha256}")
    return list(db.session.scalars(select(Media).filter_by(sha256=sha256).order_by(Media.id)))


def media_keys(media: Media) -> list[str]:
    """Return every stored key of one image: the original and its variants."""
    return [media.key] + [variant_key(media.sha256, w) for w in media.variant_widths]


def delete_files(media: Media) -> None:
    """Remove an image's files from storage (after its row is gone)."""
    storage = media_storage()
    for key in media_keys(media):
        storage.delete(key)


def unseen_images(markdown: str) -> list[str]:
    """Return the addresses of this site's images in a body that no upload answers, in order.

    An image's address is the hash of its file, which anyone can work out without uploading
    it: approved while it answers nothing, the picture would appear on the approved page once
    someone uploads it, never seen by the reviewer. Read from the parsed body, so an address
    spelled with character references counts as the one it renders to.
    """
    from .content import body_images, media_path

    wanted: dict[str, str] = {}  # hash: the address as written, first one of each
    for image in body_images(markdown):
        if match := media_path(str(image.attrGet("src"))):
            wanted.setdefault(match["hash"], match.group(0))
    if not wanted:
        return []
    known: set[str] = set()
    for chunk in in_chunks(list(wanted)):
        known.update(db.session.scalars(select(Media.sha256).where(Media.sha256.in_(chunk))))
    return [address for digest, address in wanted.items() if digest not in known]
