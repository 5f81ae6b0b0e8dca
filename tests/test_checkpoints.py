"""Torch-free reading of torch and safetensors checkpoints: every layout, exact tensors, safe unpickling."""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from minibert import BertModel, CheckpointError, WeightsError
from minibert.loading.torch_checkpoint import LEGACY_MAGIC, LEGACY_PROTOCOL, read_torch_checkpoint
from minibert.loading.weights import canonical_name, read_weights, weights_file
from tests.fixtures.cases import FIXTURES

CHECKPOINTS = FIXTURES / "checkpoints"
REFERENCE = np.load(CHECKPOINTS / "reference.npz")
STATE = {k.removeprefix("state/"): REFERENCE[k] for k in REFERENCE.files if k.startswith("state/")}
BATCH = {k.removeprefix("input/"): REFERENCE[k] for k in REFERENCE.files if k.startswith("input/")}
FLOAT32_LAYOUTS = ["zip", "legacy", "safetensors", "safetensors-tied"]


def canonical(tensors):
    return {canonical_name(k): v for k, v in tensors.items()}


@pytest.mark.parametrize("layout", FLOAT32_LAYOUTS)
def test_tensors_equal_the_torch_state_dict_exactly(layout):
    tensors = canonical(read_weights(weights_file(CHECKPOINTS / layout)))
    expected = canonical(STATE)
    if layout == "safetensors":  # save_pretrained leaves out the tied decoder weight and bias
        expected = {k: v for k, v in expected.items() if not k.startswith("cls.predictions.decoder.")}
    assert set(tensors) == {canonical_name(k) for k in expected}
    for name, value in expected.items():
        assert tensors[name].dtype == value.dtype and np.array_equal(tensors[name], value), name


def test_half_precision_layouts_keep_or_widen_exactly():
    half = read_weights(CHECKPOINTS / "float16" / "pytorch_model.bin")
    bf16 = read_weights(CHECKPOINTS / "bfloat16" / "model.safetensors")
    for name, value in STATE.items():
        if value.dtype == np.float32:
            assert half[name].dtype == np.float16 and np.array_equal(half[name], value.astype(np.float16)), name
            assert bf16[name].dtype == np.float32 and np.array_equal(bf16[name], REFERENCE[f"bfloat16/{name}"]), name


@pytest.mark.parametrize("layout", FLOAT32_LAYOUTS)
def test_model_from_every_layout_matches_transformers(layout):
    out = BertModel.from_pretrained(CHECKPOINTS / layout)(**BATCH)
    real = BATCH["attention_mask"].astype(bool)
    diff = np.abs(out.last_hidden_state - REFERENCE["last_hidden_state"])[real].max()
    print(f"{layout}: last_hidden_state max abs diff {diff:.1e}")
    assert diff <= 1e-5
    assert np.abs(out.pooler_output - REFERENCE["pooler_output"]).max() <= 1e-5


@pytest.mark.parametrize("layout", ["float16", "bfloat16"])
def test_half_precision_checkpoints_load_upcast(layout):
    """A half-precision checkpoint runs in float32 on its weights exactly upcast: the same outputs, bit for bit,
    as a model given the float32 weights rounded to that precision (transformers' own rounding for bfloat16)."""
    model = BertModel.from_pretrained(CHECKPOINTS / layout)
    assert model.weights["embeddings"]["word_embeddings"]["weight"].dtype == np.float32
    rounded = {name: (value.astype(np.float16).astype(np.float32) if layout == "float16"
                      else REFERENCE[f"bfloat16/{name}"]) if value.dtype == np.float32 else value
               for name, value in STATE.items()}
    expected = BertModel(model.config, rounded)(**BATCH)
    out = model(**BATCH)
    assert np.array_equal(out.last_hidden_state, expected.last_hidden_state)
    assert np.array_equal(out.pooler_output, expected.pooler_output)


# ---- malicious and broken files ------------------------------------------------------------------------


class RunsCode:
    """Unpickling this calls os.system: what a malicious pytorch_model.bin does."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def zip_checkpoint(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


def legacy_checkpoint(path, payload: bytes, header_payload: bytes | None = None):
    with open(path, "wb") as f:
        f.write(header_payload or pickle.dumps(LEGACY_MAGIC, protocol=2))
        f.write(pickle.dumps(LEGACY_PROTOCOL, protocol=2))
        f.write(pickle.dumps({"protocol_version": LEGACY_PROTOCOL, "little_endian": True}, protocol=2))
        f.write(payload)
        f.write(pickle.dumps([], protocol=2))


@pytest.mark.parametrize("layout", ["zip", "legacy", "legacy-header"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, layout):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps({"weight": RunsCode(sentinel)}, protocol=2)
    path = tmp_path / "pytorch_model.bin"
    if layout == "zip":
        zip_checkpoint(path, payload)
    elif layout == "legacy":
        legacy_checkpoint(path, payload)
    else:
        legacy_checkpoint(path, pickle.dumps(pickle.dumps(0)),
                          header_payload=pickle.dumps(RunsCode(sentinel), protocol=2))
    with pytest.raises(CheckpointError, match=r"refusing to load (posix|os)\.system"):
        read_torch_checkpoint(path)
    assert not sentinel.exists(), "the checkpoint ran code"


@pytest.mark.parametrize("name", ["builtins.eval", "builtins.getattr", "torch.load", "numpy.load", "subprocess.Popen"])
def test_only_state_dict_names_are_allowed(tmp_path, name):
    module, attr = name.rsplit(".", 1)
    payload = b"\x80\x02c" + f"{module}\n{attr}\n".encode() + b"q\x00."  # GLOBAL module.attr, then STOP
    zip_checkpoint(tmp_path / "m.bin", payload)
    with pytest.raises(CheckpointError, match=f"refusing to load {module}.{attr}"):
        read_torch_checkpoint(tmp_path / "m.bin")


def test_strides_reaching_outside_the_storage_are_refused(tmp_path):
    """A crafted view must not read memory beyond its storage (as_strided does not check)."""
    source = (CHECKPOINTS / "zip" / "pytorch_model.bin").read_bytes()
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        names = z.namelist()
        pkl = next(n for n in names if n.endswith("data.pkl"))
        members = {n: z.read(n) for n in names}
    # cls.seq_relationship.bias has 2 elements; give it a stride of 10**6.
    data = members[pkl]
    marker = data.index(b"cls.seq_relationship.bias")
    stride_at = data.index(b"K\x01\x85", marker)  # BININT1 1, TUPLE1: the stride (1,)
    members[pkl] = data[:stride_at] + b"J\x40\x42\x0f\x00\x85" + data[stride_at + 3:]  # BININT 10**6, TUPLE1
    with zipfile.ZipFile(tmp_path / "m.bin", "w") as z:
        for n, content in members.items():
            z.writestr(n, content)
    with pytest.raises(CheckpointError, match="reaches outside its storage"):
        read_torch_checkpoint(tmp_path / "m.bin")


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_truncated_checkpoints(tmp_path, layout):
    data = (CHECKPOINTS / layout / "pytorch_model.bin").read_bytes()
    for size in (len(data) - 7, len(data) // 2, 100, 3, 0):
        (tmp_path / "m.bin").write_bytes(data[:size])
        with pytest.raises(CheckpointError):
            read_torch_checkpoint(tmp_path / "m.bin")


def test_files_that_are_not_checkpoints(tmp_path):
    (tmp_path / "html.bin").write_text("<html>Entry not found</html>")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint|not a torch checkpoint"):
        read_torch_checkpoint(tmp_path / "html.bin")
    (tmp_path / "list.bin").write_bytes(pickle.dumps(LEGACY_MAGIC) + pickle.dumps(LEGACY_PROTOCOL) + pickle.dumps({})
                                        + pickle.dumps([1, 2]) + pickle.dumps([]))
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        read_torch_checkpoint(tmp_path / "list.bin")
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        read_torch_checkpoint(tmp_path / "missing.bin")
    with pytest.raises(WeightsError, match="unknown weights format '.h5'"):
        read_weights(tmp_path / "tf_model.h5")


def first_storage_offset(data: bytes) -> int:
    """Where a legacy file's first storage (its int64 element count) starts: after the five pickles."""
    class Skim(pickle.Unpickler):
        def find_class(self, module, name):
            return lambda *args: None

        def persistent_load(self, pid):
            return None

    f = io.BytesIO(data)
    for _ in range(5):  # magic, protocol, system info, the state dict, the storage keys
        Skim(f).load()
    return f.tell()


def test_legacy_storage_count_mismatch(tmp_path):
    data = bytearray((CHECKPOINTS / "legacy" / "pytorch_model.bin").read_bytes())
    struct.pack_into("<q", data, first_storage_offset(bytes(data)), 10**9)
    (tmp_path / "m.bin").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="holds 1000000000 elements, the pickle declared"):
        read_torch_checkpoint(tmp_path / "m.bin")


def test_shape_mismatch_in_a_bin_is_named(tmp_path):
    import shutil

    directory = tmp_path / "m"
    shutil.copytree(CHECKPOINTS / "zip", directory)
    config = (directory / "config.json").read_text().replace('"intermediate_size": 24', '"intermediate_size": 25')
    (directory / "config.json").write_text(config)
    with pytest.raises(WeightsError,
                       match=r"encoder.layer.0.intermediate.dense.weight has shape \[24, 16\], expected \[25, 16\]"):
        BertModel.from_pretrained(directory)
