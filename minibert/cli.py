"""The `minibert` command."""

from __future__ import annotations

import argparse
import sys

from .errors import ConfigError, HubError, WeightsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minibert", description="BERT in NumPy: equal to transformers, no torch.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert", help="write model.safetensors (+ config.json, vocab.txt) from a .bin, a directory or a hub id",
        description="Convert a checkpoint to a self-contained safetensors model directory, without torch. "
                    "The result is verified against the source before it replaces anything.")
    convert.add_argument("source", help="a pytorch_model.bin or .safetensors file, a model directory, or a hub id")
    convert.add_argument("destination", help="the directory to write")
    convert.add_argument("--revision", help="hub revision (branch, tag, commit or refs/pr/N)")
    convert.set_defaults(run=_convert)

    download = commands.add_parser(
        "download", help="fetch a model by hub id or miniature name into a self-contained local directory",
        description="Download through the Hugging Face cache and write model.safetensors + config.json + "
                    "vocab.txt, for offline use. Names: 'bert-mini', 'bert-tiny', ... (minibert.miniatures).")
    download.add_argument("name", help="a hub id ('google/bert_uncased_L-4_H-256_A-4') or miniature name ('bert-mini')")
    download.add_argument("--to", dest="destination", help="the directory to write (default: weights/NAME)")
    download.add_argument("--revision", help="hub revision (branch, tag, commit or refs/pr/N)")
    download.set_defaults(run=_download)

    bench = commands.add_parser(
        "bench", help="time minibert against torch eager and ONNX Runtime (when installed) on BERT-Mini shapes",
        description="Same process, engines interleaved, minimum of N rounds, ms and ratios per shape, and which "
                    "BLAS kernel ran. Run it with the machine's BLAS pins unset for that command only: "
                    "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE minibert bench")
    bench.add_argument("--rounds", type=int, default=20, help="timed rounds per shape (default 20)")
    bench.add_argument("--threads", type=int, help="threads for every engine (default: all cores)")
    bench.add_argument("--reference", action="store_true", help="also time minibert's readable reference path")
    bench.set_defaults(run=_bench)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (HubError, WeightsError, ConfigError, FileNotFoundError, ValueError) as e:
        print(f"minibert {args.command}: error: {e}", file=sys.stderr)
        return 1


def _convert(args) -> int:
    from .convert import convert

    target = convert(args.source, args.destination, revision=args.revision)
    print(f"wrote {target}")
    return 0


def _download(args) -> int:
    from .convert import convert

    destination = args.destination or f"weights/{args.name.split('/')[-1]}"
    target = convert(args.name, destination, revision=args.revision)
    print(f"wrote {target.parent}")
    return 0


def _bench(args) -> int:
    from .bench import bench

    bench(rounds=args.rounds, threads=args.threads, include_reference=args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
