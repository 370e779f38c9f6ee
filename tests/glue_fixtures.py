"""Writers of small GLUE files in each task's original distribution layout (for tests)."""

from __future__ import annotations

from pathlib import Path

# hub schema of nyu-mll/glue, written out independently of cmi_toolkit.data.tasks
HUB_SCHEMA = {
    "cola": ({"sentence": "string", "label": ["unacceptable", "acceptable"], "idx": "int32"}, ["train", "validation"]),
    "sst2": ({"sentence": "string", "label": ["negative", "positive"], "idx": "int32"}, ["train", "validation"]),
    "mrpc": ({"sentence1": "string", "sentence2": "string", "label": ["not_equivalent", "equivalent"], "idx": "int32"},
             ["train", "validation"]),
    "qqp": ({"question1": "string", "question2": "string", "label": ["not_duplicate", "duplicate"], "idx": "int32"},
            ["train", "validation"]),
    "mnli": ({"premise": "string", "hypothesis": "string", "label": ["entailment", "neutral", "contradiction"],
              "idx": "int32"}, ["train", "validation_matched", "validation_mismatched"]),
    "qnli": ({"question": "string", "sentence": "string", "label": ["entailment", "not_entailment"], "idx": "int32"},
             ["train", "validation"]),
    "rte": ({"sentence1": "string", "sentence2": "string", "label": ["entailment", "not_entailment"], "idx": "int32"},
            ["train", "validation"]),
    "wnli": ({"sentence1": "string", "sentence2": "string", "label": ["not_entailment", "entailment"], "idx": "int32"},
             ["train", "validation"]),
    "stsb": ({"sentence1": "string", "sentence2": "string", "label": "float32", "idx": "int32"}, ["train", "validation"]),
}


def _rows(task: str, n: int, split: str) -> tuple[str | None, list[str], list]:
    """Header line (or None), data lines, and the hub labels they encode."""
    lines, labels = [], []
    for i in range(n):
        a, b = f"{split} first text {i} ' quoted \" mark", f"{split} second text {i}"
        if task == "cola":
            y = i % 2
            lines.append(f"gj04\t{y}\t{'' if y else '*'}\t{a}")
        elif task == "sst2":
            y = i % 2
            lines.append(f"{a} \t{y}")
        elif task == "mrpc":
            y = i % 2
            lines.append(f"{y}\t{1000 + i}\t{2000 + i}\t{a}\t{b}")
        elif task == "qqp":
            y = i % 2
            lines.append(f"{i}\t{2 * i}\t{2 * i + 1}\t{a}\t{b}\t{y}")
        elif task == "mnli":
            y = i % 3
            name = ["entailment", "neutral", "contradiction"][y]
            extra = "\tx\tx\tx\tx" if split != "train" else ""
            lines.append(f"{i}\t{i}\t{i}e\tfiction\t(a)\t(b)\t(ROOT a)\t(ROOT b)\t{a}\t{b}\t{name}{extra}\t{name}")
        elif task in ("qnli", "rte"):
            y = i % 2
            lines.append(f"{i}\t{a}\t{b}\t{['entailment', 'not_entailment'][y]}")
        elif task == "wnli":
            y = i % 2
            lines.append(f"{i}\t{a}\t{b}\t{y}")
        elif task == "stsb":
            y = round(i * 0.5, 3)
            lines.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\t{y}")
        labels.append(y)
    headers = {
        "cola": None,
        "sst2": "sentence\tlabel",
        "mrpc": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        "qqp": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
        "mnli": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse"
                "\tsentence2_parse\tsentence1\tsentence2\tlabel1" + ("\tlabel2\tlabel3\tlabel4\tlabel5" if split != "train" else "")
                + "\tgold_label",
        "qnli": "index\tquestion\tsentence\tlabel",
        "rte": "index\tsentence1\tsentence2\tlabel",
        "wnli": "index\tsentence1\tsentence2\tlabel",
        "stsb": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
    }
    return headers[task], lines, labels


FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "mnli": "MNLI", "qnli": "QNLI",
           "rte": "RTE", "wnli": "WNLI", "stsb": "STS-B"}
FILES = {"train": "train.tsv", "validation": "dev.tsv", "validation_matched": "dev_matched.tsv",
         "validation_mismatched": "dev_mismatched.tsv"}


def write_task(root: Path, task: str, n: int = 6) -> dict[str, list]:
    """Write every split of ``task`` under ``root/<TASK>/``; return the labels per split."""
    folder = root / FOLDERS[task]
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split in HUB_SCHEMA[task][1]:
        header, lines, labels = _rows(task, n if split == "train" else n // 2 + 1, split)
        text = "\n".join(([header] if header else []) + lines) + "\n"
        (folder / FILES[split]).write_text(text, encoding="utf-8")
        out[split] = labels
    return out
