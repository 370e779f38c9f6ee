"""Safe arithmetic for SVAMP answers, and answer matching (never ``eval``)."""

from __future__ import annotations

import ast
import math
import re

__all__ = ["evaluate_expression", "answers_match"]

_MAX_LEN = 256
_MAX_LITERAL = 1e15
_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}


def _normalise_expression(text: str) -> str:
    t = text.strip()
    t = re.sub(r"(\d)\s*\.\s*(\d)", r"\1.\2", t)  # WordPiece decodes "84.0" as "84. 0"
    return t


def evaluate_expression(text: str) -> float | None:
    """Value of an arithmetic expression of numbers, + - * /, unary minus and parentheses; else None.

    Parsed with :mod:`ast` and walked node by node; names, calls, attributes, powers, comparisons,
    literals above 1e15, strings over 256 characters, division by zero and non-finite results are
    refused (None). Nothing is ever executed.
    """
    if not isinstance(text, str) or len(text) > _MAX_LEN:
        return None
    try:
        tree = ast.parse(_normalise_expression(text), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if abs(node.value) > _MAX_LITERAL:
                raise ValueError("literal too large")
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        raise ValueError(f"refused: {type(node).__name__}")

    try:
        value = walk(tree)
    except (ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def answers_match(dataset: str, predicted: str, reference: str) -> bool:
    """CQA: exact match after trimming and lower-casing; SVAMP: numeric equality of the expressions."""
    if dataset == "svamp":
        a, b = evaluate_expression(predicted), evaluate_expression(reference)
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return predicted.strip().lower() == reference.strip().lower()
