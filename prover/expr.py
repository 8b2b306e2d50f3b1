"""Symbolic constraint expressions: written once, evaluated three ways.

An AIR builds its constraints from these nodes (operator overloading does the
building).  The same expression DAG is then evaluated

* over the whole low-degree extension, one vectorised kernel call per node
  (:class:`zksidecar.prover.constraints.LdeAlgebra`),
* at the out-of-domain point in the extension field, in plain Python
  (:class:`zksidecar.prover.ext_scalar.ScalarAlgebra`, the verifier's side),
* on the trace itself, row by row, by the debug checker.

Degrees are computed, not trusted: every trace or periodic column is a
polynomial of degree < N (counted as 1), public values and challenges are
constants (0), and a product adds degrees.  The prover checks the AIR's
declared degrees against these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar

V = TypeVar("V")

# variable kinds; the last three are constants of one proof (degree 0)
TRACE, PERIODIC, PUBLIC, CHALLENGE, DERIVED = "trace", "periodic", "public", "challenge", "derived"
CONSTANT_KINDS = (PUBLIC, CHALLENGE, DERIVED)


class Expr:
    """A node of the constraint DAG.  Immutable; shared subexpressions are
    evaluated once per evaluation."""

    __slots__ = ("op", "args", "degree", "__weakref__")

    def __init__(self, op: str, args: tuple, degree: int):
        self.op, self.args, self.degree = op, args, degree

    # building ------------------------------------------------------------
    def __add__(self, other): return _binary("add", self, other)
    def __radd__(self, other): return _binary("add", other, self)
    def __sub__(self, other): return _binary("sub", self, other)
    def __rsub__(self, other): return _binary("sub", other, self)
    def __mul__(self, other): return _binary("mul", self, other)
    def __rmul__(self, other): return _binary("mul", other, self)
    def __neg__(self): return Expr("neg", (self,), self.degree)

    def __pow__(self, k: int):
        if not isinstance(k, int) or k < 1:
            raise ValueError("constraint expressions take integer powers >= 1")
        out = self
        for _ in range(k - 1):
            out = out * self
        return out

    def __bool__(self):
        raise TypeError("a constraint expression has no truth value (did you mean to "
                        "subtract the two sides?)")

    def __repr__(self):
        if self.op == "const":
            return str(self.args[0])
        if self.op == "var":
            return var_name(self.args)
        if self.op == "neg":
            return f"-({self.args[0]!r})"
        sym = {"add": "+", "sub": "-", "mul": "*"}[self.op]
        return f"({self.args[0]!r} {sym} {self.args[1]!r})"


def var_name(key: tuple) -> str:
    kind, *rest = key
    if kind == TRACE:
        col, offset = rest
        return f"t{col}" + ("'" if offset else "")
    return f"{kind}[{rest[0]}]"


def const(value: int) -> Expr:
    return Expr("const", (int(value),), 0)


def var(kind: str, *key) -> Expr:
    degree = 1 if kind in (TRACE, PERIODIC) else 0
    return Expr("var", (kind, *key), degree)


def _lift(x) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, int):
        return const(x)
    raise TypeError(f"cannot use {type(x).__name__} in a constraint expression")


def _binary(op: str, a, b) -> Expr:
    a, b = _lift(a), _lift(b)
    degree = a.degree + b.degree if op == "mul" else max(a.degree, b.degree)
    return Expr(op, (a, b), degree)


# ----------------------------------------------------------- evaluation --

class Algebra(Protocol[V]):
    """What an evaluator supplies: the values of variables and constants, and
    the three ring operations on them."""

    def variable(self, key: tuple) -> V: ...
    def constant(self, value: int) -> V: ...
    def add(self, a: V, b: V) -> V: ...
    def sub(self, a: V, b: V) -> V: ...
    def mul(self, a: V, b: V) -> V: ...
    def neg(self, a: V) -> V: ...


def evaluate(roots: list[Expr], algebra: Algebra[V]) -> list[V]:
    """Evaluate the DAG under `roots`, each shared node once, in an order
    where every node's arguments come first (no recursion: deep chains are
    fine)."""
    return evaluate_in_order(topological(roots), roots, algebra)


def evaluate_in_order(order: list[Expr], roots: list[Expr], algebra: Algebra[V]) -> list[V]:
    """:func:`evaluate` along `order`, topological(roots) worked out
    before: a caller that evaluates the same roots once a proof (a
    compiled program's constants) walks the DAG to order it once."""
    cache: dict[int, V] = {}
    for node in order:
        if node.op == "var":
            cache[id(node)] = algebra.variable(node.args)
        elif node.op == "const":
            cache[id(node)] = algebra.constant(node.args[0])
        elif node.op == "neg":
            cache[id(node)] = algebra.neg(cache[id(node.args[0])])
        else:
            fn: Callable = getattr(algebra, node.op)
            cache[id(node)] = fn(cache[id(node.args[0])], cache[id(node.args[1])])
    return [cache[id(r)] for r in roots]


def topological(roots: list[Expr]) -> list[Expr]:
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen:
                continue
            if expanded or node.op in ("var", "const"):
                seen.add(id(node))
                order.append(node)
                continue
            stack.append((node, True))
            for arg in reversed(node.args):
                if id(arg) not in seen:
                    stack.append((arg, False))
    return order


def variables(roots: list[Expr]) -> set[tuple]:
    return {n.args for n in topological(roots) if n.op == "var"}


@dataclass(frozen=True)
class Constraint:
    """A named constraint: `expr` must vanish where the constraint applies."""

    name: str
    expr: Expr
