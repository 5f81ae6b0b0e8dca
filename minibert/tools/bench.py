"""`minibert bench`: minibert's fast path against torch eager, ONNX Runtime and OpenVINO, same process, interleaved.

Run with the machine's BLAS pins unset for that command only, e.g.
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE minibert bench
torch/transformers, onnxruntime(+onnx) and openvino are optional: whichever is importable is measured. All engines
get the same BERT-Mini-shaped random weights (L=4 H=256 A=4 I=1024, vocabulary 30522), fp32, and the same
thread count; each shape is timed in rounds that alternate the engines, and the minimum is reported.
Beside each speed-up of minima, the paired one: the median (and quartiles) over rounds of the ratio of the
two calls within a round, which run milliseconds apart (about a second at the largest shape) and so share
the machine's phase (on a virtual machine whose speed wanders by ±30% from minute to minute, minima taken
minutes apart disagree more).
ONNX Runtime's and torch's thread pools keep spinning after a call returns (ONNX Runtime's for tens of
milliseconds), and on two cores that slows whichever engine runs next. So in each
round an engine's calls start after a pause of SETTLE seconds, and its timed call follows an untimed call
of its own: each engine is timed as it runs called back to back, with no other engine's threads awake.
Before timing a shape, each engine's last hidden state is compared with minibert's: a float32 engine
that differs by more than SAME_OUTPUT runs another model, and the bench stops there.
With int8=True (`minibert bench --int8`), minibert's int8 model is timed against its float32 one and ONNX
Runtime's int8 recipes (see int8_engines), and the memory of the quantized matrices is printed.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
import warnings
from typing import Any, Callable

import numpy as np

from ..config import BertConfig
from ..loading.weights import SCALE_SUFFIX, quantized_weight_names
from ..models import BertModel

SHAPES = ((1, 8), (1, 128), (32, 128), (8, 512))


MAX_BATCH = 4096  # inputs and outputs of a timed batch stay well within memory
SETTLE = 0.1  # s before each engine's calls in a round: longer than any pool spins after a call (module docstring)
# Largest |difference| allowed between a float32 engine's last hidden state and minibert's: float32 rounding
# across engines stays within a few 1e-6 on BERT-Mini, and an engine running another model (a graph traced
# wrong, weights not loaded) differs by 1e-1 and more.
SAME_OUTPUT = 1e-4


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """"1x8,32x128" -> [(1, 8), (32, 128)]; ValueError (saying what is expected) on anything else."""
    pairs = [shape.split("x") for shape in text.replace(" ", "").split(",")]
    if not all(len(pair) == 2 and all(n.isdigit() and int(n) > 0 for n in pair) and int(pair[0]) <= MAX_BATCH
               for pair in pairs):
        raise ValueError(f"BATCHxLENGTH pairs of positive integers (batch ≤ {MAX_BATCH}) such as 1x8,32x128; "
                         f"got {text!r}")
    return [(int(batch), int(length)) for batch, length in pairs]


def one_shape_options(description: str, rounds: int) -> tuple[int, int, int]:
    """A benchmark script's command line, --shape (one BATCHxLENGTH, default 1x8) and --rounds (default
    `rounds`): (batch, seq, rounds)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--shape", type=parse_shapes, default=parse_shapes("1x8"))
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args()
    if len(args.shape) != 1:
        parser.error(f"--shape takes one BATCHxLENGTH, got {len(args.shape)}")
    (batch, seq), = args.shape
    return batch, seq, args.rounds


def random_mini_weights(seed: int = 0) -> tuple[BertConfig, dict[str, np.ndarray]]:
    """BERT-Mini's config and freshly initialised weights (the timing does not depend on their values)."""
    from ..loading.weights import init_weights

    config = BertConfig.from_pretrained("bert-mini")  # from the miniatures' table: no download
    return config, init_weights(config, seed)


def engines(config: BertConfig, weights: dict[str, np.ndarray], threads: int) -> dict[str, Callable]:
    """name -> run(input_ids, attention_mask): minibert always; torch, and with it ONNX Runtime and OpenVINO
    (on torch's ONNX export), when importable."""
    model = BertModel(config, weights)
    reference = BertModel(config, weights)
    reference.use_fast = False
    runs = {"minibert": lambda ids, mask: model(ids, attention_mask=mask),
            "minibert reference": lambda ids, mask: reference(ids, attention_mask=mask)}
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        return runs
    torch.set_num_threads(threads)
    hf = transformers_model(config, weights)

    def run_torch(ids, mask):
        with torch.inference_mode():
            return hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))

    runs["torch eager"] = run_torch
    available = [name for name in ("onnxruntime", "openvino") if importlib.util.find_spec(name) is not None]
    if not available:
        return runs
    exported = export_onnx(hf, os.path.join(tempfile.mkdtemp(prefix="minibert-bench-"), "bert.onnx"))
    if "onnxruntime" in available:
        session = onnx_session(exported, threads)
        runs["onnxruntime"] = lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})
    if "openvino" in available:
        compiled = openvino_model(exported, threads)
        runs["openvino"] = lambda ids, mask: compiled({"input_ids": ids, "attention_mask": mask})
    return runs


def openvino_model(path: str, threads: int):
    """OpenVINO's CPU plugin on the exported model: `threads` threads, f32 inference precision (its default on
    CPUs with bf16 or fp16 units is to compute in those)."""
    import openvino

    return openvino.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                       "INFERENCE_PRECISION_HINT": "f32"})


def int8_engines(config: BertConfig, weights: dict[str, np.ndarray], threads: int) -> dict[str, Callable]:
    """name -> run(input_ids, attention_mask): minibert int8 and float32 always; with torch, transformers and
    onnxruntime importable, ONNX Runtime's int8 as its docs give it for transformers on a CPU: the exported
    model through quantize_dynamic (per-channel QInt8 weights, reduce_range without VNNI), and the same after
    its transformer optimizer (optimize_model: fused attention, LayerNorm and GELU) ("opt+int8")."""
    model, quantized = BertModel(config, weights), BertModel(config, weights).quantize("int8")
    runs = {"minibert int8": lambda ids, mask: quantized(ids, attention_mask=mask),
            "minibert": lambda ids, mask: model(ids, attention_mask=mask)}
    try:
        import onnxruntime  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError:
        return runs
    from onnxruntime.transformers.optimizer import optimize_model

    torch.set_num_threads(threads)
    directory = tempfile.mkdtemp(prefix="minibert-bench-")
    exported = export_onnx(transformers_model(config, weights), os.path.join(directory, "bert.onnx"))
    optimized = os.path.join(directory, "bert.optimized.onnx")
    optimize_model(exported, model_type="bert", num_heads=config.num_attention_heads,
                   hidden_size=config.hidden_size).save_model_to_file(optimized)
    for name, source in (("onnxruntime int8", exported), ("onnxruntime opt+int8", optimized)):
        session = onnx_session(ort_quantize(source, source.replace(".onnx", ".int8.onnx")), threads)
        runs[name] = lambda ids, mask, session=session: session.run(None, {"input_ids": ids, "attention_mask": mask})
    return runs


def ort_quantize(source: str, target: str) -> str:
    """ONNX Runtime's dynamic quantization of an ONNX model, as its docs recommend on a CPU: per-channel QInt8
    weights, reduce_range (7-bit weights, against vpmaddubsw's saturation) only without VNNI. Returns target."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # DefaultTensorType: the optimizer's fused operators (com.microsoft domain) defeat ONNX's shape inference
    quantize_dynamic(source, target, per_channel=True, reduce_range=not host_has_vnni(), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return target


def host_has_vnni() -> bool:
    """Whether the CPU itself (not the one NUMBA_CPU_NAME may name) has VNNI (AVX512-VNNI or AVX-VNNI)."""
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    return bool(features.get("avx512vnni") or features.get("avxvnni"))


def int8_memory(config: BertConfig, weights: dict[str, np.ndarray]) -> str:
    """The bytes of the quantized matrices against their float32 bytes, and the whole model's MB in each."""
    model, quantized = BertModel(config, weights), BertModel(config, weights).quantize("int8")
    names = quantized_weight_names(config)
    float_bytes = sum(model.state_dict()[name].nbytes for name in names)
    state = quantized.state_dict()
    int8_bytes = sum(state[name].nbytes + state[name + SCALE_SUFFIX].nbytes for name in names)
    matrices = [m for layer in quantized.fast.layers for pairs in (layer["qkv"], [layer["o"], layer["ffn_in"],
                layer["ffn_out"]]) for m, _ in pairs]
    packed = sum(m.panels.nbytes for m in matrices if m.panels is not None)
    total = {name: sum(a.nbytes for a in m.state_dict().values())
             for name, m in (("float32", model), ("int8", quantized))}
    return (f"memory: the encoder's {len(names)} quantized matrices {int8_bytes / 2**20:.2f} MiB (int8 + scales) "
            f"against {float_bytes / 2**20:.2f} MiB in float32 ({int8_bytes / float_bytes:.3f}x), plus "
            f"{packed / 2**20:.2f} MiB of packed panels ({matrices[0].kernel} kernel); the model "
            f"{total['int8'] / 2**20:.1f} MiB + panels against {total['float32'] / 2**20:.1f} MiB "
            f"(the float32 embeddings dominate)")


def transformers_model(config: BertConfig, weights: dict[str, np.ndarray]):
    """transformers' BertModel (sdpa attention, eval mode) holding the same weights."""
    import torch
    import transformers

    hf = transformers.BertModel(transformers.BertConfig(**config.to_dict(), attn_implementation="sdpa")).eval()
    hf.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    return hf


def onnx_session(path: str, threads: int, profile_prefix: str | None = None):
    """An ONNX Runtime session on the exported model: fp32, all graph optimisations, `threads` threads; with
    profile_prefix, its own per-operator profiler on (SessionOptions.enable_profiling)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def export_onnx(hf_model, path: str) -> str:
    """Export a transformers BertModel to ONNX at `path` (dynamic batch and sequence axes); returns path."""
    import torch

    class Encoder(torch.nn.Module):  # positional inputs for the exporter
        def __init__(self):
            super().__init__()
            self.bert = hf_model

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state, out.pooler_output

    ids = torch.ones((2, 16), dtype=torch.long)
    # The tracer warns that Python values it takes from tensors may not hold for other shapes; bench() checks
    # the exported model's outputs at every shape it times (output_differences) instead.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder().eval(), (ids, torch.ones_like(ids)), path,
                          input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state", "pooler_output"], dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask")})
    return path


def cpu_description() -> str:
    """The CPU as a figure should name it: /proc/cpuinfo's model name, family and model and its vector
    instructions (else the platform's processor string), and the kernels minibert compiles for it."""
    import platform

    from ..fast import int8, simd

    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())  # the first processor's
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    vectors = ", ".join(name for flag, name in (("avx2", "AVX2"), ("fma", "FMA"), ("avx512f", "AVX-512"),
                                                ("avx512_vnni", "VNNI"), ("avx_vnni", "AVX-VNNI"),
                                                ("avx512_bf16", "BF16")) if flag in flags)
    family = f"family {info['cpu family']} model {info['model']}; " if {"cpu family", "model"} <= set(info) else ""
    target = simd.host()
    kernels = (f"{target.width} float32 lanes{' with FMA' if target.fma else ''}, int8 "
               f"{int8.kernels_present(target)[0]}")
    return (f"{info.get('model name') or platform.processor() or 'unknown'} ({family}{vectors or 'no AVX2'}; "
            f"minibert's kernels: {kernels})")


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (install threadpoolctl to see it)"
    return ", ".join(f"{i['internal_api']} {i.get('version', '')} {i.get('architecture', '')} "
                     f"({i['num_threads']} threads)"
                     for i in threadpool_info() if i["user_api"] == "blas") or "none found"


def interleaved_times(runs: dict[str, Callable[[], Any]], rounds: int, settle: float = 0.0) -> dict[str, np.ndarray]:
    """name -> the seconds of its `rounds` timed calls, round by round. Each round calls every engine in
    turn, after a pause of `settle` seconds, and each timed call follows an untimed call of the same engine
    (see the module docstring for why)."""
    times = {name: np.empty(rounds) for name in runs}
    for r in range(rounds):
        for name, run in runs.items():
            time.sleep(settle)
            run()
            start = time.perf_counter()
            run()
            times[name][r] = time.perf_counter() - start
    return times


def interleaved_minimum(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """name -> the fastest of `rounds` timed calls, in seconds (interleaved_times)."""
    return {name: float(t.min()) for name, t in interleaved_times(runs, rounds).items()}


def last_hidden_state(output) -> np.ndarray:
    """An engine's [batch, seq, hidden] output as a NumPy array: a model output's last_hidden_state (minibert,
    torch), else the first of its outputs (ONNX Runtime's list, OpenVINO's results)."""
    hidden = getattr(output, "last_hidden_state", None)
    hidden = output[0] if hidden is None else hidden
    return np.asarray(hidden if isinstance(hidden, np.ndarray) else hidden.numpy())


def output_differences(outputs: dict[str, np.ndarray], shape: str) -> dict[str, float]:
    """name -> max |output - minibert float32's output| for every engine but "minibert". ValueError when a float32
    engine's differs by more than SAME_OUTPUT: it runs another model, and its times compare nothing. int8
    engines' differences (their quantization error) are returned, not bounded."""
    reference = outputs["minibert"]
    differences = {name: float(np.abs(output - reference).max()) for name, output in outputs.items()
                   if name != "minibert"}
    for name, difference in differences.items():
        if "int8" not in name and not difference <= SAME_OUTPUT:
            raise ValueError(f"{name}'s last hidden state differs from minibert's by {difference:.1e} at {shape} "
                             f"(more than {SAME_OUTPUT:g}): it computes another model, so its times compare nothing")
    return differences


def paired_speedup(engine: np.ndarray, minibert: np.ndarray) -> tuple[float, float, float]:
    """Quartiles (25%, median, 75%) over rounds of engine time / minibert time within each round."""
    q1, median, q3 = np.percentile(engine / minibert, [25, 50, 75])
    return float(q1), float(median), float(q3)


def bench(rounds: int = 20, threads: int | None = None, shapes=SHAPES, include_reference: bool = False,
          int8: bool = False) -> list[dict]:
    """Time every engine on every shape; returns rows {shape, engine: ms (the minimum), "paired": {engine:
    [25%, median, 75%] of the within-round speed-ups}, "max_abs_diff": {engine: max |its last hidden state -
    minibert float32's|}}. Prints a table as it goes. int8: minibert's int8 model against its float32 one and
    ONNX Runtime's int8 (int8_engines), speed-ups relative to minibert int8. ValueError when a float32 engine
    computes another model (output_differences)."""
    from ..fast import set_num_threads

    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    threads = (os.cpu_count() or 1) if threads is None else threads
    set_num_threads(threads)  # refuses 0 and negative counts
    config, weights = random_mini_weights()
    longest = max(length for _, length in shapes)
    if longest > config.max_position_embeddings:
        raise ValueError(f"shapes: BERT-Mini takes at most {config.max_position_embeddings} tokens per sequence; "
                         f"got {longest}")
    runs = int8_engines(config, weights, threads) if int8 else engines(config, weights, threads)
    if not include_reference:
        runs.pop("minibert reference", None)
    pins = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    print(f"CPU: {cpu_description()}; BLAS: {blas_description()}; threads {threads}; BLAS pins in the environment: "
          f"{pins or 'none'}")
    if int8:
        print(int8_memory(config, weights))
    names = list(runs)
    baseline = names[0]  # "minibert", or "minibert int8"
    others = [n for n in names if n != baseline]
    print(f"{'batch x seq':>12} " + " ".join(f"{n:>18}" for n in names)
          + "".join(f"  {'speed-up vs ' + n + ' (paired)':>40}" for n in others)
          + f"   (speed-up = engine ms / {baseline} ms, of the minima; paired: median [quartiles] within rounds)")
    rows = []
    rng = np.random.default_rng(1)
    for batch, seq in shapes:
        ids = rng.integers(1000, config.vocab_size, size=(batch, seq)).astype(np.int64)
        mask = np.ones_like(ids)
        # warm-up (compilation, allocation), whose outputs show that every engine computes the same model
        differences = output_differences({name: last_hidden_state(runs[name](ids, mask)) for name in names},
                                         f"{batch}x{seq}")
        times = interleaved_times({name: lambda run=run: run(ids, mask) for name, run in runs.items()}, rounds,
                                  SETTLE)
        best = {name: float(t.min()) * 1e3 for name, t in times.items()}
        paired = {n: paired_speedup(times[n], times[baseline]) for n in others}
        rows.append({"shape": f"{batch}x{seq}", **best, "paired": paired, "max_abs_diff": differences})
        print(f"{batch:>6} x {seq:<4} " + " ".join(f"{best[n]:>15.2f} ms" for n in names)
              + "".join(("  " + f"{best[n] / best[baseline]:.2f}x "
                         f"({paired[n][1]:.2f}x [{paired[n][0]:.2f}–{paired[n][2]:.2f}])").rjust(40) for n in others))
        print(f"{'':>13}max abs diff from minibert float32's last hidden state: "
              + ", ".join(f"{n} {d:.1e}" for n, d in differences.items()))
    return rows
