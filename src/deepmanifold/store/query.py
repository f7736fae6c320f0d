"""A small, safe filter language for the store catalog.

``where`` strings look like Python boolean expressions over catalog columns::

    arch == "wrn" and final_test_acc > 0.9
    arch_options.width >= 64 or optimizer in ["adam", "adamw"]
    not (status == "diverged") and 0.01 <= lr < 0.5
    `arch_options.width` > 64            # backticks quote any column name
    momentum == None                     # runs without the field (missing value)

The string is parsed with :mod:`ast` and only these are accepted:

* comparisons ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``
  (chained comparisons such as ``0.1 < lr <= 1`` too);
* ``and``, ``or``, ``not`` and parentheses;
* column names: plain (``arch``), dotted (``arch_options.width``, resolved as one
  column name, never as attribute access) or in backticks (`` `data.name` ``,
  any characters except a backtick);
* literals: strings, numbers (with a sign), ``True``, ``False``, ``None`` and
  lists/tuples/sets of those;
* a bare column name as a condition only if the column holds booleans.

Anything else (function calls, subscripts, attributes that are not a column,
arithmetic, lambdas, comprehensions, dunder names, ...) raises :class:`ValueError`
naming what is not allowed; an unknown column raises :class:`ValueError` listing
the columns; so does a query longer than 10,000 characters or nesting and/or/not
and list brackets more than 100 levels deep (checking and evaluating recurse
once per level). Errors echo the query, and the values they name, cut to 120
characters around an ellipsis. Nothing is ever evaluated by Python's ``eval``.

Semantics, row by row: a missing value (``None``/NaN, e.g. ``momentum`` of an
Adam run) equals only ``None``, ``!=`` is always the negation of ``==``, and
ordering comparisons and ``in`` are false for it; ``==``/``!=`` against a list
literal compare with a list-valued column (stored as a tuple); ``x in column`` tests
membership in list-valued (or substring in text-valued) cells; an ordering
comparison between incompatible values (text with a number) is an error.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["filter_frame", "compile_where"]

_MAX_LENGTH = 10_000
# Levels of and/or/not and list brackets; the checks and the evaluation recurse once per level,
# so this keeps them far from Python's recursion limit (1000 frames).
_MAX_DEPTH = 100
# Characters of a query, name or value that an error message echoes.
_ECHO = 120
_ALLOWED = ("comparisons (==, !=, <, <=, >, >=, in, not in), and/or/not, column names "
            "(dotted or in `backticks`) and str/number/bool/None/list literals")

_ORDER = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}

_DESCRIBE = {
    ast.Call: "function call", ast.Subscript: "subscript", ast.Lambda: "lambda", ast.BinOp: "arithmetic",
    ast.IfExp: "conditional expression", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
    ast.DictComp: "comprehension", ast.GeneratorExp: "generator expression", ast.Dict: "dict literal",
    ast.Starred: "starred expression", ast.NamedExpr: "assignment expression", ast.JoinedStr: "f-string",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slice",
}


def _shorten(text: str, limit: int = _ECHO) -> str:
    """``text``, or its head and tail around an ellipsis when longer than ``limit`` characters."""
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[:limit - tail - 1] + "…" + text[-tail:]


def _shown(value) -> str:
    """``repr(value)`` for an error message, shortened."""
    return _shorten(repr(value))


def _nested(node: ast.AST) -> list[ast.AST]:
    """The children that checking and evaluating ``node`` recurse into."""
    if isinstance(node, ast.BoolOp):
        return node.values
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return [node.operand]
    if isinstance(node, ast.Compare):
        return [node.left, *node.comparators]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return node.elts
    return []


def _too_deep(node: ast.AST) -> bool:
    """Whether and/or/not, comparisons and list brackets nest more than :data:`_MAX_DEPTH` levels
    below ``node`` (each counts one level; names and constants none), walked without recursing."""
    stack = [(node, 0)]
    while stack:
        node, above = stack.pop()
        children = _nested(node)
        if children:
            if above + 1 > _MAX_DEPTH:
                return True
            stack.extend((child, above + 1) for child in children)
    return False


class _Column:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


def _replace_backticks(where: str) -> tuple[str, dict[str, str]]:
    """Swap each `quoted name` outside string literals for a placeholder identifier."""
    out, names, i, quote = [], {}, 0, None
    while i < len(where):
        ch = where[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(where):
                out.append(where[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif ch == "`":
            end = where.find("`", i + 1)
            if end < 0:
                raise ValueError(f"unclosed backtick in query {_shown(where)}")
            name = where[i + 1:end]
            if not name:
                raise ValueError(f"empty column name `` in query {_shown(where)}")
            placeholder = f"_dm_column_{len(names)}_"
            while placeholder in where:
                placeholder += "_"
            names[placeholder] = name
            out.append(f" {placeholder} ")
            i = end
        else:
            out.append(ch)
        i += 1
    return "".join(out), names


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def compile_where(where: str, columns, *, check_columns: bool = True) -> ast.Expression:
    """Parse and check ``where`` against ``columns``; returns the checked tree.

    With ``check_columns=False`` names are not checked against ``columns`` (an
    empty catalog has no config columns yet; its result is empty anyway).

    Raises
    ------
    ValueError
        On a syntax error, anything outside the language, or an unknown column.
    """
    if not isinstance(where, str):
        raise ValueError(f"query must be a string, got {type(where).__name__}")
    if len(where) > _MAX_LENGTH:
        raise ValueError(f"query is longer than {_MAX_LENGTH} characters")
    text, quoted = _replace_backticks(where)
    too_deep = f"query {_shown(where)} nests too deeply (more than {_MAX_DEPTH} levels)"
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"query {_shown(where)} is not a valid expression: {exc.msg}") from exc
    except (RecursionError, MemoryError) as exc:
        raise ValueError(too_deep) from exc
    if _too_deep(tree.body):
        raise ValueError(too_deep)
    columns = list(columns)
    known = set(columns)

    def snippet(node):
        seg = ast.get_source_segment(text, node) or type(node).__name__
        for ph, name in quoted.items():
            seg = seg.replace(ph, f"`{name}`")
        return seg.strip()

    def not_allowed(node, what=None):
        what = what or _DESCRIBE.get(type(node), f"{type(node).__name__} expression")
        raise ValueError(f"{what} {_shown(snippet(node))} is not allowed in a query; allowed: {_ALLOWED}")

    def column(node, name):
        if name in quoted:
            name = quoted[name]
        elif any(part.startswith("__") or part.endswith("__") for part in name.split(".")):
            not_allowed(node, "dunder name")
        if check_columns and name not in known:
            raise ValueError(f"unknown column {_shown(name)} in query; columns: {', '.join(map(str, columns))}")
        node._dm_column = name

    def literal(node) -> bool:
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (str, bool, int, float)):
                return True
            not_allowed(node, f"{type(node.value).__name__} literal")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            if (isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
                    and not isinstance(node.operand.value, bool)):
                return True
            not_allowed(node, "sign on a non-number")
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            for elt in node.elts:
                if not literal(elt):
                    not_allowed(elt, "non-literal inside a list")
            return True
        return False

    def operand(node):
        if literal(node):
            return
        if isinstance(node, ast.Name):
            return column(node, node.id)
        if isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name is None:
                not_allowed(node, "attribute of a non-column")
            return column(node, name)
        if isinstance(node, (ast.Compare, ast.BoolOp)) or (isinstance(node, ast.UnaryOp)
                                                           and isinstance(node.op, ast.Not)):
            not_allowed(node, "comparison used as a value")
        not_allowed(node)

    def condition(node):
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                condition(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            condition(node.operand)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if isinstance(op, (ast.Is, ast.IsNot)):
                    not_allowed(node, f"operator '{_OP_TEXT[type(op)]}' (use == None / != None)")
                if type(op) not in _OP_TEXT:
                    not_allowed(node)
            for sub in (node.left, *node.comparators):
                operand(sub)
        elif isinstance(node, (ast.Name, ast.Attribute)):
            operand(node)  # a bare (boolean) column; checked when evaluated
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            pass
        else:
            not_allowed(node)

    if not text.strip():
        raise ValueError("empty query")
    condition(tree.body)
    tree._dm_text = where
    return tree


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _as_value(v):
    if _missing(v):
        return None
    if isinstance(v, (list, tuple)):
        return tuple(_as_value(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _literal_value(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp):
        v = node.operand.value
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(_literal_value(e) for e in node.elts)
    return frozenset(_literal_value(e) for e in node.elts)  # ast.Set


def _exact_float(i: int) -> bool:
    """Whether the integer ``i`` is a float64 exactly (no rounding, no overflow)."""
    try:
        return float(i) == i
    except OverflowError:
        return False


def _compare_one(a, op, b, where, names) -> bool:
    if isinstance(op, (ast.Eq, ast.NotEq)):
        if a is None or b is None:
            equal = a is None and b is None
        else:
            equal = bool(a == b)
        return equal if isinstance(op, ast.Eq) else not equal
    if isinstance(op, (ast.In, ast.NotIn)):
        if a is None or b is None:
            return False
        try:
            inside = a in b
        except TypeError:
            inside = False
        return inside if isinstance(op, ast.In) else not inside
    if a is None or b is None or isinstance(a, (tuple, frozenset)) or isinstance(b, (tuple, frozenset)):
        return False
    try:
        return bool(_ORDER[type(op)](a, b))
    except TypeError:
        raise ValueError(f"cannot compare {names[0]} ({_shown(a)}) with {names[1]} ({_shown(b)}) "
                         f"using {_OP_TEXT[type(op)]} in query {_shown(where)}") from None


def filter_frame(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows of ``frame`` for which ``where`` holds (see the module docstring)."""
    tree = compile_where(where, frame.columns, check_columns=len(frame) > 0)
    n = len(frame)
    if n == 0:
        return frame
    cache: dict[str, list] = {}

    def values(node):
        if hasattr(node, "_dm_column"):
            name = node._dm_column
            if name not in cache:
                cache[name] = [_as_value(v) for v in frame[name].tolist()]
            return cache[name], _shorten(name)
        value = _literal_value(node)
        return [value] * n, _shown(value)

    def fast(left, op, right):
        """Vectorised column-vs-number comparison; None when the general path is needed."""
        if not (hasattr(left, "_dm_column") and not hasattr(right, "_dm_column")):
            return None
        col = frame[left._dm_column]
        lit = _literal_value(right)
        if (isinstance(lit, bool) or not isinstance(lit, (int, float)) or not pd.api.types.is_numeric_dtype(col)
                or pd.api.types.is_bool_dtype(col) or type(op) not in (*_ORDER, ast.Eq, ast.NotEq)):
            return None
        if isinstance(lit, int) and not _exact_float(lit):
            return None  # Python compares a float with any int exactly
        arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if isinstance(op, ast.Eq):
                return arr == lit
            if isinstance(op, ast.NotEq):
                return arr != lit  # a missing value is != any number
            return _ORDER[type(op)](arr, lit)

    def compare(node):
        mask = np.ones(n, dtype=bool)
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            got = fast(left, op, right)
            if got is None:
                a, an = values(left)
                b, bn = values(right)
                got = np.fromiter((_compare_one(x, op, y, where, (an, bn)) for x, y in zip(a, b)),
                                  dtype=bool, count=n)
            mask &= got
            left = right
        return mask

    def evaluate(node):
        if isinstance(node, ast.BoolOp):
            masks = [evaluate(v) for v in node.values]
            out = masks[0].copy()
            for m in masks[1:]:
                out = (out & m) if isinstance(node.op, ast.And) else (out | m)
            return out
        if isinstance(node, ast.UnaryOp):
            return ~evaluate(node.operand)
        if isinstance(node, ast.Compare):
            return compare(node)
        if isinstance(node, ast.Constant):
            return np.full(n, bool(node.value))
        vals, name = values(node)
        present = [v for v in vals if not _missing(v)]
        if not all(isinstance(v, (bool, np.bool_)) for v in present):
            raise ValueError(f"column {name!r} is not boolean; compare it (e.g. {name} == ...) "
                             f"in query {_shown(where)}")
        return np.array([bool(v) if not _missing(v) else False for v in vals], dtype=bool)

    mask = evaluate(tree.body)
    return frame[mask]
