"""`chromaflow batch colorize|deflicker|deepfake INPUTS... --out DIR`: many files on Ray, identical to one process.

The verb's own options are the single-file verb's, registered by that verb's own ``register`` (so a flag added to
`chromaflow colorize` is a batch flag too); the batch adds where work runs (``--ray``, ``--workers``,
``--cpus-per-worker``, ``--gpus-per-worker``), how long videos are split (``--segment-frames``) and ``--resume``.
See :mod:`chromaflow.plugins.batch` for how it works.

Exit codes are the CLI's (plugins/cli/main.py), plus one meaning for a batch: 3 when some items failed (each failed
item's error is in the summary and DIR/report.json); when every item failed for the same reason, that reason's
code. 2 also when Ray is not installed (``pip install chromaflow[batch]``).
"""

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from chromaflow.core.errors import UsageError
from chromaflow.core.write_plan import WritePlan
from chromaflow.plugins.batch.cluster import LOCAL, require_ray
from chromaflow.plugins.batch.inputs import expand_inputs
from chromaflow.plugins.batch.report import ItemReport
from chromaflow.plugins.batch.runner import (
    VERBS,
    BatchSettings,
    Item,
    item_args,
    item_key,
    output_name,
    run_batch,
)
from chromaflow.plugins.cli.video_common import frames_at_least

# the single-file flags that name one output file; a batch names its outputs itself
_NOT_IN_BATCH = {"--scores", "--vtt"}


class _VerbOptions(argparse.ArgumentParser):
    """A verb's parser without its IN/OUT positionals and single-output flags: the verb registers itself into
    it, and the batch adds INPUTS and --out."""

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        if names and (not str(names[0]).startswith("-") or _NOT_IN_BATCH & set(map(str, names))):
            return argparse.Action(option_strings=[], dest=str(names[0]).lstrip("-"))  # left out
        return super().add_argument(*names, **kwargs)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number >= 0")
    return value


def _add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    argparse.ArgumentParser.add_argument(
        parser,
        "inputs",
        nargs="+",
        metavar="INPUTS",
        help="video files, folders, globs (quoted), or manifests (.jsonl / .csv: input, output, options)",
    )
    group = parser.add_argument_group("batch")
    group.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    group.add_argument(
        "--ray",
        default=LOCAL,
        metavar="ADDRESS",
        help="where to run: local (an embedded Ray, the default), auto (the cluster this machine belongs to), "
        "HOST:PORT or ray://HOST:PORT",
    )
    group.add_argument(
        "--workers", type=frames_at_least(0), default=0, metavar="N", help="workers (default: as many as fit)"
    )
    group.add_argument(
        "--cpus-per-worker",
        type=_positive_float,
        default=1.0,
        metavar="N",
        help="CPUs per worker (default 1)",
    )
    group.add_argument(
        "--gpus-per-worker",
        type=_positive_float,
        default=0.0,
        metavar="F",
        help="GPUs per worker, fractions allowed (0.5: two workers share a GPU; default 0)",
    )
    group.add_argument(
        "--segment-frames",
        type=frames_at_least(1),
        default=2000,
        metavar="N",
        help="longest piece of a video one worker takes (cut at scene cuts where possible; default 2000)",
    )
    group.add_argument(
        "--format",
        dest="out_format",
        metavar="EXT",
        help="container of the outputs, e.g. mkv (default: each input's)",
    )
    group.add_argument(
        "--resume", action="store_true", help="skip what DIR/.chromaflow-batch.jsonl records as finished"
    )


def _items(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Item]:
    verb = args.batch_verb
    out_dir = Path(args.out).expanduser()
    plan = WritePlan()
    items: list[Item] = []
    names: dict[str, str] = {}
    for entry in expand_inputs(list(args.inputs)):
        name = output_name(entry, verb, args.out_format)
        if name in names:
            raise UsageError(
                f"{entry.input} and {names[name]} would both write {name}; name the outputs in a manifest"
            )
        names[name] = entry.input
        output = out_dir / name
        report = ItemReport(entry.input, str(output))
        try:
            own = item_args(parser, args, entry.options)
            _check_options(verb, own)
        except UsageError as err:
            report.status, report.error, report.code = "failed", str(err), err.exit_code
            own = args
        if Path(entry.input).exists():
            plan.read(entry.input, f"the input {entry.input}")
        plan.write(output, f"the output of {entry.input}", make_folder=True)
        items.append(Item(entry, own, item_key(verb, entry, name, own), output, report))
    plan.check()
    plan.remove_stale_partials()
    return items


def _check_options(verb: str, args: argparse.Namespace) -> None:
    """Build the verb's options once before any work, so a bad value is refused at once (exit 2)."""
    if verb == "colorize":
        from chromaflow.plugins.cli import colorize

        colorize.options_of(args)
    elif verb == "deflicker":
        from chromaflow.plugins.cli import deflicker

        deflicker.options_of(args)
    else:
        from chromaflow.plugins.cli import deepfake

        run_args = copy.copy(args)
        run_args.output = None
        deepfake.options_of(run_args)


def run(args: argparse.Namespace) -> int:
    require_ray()
    parser: argparse.ArgumentParser = args.batch_parser
    args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("func", "batch_parser")})
    _check_options(args.batch_verb, args)
    settings = BatchSettings(
        verb=args.batch_verb,
        out_dir=Path(args.out).expanduser(),
        address=args.ray,
        workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        gpus_per_worker=args.gpus_per_worker,
        segment_frames=args.segment_frames,
        resume=args.resume,
        progress="none" if args.quiet else args.progress,
        out_format=args.out_format,
        quiet=args.quiet,
    )
    items = _items(args, parser)
    code, report = run_batch(settings, items)
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    sys.stderr.flush()
    return code


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "batch",
        help="colorize, deflicker or score many files on Ray (local or a cluster); resumable",
        description="Run a verb over many inputs on Ray: an embedded local Ray by default, or a cluster (--ray). "
        "Long videos are split at scene cuts and the pieces run in parallel; the output is identical to "
        "`chromaflow VERB` on each file. Outputs, DIR/report.json and (deepfake) DIR/scores.csv go to --out; "
        "DIR/.chromaflow-batch.jsonl records finished work for --resume. Needs pip install chromaflow[batch].",
    )
    verbs = parser.add_subparsers(dest="batch_verb", metavar="VERB", parser_class=_VerbOptions)
    verbs.required = True
    import importlib

    for name in VERBS:
        importlib.import_module(f"chromaflow.plugins.cli.{name}").register(verbs)
        verb_parser = verbs.choices[name]
        verb_parser.description = f"`chromaflow {name}` over many inputs (see chromaflow batch -h). " + (
            verb_parser.description or ""
        )
        _add_batch_arguments(verb_parser)
        verb_parser.set_defaults(func=run, batch_parser=verb_parser)
