"""`livesight models pull ID` and `livesight models list`: model weights in `<data_dir>/models`.

`pull` fetches the files of one runtime (`--files`, default `auto`: the runtime `vlm.files.choose_runtime`
would pick on this machine for what the repository has, decided once its listing arrives), not the other
copies of the model a repository often carries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO, get_args

from livesight.backends.hub import EVERYTHING, FileSelection
from livesight.backends.vlm.catalog import READY
from livesight.backends.vlm.files import choose_runtime, has_onnx_export, onnx_paths, selection
from livesight.backends.weights import Progress, WeightStore, format_bytes
from livesight.cli.common import add_config_argument, command, fail, settings_from
from livesight.core.errors import WeightsUnavailable
from livesight.settings import OnnxVariant


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = sub.add_parser(
        "models",
        help="download and list model weights",
        description="Download Hugging Face model repositories into the data dir (verified, resumable), and list them.",
    )
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = msub.add_parser(
        "pull", help="download a model (resumes an interrupted pull)", description="Download a model's files."
    )
    pull.add_argument(
        "model",
        metavar="ID",
        help="Hugging Face model id, e.g. HuggingFaceTB/SmolVLM-256M-Instruct, or a ready id such as "
        "livesight/smolvlm-256m (its repository)",
    )
    pull.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    pull.add_argument(
        "--files",
        choices=FILES,
        default="auto",
        help="which runtime's files to pull (default: auto, the runtime this machine would run the model with; "
        "all: every file of the repository)",
    )
    pull.add_argument(
        "--onnx-variant",
        choices=get_args(OnnxVariant),
        default="fp32",
        help="the precision of the ONNX graphs onnxruntime loads (default: fp32)",
    )
    lst = msub.add_parser("list", help="what is downloaded, its size and where")
    for p in (pull, lst):
        add_config_argument(p)
    pull.set_defaults(func=_pull)
    lst.set_defaults(func=_list)


FILES = ("auto", "transformers", "onnxruntime", "all")


def weight_store(args: argparse.Namespace) -> WeightStore:
    settings = settings_from(args)
    return WeightStore(settings.data_dir / "models", settings.hf_endpoint, settings.hf_token)


def _pull(args: argparse.Namespace) -> int:
    store = weight_store(args)
    printer = ProgressPrinter(sys.stdout)
    if args.model in READY:  # livesight/smolvlm-256m → the repository it runs from
        print(f"{args.model} is {READY[args.model]}", flush=True)
        args.model = READY[args.model]
    try:
        model = store.pull(args.model, args.revision, printer, _select(args, store.endpoint))
    except WeightsUnavailable as exc:
        printer.end()
        fail(str(exc), 1)
    finally:  # Ctrl-C too: the prompt starts on a line of its own; what arrived is kept for the next pull
        printer.end()
    commit = f", commit {model.commit[:12]}" if model.commit else ""
    print(f"{model.repo}: {format_bytes(model.size)} in {model.path}{commit}")
    return 0


def _select(args: argparse.Namespace, endpoint: str) -> Callable[[tuple[str, ...]], FileSelection]:
    """The files `--files` names, chosen from the listing's paths (the line saying what is pulled comes
    then, as `auto` cannot say it before). An ONNX export asked for and missing is an error, not a pull of
    the configs alone."""
    variant: OnnxVariant = args.onnx_variant

    def chosen(paths: tuple[str, ...]) -> FileSelection:
        if args.files == "all":
            picked = EVERYTHING
        elif args.files == "onnxruntime" and not has_onnx_export(paths, variant):
            raise WeightsUnavailable(
                f"{args.model} has no ONNX export in {variant} ({', '.join(onnx_paths(variant))}); "
                "pull --files transformers, or another --onnx-variant"
            )
        else:
            picked = selection(choose_runtime(args.files, "auto", paths, variant), variant, paths)
        print(f"pulling {args.model} (revision {args.revision}, {picked.name}) from {endpoint}", flush=True)
        return picked

    return chosen


def _list(args: argparse.Namespace) -> int:
    store = weight_store(args)
    found = store.installed()
    if not found:
        print(f"no models in {store.root} yet: `{command('models', 'pull', 'ID')}` downloads one")
        return 0
    width = max(len("MODEL"), *(len(m.repo) for m in found))
    files = max(len("FILES"), *(len(m.selection or "-") for m in found))
    print(f"{'MODEL':{width}}  {'SIZE':>9}  {'STATE':10}  {'FILES':{files}}  PATH")
    for m in found:
        print(f"{m.repo:{width}}  {format_bytes(m.size):>9}  {m.state:10}  {m.selection or '-':{files}}  {m.path}")
    return 0


class ProgressPrinter:
    """On a terminal, one line rewritten in place (file, bytes, MB/s, ETA); otherwise a plain line per
    finished file and per tenth of the pull, so logs stay short."""

    def __init__(self, out: TextIO, *, tty: bool | None = None) -> None:
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._live = False
        self._tenth = -1

    def __call__(self, p: Progress) -> None:
        if self._tty:
            self._out.write("\r\x1b[K" + describe(p))
            self._live = True
            if p.file_finished:
                self._out.write("\n")
                self._live = False
            self._out.flush()
            return
        tenth = p.done * 10 // p.total if p.total else 10
        if p.file_finished or tenth > self._tenth:
            self._tenth = max(self._tenth, tenth)
            print(describe(p), file=self._out, flush=True)

    def end(self) -> None:
        if self._live:
            self._out.write("\n")
            self._out.flush()
            self._live = False


def describe(p: Progress) -> str:
    share = f"{p.done * 100 // p.total}%" if p.total else "100%"
    eta = "" if p.eta_s is None or (p.file_finished and p.done == p.total) else f"  ETA {_duration(p.eta_s)}"
    what = f"{p.file} done" if p.file_finished else p.file
    speed = f"{p.speed_bps / 1e6:.1f} MB/s"
    return f"{what}  {format_bytes(p.done)} / {format_bytes(p.total)} ({share})  {speed}{eta}"


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
