"""Line stores: a folder with ``labels.tsv`` and images, or an LMDB database.

Folder format (PaddleOCR's recognition label format): ``labels.tsv``, UTF-8, one sample per
line, ``relative/path.png<TAB>text``; the text may be empty (an image with no text in it).

LMDB format (the key scheme of clovaai/deep-text-recognition-benchmark): ``num-samples``,
``image-%09d`` (encoded PNG/JPEG bytes) and ``label-%09d`` (UTF-8), indices from 1.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from ..errors import InputError
from ..images import decode_grey

__all__ = ["LABELS", "LMDB_MAP_SIZE", "Sample", "LineStore", "is_lmdb", "STORES", "read_grey", "open_store", "FolderStore",
           "LmdbStore", "ConcatStore", "FolderWriter", "LmdbWriter", "open_writer", "iter_store", "convert",
           "image_ext"]

LABELS = "labels.tsv"
LMDB_MAP_SIZE = 1 << 36  # 64 GiB of address space; the file grows only as data is written


@dataclass
class Sample:
    name: str  # relative image path (folder) or key (lmdb)
    text: str


class LineStore(Protocol):
    path: Path
    problems: list[str]

    def __len__(self) -> int: ...
    def text(self, i: int) -> str: ...
    def name(self, i: int) -> str: ...
    def image_bytes(self, i: int) -> bytes: ...


def is_lmdb(path: str | Path) -> bool:
    return (Path(path) / "data.mdb").is_file()


STORES = "stores.txt"


def read_grey(store: "FolderStore | LmdbStore | ConcatStore", i: int) -> np.ndarray:
    """Line ``i`` of a store as a grey uint8 image; an ``InputError`` names the store and the
    line when it is not a usable image."""
    return decode_grey(store.image_bytes(i), f"{store.path}/{store.name(i)}")


def open_store(path: str | Path, strict: bool = False) -> "FolderStore | LmdbStore | ConcatStore":
    """Open a folder store, an LMDB store, or a list of stores (a ``.txt`` file such as
    ``stores.txt``, or a folder holding a ``stores.txt``: one store path per line, relative
    to that file; or the stores' paths joined by commas), whichever ``path`` is. A list is
    read as one store, in order, without copying (the shards of ``ingest --shard``)."""
    p = Path(path)
    if "," in str(path) and not p.exists():
        parts = [q.strip() for q in str(path).split(",") if q.strip()]
        return ConcatStore([_one_store(Path(q), strict) for q in parts], Path(parts[0]).parent)
    if p.is_file() and p.suffix == ".txt" or (p / STORES).is_file():
        return ConcatStore.from_manifest(p if p.is_file() else p / STORES, strict)
    if is_lmdb(p):
        return LmdbStore(p)
    if (p / LABELS).is_file():
        return FolderStore(p, strict=strict)
    if p.is_file() and p.name == LABELS:
        return FolderStore(p.parent, strict=strict)
    raise InputError(p, f"not a line store: expected a folder with {LABELS} or an LMDB folder with data.mdb")


@dataclass
class FolderStore:
    """``labels.tsv`` + images. Bad lines are reported in ``problems`` and left out
    (``strict=True`` raises on the first instead)."""

    path: Path
    strict: bool = False
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        labels = self.path / LABELS
        try:
            raw = labels.read_bytes()
        except OSError as e:
            raise InputError(labels, f"cannot read: {e.strerror or e}") from None
        for lineno, line in enumerate(raw.split(b"\n"), 1):
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line.strip():
                continue
            try:
                self._add(labels, lineno, line)
            except InputError as e:
                if self.strict:
                    raise
                self.problems.append(str(e))

    def _add(self, labels: Path, lineno: int, line: bytes) -> None:
        try:
            s = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(labels, f"not valid UTF-8 (column {e.start + 1})", lineno) from None
        if "\t" not in s:
            raise InputError(labels, "expected 'image-path<TAB>text', found no tab", lineno)
        rel, text = s.split("\t", 1)
        if "\t" in text:
            raise InputError(labels, "more than 2 tab-separated columns", lineno)
        if not rel or os.path.isabs(rel) or ".." in Path(rel).parts:
            raise InputError(labels, f"image path {rel!r} must be relative and inside the folder", lineno)
        if not (self.path / rel).is_file():
            raise InputError(labels, f"image {rel!r} does not exist", lineno)
        self.samples.append(Sample(rel, text))

    def __len__(self) -> int:
        return len(self.samples)

    def text(self, i: int) -> str:
        return self.samples[i].text

    def name(self, i: int) -> str:
        return self.samples[i].name

    def image_bytes(self, i: int) -> bytes:
        return (self.path / self.samples[i].name).read_bytes()


# py-lmdb allows one open environment per path and process: read-only ones are shared.
_READ_ENVS: dict[str, Any] = {}


def _read_env(path: Path):
    import lmdb

    key = str(path.resolve())
    if key not in _READ_ENVS:
        try:
            _READ_ENVS[key] = lmdb.open(key, readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
        except lmdb.Error as e:
            raise InputError(path, f"cannot open LMDB: {e}") from None
    return _READ_ENVS[key]


def _forget_env(path: Path) -> None:
    env = _READ_ENVS.pop(str(path.resolve()), None)
    if env is not None:
        env.close()


class LmdbStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.problems: list[str] = []
        self.env = _read_env(self.path)
        with self.env.begin() as txn:
            n = txn.get(b"num-samples")
        if n is None:
            raise InputError(self.path, "LMDB has no 'num-samples' key (not a deep-text-recognition-benchmark store)")
        try:
            self.n = int(n.decode())
        except ValueError:
            raise InputError(self.path, f"'num-samples' is {n!r}, not an integer") from None
        self._texts: list[str] | None = None

    def _key(self, kind: str, i: int) -> bytes:
        return f"{kind}-{i + 1:09d}".encode()

    def __len__(self) -> int:
        return self.n

    def texts(self) -> list[str]:
        if self._texts is None:
            with self.env.begin() as txn:
                vals = [txn.get(self._key("label", i)) for i in range(self.n)]
            missing = [i for i, v in enumerate(vals) if v is None]
            if missing:
                raise InputError(self.path, f"label-{missing[0] + 1:09d} is missing ({len(missing)} labels missing)")
            self._texts = [v.decode("utf-8") for v in vals]
        return self._texts

    def text(self, i: int) -> str:
        return self.texts()[i]

    def name(self, i: int) -> str:
        return f"image-{i + 1:09d}"

    def image_bytes(self, i: int) -> bytes:
        with self.env.begin() as txn:
            b = txn.get(self._key("image", i))
        if b is None:
            raise InputError(self.path, f"{self.name(i)} is missing")
        return bytes(b)

    def __getstate__(self):  # DataLoader workers reopen the environment
        return {"path": self.path}

    def __setstate__(self, state):
        LmdbStore.__init__(self, state["path"])


class ConcatStore:
    """Several stores read as one, in order; sample names are prefixed with their store's
    position (``0/...``, ``1/...``) so they stay unique."""

    def __init__(self, stores: list, path: Path):
        self.stores, self.path = stores, path
        self.problems = [q for st in stores for q in st.problems]
        self._starts = [0]
        for st in stores:
            self._starts.append(self._starts[-1] + len(st))

    @classmethod
    def from_manifest(cls, manifest: Path, strict: bool = False) -> "ConcatStore":
        try:
            rows = [ln.strip() for ln in manifest.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(manifest, f"cannot read the list of stores: {e}") from None
        paths = [manifest.parent / r for r in rows if r and not r.startswith("#")]
        if not paths:
            raise InputError(manifest, "the list of stores is empty")
        stores = []
        for k, sp in enumerate(paths):
            if sp.resolve() == manifest.parent.resolve() or (sp / STORES).is_file() or sp.suffix == ".txt":
                raise InputError(manifest, f"line {k + 1}: {sp} is a list of stores itself; list the stores")
            stores.append(open_store(sp, strict))
        return cls(stores, manifest.parent)


    def __len__(self) -> int:
        return self._starts[-1]

    def _at(self, i: int) -> tuple[int, int]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self._starts, i) - 1
        return k, i - self._starts[k]

    def text(self, i: int) -> str:
        k, j = self._at(i)
        return self.stores[k].text(j)

    def name(self, i: int) -> str:
        k, j = self._at(i)
        return f"{k}/{self.stores[k].name(j)}"

    def image_bytes(self, i: int) -> bytes:
        k, j = self._at(i)
        return self.stores[k].image_bytes(j)


def _one_store(p: Path, strict: bool) -> "FolderStore | LmdbStore":
    """One store of a comma-separated list: a folder or an LMDB, not a list itself."""
    store = open_store(p, strict)
    if isinstance(store, ConcatStore):
        raise InputError(p, "is a list of stores itself; list the stores")
    return store


class FolderWriter:
    """Writes ``labels.tsv`` and images; ``add`` appends one sample."""

    def __init__(self, path: str | Path, image_dir: str = "images"):
        self.path = Path(path)
        self.image_dir = image_dir
        self.path.mkdir(parents=True, exist_ok=True)
        self._labels = open(self.path / LABELS, "w", encoding="utf-8", newline="\n")
        self._dirs: set[Path] = set()
        self.count = 0

    def add(self, name: str, text: str, image: bytes) -> None:
        _check_label(text)
        rel = f"{self.image_dir}/{name}"
        dest = self.path / rel
        if dest.parent not in self._dirs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(dest.parent)
        dest.write_bytes(image)
        self._labels.write(f"{rel}\t{text}\n")
        self.count += 1

    def close(self) -> None:
        self._labels.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LmdbWriter:
    """Writes an LMDB store, committing every ``commit_every`` samples."""

    def __init__(self, path: str | Path, commit_every: int = 1000):
        import lmdb

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        _forget_env(self.path)
        for f in ("data.mdb", "lock.mdb"):
            (self.path / f).unlink(missing_ok=True)
        self.env = lmdb.open(str(self.path), map_size=LMDB_MAP_SIZE, subdir=True)
        self.commit_every = commit_every
        self.count = 0
        self._pending: dict[bytes, bytes] = {}

    def add(self, name: str, text: str, image: bytes) -> None:
        _check_label(text)
        self.count += 1
        self._pending[f"image-{self.count:09d}".encode()] = image
        self._pending[f"label-{self.count:09d}".encode()] = text.encode("utf-8")
        if len(self._pending) >= 2 * self.commit_every:
            self._flush()

    def _flush(self) -> None:
        self._pending[b"num-samples"] = str(self.count).encode()
        with self.env.begin(write=True) as txn:
            for k, v in self._pending.items():
                txn.put(k, v)
        self._pending = {}

    def close(self) -> None:
        self._flush()
        self.env.sync()
        self.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_label(text: str) -> None:
    if "\t" in text or "\n" in text or "\r" in text:
        raise ValueError(f"label {text!r} contains a tab or line break")


def open_writer(path: str | Path, lmdb: bool) -> "FolderWriter | LmdbWriter":
    return LmdbWriter(path) if lmdb else FolderWriter(path)


def iter_store(store: "FolderStore | LmdbStore | ConcatStore") -> Iterator[tuple[str, str, bytes]]:
    for i in range(len(store)):
        yield store.name(i), store.text(i), store.image_bytes(i)


def convert(src: str | Path, dst: str | Path, to_lmdb: bool | None = None) -> dict:
    """Copy every sample of ``src`` into a new store at ``dst`` (the other format by default)."""
    store = open_store(src)
    if to_lmdb is None:
        to_lmdb = isinstance(store, FolderStore)
    with open_writer(dst, to_lmdb) as w:
        for i, (_, text, img) in enumerate(iter_store(store)):
            w.add(f"{i + 1:09d}{image_ext(img)}", text, img)
        n = w.count
    return {"src": str(src), "dst": str(dst), "format": "lmdb" if to_lmdb else "folder", "samples": n,
            "skipped": len(store.problems), "problems": store.problems}


def image_ext(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:2] == b"\xff\xd8":
        return ".jpg"
    return ".img"
