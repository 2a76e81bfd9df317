"""Stored images: content-addressed files under the media directory.

A file's name is the SHA-256 of its bytes and its extension, so a name is
never reused for other content (it can be cached forever) and storing the
same image twice stores it once.  Writes go to a temporary name and are
renamed into place, so a reader never sees half a file and a crash leaves
no broken one.  Names a request gives are checked against the one pattern
we write, so no path outside the directory is ever opened.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from federation.images import EXTENSIONS, Picture

NAME_RE = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp)$")
TYPES = {extension: media_type for media_type, extension in EXTENSIONS.items()}
# Served with this: the name changes whenever the bytes do.
CACHE_CONTROL = "public, max-age=31536000, immutable"


class MediaFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, picture: Picture) -> str:
        """Store ``picture``; its file name (the same for the same bytes)."""
        name = f"{hashlib.sha256(picture.data).hexdigest()}.{picture.extension}"
        path = self.root / name
        if path.exists():
            return name
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(picture.data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return name

    def path_of(self, name: str) -> Path | None:
        """The stored file called ``name``, or None (bad name or no such file)."""
        if not NAME_RE.match(name):
            return None
        path = self.root / name
        return path if path.is_file() else None

    @staticmethod
    def media_type(name: str) -> str:
        return TYPES[name.rsplit(".", 1)[1]]

    def remove(self, name: str) -> None:
        if NAME_RE.match(name):
            (self.root / name).unlink(missing_ok=True)
