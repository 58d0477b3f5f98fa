"""Photo metadata (EXIF GPS position and capture time): the strongest location signal a post can carry.

Read with Pillow; an image without metadata, or one that cannot be read, gives empty metadata (the
image encoder reports unreadable images itself). Values are only read here, never written anywhere:
callers decide what to return (exact GPS only when the caller opts in).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

GPS_IFD, EXIF_IFD = 0x8825, 0x8769
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4
DATETIME_ORIGINAL, DATETIME = 36867, 306


@dataclass(frozen=True)
class PhotoMetadata:
    lat: float | None = None
    lon: float | None = None
    taken_at: datetime | None = None  # naive: EXIF stores local camera time without a zone

    @property
    def has_gps(self) -> bool:
        return self.lat is not None and self.lon is not None


def _degrees(value, ref) -> float | None:
    """EXIF degrees/minutes/seconds rationals (+ N/S/E/W reference) as signed decimal degrees."""
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if str(ref).strip().upper() in ("S", "W"):
        deg = -deg
    return deg if math.isfinite(deg) else None


def _taken_at(exif) -> datetime | None:
    raw = exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL) or exif.get(DATETIME)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "ignore")
    try:
        return datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S") if raw else None
    except ValueError:
        return None


def read_photo_metadata(image: Any) -> PhotoMetadata:
    """GPS position and capture time of a photo (path, bytes or PIL image); empty when absent or unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(image, Image.Image):
            exif = image.getexif()
        elif isinstance(image, (bytes, bytearray)):
            with Image.open(io.BytesIO(image)) as handle:
                exif = handle.getexif()
        elif isinstance(image, (str, Path)) and not str(image).startswith(("http://", "https://")):
            if not Path(image).is_file():  # a FIFO or device would block or never end
                return PhotoMetadata()
            with Image.open(image) as handle:
                exif = handle.getexif()
        else:
            return PhotoMetadata()
        gps = exif.get_ifd(GPS_IFD)
        taken = _taken_at(exif)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return PhotoMetadata()
    lat = _degrees(gps.get(GPS_LAT), gps.get(GPS_LAT_REF, "N")) if GPS_LAT in gps else None
    lon = _degrees(gps.get(GPS_LON), gps.get(GPS_LON_REF, "E")) if GPS_LON in gps else None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        lat = lon = None  # (0, 0) is what cameras without a fix write
    return PhotoMetadata(lat, lon, taken)


def with_photo_metadata(path: str | Path, lat: float | None, lon: float | None, taken_at: datetime | None = None,
                        out: str | Path | None = None) -> Path:
    """Write a copy of a JPEG carrying the given GPS position and capture time (for tests and demos: a camera's
    metadata, reproduced with Pillow)."""
    from PIL import Image

    out = Path(out or path)
    with Image.open(path) as img:
        exif = img.getexif()
        if lat is not None and lon is not None:
            def dms(v):
                v = abs(v)
                d, m = int(v), int((abs(v) - int(v)) * 60)
                return (float(d), float(m), round((v - d - m / 60) * 3600, 4))
            exif[GPS_IFD] = {GPS_LAT_REF: "N" if lat >= 0 else "S", GPS_LAT: dms(lat), GPS_LON_REF: "E" if lon >= 0 else "W", GPS_LON: dms(lon)}
        if taken_at is not None:
            exif[DATETIME] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
        img.convert("RGB").save(out, format="JPEG", exif=exif.tobytes(), quality=92)
    return out
