"""The ``cmi-toolkit`` command line.

``cmi-toolkit COMMAND [--option value ...]``; each command's options are a dataclass parsed by
transformers' ``HfArgumentParser`` (``cmi-toolkit COMMAND --help`` lists them).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["main", "COMMANDS"]


@dataclass
class DataArgs:
    task: str = field(default="sst2", metadata={"help": "GLUE task (sst2, mrpc, rte, wnli, cola, qqp, qnli, mnli, stsb)"})
    glue_dir: str | None = field(default=None, metadata={"help": "GLUE folder; default $CMI_TOOLKIT_GLUE_DIR, else the hub"})
    max_train_samples: int | None = field(default=None, metadata={"help": "seeded subset of the training split"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "seeded subset of the validation split"})
    max_length: int = field(default=128, metadata={"help": "truncate inputs to this many tokens"})
    data_seed: int = field(default=0, metadata={"help": "seed of the subsets"})


@dataclass
class ModelArgs:
    model: str = field(default="minilm-l6", metadata={"help": "alias minilm-l6 (offline), a local folder or a hub id"})
    pooling: str = field(default="auto", metadata={"help": "h_x: auto, pooler, cls or mean"})
    temperature: float = field(default=1.0, metadata={"help": "T of f_x = softmax(h_x / T)"})
    batch_size: int = field(default=64, metadata={"help": "evaluation batch size"})


def _load(data: DataArgs, model_args: ModelArgs):
    from .data import load_glue, tokenize_glue
    from .models import load_classifier, load_tokenizer
    from .tasks import get_task

    task = get_task(data.task)
    ds = load_glue(task, source=data.glue_dir, max_train_samples=data.max_train_samples,
                   max_eval_samples=data.max_eval_samples, seed=data.data_seed)
    tokenizer = load_tokenizer(model_args.model)
    model = load_classifier(model_args.model, num_labels=task.num_labels)
    return task, ds, tokenizer, model, tokenize_glue(ds, tokenizer, task, max_length=data.max_length)


def cmd_demo(argv: list[str]) -> int:
    """Load a real GLUE task and the offline model; one evaluation pass with CMI measures."""
    from transformers import HfArgumentParser

    from .information import measure
    from .models import count_parameters

    data, model_args = HfArgumentParser((DataArgs, ModelArgs)).parse_args_into_dataclasses(argv)
    t0 = time.perf_counter()
    task, ds, tokenizer, model, tok = _load(data, model_args)
    print(f"task {task.name}: " + ", ".join(f"{k} {len(v):,} rows" for k, v in ds.items()))
    print(f"model {model_args.model}: {type(model).__name__}, {count_parameters(model) / 1e6:.1f}M parameters, "
          f"{model.config.num_hidden_layers} layers")
    split = task.validation_splits[0]
    lengths = tok[split]["length"]
    print(f"{split}: mean {sum(lengths) / len(lengths):.1f} tokens per example (max {max(lengths)}), "
          "batched with dynamic padding in length order")
    report = measure(model, tok[split], tokenizer, task=task, batch_size=model_args.batch_size,
                     pooling=model_args.pooling, temperature=model_args.temperature)
    print(f"untrained (fresh head) on {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in report.metrics.items()))
    print(f"  feature-space CMI {report.feature.cmi:.4f} nats, separation {report.feature.separation:.4f}, "
          f"NCMI {report.feature.ncmi:.4f}")
    print(f"  output-space  CMI {report.output.cmi:.4f} nats, separation {report.output.separation:.4f}, "
          f"NCMI {report.output.ncmi:.4f}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


@dataclass
class MeasureArgs:
    split: str | None = field(default=None, metadata={"help": "split to measure (default: the first validation split)"})
    output: str | None = field(default=None, metadata={"help": "write the summary as JSON here"})


def cmd_measure(argv: list[str]) -> int:
    """Accuracy, CMI, separation and NCMI (both spaces, per class) of a model on a GLUE split."""
    from transformers import HfArgumentParser

    from .information import measure

    data, model_args, margs = HfArgumentParser((DataArgs, ModelArgs, MeasureArgs)).parse_args_into_dataclasses(argv)
    task, ds, tokenizer, model, tok = _load(data, model_args)
    split = margs.split or task.validation_splits[0]
    if split not in tok:
        raise SystemExit(f"error: no split {split!r}; {task.name} has {list(tok)}")
    report = measure(model, tok[split], tokenizer, task=task, batch_size=model_args.batch_size,
                     pooling=model_args.pooling, temperature=model_args.temperature, keep_outputs=False)
    summary = {"task": task.hub_config, "split": split, "model": model_args.model, **report.summary(),
               "feature_per_class_cmi": report.feature.per_class_cmi,
               "output_per_class_cmi": report.output.per_class_cmi}
    text = json.dumps(summary, indent=2)
    print(text)
    if margs.output:
        from .results import atomic_write_text

        atomic_write_text(margs.output, text + "\n")
    return 0


def cmd_tasks(argv: list[str]) -> int:
    """List the GLUE tasks the kit knows."""
    from .tasks import TASKS

    for t in TASKS.values():
        labels = ", ".join(t.label_names) if t.label_names else "regression"
        print(f"{t.hub_config:6s} {t.name:6s} columns={list(t.text_columns)} labels=[{labels}] metric={','.join(t.metric_names)}")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "demo": cmd_demo,
    "measure": cmd_measure,
    "tasks": cmd_tasks,
}


def _usage() -> str:
    lines = ["usage: cmi-toolkit COMMAND [options]   (cmi-toolkit COMMAND --help for its options)", "", "commands:"]
    for name, fn in COMMANDS.items():
        lines.append(f"  {name:10s} {(fn.__doc__ or '').strip().splitlines()[0]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    from .hub import HubUnavailableError

    try:
        return COMMANDS[name](rest)
    except HubUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
