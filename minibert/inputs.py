"""The checks on a model call's inputs: ids, masks, positions and vectors as arrays of the right shape, type
and range, a multiple-choice batch flattened, and a batch too large for memory refused before allocating;
each error a one-line message naming the input."""

from __future__ import annotations

import os
from typing import Any

import numba
import numpy as np

from .config import BertConfig


def check_inputs(config: BertConfig, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds=None,
                 dtype: np.dtype = np.float32):
    """Validate and normalise a model call's inputs: input_ids, attention_mask, token_type_ids to int64
    [B, S] arrays, position_ids to [B, S] or [1, S]; inputs_embeds (given instead of input_ids, which is then
    None) to a [B, S, H] array of `dtype` (see check_embeds). Returns all five, in that order."""
    if inputs_embeds is not None:
        inputs_embeds = check_embeds(config, input_ids, inputs_embeds, dtype)
        shape = inputs_embeds.shape[:2]
    elif input_ids is None:
        raise ValueError("give input_ids (or inputs_embeds)")
    else:
        input_ids = _token_array("input_ids", input_ids, upper=config.vocab_size)
        if input_ids.ndim == 1:
            input_ids = input_ids[None, :]  # [S] -> [1, S]
        if input_ids.ndim != 2 or input_ids.size == 0:
            raise ValueError(f"input_ids must be a non-empty [batch, seq] array, got shape {input_ids.shape}")
        shape = input_ids.shape
    source = "input_ids" if input_ids is not None else "inputs_embeds' [batch, seq]"
    seq = shape[1]
    if seq > config.max_position_embeddings:
        raise ValueError(f"sequence length {seq} exceeds max_position_embeddings ({config.max_position_embeddings})")
    attention_mask = _like_ids("attention_mask", _mask_as_integers(attention_mask), shape, source, upper=2, default=1)
    token_type_ids = _like_ids("token_type_ids", token_type_ids, shape, source, upper=config.type_vocab_size, default=0)
    if position_ids is None:
        position_ids = np.arange(seq)[None, :]  # [1, S], broadcast over the batch
    else:
        position_ids = _like_ids("position_ids", position_ids, shape, source, upper=config.max_position_embeddings)
    return input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds


def check_embeds(config: BertConfig, input_ids: Any, inputs_embeds: Any, dtype: np.dtype) -> np.ndarray:
    """inputs_embeds (vectors given in place of the word embeddings of input_ids) as a [B, S, H] array of
    `dtype`; [S, H] is taken as a batch of one. Exactly one of input_ids and inputs_embeds is given."""
    if input_ids is not None:
        raise ValueError("give input_ids or inputs_embeds, not both")
    array = _rectangular("inputs_embeds", inputs_embeds, "array of numbers")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"inputs_embeds must hold numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[None]  # [S, H] -> [1, S, H]
    if array.ndim != 3 or array.shape[2] != config.hidden_size or array.shape[0] * array.shape[1] == 0:
        raise ValueError(f"inputs_embeds must be a non-empty [batch, seq, {config.hidden_size}] array, got shape "
                         f"{array.shape}")
    array = array.astype(dtype, copy=False)
    if not np.isfinite(array).all():  # after the cast: 1e39 is inf in float32
        raise _bad_values("inputs_embeds", array, np.argwhere(~np.isfinite(array)),
                          f"values must be finite in {np.dtype(dtype)}")
    return array


def flatten_choices(**inputs: Any) -> tuple[int, dict[str, Any]]:
    """A multiple-choice batch's inputs, [B, C, S] (inputs_embeds [B, C, S, H]), as a batch of B·C sequences
    [B·C, S]; returns (C, the flattened inputs). Inputs not given stay None."""
    given = {name: _rectangular(name, value, "[batch, choices, seq] array") for name, value in inputs.items()
             if value is not None}
    source = "inputs_embeds" if "inputs_embeds" in given else "input_ids"
    if source not in given:
        raise ValueError("give input_ids (or inputs_embeds)")
    shape = given[source].shape[:3]
    if given[source].ndim != (4 if source == "inputs_embeds" else 3) or 0 in shape:
        raise ValueError(f"BertForMultipleChoice takes {source} as a non-empty [batch, choices, seq"
                         f"{', hidden' if source == 'inputs_embeds' else ''}] array, got shape {given[source].shape}")
    for name, value in given.items():
        if name not in (source, "position_ids") and value.shape != shape:
            raise ValueError(f"{name} has shape {value.shape}, but the [batch, choices, seq] of {source} is {shape}")
    if "position_ids" in given and given["position_ids"].shape not in (shape, shape[2:]):
        raise ValueError(f"position_ids has shape {given['position_ids'].shape}; it must be [batch, choices, seq] "
                         f"{shape} or [seq]")
    flat = {name: None for name in inputs}
    for name, value in given.items():
        # [B, C, S, ...] -> [B·C, S, ...]
        flat[name] = value if value.shape == shape[2:] else value.reshape(-1, *value.shape[2:])
    return shape[1], flat


def check_memory(bytes_per_token: int, shape: tuple[int, int], dtype: np.dtype,
                 what: str = "its outputs and working arrays") -> None:
    """Refuse, before allocating, a batch [B, S] whose arrays would not fit in memory, saying what it would need."""
    need = bytes_per_token * shape[0] * shape[1]
    if need > (1 << 28) and need > (free := available_memory()):  # a quarter GiB always goes: no system call
        raise ValueError(f"a batch of {shape[0]} x {shape[1]} tokens would need about "
                         f"{need / 2**30:.1f} GiB for {what} in {np.dtype(dtype)}, "
                         f"more than the {max(free, 0) / 2**30:.1f} GiB available: pass fewer or "
                         "shorter texts per call")


def available_memory() -> int:
    """Bytes this process may still allocate: the system's available memory (Linux: MemAvailable), within
    the address-space limit (ulimit -v) when one is set."""
    import resource

    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                available = min(available, limit - int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, StopIteration, ValueError):
        pass
    return available


def _rectangular(name: str, values: Any, what: str) -> np.ndarray:
    """values as an array, or a ValueError naming `name` and `what` it must be for ragged nested lists."""
    try:
        array = np.asarray(values)  # NumPy raises ValueError on ragged nested lists, or makes an object array
        if array.dtype.kind == "O":  # (comparing with `object` makes a dtype each call)
            raise ValueError
    except ValueError:
        raise ValueError(f"{name} must be a rectangular {what} (ragged lists need padding; integers must fit in "
                         "64 bits)") from None
    return array


def _bad_values(name: str, array: np.ndarray, bad: np.ndarray, rule: str) -> ValueError:
    """The error for the positions `bad` (np.argwhere's) of array: the first value, where it is, the rule
    it breaks, and how many break it."""
    where = tuple(int(i) for i in bad[0])
    return ValueError(f"{name} holds {array[where]} at position {list(where)}; {rule}"
                      + (f" ({len(bad)} bad values)" if len(bad) > 1 else ""))


def _mask_as_integers(mask: Any) -> Any:
    """A boolean or floating attention_mask as int64; others as given (None, or integers checked later).

    transformers takes a float mask of 0.0 and 1.0 as the same mask (np.ones makes floats). Any other float
    it reads as 1 wherever it is not 0; here it is an error, as an integer 2 is."""
    if mask is None:
        return None
    array = _rectangular("attention_mask", mask, "array of integers")
    if array.dtype == bool:
        return array.astype(np.int64)
    if array.dtype.kind != "f":  # not floating (dtype kinds: cheaper than np.issubdtype on every call)
        return mask
    bad = np.argwhere((array != 0) & (array != 1))  # NaN is neither
    if len(bad):
        raise _bad_values("attention_mask", array, bad, "a mask's values must be 0 or 1")
    return array.astype(np.int64)


@numba.njit(cache=True)
def bounds(array: np.ndarray) -> tuple:
    """(min, max) of a non-empty integer array, in one compiled pass: on a call's few ids NumPy's
    reductions cost far more than the values they read, and more again right after a forward has evicted
    their code from the caches."""
    low = high = array.flat[0]
    for value in array.flat:
        low, high = min(low, value), max(high, value)
    return low, high


def _token_array(name: str, values: Any, upper: int) -> np.ndarray:
    """values as an int64 array, checked to lie in [0, upper)."""
    array = _rectangular(name, values, "array of integers")
    if array.size and array.dtype.kind not in "iu":  # not a signed or unsigned integer
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    # checked before the cast, which would wrap uint64
    if array.size == 0 or ((low_high := bounds(array))[0] >= 0 and low_high[1] < upper):
        return array.astype(np.int64, copy=False)
    raise _bad_values(name, array, np.argwhere((array < 0) | (array >= upper)), f"values must lie in [0, {upper})")


def _like_ids(name: str, values: Any, shape: tuple[int, int], source: str, upper: int,
              default: int | None = None) -> np.ndarray:
    """An optional per-token input, checked to have the inputs' [B, S] shape (that of `source`; [S] is taken
    as a batch of one); when not given, `default` (0 or 1) at every position."""
    if values is None:
        return (np.ones if default else np.zeros)(shape, dtype=np.int64)  # (np.full costs more per call)
    array = _token_array(name, values, upper)
    if array.ndim == 1:
        array = array[None, :]
    broadcasts = name == "position_ids" and array.shape == (1, shape[1])  # one row for the batch
    if array.shape != tuple(shape) and not broadcasts:
        raise ValueError(f"{name} has shape {array.shape}, but {source} has shape {tuple(shape)}")
    return array
