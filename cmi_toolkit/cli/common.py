"""What the CLI's commands share: data and model options, the one-line argument parser, lists split from
``a,b,c`` and the check that an ``--output`` never names an input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import defaults as D


@dataclass
class DataArgs:
    task: str = field(default="sst2", metadata={"help": "GLUE task (sst2, mrpc, rte, wnli, cola, qqp, qnli, mnli, stsb)"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})
    max_train_samples: int | None = field(default=None, metadata={"help": "seeded subset of the training split (all: every row)"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "seeded subset of the validation split"})
    max_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    data_seed: int = field(default=0, metadata={"help": "seed of the subsets"})


@dataclass
class ModelArgs:
    model: str = field(default=D.MODEL, metadata={"help": "alias minilm-l6 (offline), a local folder or a hub id"})
    pooling: str = field(default=D.POOLING, metadata={"help": "h_x: auto, pooler, cls or mean"})
    temperature: float = field(default=D.TEMPERATURE, metadata={"help": "T of f_x = softmax(h_x / T)"})
    batch_size: int = field(default=64, metadata={"help": "evaluation batch size"})


class _OneLineParser:
    """Mixin: argparse's usage dump on a bad value becomes one line (``--seed: invalid int value: '1.5'``)."""

    def error(self, message: str):
        raise ValueError(f"{message} (the command's --help lists its options)")


def _parser(types):
    """transformers' HfArgumentParser over ``types`` (a dataclass or a tuple of them) whose errors are one line
    and which reads a negative number after an option as its value (``--learning_rate -1e-5``)."""
    from transformers import HfArgumentParser

    cls = type("Parser", (_OneLineParser, HfArgumentParser), {})
    parser = cls(types)
    parser.parse_args_into_dataclasses = _negative_values(parser.parse_args_into_dataclasses)
    return parser


def _negative_values(parse):
    """Wrap a parse function so that ``--opt -1e-5`` (argparse takes ``-1e-5`` for an option) is ``--opt=-1e-5``."""
    def wrapped(args=None, *a, **kw):
        out: list[str] = []
        for item in list(args or []):
            if out and out[-1].startswith("--") and "=" not in out[-1] and item.startswith("-") and _is_number(item):
                out[-1] = f"{out[-1]}={item}"
            else:
                out.append(item)
        return parse(out, *a, **kw)

    return wrapped


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load(data: DataArgs, model_args: ModelArgs):
    from ..data.loading import load_glue, tokenize_glue
    from ..data.models import load_classifier, load_tokenizer
    from ..data.tasks import get_task

    task = get_task(data.task)
    ds = load_glue(task, source=data.glue_dir, max_train_samples=data.max_train_samples,
                   max_eval_samples=data.max_eval_samples, seed=data.data_seed)
    tokenizer = load_tokenizer(model_args.model)
    model = load_classifier(model_args.model, num_labels=task.num_labels, trained_head=True)
    return task, ds, tokenizer, model, tokenize_glue(ds, tokenizer, task, max_length=data.max_length)


def _stores(results_dir: str | None) -> list:
    from ..runs.store import ResultStore

    roots = [results_dir] if results_dir else [D.ADHOC_RESULTS_DIR, D.SUITE_RESULTS_DIR, D.LAB_RESULTS_DIR]
    return [ResultStore(r) for r in roots]


def check_output(output: str | None, inputs: list[str | None], option: str = "--output") -> None:
    """Refuse, before any work, an output that is a folder, or that is (or links to) an input file or lies inside an
    input folder: the output is written atomically and would replace what it read."""
    if not output:
        return
    out = Path(output).expanduser()
    if out.is_dir():
        raise ValueError(f"{option} {output}: is a folder; name a file to write")
    target = out.resolve()
    for given in inputs:
        if not given:
            continue
        src = Path(given).expanduser()
        if not src.exists():
            continue
        src = src.resolve()
        if target == src or (src.is_dir() and src in target.parents):
            raise ValueError(f"{option} {output}: would replace the input {given}; name another file (inputs are "
                             "never overwritten)")


def _split(text: str | None, cast=str, name: str = "option"):
    """``"a,b"`` -> [cast(a), cast(b)]; None stays None; an empty list or a bad item is a one-line error."""
    if text is None:
        return None
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise ValueError(f"{name} is empty; give a comma-separated list such as 0,1,2")
    try:
        return [cast(x) for x in items]
    except ValueError:
        raise ValueError(f"{name} {text!r}: every item must be {'an integer' if cast is int else 'a name'}, "
                         "comma-separated (e.g. 0,1,2)") from None
