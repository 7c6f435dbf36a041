"""File helpers: atomic writes, a restricted unpickler for data files, small JSON/text helpers.

Every output FlowMimic writes goes through `atomic_path` (temp file in the same folder, then
`os.replace`), so a crash never leaves half a file under the final name.

Data pickles (AIST++ motions, MVHumanNet per-frame params, SMPL model files) are read with
`safe_load_pickle`, never `pickle.load`: only numpy arrays, builtin containers/scalars and torch
tensors may be rebuilt. Torch storages embedded in the legacy archive format (how plain pickling
stores a tensor, as in MVHumanNet's frames) are read by the C unpickler under an allow-list of
storage classes (`_load_legacy_storage`); zip-format ones with ``torch.load(weights_only=True)``.
A storage that names any other global is "unsafe" like any other forbidden global.
`safe_load_pickle(path, decode=keys)` decodes storages only under the given keys.
chumpy arrays (in the official SMPL files) and scipy sparse matrices become plain numpy arrays
without importing chumpy or scipy. Anything else raises `DataError` naming the file and the global.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Collection, Iterator

import numpy as np

from flowmimic.errors import DataError

# ----------------------------------------------------------------------------- atomic writes

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it over `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)            # mkstemp makes 0600; outputs get normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def is_temp_file(path: str | Path) -> bool:
    """True for a temp file of `atomic_path` (`.<name>.<random>.tmp`) that a killed process left."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(".tmp")


def remove_temp_files(folder: str | Path) -> int:
    """Delete the temp files that killed atomic writes left anywhere under `folder`; returns how many.

    Only for a folder no other process is writing to (a running writer's temp file would go too).
    """
    removed = 0
    for f in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else []:
        if is_temp_file(f) and (f.is_file() or f.is_symlink()):
            f.unlink()
            removed += 1
    return removed


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(path, "file not found", "missing") from e
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})", "unreadable") from e


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """`np.save` atomically (the temp file keeps a .npy suffix so numpy does not add one)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def write_lines(path: str | Path, lines: list[str]) -> None:
    write_text(path, "".join(f"{line}\n" for line in lines))


def read_lines(path: str | Path) -> list[str]:
    """Non-empty lines, whitespace stripped (real split files carry trailing spaces)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(path, "file not found", "missing") from e
    return [s.strip() for s in text.splitlines() if s.strip()]


# ----------------------------------------------------------------------------- restricted unpickler


# What unpickling bytes that are not a valid pickle of allowed objects raises: the pickle machinery
# itself, numpy's and torch's rebuild functions called with corrupted arguments, torch's loader of
# an embedded storage archive (its zip reader: RuntimeError, its legacy format: AssertionError) and
# numpy's C code on a corrupted dtype state (SystemError) -- all found by fuzzing real-format files
# (tests/test_io.py). Anything else is a bug of ours and propagates (see `_LoaderBug`).
BAD_PICKLE_ERRORS: tuple[type[BaseException], ...] = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, LookupError, AttributeError, OverflowError,
    MemoryError, RuntimeError, AssertionError, SystemError, OSError)


class _LoaderBug(Exception):
    """An error in our own allow-list code during unpickling: not the file's fault, never a skip."""


_TORCH_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_LEGACY_MAGIC_PICKLE = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."    # pickle.dumps(_LEGACY_MAGIC, protocol=2)


def _refused_storage(source: str | Path, name: str) -> DataError:
    return DataError(source, f"a torch storage in the file tried to load '{name}', which is not plain "
                     "data (refused: data pickles may hold only arrays and tensors)", "unsafe")


# torch's legacy storage archive (what plain pickling of a tensor embeds): five pickles -- magic
# number, protocol version, system info, the storage as a persistent id ('storage', <dtype>Storage,
# key, location, numel, view), the list of keys -- then per key an int64 element count and the raw
# bytes (torch/serialization.py: _legacy_save, Storage._write_file). torch's weights-only loader
# reads it with a pure-Python unpickler (~100 us a storage, most of a real frame's read time); this
# reads the same bytes with the C unpickler under the same allow-list: storage classes, plain data.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {"FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
                   "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
                   "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool"}


class _StorageArchiveUnpickler(pickle.Unpickler):
    """Reads the pickles of one legacy storage archive: builtins and torch storage classes only."""

    def __init__(self, file: Any, source: str | Path) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module in ("builtins", "__builtin__") and name in RestrictedUnpickler._BUILTINS:
            return getattr(__import__("builtins"), name)
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise _refused_storage(self.source, f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[1] in _STORAGE_DTYPES.values()
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[5] is None):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        return pid


def _load_legacy_storage(b: bytes, source: str | Path) -> Any:
    """The one storage of a legacy archive, as torch's loader returns it (a TypedStorage)."""
    import torch

    f = io.BytesIO(b)
    u = _StorageArchiveUnpickler(f, source)
    if u.load() != _LEGACY_MAGIC or u.load() != _LEGACY_PROTOCOL or not isinstance(u.load(), dict):
        raise pickle.UnpicklingError("not a torch storage archive")
    _, dtype_name, key, _, numel, _ = u.load()
    if u.load() != [key]:
        raise pickle.UnpicklingError("a storage archive of more than one storage")
    dtype = getattr(torch, dtype_name)
    size = int.from_bytes(f.read(8), "little", signed=True)
    data = f.read(size * dtype.itemsize)
    if size != numel or len(data) != size * dtype.itemsize or f.read(1):
        raise pickle.UnpicklingError(f"a storage of {numel} elements holds {len(data)} bytes")
    untyped = torch.frombuffer(bytearray(data), dtype=torch.uint8).untyped_storage() if data else torch.UntypedStorage()
    return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def _storage_loader(source: str | Path) -> Any:
    """`torch.storage._load_from_bytes` for `source`: a storage that would load anything but plain
    data is "unsafe" (torch's refusal advises retrying with weights_only=False: never, for data).
    Legacy archives are read by `_load_legacy_storage`, zip ones by torch's weights-only loader."""

    def load(b: bytes) -> Any:
        import torch

        if isinstance(b, bytes) and b.startswith(_LEGACY_MAGIC_PICKLE):
            return _load_legacy_storage(b, source)
        try:
            return torch.load(io.BytesIO(b), weights_only=True)
        except pickle.UnpicklingError as e:
            refused = _TORCH_REFUSED_GLOBAL.search(str(e))
            if refused is None:              # corrupted, not hostile
                raise DataError(source, "a torch storage in the file is corrupted (torch's weights-only loader "
                                "cannot parse it)", "unreadable") from None
            raise _refused_storage(source, refused[1]) from None

    return load


class _ArrayStandIn:
    """Takes the pickled state of a chumpy array or scipy sparse matrix; `to_numpy` densifies it."""

    # Class-level defaults: protocol-2 pickles (NEWOBJ, as in the official SMPL files) rebuild the
    # object with __new__ only, so __init__ never runs.
    state: Any = None
    kind: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None
        self.kind = type(self).__name__

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def to_numpy(self, source: str | Path) -> np.ndarray:
        raise NotImplementedError


class _ChumpyArray(_ArrayStandIn):
    def to_numpy(self, source: str | Path) -> np.ndarray:
        state = self.state if isinstance(self.state, dict) else {}
        x = state.get("x")
        if not isinstance(x, np.ndarray):
            raise DataError(source, "a chumpy object in the file carries no array 'x' "
                            "(only plain chumpy arrays can be read without chumpy)", "unsafe")
        return np.asarray(x)


class _SparseMatrix(_ArrayStandIn):
    def to_numpy(self, source: str | Path) -> np.ndarray:
        s = self.state if isinstance(self.state, dict) else {}
        shape = s.get("_shape", s.get("shape"))
        fmt = s.get("format", "csc" if "csc" in self.kind else "csr")
        data, indices, indptr = s.get("data"), s.get("indices"), s.get("indptr")
        if shape is None or data is None or indices is None or indptr is None:
            raise DataError(source, "a scipy sparse matrix in the file lacks data/indices/indptr/shape",
                            "unsafe")
        try:
            dense = np.zeros(tuple(int(n) for n in shape), dtype=np.asarray(data).dtype)
            indptr = np.asarray(indptr)
            counts = np.diff(indptr)
            major = np.repeat(np.arange(len(counts)), counts)  # column (csc) or row (csr) of each value
            if fmt == "csc":
                np.add.at(dense, (np.asarray(indices), major), data)
            else:
                np.add.at(dense, (major, np.asarray(indices)), data)
        except (ValueError, TypeError, IndexError) as e:       # inconsistent shape/indices/indptr
            raise DataError(source, f"a scipy sparse matrix in the file is inconsistent ({e})", "invalid") from e
        return dense


def _make_standin(kind: type[_ArrayStandIn], name: str) -> type[_ArrayStandIn]:
    return type(name, (kind,), {"kind": name})


def _np_core() -> Any:
    """numpy's private core package: `numpy._core` in numpy 2, `numpy.core` before."""
    return np._core if hasattr(np, "_core") else np.core  # type: ignore[attr-defined]


_NUMPY_ALLOWED = {
    "_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer",
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds only numpy / builtin / torch-tensor objects (see module docstring)."""

    _BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool",
                 "str", "bytes", "bytearray", "slice", "range", "object"}

    def __init__(self, file: Any, source: str | Path) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed_global(module, name)
        except DataError:
            raise
        except Exception as e:  # our allow-list code failed: a bug, which must not read as a bad file
            raise _LoaderBug(f"{self.source}: resolving '{module}.{name}' failed") from e

    def _allowed_global(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in self._BUILTINS:
            return getattr(__import__("builtins"), name)
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor
        if module == "_codecs" and name == "encode":  # how protocol-2 pickles spell bytes
            import codecs

            return codecs.encode
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module.split(".")[0] == "numpy" and name in _NUMPY_ALLOWED:
            if name == "ndarray":
                return np.ndarray
            if name == "dtype":
                return np.dtype
            if name == "_reconstruct":
                return _np_core().multiarray._reconstruct
            if name == "scalar":
                return _np_core().multiarray.scalar
            if name == "_frombuffer":
                return _np_core().numeric._frombuffer
        if module.startswith("numpy") and name.endswith("DType") and module.endswith("dtypes"):
            return getattr(np.dtypes, name)
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor",
                                                  "_rebuild_parameter"):
            import torch._utils

            return getattr(torch._utils, name)
        if module == "torch.storage" and name == "_load_from_bytes":
            return _storage_loader(self.source)
        if module.split(".")[0] == "chumpy":
            return _make_standin(_ChumpyArray, f"chumpy:{name}")
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return _make_standin(_SparseMatrix, name)
        raise DataError(self.source, f"refusing to unpickle forbidden global '{module}.{name}' "
                        "(data pickles may hold only numpy arrays, builtins and torch tensors)",
                        "unsafe")


class Undecoded:
    """A torch storage or tensor of the pickle stream, kept as its arguments and decoded only on request.

    `safe_load_pickle(path, decode=keys)` leaves the values of the other keys as these: their
    globals were checked like every other global of the stream, but their embedded storage
    archives are never opened (a hostile one there is never executed, hence harmless).
    """

    __slots__ = ("fn", "args", "_value", "_done")

    def __init__(self, fn: Any, args: tuple) -> None:
        self.fn, self.args, self._value, self._done = fn, args, None, False

    def decode(self) -> Any:
        if not self._done:                   # one storage may back several tensors (pickle memo)
            self._value = self.fn(*(_decode(a) for a in self.args))
            self._done = True
        return self._value

    def __repr__(self) -> str:
        return f"<undecoded {getattr(self.fn, '__name__', 'storage')}>"


def _lazy(fn: Any) -> Any:
    def make(*args: Any) -> Undecoded:
        return Undecoded(fn, args)
    return make


class _LazyTensorUnpickler(RestrictedUnpickler):
    """`RestrictedUnpickler` whose torch storages and tensors are `Undecoded` placeholders."""

    def _allowed_global(self, module: str, name: str) -> Any:
        found = super()._allowed_global(module, name)      # refuses whatever the eager one refuses
        if module in ("torch.storage", "torch._utils"):
            return _lazy(found)
        return found


def _decode(obj: Any) -> Any:
    """`obj` with every `Undecoded` inside it decoded (containers rebuilt, other values as they are)."""
    if isinstance(obj, Undecoded):
        return obj.decode()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _decode(v)) for k, v in obj.items())
    return obj


def _densify(obj: Any, source: str | Path) -> Any:
    if isinstance(obj, _ArrayStandIn):
        return obj.to_numpy(source)
    if isinstance(obj, dict):
        return type(obj)((k, _densify(v, source)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_densify(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_densify(v, source) for v in obj)
    return obj


def safe_load_pickle(path: str | Path, decode: Collection[str] | None = None) -> Any:
    """Load a data pickle through `RestrictedUnpickler`; errors are `DataError`s naming `path`.

    With `decode`, the pickle must hold a dict, and torch storages are decoded only under those
    keys: the values of the others that are (or hold) tensors stay `Undecoded`. Every global of
    the stream is checked either way; decoding only what is used makes a real MVHumanNet frame
    (six embedded storage archives, one of them `joints`) several times cheaper to read.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError as e:
        raise DataError(path, "file not found", "missing") from e
    except OSError as e:                   # a folder, a symlink loop, no permission, ...
        raise DataError(path, f"cannot open ({e.strerror or e})", "unreadable") from e
    try:
        with f:
            if decode is None:
                obj = RestrictedUnpickler(f, path).load()
            else:
                obj = _LazyTensorUnpickler(f, path).load()
                if not isinstance(obj, dict):
                    raise DataError(path, f"expected a dict, got {type(obj).__name__}", "invalid")
                obj = type(obj)((k, _decode(v) if k in decode else v) for k, v in obj.items())
    except BAD_PICKLE_ERRORS as e:         # truncated or corrupted files (see BAD_PICKLE_ERRORS)
        raise DataError(path, f"unreadable pickle ({type(e).__name__}: {str(e)[:300]})", "unreadable") from e
    return _densify(obj, path)
