"""Reading torch ``.bin`` checkpoints (state dicts) without torch, and without running their code.

A torch checkpoint is a pickle. Unpickling can call any importable function the file names, so an
ordinary ``pickle.load`` of a downloaded ``pytorch_model.bin`` can run arbitrary code. Here the
unpickler resolves names from an allow-list of what a state dict needs — ``collections.OrderedDict``,
torch's tensor-rebuild functions and its storage types — each mapped to a stand-in of ours; any other name
is refused before anything is called.

Two layouts exist:
- zip (torch >= 1.6): ``<archive>/data.pkl`` plus one file ``<archive>/data/<key>`` per storage;
- legacy (older checkpoints): consecutive pickles — magic number, protocol version, system info, the
  state dict, the list of storage keys — then each storage's raw bytes, preceded by its element count.
Tensors are views (offset, shape, strides) into storages; the legacy layout stores the bytes *after*
the pickle, so tensors are built lazily and materialised once every storage is read.

A small file must not make the reader allocate gigabytes, so sizes are checked before anything is read or
copied: a storage's declared size against the bytes the file really holds (a zip entry's recorded size, at
most MAX_INFLATION times what it takes compressed; a legacy storage against what is left of the file), and
each view against its storage, its strides distinct (a stride of 0, or strides that overlap, would let a
few bytes stand for a tensor of any size).
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from ..errors import CheckpointError

MAX_INFLATION = 64  # torch stores zip entries uncompressed; a weights file recompressed shrinks far less than this
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


@dataclass(frozen=True)
class StorageType:
    """Stand-in for torch.FloatStorage and friends: the element type of a storage."""

    dtype: str  # a NumPy dtype name, or "bfloat16" (which NumPy lacks)

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


STORAGE_TYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}


@dataclass
class Storage:
    """One storage: its element type and count, and its bytes once read."""

    kind: StorageType
    numel: int
    data: bytes | None = None


@dataclass
class LazyTensor:
    """A view into a storage, materialised into a NumPy array when all storages are read."""

    storage: Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        kind = self.storage.kind
        if self.storage.data is None or len(self.storage.data) < self.storage.numel * kind.itemsize:
            raise CheckpointError("a tensor's storage is missing or shorter than declared (truncated file?)")
        if kind.dtype == "bfloat16":
            flat = bfloat16_to_float32(self.storage.data, self.storage.numel)
        else:
            flat = np.frombuffer(self.storage.data, np.dtype(kind.dtype).newbyteorder("<"), self.storage.numel)
        # Every element the view can reach must lie inside the storage: as_strided does not check.
        if (len(self.stride) != len(self.shape) or self.offset < 0 or min(self.shape + self.stride, default=0) < 0
                or (0 not in self.shape
                    and self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) >= len(flat))):
            raise CheckpointError(f"a tensor of shape {list(self.shape)} reaches outside its storage")
        # ... and no two of its elements may be the same storage element: with the dimensions ordered by
        # stride, each stride must step past everything the smaller ones span.
        span = 0
        for n, s in sorted(((n, s) for n, s in zip(self.shape, self.stride) if n > 1), key=lambda d: d[1]):
            if s <= span:
                raise CheckpointError(f"a tensor of shape {list(self.shape)} has strides {list(self.stride)} that "
                                      "repeat its storage's elements (a malformed or malicious file)")
            span += (n - 1) * s
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.shape, strides=[s * flat.itemsize for s in self.stride], writeable=False)
        return np.array(view, dtype=flat.dtype.newbyteorder("="))  # a private, native-order copy


def bfloat16_to_float32(data: bytes, count: int) -> np.ndarray:
    """bfloat16 is the top half of a float32, so widening it is exact: [count] little-endian halves -> float32."""
    return (np.frombuffer(data, "<u2", count).astype(np.uint32) << 16).view(np.float32)


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, Storage):
        raise CheckpointError("a tensor is built from something other than a storage")
    return LazyTensor(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data  # an nn.Parameter is its tensor, for reading weights


ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): StorageType(dtype) for name, dtype in STORAGE_TYPES.items()},
}


class RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that knows only the names a state dict needs, and refuses the rest before calling them.

    It is the pure-Python unpickler, reading through BoundedReader: the C one keeps its memo in an array, so a
    PUT opcode with an index of 2^28 made it allocate 2 GiB from a few bytes; this one keeps a dict, and no
    opcode's declared length can make it read (or allocate) past the end of the file."""

    def __init__(self, file, storage_for_key) -> None:
        super().__init__(BoundedReader(file))
        self.storage_for_key = storage_for_key

    def _refuse_bytearray(self) -> None:  # it allocates the length it declares before reading: a state dict has none
        raise CheckpointError("a byte array in the pickle: a checkpoint of weights holds none")

    dispatch = {**pickle._Unpickler.dispatch, pickle.BYTEARRAY8[0]: _refuse_bytearray}

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"refusing to load {module}.{name}: a checkpoint of weights needs only tensors, storages and "
                "OrderedDict, and anything else could run code") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)):
            raise CheckpointError(f"unexpected persistent id {pid!r:.80}")
        kind, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"storage {key} has an invalid element count {numel!r}")
        return self.storage_for_key(key, kind, numel)


class BoundedReader:
    """A binary file whose reads never ask for more than the bytes left in it: file.read(n) allocates n bytes
    before reading, and a pickle opcode may declare any length."""

    def __init__(self, f) -> None:
        self.f = f
        position = f.tell()
        self.size = f.seek(0, os.SEEK_END)
        f.seek(position)

    def left(self, n: int) -> int:
        rest = self.size - self.f.tell()
        return rest if n is None or n < 0 else min(n, rest)

    def read(self, n: int = -1) -> bytes:
        return self.f.read(self.left(n))

    def readline(self, n: int = -1) -> bytes:
        return self.f.readline(self.left(n))

    def readinto(self, buffer) -> int:
        data = self.f.read(self.left(len(buffer)))
        buffer[:len(data)] = data
        return len(data)


def read_torch_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A torch state dict file (zip or legacy layout) as {name: NumPy array}, without torch.

    float16 stays float16 and bfloat16 is widened to float32 (NumPy has no bfloat16).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0)
            state = _read_zip(f) if head == b"PK\x03\x04" else _read_legacy(f)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint file at {path!r}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path!r} is a directory, not a checkpoint file") from None
    except CheckpointError as e:
        raise CheckpointError(f"{path!r}: {e}") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, KeyError, struct.error, ValueError,
            TypeError, AttributeError, IndexError, OverflowError, MemoryError) as e:
        raise CheckpointError(f"{path!r} is not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    except OSError as e:  # no permission, an I/O error
        raise CheckpointError(f"{path!r} cannot be read ({e.strerror or e})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path!r} holds a {type(state).__name__}, not a state dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # training checkpoints wrap the weights
    views = [value for value in state.values() if isinstance(value, LazyTensor)]
    stored = sum({id(v.storage): v.storage.numel * v.storage.kind.itemsize for v in views}.values())
    wanted = sum(math.prod(v.shape) * v.storage.kind.itemsize for v in views)
    if wanted > 2 * stored + (1 << 20):  # tied weights view one storage twice; no checkpoint views it more
        raise CheckpointError(f"{path!r}: its tensors would take {wanted} bytes, views of {stored} stored bytes")
    tensors = {}
    for name, value in state.items():
        if not isinstance(value, LazyTensor):
            raise CheckpointError(f"{path!r}: entry {name!r} is a {type(value).__name__}, not a tensor")
        try:
            tensors[str(name)] = value.materialise()
        except (CheckpointError, ValueError, TypeError) as e:  # NumPy's own refusals: too many dimensions, ...
            raise CheckpointError(f"{path!r}: {name}: {e}") from None
    return tensors


def _read_zip(f) -> dict:
    with zipfile.ZipFile(f) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise CheckpointError("a zip checkpoint must hold exactly one data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, Storage] = {}

        def storage_for_key(key, kind, numel):
            if key not in storages:
                entry = _sized_entry(archive, f"{prefix}data/{key}", numel * kind.itemsize)
                storages[key] = Storage(kind, numel, archive.read(entry))
            return storages[key]

        data = archive.read(_sized_entry(archive, pickles[0], None))
        return RestrictedUnpickler(io.BytesIO(data), storage_for_key).load()


def _sized_entry(archive: zipfile.ZipFile, name: str, declared: int | None) -> zipfile.ZipInfo:
    """The zip entry `name`, after checking that it inflates to `declared` bytes (when given) and to at most
    MAX_INFLATION times its compressed size, before anything is inflated."""
    entry = archive.getinfo(name)
    if declared is not None and entry.file_size != declared:
        raise CheckpointError(f"{name} holds {entry.file_size} bytes, its tensor's storage declares {declared}")
    if entry.file_size > MAX_INFLATION * max(entry.compress_size, 1024):
        raise CheckpointError(f"{name} would inflate from {entry.compress_size} to {entry.file_size} bytes "
                              f"(over {MAX_INFLATION} times): not a weights file")
    return entry


def _read_legacy(f) -> dict:
    # The three header pickles hold only numbers and a dict of sizes; they go through the same allow-list.
    header = [RestrictedUnpickler(f, None).load() for _ in range(3)]
    if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise CheckpointError("not a torch checkpoint (neither a zip archive nor a legacy torch pickle)")
    if not header[2].get("little_endian", True):
        raise CheckpointError("big-endian legacy checkpoints are not supported")
    storages: dict[str, Storage] = {}

    def storage_for_key(key, kind, numel):
        return storages.setdefault(key, Storage(kind, numel))

    state = RestrictedUnpickler(f, storage_for_key).load()
    keys = RestrictedUnpickler(f, None).load()
    size = os.fstat(f.fileno()).st_size
    for key in keys:
        storage = storages[str(key)]
        (numel,) = struct.unpack("<q", f.read(8))
        if numel != storage.numel:
            raise CheckpointError(f"storage {key} holds {numel} elements, the pickle declared {storage.numel}")
        if numel * storage.kind.itemsize > size - f.tell():
            raise CheckpointError(f"storage {key} declares {numel * storage.kind.itemsize} bytes, but only "
                                  f"{size - f.tell()} remain in the file (truncated or malicious)")
        storage.data = f.read(numel * storage.kind.itemsize)
    return state
