"""The `minibert` command: answers from the command line, and a look inside the model."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from typing import Any

from .errors import CheckpointError, ConfigError, HubError, WeightsError

DEFAULT_MODEL = "google/bert_uncased_L-4_H-256_A-4"  # BERT-Mini
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


class UserError(Exception):
    """A mistake in the command line or its input: one line on stderr, exit status 2."""



def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if sys.stderr.isatty():  # a first call compiles for about a minute: say so (minibert/fast/compiling.py)
        show_compile_notice(sys.stderr)
    try:
        return args.run(args) or 0
    except UserError as e:
        print(f"minibert {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left (minibert ... | head): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the final flush must not fail again
        return 141  # 128 + SIGPIPE
    except (HubError, WeightsError, CheckpointError, ConfigError, ValueError, TypeError) as e:
        print(f"minibert {args.command}: error: {e}".replace("\n", " "), file=sys.stderr)
        return 1
    except OSError as e:  # a file that cannot be read or written: its name and why
        print(f"minibert {args.command}: error: " + (f"{e.filename}: {e.strerror}" if e.filename else str(e)),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minibert {args.command}: interrupted", file=sys.stderr)
        return 130


def show_compile_notice(stream) -> None:
    """Print fast/compiling.py's note, when Numba starts compiling minibert's kernels, on `stream` (once, however
    often main() runs in a process)."""
    logger = logging.getLogger("minibert.fast.compiling")
    if any(getattr(handler, "stream", None) is stream for handler in logger.handlers):
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("minibert: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibert", description="BERT in NumPy: equal to transformers, no torch.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, run, texts=False, model_default=DEFAULT_MODEL, json_output=True, int8=False):
        p = commands.add_parser(name, help=help, description=help)
        if model_default is not None:
            p.add_argument("--model", default=model_default,
                           help=f"hub id, miniature name or local directory (default: {model_default})")
        if int8:
            p.add_argument("--int8", dest="quantize", action="store_const", const="int8",
                           help="run the encoder's linear layers in int8 (docs/int8.md)")
        if texts:
            p.add_argument("texts", nargs="*", metavar="TEXT", help="texts; '-' reads one per line from stdin")
            p.add_argument("--input", metavar="FILE", help="read texts from FILE, one per line (FILE and stdin are "
                           "read as UTF-8: a byte that is not UTF-8 is an error naming the file and line)")
        if json_output:
            p.add_argument("--json", action="store_true", help="print results as JSON")
        p.set_defaults(run=run)
        return p

    p = command("fill-mask", "predict the [MASK] tokens of each text", _fill_mask, texts=True, int8=True)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--truncate", action="store_true", help="cut texts longer than the model's window (else an error)")
    for p in (command("embed", "sentence embeddings (sentence-transformers models)", _embed, texts=True,
                      model_default=DEFAULT_EMBEDDER, int8=True),
              command("similarity", "cosine similarity of the first text with each other text", _similarity, texts=True,
                      model_default=DEFAULT_EMBEDDER, int8=True)):
        p.add_argument("--prompt-name", help="put the model's prompt of this name (e.g. query) before every text "
                       "(default: the model's default prompt, if it has one)")
    p = command("classify", "labels and probabilities from a fine-tuned sequence-classification model", _classify,
                texts=True, model_default=None, int8=True)
    p.add_argument("--model", required=True, help="a fine-tuned BertForSequenceClassification (hub id or directory)")
    p.add_argument("--truncate", action="store_true", help="cut texts longer than the model's window (else an error)")
    for name in ("embed", "classify"):
        corpus_options(commands.choices[name])
    p = command("tokenize", "tokens, ids and character offsets of each text", _tokenize, texts=True)
    from .serve import add_arguments as add_serve_arguments

    add_serve_arguments(command("serve", "an HTTP server for embeddings, classification or reranking (the APIs of "
                                "text-embeddings-inference and OpenAI's /v1/embeddings)", _serve,
                                model_default=DEFAULT_EMBEDDER, json_output=False))
    command("info", "config, parameter count per block, files and head weights of a model", _info)
    p = command("check", "compare every tensor with transformers on sample inputs; exit 1 above tolerance", _check)
    p.add_argument("--tolerance", type=float, default=1e-5, help="max abs diff allowed in float32 (default 1e-5)")
    p.add_argument("--tolerance-float64", type=float, default=1e-10,
                   help="max abs diff allowed in float64 (default 1e-10)")
    p = command("trace", "one forward pass step by step: each intermediate tensor's shape and statistics", _trace,
                int8=True)
    p.add_argument("text")
    p.add_argument("--save", metavar="PNG",
                   help="draw every layer's attention maps into PNG, or into PNG/attention.png "
                   "when PNG is a directory (needs matplotlib: the viz extra)")
    p.add_argument("--truncate", action="store_true", help="cut a text longer than the model's window (else an error)")

    for name in ("finetune", "distill"):
        p = commands.add_parser(name,
                                help="fine-tune a sequence classifier (or regressor) from TSV/CSV files"
                                if name == "finetune"
                                else "train a student on a fine-tuned teacher's soft targets and the hard labels",
                                description="The BERT recipe in NumPy: AdamW, linear warm-up and decay, clipping; "
                                "evaluation and a checkpoint (loadable by transformers) after every epoch; rerun the "
                                "same command to resume an interrupted run. Files: a header, then 'text<TAB>label' or "
                                "'text<TAB>text<TAB>label' (.tsv), or the same as CSV.")
        p.add_argument("train", help="training file (.tsv or .csv)")
        p.add_argument("--dev", help="evaluation file, same format")
        if name == "finetune":
            p.add_argument("--model", default=DEFAULT_MODEL, help=f"pre-trained model (default: {DEFAULT_MODEL})")
            p.add_argument("--regression", action="store_true", help="labels are numbers (one output, MSE loss)")
            p.add_argument("--num-labels", type=int, help="classes (default: the largest training label + 1)")
            p.add_argument("--grid", action="store_true",
                           help="run the model card's grid (lr 3e-4, 1e-4, 5e-5, 3e-5 × batch size 8, 16, 32, 64, 128; "
                           "--lr and --batch-size then take comma-separated lists to narrow it), each run in "
                           "OUTPUT/lr{lr}-bs{batch}, and report the best by dev score (needs --dev)")
        else:
            p.add_argument("--teacher", required=True, help="a fine-tuned sequence classifier (directory or hub id)")
            p.add_argument("--student", required=True, help="a pre-trained model, a config.json, or a miniature name "
                           "('bert-mini': randomly initialised, the teacher's vocabulary)")
            p.add_argument("--temperature", type=float, default=2.0, help="default 2.0")
            p.add_argument("--alpha", type=float, default=0.5, help="weight of the hard labels, default 0.5")
        p.add_argument("--output", required=True, help="directory for checkpoints and the result")
        p.add_argument("--lr", help="learning rate, default 5e-5")
        p.add_argument("--batch-size", help="examples per step, default 32")
        for flag, kind, default in (("epochs", int, 4), ("warmup-ratio", float, 0.1),
                                    ("weight-decay", float, 0.01), ("max-grad-norm", float, 1.0),
                                    ("max-length", int, 128),
                                    ("seed", int, 0), ("max-steps", int, None), ("accumulation-steps", int, 1),
                                    ("save-steps", int, None)):
            p.add_argument(f"--{flag}", type=kind, default=default, help=f"default {default}")
        p.add_argument("--no-dropout", dest="dropout", action="store_false",
                       help="train without the config's dropout (it is on by default, as in BERT)")
        p.add_argument("--json", action="store_true", help="print the per-epoch history as JSON")
        p.set_defaults(run=_train)

    for name, help in (("convert",
                        "write model.safetensors (+ config.json, vocab.txt) from a .bin, a directory or a hub id"),
                       ("download", "fetch a model by hub id or miniature name into a self-contained local directory")):
        p = commands.add_parser(name, help=help, description=help + ". The result is verified against the source "
                                "and written under a temporary name first, so an interruption leaves no partial file.")
        if name == "convert":
            p.add_argument("source", help="a pytorch_model.bin or .safetensors file, a model directory, or a hub id")
            p.add_argument("destination", help="the directory to write")
        else:
            p.add_argument("name",
                           help="a hub id ('google/bert_uncased_L-4_H-256_A-4') or miniature name ('bert-mini')")
            p.add_argument("--to", dest="destination", help="the directory to write (default: weights/NAME)")
        p.add_argument("--revision", help="hub revision (branch, tag, commit or refs/pr/N)")
        p.set_defaults(run=_convert if name == "convert" else _download)

    p = commands.add_parser("learn", help="exercises: write BERT's blocks yourself, graded against transformers",
                            description="init writes the reference blocks with their bodies taken out; check runs "
                            "yours, block by block, on tensors frozen from transformers (docs/learn.md).")
    learn = p.add_subparsers(dest="learn_command", required=True, metavar="init|check")
    q = learn.add_parser("init", help="write the exercises into a new (or empty) folder")
    q.add_argument("directory")
    q.add_argument("--track", choices=("forward", "backward"), default="forward",
                   help="the blocks' forward passes (default), or their backward passes")
    q.set_defaults(run=_learn_init)
    q = learn.add_parser("check", help="grade your blocks in order, then the whole model; exit 1 unless all are OK")
    q.add_argument("directory")
    q.add_argument("--block", action="append", help="grade this block only (repeatable), e.g. --block self_attention")
    q.set_defaults(run=_learn_check)

    p = commands.add_parser("bench", help="time minibert against torch eager and ONNX Runtime (when installed)",
                            description="Same process, engines interleaved, minimum of N rounds, ms and ratios per "
                            "shape, and which BLAS kernel ran. Run it with the machine's BLAS pins unset for that "
                            "command only: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE minibert bench")
    p.add_argument("--rounds", type=int, default=20, help="timed rounds per shape (default 20)")
    p.add_argument("--threads", type=int, help="threads for every engine (default: all cores)")
    p.add_argument("--reference", action="store_true", help="also time minibert's readable reference path")
    p.add_argument("--int8", action="store_true", help="time minibert's int8 model against its float32 one and ONNX "
                   "Runtime's int8 (quantize_dynamic, also after its transformer optimizer), and print the memory")
    p.add_argument("--shapes", help="BATCHxLENGTH pairs to time, comma-separated, e.g. 1x5,1x13 (default: the "
                   "four shapes of docs/fast.md's table)")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    p.set_defaults(run=_bench)
    return parser


# ---- input and output -----------------------------------------------------------------------------------

def read_texts(args) -> list[str]:
    """The texts of the command line, then of --input FILE, with '-' replaced by stdin's lines. FILE and stdin
    follow one rule: UTF-8, one text per line, blank lines skipped."""
    texts = list(args.texts)
    if args.input:
        if os.path.isdir(args.input):
            raise UserError(f"cannot read {args.input}: it is a directory")
        try:
            with open(args.input, "rb") as f:
                texts += text_lines(f, args.input)
        except OSError as e:
            raise UserError(f"cannot read {args.input}: {e.strerror}") from None
    if "-" in texts:
        position = texts.index("-")
        texts[position:position + 1] = text_lines(sys.stdin.buffer, "stdin")
    if not texts:
        raise UserError("no text given (pass TEXT, '-' for stdin, or --input FILE)")
    return texts


MAX_LINE_BYTES = 1 << 24  # one text; a stream without line ends (/dev/zero) must not be read into memory whole


def text_lines(f, name: str) -> list[str]:
    """The non-blank lines of a binary stream, decoded as UTF-8 (a bad byte: an error naming `name` and the line)."""
    lines = []
    for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
        if len(line) > MAX_LINE_BYTES:
            raise UserError(f"{name}, line {number}: longer than {MAX_LINE_BYTES} bytes (texts are one per line)")
        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise UserError(f"{name}, line {number}: byte {line[e.start]:#04x} is not UTF-8 (texts "
                            "are read as UTF-8)") from None
        if text.strip():
            lines.append(text)
    return lines


def emit(args, data: Any, lines: list[str]) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=None) if args.json else "\n".join(lines))


def fit_to_window(tokenizer, model_config, texts: list[str], truncate: bool) -> list[str]:
    """The texts, each cut to the model's window when `truncate` (at a token boundary); else an error for
    any longer text."""
    from .tasks import window

    limit = window(model_config, tokenizer)
    fitted = []
    for i, text in enumerate(texts):
        enc = tokenizer(text, return_offsets_mapping=True, verbose=False)  # measured here, so no warning
        if len(enc["input_ids"]) <= limit:
            fitted.append(text)
        elif truncate:
            # up to the last token that fits beside [CLS] [SEP]
            fitted.append(text[:enc["offset_mapping"][limit - 2][1]])
        else:
            raise UserError(f"text {i + 1} has {len(enc['input_ids'])} tokens, more than the model's {limit}; "
                            "shorten it or pass --truncate")
    return fitted


# ---- commands -------------------------------------------------------------------------------------------

def _fill_mask(args) -> int:
    from .models import BertForMaskedLM
    from .tasks import fill_mask
    from .tokenizer import BertTokenizer

    texts = read_texts(args)
    tokenizer = BertTokenizer.from_pretrained(args.model)
    for i, text in enumerate(texts):
        if tokenizer.mask_token not in text:
            raise UserError(f"text {i + 1} has no {tokenizer.mask_token}: {text[:60]!r}")
    model = BertForMaskedLM.from_pretrained(args.model, quantize=args.quantize)
    texts = fit_to_window(tokenizer, model.config, texts, args.truncate)
    for i, text in enumerate(texts):
        if tokenizer.mask_token not in text:
            raise UserError(f"text {i + 1} lost its {tokenizer.mask_token} to --truncate")
    from tqdm import tqdm

    show = len(texts) > 50 and sys.stderr.isatty()
    results = [fill_mask(model, tokenizer, text, top_k=args.top_k)
               for text in tqdm(texts, "fill-mask", disable=not show)]
    lines = []
    for text, masks in zip(texts, results):
        lines.append(text)
        for m, candidates in enumerate(masks):
            lines += [f"  [MASK] {m + 1}: " + ", ".join(f"{c['token']} {c['probability']:.3f}" for c in candidates)]
    emit(args, [{"text": t, "masks": r} for t, r in zip(texts, results)], lines)


def _embedder(args):
    from .tasks import SentenceEncoder

    return SentenceEncoder.from_pretrained(args.model, quantize=args.quantize)


def _embed(args) -> int:
    if args.output:
        return _corpus(args)
    texts = read_texts(args)
    vectors = _embedder(args).encode(texts, show_progress_bar=len(texts) > 50 and sys.stderr.isatty(),
                                     prompt_name=args.prompt_name)
    emit(args, [{"text": t, "embedding": v.tolist()} for t, v in zip(texts, vectors)],
         [f"{t[:40]!r:44} [{', '.join(f'{x:.4f}' for x in v[:4])}, ...] ({len(v)} dims)"
          for t, v in zip(texts, vectors)])


def _similarity(args) -> int:
    from .tasks import SIMILARITY_FUNCTIONS

    texts = read_texts(args)
    if len(texts) < 2:
        raise UserError("give at least two texts: the first is compared with each of the others")
    vectors = _embedder(args).encode(texts, prompt_name=args.prompt_name)
    scores = SIMILARITY_FUNCTIONS["cosine"](vectors[1:], vectors[:1])[:, 0]  # [N - 1, D] x [1, D] -> [N - 1]
    emit(args,
         {"query": texts[0], "similarities": [{"text": t, "cosine": float(s)} for t, s in zip(texts[1:], scores)]},
         [f"{s:+.4f}  {t}" for t, s in zip(texts[1:], scores)])


def _classify(args) -> int:
    import warnings

    from .models import BertForSequenceClassification
    from .tasks import classify
    from .tokenizer import BertTokenizer

    if args.output:
        return _corpus(args)
    texts = read_texts(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained head is refused below, in words for the command line
        model = BertForSequenceClassification.from_pretrained(args.model, quantize=args.quantize)
    if model.untrained_head:
        raise UserError(f"{args.model} has no trained classifier (it is not a fine-tuned sequence classifier), so its "
                        "labels would be random: fine-tune it first (minibert finetune) or pick a classification model")
    tokenizer = BertTokenizer.from_pretrained(args.model)
    texts = fit_to_window(tokenizer, model.config, texts, args.truncate)
    results = classify(model, tokenizer, texts)

    def line(text, r):
        if "label" in r:
            return f"{r['label']} {r['score']:.3f}  {text}"
        if "labels" in r:
            return f"{','.join(r['labels']) or '-'}  {text}"
        return f"{r['score']:.4f}  {text}"

    emit(args, [{"text": t, **r} for t, r in zip(texts, results)], [line(t, r) for t, r in zip(texts, results)])


def corpus_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("a corpus file into shards", "with --output: --input FILE of any size, streamed, written "
                             "as numbered shards (NAME.npy float32 rows, NAME.ids.npy their 0-based line numbers) and "
                             "manifest.json under DIR; rerun the same command to resume (docs/corpus.md)")
    g.add_argument("--output", metavar="DIR", help="write the results of --input's lines as shards under DIR")
    g.add_argument("--shard-size", type=int, help="lines per shard (default 4096)")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default) or Ray Data (the ray extra)")
    g.add_argument("--address", metavar="HOST:PORT",
                   help="--engine ray: join this Ray cluster (default: start a local one)")
    g.add_argument("--workers", type=int, help="worker processes, each loading the model once (default: the cores, "
                   "or the Ray cluster's CPUs, / --threads)")
    g.add_argument("--threads", type=int, help="threads per worker (default 1)")


def _corpus(args) -> int:
    from .corpus import Job, run_local, run_ray

    if args.texts or not args.input:
        raise UserError("--output reads its texts from --input FILE (one per line), not from TEXT arguments or stdin")
    if args.engine == "local" and args.address:
        raise UserError("--address goes with --engine ray")
    options = {} if args.shard_size is None else {"shard_size": args.shard_size}
    job = Job(args.command, args.model, args.input, args.output, prompt_name=getattr(args, "prompt_name", None),
              **options)
    try:
        if args.engine == "ray":
            manifest = run_ray(job, args.address, args.workers, args.threads or 1)
        else:
            workers = max((os.cpu_count() or 1) // (args.threads or 1), 1) if args.workers is None else args.workers
            manifest = run_local(job, workers, args.threads or 1)
    except ImportError as e:
        raise UserError(str(e)) from None
    skipped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in manifest["skipped"].items())
    emit(args, manifest, [f"{manifest['rows']} rows from {manifest['lines']} lines ({skipped} skipped) in "
                          + f"{manifest['shards']} shards under {args.output}"])


def _tokenize(args) -> int:
    from .tokenizer import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(args.model)
    results, lines = [], []
    texts = read_texts(args)
    for number, text in enumerate(texts, 1):
        enc = tokenizer(text, return_offsets_mapping=True, verbose=False)  # shown, not run through a model
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        rows = [{"token": t, "id": i, "start": s, "end": e, "text": text[s:e]}
                for t, i, (s, e) in zip(tokens, enc["input_ids"], enc["offset_mapping"])]
        results.append({"text": text, "tokens": rows})
        lines += [f"text {number} of {len(texts)}: "
                  f"{text[:60]!r}{'...' if len(text) > 60 else ''}"] if len(texts) > 1 else []
        lines += [f"{'token':16} {'id':>6}  span      text"]
        lines += [f"{r['token']:16} {r['id']:>6}  {r['start']:>3}-{r['end']:<4}  {r['text']!r}" for r in rows]
    emit(args, results, lines)


def _serve(args) -> int:
    from .serve import INSTALL, settings_from

    try:
        from .serve.app import serve
    except ImportError as e:
        raise UserError(f"needs {e.name}, from the serve extra: {INSTALL}") from None
    serve(settings_from(args), args.host, args.port)


def _info(args) -> int:
    from .config import BertConfig
    from .loading.hub import model_directory
    from .loading.weights import HEAD_PREFIXES, canonical_state, read_weights, weights_file
    from .tokenizer.files import TOKENIZER_FILES

    directory = model_directory(args.model, need=("config.json",), want=TOKENIZER_FILES, weights=True)
    config = BertConfig.from_json_file(directory / "config.json")
    tensors = canonical_state(read_weights(weights_file(directory)))
    blocks: dict[str, int] = {}
    for name, value in tensors.items():
        parts = name.split(".")
        block = ".".join(parts[:3]) if parts[0] == "encoder" else ".".join(parts[:2]) if parts[0] == "cls" else parts[0]
        blocks[block] = blocks.get(block, 0) + int(value.size)
    heads = sorted(b for b in blocks if (b + ".").startswith(HEAD_PREFIXES))
    data = {"directory": str(directory), "files": sorted(os.listdir(directory)), "config": config.to_dict(),
            "parameters": blocks, "total_parameters": sum(blocks.values()), "heads": heads}
    lines = [f"model      {args.model}", f"directory  {directory}", f"files      {', '.join(data['files'])}",
             f"shape      L={config.num_hidden_layers} H={config.hidden_size} A={config.num_attention_heads} "
             f"I={config.intermediate_size} vocab={config.vocab_size} positions={config.max_position_embeddings}",
             f"heads      {', '.join(heads) or 'none (a bare encoder)'}", "parameters"]
    lines += [f"  {block:28} {count:>12,}" for block, count in blocks.items()]
    lines += [f"  {'total':28} {data['total_parameters']:>12,}"]
    emit(args, data, lines)


def _check(args) -> int:
    from .tools.check import check

    for flag, value in (("--tolerance", args.tolerance), ("--tolerance-float64", args.tolerance_float64)):
        if not 0 <= value < math.inf:  # a negative one fails every check, NaN or inf passes every one
            raise UserError(f"{flag} must be a finite number ≥ 0, got {value}")
    data, lines, passed = check(args.model, args.tolerance, args.tolerance_float64)
    emit(args, data, lines)
    return 0 if passed else 1


def _learn_init(args) -> int:
    from .learn import init

    try:
        todo = init(args.directory, args.track)
    except FileExistsError as e:
        raise UserError(str(e)) from None
    print(f"wrote the {args.track} exercises to {args.directory}: {', '.join(todo)}")
    print(f"write them in that order; grade your work with: minibert learn check {args.directory}")
    return 0


def _learn_check(args) -> int:
    from .learn import check, report

    results = check(args.directory, args.block)
    print(report(results))
    return 0 if all(r.status == "OK" for r in results) else 1


def _trace(args) -> int:
    from .models import BertModel
    from .tokenizer import BertTokenizer
    from .tools.trace import trace

    tokenizer = BertTokenizer.from_pretrained(args.model)
    model = BertModel.from_pretrained(args.model, quantize=args.quantize)
    enc = tokenizer(fit_to_window(tokenizer, model.config, [args.text], args.truncate)[0], return_tensors="np")
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    steps, lines, maps = [], [f"tokens ({len(tokens)}): {' '.join(tokens)}"], []
    for name, tensor in trace(model, enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]):
        stats = {"shape": list(tensor.shape), "mean": float(tensor.mean()), "std": float(tensor.std()),
                 "min": float(tensor.min()), "max": float(tensor.max())}
        steps.append({"name": name, **stats})
        lines.append(f"{name:46} {str(tuple(tensor.shape)):18} mean {stats['mean']:+.4f} std {stats['std']:.4f} "
                     f"min {stats['min']:+.4f} max {stats['max']:+.4f}")
        if name.endswith("attention.probabilities"):
            maps.append(tensor[0])
    if args.save:
        path = os.path.join(args.save, "attention.png") if os.path.isdir(args.save) else args.save
        _draw_attention(maps, tokens, args.text, path)
        lines.append(f"attention maps of {len(maps)} layers x {maps[0].shape[0]} heads written to {path}")
    emit(args, {"text": args.text, "tokens": tokens, "steps": steps}, lines)


def _draw_attention(maps, tokens, text, path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--save needs matplotlib: pip install 'bert-miniatures-numpy[viz]'") from None
    from .tools.plot import attention_figure

    fig = attention_figure(maps, tokens, title=text)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _train(args) -> int:
    from .train.finetune import GRID_BATCH_SIZES, GRID_LEARNING_RATES, Settings, distill, finetune, grid_search

    grid = getattr(args, "grid", False)
    lrs = _numbers("--lr", args.lr, float) if args.lr else (list(GRID_LEARNING_RATES) if grid else [5e-5])
    batch_sizes = (_numbers("--batch-size", args.batch_size, int) if args.batch_size
                   else (list(GRID_BATCH_SIZES) if grid else [32]))
    if not grid and (len(lrs) > 1 or len(batch_sizes) > 1):
        raise UserError("--lr and --batch-size take one value each (lists only with --grid)")
    settings = Settings(lr=lrs[0], batch_size=batch_sizes[0], epochs=args.epochs, warmup_ratio=args.warmup_ratio,
                        weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm, max_length=args.max_length,
                        seed=args.seed, max_steps=args.max_steps, accumulation_steps=args.accumulation_steps,
                        dropout=args.dropout, save_steps=args.save_steps)
    if grid:
        if not args.dev:
            raise UserError("--grid picks the best run by its dev score: give --dev")
        summary = grid_search(args.model, args.train, args.output, args.dev, settings, tuple(lrs), tuple(batch_sizes),
                              num_labels=args.num_labels, regression=args.regression)
        emit(args, summary, [f"lr {r['lr']:g} batch {r['batch_size']}: best epoch {r['best_epoch']['epoch']}, "
                             f"dev {r['best_epoch']['dev']}" for r in summary["runs"]]
             + [f"best: {summary['best']['directory']}"])
        return
    if args.command == "distill":
        settings = dataclasses.replace(settings, temperature=args.temperature, alpha=args.alpha)  # checked anew
        history = distill(args.teacher, args.student, args.train, args.output, args.dev, settings)
    else:
        history = finetune(args.model, args.train, args.output, args.dev, settings, num_labels=args.num_labels,
                           regression=args.regression)
    emit(args, history, [f"epoch {r['epoch']}: loss {r['train_loss']:.4f}, {r['tokens_per_second']:.0f} tokens/s"
                         + (f", dev {r['dev']}" if "dev" in r else "") for r in history] + [f"saved to {args.output}"])


def _numbers(flag: str, text: str, kind) -> list:
    try:
        values = [kind(part) for part in str(text).split(",")]
    except ValueError:
        raise UserError(f"{flag} takes {'numbers' if kind is float else 'whole numbers'}, "
                        f"comma-separated: got {text!r}") from None
    if any(v <= 0 for v in values):
        raise UserError(f"{flag} must be positive: got {text!r}")
    return values


def _convert(args) -> int:
    from .loading.convert import convert

    print(f"wrote {convert(args.source, args.destination, revision=args.revision)}")


def _download(args) -> int:
    from .loading.convert import convert

    destination = args.destination or os.path.join("weights", args.name.split("/")[-1])
    print(f"wrote {convert(args.name, destination, revision=args.revision).parent}")


def _bench(args) -> int:
    import contextlib
    import io

    from .tools.bench import SHAPES, bench, parse_shapes

    try:
        shapes = SHAPES if args.shapes is None else parse_shapes(args.shapes)
    except ValueError as e:
        raise UserError(f"--shapes takes {e}") from None
    table = io.StringIO()
    with contextlib.redirect_stdout(table if args.json else sys.stdout):
        rows = bench(rounds=args.rounds, threads=args.threads, shapes=shapes, include_reference=args.reference,
                     int8=args.int8)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
