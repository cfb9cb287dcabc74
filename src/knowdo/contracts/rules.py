"""Cross-field rules of a contract: compiled from their text with `ast`, evaluated by a tiny walker.

A rule is a small comparison expression (`period_end >= period_start`, `a <= b and c > 0`): the
compiler accepts only columns, constants, comparisons, `and` and `or`, and turns the text into
nested tuples; the evaluator walks those tuples over a typed record. Nothing is executed.
"""

from __future__ import annotations

import ast
from decimal import Decimal
from typing import Any

from knowdo.contracts.model import Column, ContractError, Rule

_RULE_KEYS = {"check", "message", "when"}

_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def _compile_expression(text: Any, columns: dict[str, Column], where: str) -> tuple:
    """A rule expression as a small tree of tuples; only comparisons, and, or."""
    if not isinstance(text, str) or not text.strip():
        raise ContractError(f"{where}: expected an expression such as 'a <= b'")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ContractError(f"{where}: {text!r} is not a valid expression") from None

    def operand(node: ast.AST) -> tuple:
        if isinstance(node, ast.Name):
            if node.id not in columns:
                raise ContractError(f"{where}: unknown column {node.id!r} in {text!r}")
            return ("column", node.id, columns[node.id].kind)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = operand(node.operand)
            if inner[0] == "constant" and inner[2] == "number":
                return ("constant", -inner[1], "number")
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            if isinstance(node.value, int | float):
                return ("constant", Decimal(str(node.value)), "number")
            if isinstance(node.value, str):
                return ("constant", node.value, "text")
        raise ContractError(
            f"{where}: only column names, numbers and 'text' may be compared in {text!r}"
        )

    def walk(node: ast.AST) -> tuple:
        if isinstance(node, ast.BoolOp):
            return ("and" if isinstance(node.op, ast.And) else "or", [walk(v) for v in node.values])
        if isinstance(node, ast.Compare):
            operands = [operand(node.left)] + [operand(c) for c in node.comparators]
            ops = []
            for op, left, right in zip(node.ops, operands, operands[1:]):
                if type(op) not in _OPS:
                    raise ContractError(
                        f"{where}: only <, <=, >, >=, ==, != may be used in {text!r}"
                    )
                if left[2] != right[2]:
                    raise ContractError(
                        f"{where}: cannot compare a {left[2]} with a {right[2]} in {text!r}"
                    )
                ops.append(_OPS[type(op)])
            return ("compare", operands, ops)
        raise ContractError(f"{where}: {text!r} must be comparisons joined by 'and' / 'or'")

    return walk(tree)


def _expression_columns(node: tuple) -> list[str]:
    if node[0] in ("and", "or"):
        return [c for child in node[1] for c in _expression_columns(child)]
    return [o[1] for o in node[1] if o[0] == "column"]


def _rule(entry: Any, index: int, columns: dict[str, Column], fname: str) -> Rule:
    where = f"{fname}: rules[{index}]"
    if not isinstance(entry, dict):
        raise ContractError(f"{where}: expected a mapping with check and message")
    if unknown := sorted(set(entry) - _RULE_KEYS):
        raise ContractError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: check, message, when)"
        )
    message = entry.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ContractError(f"{where}: missing required field 'message'")
    check = _compile_expression(entry.get("check"), columns, f"{where}.check")
    when = None
    if "when" in entry:
        when = _compile_expression(entry["when"], columns, f"{where}.when")
    return Rule(
        check=entry["check"].strip(),
        message=" ".join(message.split()),
        when=entry.get("when"),
        columns=tuple(dict.fromkeys(_expression_columns(check))),
        _check=check,
        _when=when,
    )


def _compare(op: str, left: Any, right: Any) -> bool:
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "==": left == right,
        "!=": left != right,
    }[op]


def _evaluate(node: tuple, values: dict[str, Any]) -> bool | None:
    """True, False, or None when a value it needs is missing (suppressed or empty): a comparison
    with a missing value is not checked, like SQL's unknown."""
    kind = node[0]
    if kind == "compare":
        results = []
        for op, left, right in zip(node[2], node[1], node[1][1:]):
            a = values.get(left[1]) if left[0] == "column" else left[1]
            b = values.get(right[1]) if right[0] == "column" else right[1]
            results.append(None if a is None or b is None else _compare(op, a, b))
        return _and(results)
    results = [_evaluate(child, values) for child in node[1]]
    if kind == "and":
        return _and(results)
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _and(results: list[bool | None]) -> bool | None:
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True
