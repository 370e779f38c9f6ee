"""Chain-of-thought distillation that maximises mutual information (Chen et al., ACL Findings 2024).

Distilling Step-by-Step (DSS, Hsieh et al. 2023) trains one seq2seq student on two tasks from the
same input x: ``"predict: x" -> label`` and ``"explain: x" -> rationale`` (an LLM's rationale).
Chen et al. add a term that couples the two tasks:

    loss = alpha * CE_label + (1 - alpha) * CE_rationale + beta * L_MI

One concept per module:

* :mod:`~cmi_toolkit.cot.data`: CommonsenseQA and SVAMP with PaLM rationales.
* :mod:`~cmi_toolkit.cot.arithmetic`: the safe evaluator of SVAMP expressions (never ``eval``).
* :mod:`~cmi_toolkit.cot.mi`: L_MI, the released heuristic and the variational InfoNCE bound.
* :mod:`~cmi_toolkit.cot.trainer`: the student, tokenisation, :class:`CoTTrainer`.
* :mod:`~cmi_toolkit.cot.evaluation`: choice-ranked accuracy, exact match, reference lines.
* :mod:`~cmi_toolkit.cot.runs`: one run, a preset's seeds and variants, the table.
* :mod:`~cmi_toolkit.cot.student`, :mod:`~cmi_toolkit.cot.student_run`: the CPU student (a shared encoder
  with a label head and a rationale decoder) and its run.
* :mod:`~cmi_toolkit.cot.suite`: the ``cot_verdict`` suite, its verdicts and report.

Layer: above evidence (its suites are answered by :mod:`cmi_toolkit.evidence`); it may import the base
modules, data, the method, runs and evidence, never the course, the README generator or the CLI.
"""

from .arithmetic import answers_match, evaluate_expression
from .data import COT_DIR_ENV, COUNTS, CoTFormatError, load_cot, rationale_of, teacher_answer
from .evaluation import CHANCE, choice_accuracy, choice_predictions, exact_match, teacher_accuracy
from .mi import MI_MODES, InfoNCECritic, mi_loss_released, pooled_states
from .runs import (
    VARIANTS,
    cot_fingerprint,
    cot_table,
    headline,
    preset_records,
    run_cot,
    run_cot_suite,
    variant_intervals,
    variant_of,
)
from .trainer import MODES, PRESETS, CoTCollator, CoTConfig, CoTTrainer, build_seq2seq, generate, tokenize_cot

__all__ = [
    "COT_DIR_ENV", "COUNTS", "CoTFormatError", "load_cot", "rationale_of", "teacher_answer",
    "evaluate_expression", "answers_match",
    "MI_MODES", "mi_loss_released", "InfoNCECritic", "pooled_states",
    "MODES", "PRESETS", "CoTConfig", "CoTTrainer", "CoTCollator", "build_seq2seq", "tokenize_cot", "generate",
    "CHANCE", "choice_predictions", "choice_accuracy", "exact_match", "teacher_accuracy",
    "VARIANTS", "variant_of", "run_cot", "run_cot_suite", "cot_table", "cot_fingerprint", "preset_records",
    "headline", "variant_intervals",
]
