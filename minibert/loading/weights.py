"""Reading checkpoints and mapping their keys onto the model, checking every name and shape.

Keys follow the Hugging Face BERT checkpoints (``embeddings.word_embeddings.weight``,
``encoder.layer.0.attention.self.query.weight``, ...). Loading fails loudly on anything missing,
misshaped or left over, in the spirit of nanoGPT's loader.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BertConfig
from ..errors import ConfigError, WeightsError
from .files import present, regular_file
from .hub import WEIGHTS_FILES
from .torch_checkpoint import bfloat16_to_float32, read_torch_checkpoint

# Persistent buffers some checkpoints carry; they are derived from the config, not learned.
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
# Keys of transformers' BERT task heads. The bare encoder (BertModel) leaves them to the head classes.
HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")
# The encoder's linear layers, per layer, that an int8 model holds quantized (minibert/nn/quantize.py). A quantized
# weight "X.weight" is int8 [out, in]; its per-output-channel scales are "X.weight_scale", float32 [out].
QUANTIZED_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                     "intermediate.dense", "output.dense")
SCALE_SUFFIX = "_scale"
# safetensors dtype names -> NumPy (BF16 is widened to float32 separately: NumPy has no bfloat16).
SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                      "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_weights(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a weights file, by type: .safetensors, or a torch .bin/.pt/.pth read without torch."""
    suffix = Path(path).suffix
    if suffix not in (".safetensors", ".bin", ".pt", ".pth"):
        raise WeightsError(f"{os.fspath(path)}: unknown weights format {suffix!r} (expected .safetensors or .bin)")
    regular_file(path, WeightsError, "weights file")
    tensors = read_safetensors(path) if suffix == ".safetensors" else read_torch_checkpoint(path)
    if not tensors:
        raise WeightsError(f"{os.fspath(path)}: holds no tensors")
    return tensors


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of a .safetensors file as NumPy arrays; float16 kept, bfloat16 widened to float32.

    Tensors are copied once each out of a memory map (safe_open); a file holding bfloat16, which NumPy
    lacks, is read whole and its raw bytes converted."""
    from safetensors import SafetensorError, deserialize, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            dtypes = {name: f.get_slice(name).get_dtype() for name in f.keys()}
            if all(dtype in SAFETENSORS_DTYPES for dtype in dtypes.values()):
                return {name: f.get_tensor(name) for name in dtypes}
        with open(path, "rb") as f:
            entries = deserialize(f.read())
    except FileNotFoundError:
        raise WeightsError(f"no weights file at {os.fspath(path)!r}") from None
    except (SafetensorError, ValueError, TypeError, OSError) as e:
        raise WeightsError(f"{os.fspath(path)!r} is not a readable safetensors file: {e}") from None
    tensors = {}
    for name, entry in entries:
        dtype, shape, data = entry["dtype"], tuple(entry["shape"]), entry["data"]
        count = int(np.prod(shape))
        if dtype == "BF16":
            flat = bfloat16_to_float32(data, count)
        elif dtype in SAFETENSORS_DTYPES:
            flat = np.frombuffer(data, SAFETENSORS_DTYPES[dtype], count)
        else:
            raise WeightsError(f"{os.fspath(path)!r}: tensor {name!r} has dtype {dtype}, which minibert cannot read")
        tensors[name] = flat.astype(flat.dtype.newbyteorder("="), copy=True).reshape(shape)
    return tensors


def weights_file(directory: str | os.PathLike) -> Path:
    """The model's weights in a directory: model.safetensors, else pytorch_model.bin."""
    for name in WEIGHTS_FILES:
        if present(Path(directory) / name, WeightsError, "weights file"):
            return Path(directory) / name
    held = ", ".join(sorted(os.listdir(directory))) or "nothing"
    sharded = " (sharded checkpoints are not supported)" if "index.json" in held else ""
    raise WeightsError(f"no {' or '.join(WEIGHTS_FILES)} in {os.fspath(directory)!r} (it holds: {held}){sharded}")


def canonical_name(key: str) -> str:
    """The name minibert uses for a checkpoint key: the ``bert.`` prefix of head checkpoints dropped,
    legacy TF-era ``LayerNorm.gamma`` / ``LayerNorm.beta`` renamed to ``weight`` / ``bias``."""
    key = key.removeprefix("bert.")
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key))


def bert_shapes(config: BertConfig, with_pooler: bool = True) -> dict[str, tuple[int, ...]]:
    """Every tensor of BertModel with its shape, in checkpoint order."""
    H, I = config.hidden_size, config.intermediate_size  # noqa: E741 (I: BERT's name for the FFN width)
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (config.vocab_size, H),
        "embeddings.position_embeddings.weight": (config.max_position_embeddings, H),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, H),
        "embeddings.LayerNorm.weight": (H,),
        "embeddings.LayerNorm.bias": (H,),
    }
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[p + f"attention.self.{name}.weight"] = (H, H)
            shapes[p + f"attention.self.{name}.bias"] = (H,)
        shapes[p + "attention.output.dense.weight"] = (H, H)
        shapes[p + "attention.output.dense.bias"] = (H,)
        shapes[p + "attention.output.LayerNorm.weight"] = (H,)
        shapes[p + "attention.output.LayerNorm.bias"] = (H,)
        shapes[p + "intermediate.dense.weight"] = (I, H)
        shapes[p + "intermediate.dense.bias"] = (I,)
        shapes[p + "output.dense.weight"] = (H, I)
        shapes[p + "output.dense.bias"] = (H,)
        shapes[p + "output.LayerNorm.weight"] = (H,)
        shapes[p + "output.LayerNorm.bias"] = (H,)
    if with_pooler:
        shapes["pooler.dense.weight"] = (H, H)
        shapes["pooler.dense.bias"] = (H,)
    return shapes


def mlm_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """The masked-LM head's tensors as checkpoints key them (the decoder spelled out)."""
    H, V = config.hidden_size, config.vocab_size
    return {
        "cls.predictions.transform.dense.weight": (H, H), "cls.predictions.transform.dense.bias": (H,),
        "cls.predictions.transform.LayerNorm.weight": (H,), "cls.predictions.transform.LayerNorm.bias": (H,),
        "cls.predictions.decoder.weight": (V, H), "cls.predictions.decoder.bias": (V,),
    }


def nsp_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """The next-sentence head's tensors."""
    return {"cls.seq_relationship.weight": (2, config.hidden_size), "cls.seq_relationship.bias": (2,)}


def pretraining_head_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """The tensors of the MLM and next-sentence heads as torch's named_parameters() lists them: the MLM
    decoder is tied (its weight is the word embeddings, its bias cls.predictions.bias), so it has no entry."""
    mlm = mlm_shapes(config)
    transform = {name: shape for name, shape in mlm.items() if name.startswith("cls.predictions.transform.")}
    return {"cls.predictions.bias": mlm["cls.predictions.decoder.bias"], **transform, **nsp_shapes(config)}


def canonical_state(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A checkpoint's tensors under their canonical names (see canonical_name); a tensor spelled two
    ways is an error rather than a silent choice."""
    tensors: dict[str, np.ndarray] = {}
    for key, value in state.items():
        name = canonical_name(key)
        if name in tensors:
            raise WeightsError(f"checkpoint holds {name!r} twice (as {key!r} and another spelling)")
        tensors[name] = value
    return tensors


def shape_problems(tensors: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Every tensor of `shapes` that is missing, misshaped or not floating point, described."""
    problems = []
    for name, shape in shapes.items():
        if name not in tensors:
            problems.append(f"missing {name} {list(shape)}")
        elif tuple(tensors[name].shape) != shape:
            problems.append(f"{name} has shape {list(tensors[name].shape)}, expected {list(shape)}")
        elif not np.issubdtype(tensors[name].dtype, np.floating):
            problems.append(f"{name} has dtype {tensors[name].dtype}, expected a float type")
    return problems


def take(tensors: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]], dtype: Any, what: str,
         problems: list[str] = ()) -> dict[str, np.ndarray]:
    """The tensors named in `shapes`, cast to `dtype`, after checking them. Raises WeightsError naming every
    problem (with those passed in); `what` says which model they were for."""
    problems = [*problems, *shape_problems(tensors, shapes)]
    if problems:
        raise WeightsError(f"checkpoint does not fit {what}:\n  " + "\n  ".join(problems))
    taken = {name: np.ascontiguousarray(tensors[name], dtype=dtype) for name in shapes}
    for name, array in taken.items():  # after the cast: a float64 value beyond float32's range is inf there
        if not np.isfinite(array).all():
            bad = np.argwhere(~np.isfinite(array))
            raise WeightsError(f"checkpoint tensor {name} holds {len(bad)} non-finite values (NaN or inf), the first "
                               f"{array[tuple(bad[0])]} at {bad[0].tolist()}: the weights are corrupt")
    return taken


def bert_weights(
    state: dict[str, np.ndarray], config: BertConfig, dtype: Any = np.float32, add_pooling_layer: bool = True
) -> dict[str, np.ndarray]:
    """Select, check and cast the BertModel tensors of a checkpoint.

    state: checkpoint tensors under their original keys. Returns {canonical name: array of dtype}.
    The pooler is optional (sentence-transformers checkpoints may lack it) but must be whole if present;
    with add_pooling_layer=False it is left out. Task-head tensors are left to the head classes; any other
    tensor the encoder does not use is an error, as is every missing, misshaped or non-float one.
    """
    tensors = canonical_state(state)
    with_pooler = add_pooling_layer and any(name.startswith("pooler.") for name in tensors)
    expected = bert_shapes(config, with_pooler)
    quantized, problems = int8_weights(tensors, config)
    int8_names = set()
    if quantized or problems:
        int8_names = {n for name in quantized_weight_names(config) for n in (name, name + SCALE_SUFFIX)}
    unexpected = [
        name for name in tensors
        if name not in expected and name not in BUFFERS and name not in int8_names
        and not name.startswith(HEAD_PREFIXES)
        and not (name.startswith("pooler.") and not add_pooling_layer)
    ]
    problems += [f"unexpected {name} {list(tensors[name].shape)}" for name in unexpected]
    floats = take(tensors, {name: shape for name, shape in expected.items() if name not in int8_names}, dtype,
                  f"BertModel {_describe(config)}", problems=problems)
    return {name: quantized.get(name, floats.get(name)) for name in [*expected, *quantized]}


def quantized_weight_names(config: BertConfig) -> list[str]:
    """The weights an int8 model holds in int8 (QUANTIZED_LINEARS of every layer)."""
    return [f"encoder.layer.{i}.{linear}.weight" for i in range(config.num_hidden_layers)
            for linear in QUANTIZED_LINEARS]


def int8_weights(tensors: dict[str, np.ndarray], config: BertConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """The int8 weights and their scales of a quantized checkpoint (one holding any "..._scale" or int8
    weight), and the problems found: every QUANTIZED_LINEARS weight must be int8 [out, in] with float32 [out]
    scales. ({}, []) for a float checkpoint."""
    names = quantized_weight_names(config)
    if not any(name + SCALE_SUFFIX in tensors or getattr(tensors.get(name), "dtype", None) == np.int8
               for name in names):
        return {}, []
    shapes = bert_shapes(config)
    quantized, problems = {}, []
    for name in names:
        scale_name, shape = name + SCALE_SUFFIX, shapes[name]
        weight, scale = tensors.get(name), tensors.get(scale_name)
        if weight is None or scale is None:
            problems.append(f"missing {name if weight is None else scale_name} (an int8 model stores each quantized "
                            f"weight with its float32 scales)")
        elif weight.dtype != np.int8 or tuple(weight.shape) != shape:
            problems.append(f"{name} is {weight.dtype} {list(weight.shape)}, but beside {scale_name} it must be "
                            f"int8 {list(shape)}")
        elif scale.dtype != np.float32 or tuple(scale.shape) != shape[:1]:
            problems.append(f"{scale_name} is {scale.dtype} {list(scale.shape)}, expected float32 {list(shape[:1])}")
        elif not (np.isfinite(scale).all() and (scale > 0).all()):
            problems.append(f"{scale_name} holds a scale that is not a positive finite number")
        else:
            quantized[name], quantized[scale_name] = np.ascontiguousarray(weight), np.ascontiguousarray(scale)
    return quantized, problems


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes: identifies a set of weights (the parity fixtures record
    the digest of the weights they were made with)."""
    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def init_weights(config: BertConfig, seed: int = 0, dtype: Any = np.float32,
                 pretraining_heads: bool = False) -> dict[str, np.ndarray]:
    """Fresh BertModel weights as transformers initialises them: N(0, initializer_range²) for embeddings and
    dense weights, zero biases, LayerNorm γ = 1 and β = 0. Hugging Face names, [out, in] layout.
    pretraining_heads: also the MLM and next-sentence heads (for BertForMaskedLM / BertForPreTraining)."""
    from ..inputs import available_memory

    rng = np.random.default_rng(seed)
    weights = {}
    shapes = {**bert_shapes(config), **(pretraining_head_shapes(config) if pretraining_heads else {})}
    need = sum(math.prod(shape) for shape in shapes.values()) * np.dtype(dtype).itemsize
    if need > (1 << 28) and need > available_memory():
        raise ConfigError(f"a model of this config holds {need / 2**30:.1f} GiB of weights in "
                          f"{np.dtype(dtype)}, more than the {available_memory() / 2**30:.1f} GiB available "
                          f"{_describe(config)}")
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):
            weights[name] = np.ones(shape, dtype)
        elif name.endswith("bias"):
            weights[name] = np.zeros(shape, dtype)
        else:
            weights[name] = rng.normal(0.0, config.initializer_range, shape).astype(dtype)
    return weights


def unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """{"encoder.layer.0.output.dense.weight": w} -> {"encoder": {"layer": [{"output": {"dense": {"weight": w}}}]}}.

    Numbered path parts become list positions, so ``weights["encoder"]["layer"][i]`` is layer i.
    """
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        node = nested
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return _lists_from_numbered(nested)


def flatten(nested: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """The inverse of unflatten: {"encoder": {"layer": [{...}]}} -> {"encoder.layer.0....": array}."""
    if isinstance(nested, dict):
        items = nested.items()
    elif isinstance(nested, list):
        items = ((str(i), v) for i, v in enumerate(nested))
    else:
        return {prefix[:-1]: nested}
    flat: dict[str, np.ndarray] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def _lists_from_numbered(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists_from_numbered(node[str(i)]) for i in range(len(node))]
    return {k: _lists_from_numbered(v) for k, v in node.items()}


def _describe(config: BertConfig) -> str:
    return (f"(L={config.num_hidden_layers} H={config.hidden_size} A={config.num_attention_heads} "
            f"I={config.intermediate_size} vocab={config.vocab_size})")
