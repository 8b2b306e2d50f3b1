"""Constraint expressions compiled for the block evaluator (csrc/stark/constraint_vm.c).

The prover needs  acc_k(x) = sum_i w_i * e_i(x)  over every point x of the LDE,
for expressions e_i (constraints) with extension weights w_i (powers of the
composition challenge).  Walking the DAG node by node over whole columns
streams every intermediate column through memory; compiling it once into a
short register program and running that on blocks of rows keeps the
intermediates in cache.

Compilation, in order:
  * constant folding — every maximal node of degree 0 (public values,
    challenges, derived values and arithmetic on them) becomes one constant
    slot, evaluated in the extension field for each program (the compiled
    shape does not depend on the values, so it can be cached: Program);
  * typing — a degree-0 node is extension if it contains a challenge or a
    derived value, any other node is base-field if all its inputs are, else
    extension, and gets the typed opcode;
  * value numbering — structurally equal nodes (a column named by many
    constraints, a repeated "1 - x", a constant) are computed once per block;
  * linear forms — an extension value that is a constant plus a sum of
    constants times base values (a LogUp denominator alpha - compress(tuple))
    is one LIN_E instruction, summed lazily in 64 bits, where node by node it
    was a product and an extension add per entry; the nodes inside it get no
    register;
  * register allocation — a register is freed after the last use of its
    value, so the program needs about as many registers as the DAG is wide.

A run of outputs may instead have a kernel of its own (NativeBlock: the
Poseidon2 permutation's 274 constraints, ~3,000 instructions a row when
compiled, are poseidon2_air.Poseidon2Block).  The program then compiles the
other outputs, and after the evaluator has run, the block's kernel adds
the run's weighted sum into the same accumulator, with the weights those
outputs have.  The expressions stay the definition: a kernel computes the
words they denote, and the verifier evaluates the expressions.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .expr import CHALLENGE, DERIVED, PERIODIC, TRACE, Expr, const, evaluate_in_order, topological
from .ext_scalar import Ext, ScalarAlgebra
from .field import P, encode
from .native import ffi, lib
from .shape_cache import ShapeCache

OP = {name: getattr(lib, f"ZK_VM_{name}") for name in (
    "LOAD_B", "LOAD_E", "CONST_B", "CONST_E", "ADD_BB", "SUB_BB", "MUL_BB", "NEG_B", "ADD_EE",
    "SUB_EE", "MUL_EE", "NEG_E", "ADD_EB", "SUB_EB", "SUB_BE", "MUL_EB", "ACC_B", "ACC_E",
    "LIN_E", "TERM", "ADD_BC", "SUB_BC", "SUB_CB", "MUL_BC")}


EXT = 1 << 24   # extension registers while compiling (see Program._place)
#: base outputs accumulated in one pass (_Shape, and ACC_B in csrc/stark/constraint_vm.c)
ACC_GROUP = 8


class NativeBlock(ABC):
    """A run of constraints with a kernel of its own: `exprs`, in order,
    reading the current row of the trace columns `columns` (main columns,
    by index) and nothing else.  A Program whose outputs hold the whole run,
    in this order, into one accumulator (each Output's ``native`` this
    block) leaves them out of its compiled code and calls :meth:`accumulate`
    instead; anything else (a run cut short, reordered, a column the program
    does not read as a base input) is compiled as usual."""

    def __init__(self, exprs, columns):
        self.exprs = tuple(exprs)
        self.columns = tuple(columns)

    @abstractmethod
    def accumulate(self, addr: np.ndarray, stride: np.ndarray, weights: np.ndarray, acc: np.ndarray,
                   rows: int) -> None:
        """acc[r] += sum_j weights[j] * exprs[j](row r) for r < rows, with
        column `columns[i]`'s value at row r the word at addr[i] + 4 r
        stride[i] (uintp addresses, strides in words, as Program.run_at
        takes them); weights (len(exprs), 4) and acc (rows, 4) Montgomery,
        C-contiguous."""


@dataclass(frozen=True)
class Output:
    """acc[accumulator] += weight * expr.  `native`: the block with a kernel
    of its own that `expr` belongs to (NativeBlock), if any."""

    accumulator: int
    expr: Expr
    weight: Ext
    native: NativeBlock | None = None


@dataclass(frozen=True)
class _NativeRun:
    """outputs [first, first + len(block.exprs)) of a Program, evaluated by
    block's kernel into accumulator `accumulator`; `inputs`: the base input
    index of each of the block's columns."""

    block: NativeBlock
    accumulator: int
    first: int
    inputs: np.ndarray


def _native_runs(outputs: list[Output], base_inputs: dict) -> tuple[list[int], list[_NativeRun]]:
    """(the outputs to compile, by index; the native runs)."""
    compiled, runs, i = [], [], 0
    while i < len(outputs):
        block, acc = outputs[i].native, outputs[i].accumulator
        if block is not None:
            run = outputs[i:i + len(block.exprs)]
            keys = [(TRACE, c) for c in block.columns]
            if len(run) == len(block.exprs) and all(k in base_inputs for k in keys) \
                    and all(o.native is block and o.expr is e and o.accumulator == acc
                            for o, e in zip(run, block.exprs)):
                runs.append(_NativeRun(block, acc, i, np.array([base_inputs[k] for k in keys], dtype=np.intp)))
                i += len(run)
                continue
        compiled.append(i)
        i += 1
    return compiled, runs


class Program:
    """One compiled set of outputs.  `base_inputs` / `ext_inputs` map a
    variable key (trace or periodic; the next-row flag dropped) to the index
    of the column the caller will pass to :meth:`run`.

    The compiled shape (code, registers, which degree-0 subexpressions fill
    which constant slots) depends on the expressions, not on the values of
    public inputs and challenges, so a caller that proves the same
    constraints again can pass `cache_key` (which must determine the
    outputs' expressions, accumulators and native blocks and the input
    maps) with `keep`,
    an object whose identity the key relies on (e.g. the AIR's constraint
    list, held by the cache so its id stays unique).  Only the constants are
    then evaluated: compiling the order-book program takes ~14 ms."""

    def __init__(self, outputs: list[Output], constants, base_inputs: dict, ext_inputs: dict,
                 n_accumulators: int, cache_key: tuple | None = None, keep: object = None):
        self.n_accumulators = n_accumulators
        compiled, self._native = _native_runs(outputs, base_inputs)
        self._compiled = np.array(compiled, dtype=np.intp)
        compile_ = lambda: _Shape([outputs[i].expr for i in compiled],   # noqa: E731
                                  [outputs[i].accumulator for i in compiled], base_inputs, ext_inputs)
        shape = compile_() if cache_key is None else _SHAPES.get(cache_key, keep, compile_)
        self._shape, self.n_outputs = shape, len(outputs)
        self.code, self.n_regs, self.n_base_regs = shape.code, shape.n_regs, shape.n_base_regs
        weights = np.array([o.weight.c for o in outputs], dtype=np.uint32).reshape(-1, 4)
        self._weights = encode(weights)
        self._consts = _constant_words(shape, constants, self._weights[self._compiled])

    def bind(self, constants, weights: np.ndarray) -> "Program":
        """This program's compiled shape with other values: `constants`
        resolves the degree-0 variables (as for the constructor) and
        `weights` is the outputs' weights, (k, 4) Montgomery, in output
        order.  What a prover of many proofs of one shape pays per proof:
        no expression is walked but the constants' own."""
        if weights.shape != (self.n_outputs, 4):
            raise ValueError(f"weights of shape {weights.shape} for a program of {self.n_outputs} outputs")
        other = object.__new__(Program)
        other.n_accumulators, other._shape, other.n_outputs = self.n_accumulators, self._shape, self.n_outputs
        other.code, other.n_regs, other.n_base_regs = self.code, self.n_regs, self.n_base_regs
        other._native, other._compiled = self._native, self._compiled
        other._weights = np.ascontiguousarray(weights, dtype=np.uint32)
        other._consts = _constant_words(self._shape, constants, other._weights[self._compiled])
        return other

    @property
    def native_blocks(self) -> tuple[NativeBlock, ...]:
        """The blocks whose outputs a kernel of their own evaluates."""
        return tuple(r.block for r in self._native)

    @staticmethod
    def _place(insn: tuple[int, int, int, int], n_base: int) -> tuple[int, int, int, int]:
        """Extension register EXT + i becomes register n_base + i."""
        op, dst, a, b = insn
        fix = lambda r: r - EXT + n_base if r >= EXT else r  # noqa: E731
        if op in (OP["ACC_B"], OP["ACC_E"], OP["TERM"]):
            return op, dst, fix(a), b
        if op == OP["LIN_E"]:
            return op, fix(dst), a, b
        if op in (OP["LOAD_B"], OP["LOAD_E"], OP["CONST_B"], OP["CONST_E"]):
            return op, fix(dst), a, b
        if op in (OP["ADD_BC"], OP["SUB_BC"], OP["SUB_CB"], OP["MUL_BC"]):
            return op, fix(dst), fix(a), b
        if op in (OP["NEG_B"], OP["NEG_E"]):
            return op, fix(dst), fix(a), b
        return op, fix(dst), fix(a), fix(b)

    @staticmethod
    def _binary(op: str, a_ext: bool, b_ext: bool, r: int, ra: int, rb: int):
        if not a_ext and not b_ext:
            return (OP[f"{op.upper()}_BB"], r, ra, rb)
        if a_ext and b_ext:
            return (OP[f"{op.upper()}_EE"], r, ra, rb)
        if op == "add":
            return (OP["ADD_EB"], r, ra, rb) if a_ext else (OP["ADD_EB"], r, rb, ra)
        if op == "mul":
            return (OP["MUL_EB"], r, ra, rb) if a_ext else (OP["MUL_EB"], r, rb, ra)
        return (OP["SUB_EB"], r, ra, rb) if a_ext else (OP["SUB_BE"], r, ra, rb)

    def run(self, base_cols: list[np.ndarray], ext_cols: list[np.ndarray], rows: int,
            step: int) -> list[np.ndarray]:
        """The accumulators, each (rows, 4) Montgomery.  Each input has at
        least `rows` values: a base column (rows,) uint32, an extension column
        (rows, 4); either may be a strided view, e.g. one column of a
        row-major LDE matrix (``mat[:, j]``, ``mat[:, 4a:4a + 4]``), which the
        evaluator reads in place.  A shifted load reads `step` rows on,
        wrapping from the last row to the first.  Inputs and constants are
        field elements, every word in [0, p): the C evaluator's vector
        paths sum two products before each reduction, which is exact only
        for those (csrc/stark/zk_vm.h), and it does not check them."""
        if not 0 <= step < max(rows, 1):
            raise ValueError(f"step {step} must be below the row count {rows}")
        base = [_strided(c, rows, 1) for c in base_cols]
        ext = [_strided(c, rows, 4) for c in ext_cols]
        where = lambda cs, unit: (np.array([c.ctypes.data for c in cs], dtype=np.uintp),   # noqa: E731
                                  np.array([c.strides[0] // unit for c in cs], dtype=np.uintp))
        return self.run_at(*where(base, 4), *where(ext, 16), rows, step, keep=(base, ext))

    def run_at(self, base_addr: np.ndarray, base_stride: np.ndarray, ext_addr: np.ndarray,
               ext_stride: np.ndarray, rows: int, step: int, keep: object) -> list[np.ndarray]:
        """:meth:`run` with the inputs given by address: input i's values
        start at address addr[i] (uintp) and lie stride[i] values apart (a
        value is one word, or four for an extension input), each input
        holding at least `rows` values in memory that `keep` keeps alive
        (see matrix_columns: a whole LDE matrix's columns in two array
        operations, not a numpy view and a cffi cast per column)."""
        if not 0 <= step < max(rows, 1):
            raise ValueError(f"step {step} must be below the row count {rows}")
        arrays = []
        for a in (base_addr, base_stride, ext_addr, ext_stride):
            a = np.ascontiguousarray(a, dtype=np.uintp)
            arrays.append(a)
        ba, bs, ea, es = arrays
        if len(ba) != len(bs) or len(ea) != len(es):
            raise ValueError("one stride per input address")
        if (bs == 0).any() or (es == 0).any():
            raise ValueError("an input column with stride 0")
        cast = lambda t, a: ffi.cast(t, a.ctypes.data) if len(a) else ffi.NULL   # noqa: E731
        accs = self._execute(cast("uint32_t **", ba), cast("size_t *", bs), len(ba),
                             cast("uint32_t **", ea), cast("size_t *", es), len(ea), rows, step)
        for run in self._native:
            count = len(run.block.exprs)
            run.block.accumulate(ba[run.inputs], bs[run.inputs],
                                 np.ascontiguousarray(self._weights[run.first: run.first + count]),
                                 accs[run.accumulator], rows)
        del keep        # the inputs the pointers point into stay alive to here
        return accs

    def run_matrix(self, matrix: np.ndarray, step: int) -> list[np.ndarray]:
        """:meth:`run` with no base inputs and extension input j the column
        ``matrix[:, j]`` of one C-contiguous (rows, k, 4) uint32 matrix: the
        verifier's values at z and w·z (docs/STARK.md, "The verifier").  The
        k column pointers are computed from the matrix's own, not taken from
        k numpy views."""
        if self._native:
            raise ValueError("a program with native blocks reads base columns: run it with run or run_at")
        if matrix.dtype != np.uint32 or matrix.ndim != 3 or matrix.shape[2] != 4 \
                or not matrix.flags.c_contiguous:
            raise ValueError(f"need a C-contiguous (rows, k, 4) uint32 matrix, got {matrix.dtype} "
                             f"{matrix.shape}")
        rows, k = matrix.shape[0], matrix.shape[1]
        if not 0 <= step < max(rows, 1):
            raise ValueError(f"step {step} must be below the row count {rows}")
        if k == 0:
            return self._execute(ffi.NULL, ffi.NULL, 0, ffi.NULL, ffi.NULL, 0, rows, step)
        first = ffi.cast("uint32_t *", ffi.from_buffer(matrix))
        ptrs = ffi.new("uint32_t *[]", [first + 4 * j for j in range(k)])
        strides = ffi.new("size_t[]", [k] * k)      # values between rows, per column
        return self._execute(ffi.NULL, ffi.NULL, 0, ptrs, strides, k, rows, step, keep=matrix)

    def _execute(self, base_ptrs, base_strides, n_base: int, ext_ptrs, ext_strides, n_ext: int,
                 rows: int, step: int, keep: object = None) -> list[np.ndarray]:
        consts = self._consts
        accs = [np.zeros((rows, 4), dtype=np.uint32) for _ in range(self.n_accumulators)]
        acc_ptrs = ffi.new("uint32_t *[]", [ffi.cast("uint32_t *", ffi.from_buffer(a)) for a in accs])
        code = np.ascontiguousarray(self.code)
        rc = lib.zk_vm_run(ffi.cast("zk_vm_insn *", ffi.from_buffer(code)), len(code), self.n_regs,
                           self.n_base_regs, base_ptrs, base_strides, n_base, ext_ptrs, ext_strides, n_ext,
                           ffi.from_buffer("uint32_t[]", consts), len(consts),
                           acc_ptrs, len(accs), rows, step)
        del keep        # the inputs the pointers point into stay alive to here
        if rc == -2:
            raise MemoryError("no scratch memory for the constraint evaluator")
        if rc != 0:
            raise ValueError("malformed constraint program")
        return accs


def _constant_words(shape: "_Shape", constants, weights: np.ndarray) -> np.ndarray:
    """The constant slots of `shape` as one (k, 4) Montgomery array: its
    degree-0 subexpressions evaluated with `constants`, then the weights
    (already Montgomery); one row of zeros for a program with none."""
    values = evaluate_in_order(shape.constant_order, shape.constants, ScalarAlgebra(constants)) \
        if shape.constants else []
    words = encode(np.array([v.c for v in values], dtype=np.uint32).reshape(-1, 4))
    out = np.concatenate([words, np.asarray(weights, dtype=np.uint32).reshape(-1, 4)])
    return np.ascontiguousarray(out) if len(out) else np.zeros((1, 4), np.uint32)


def matrix_columns(mat: np.ndarray, width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(addresses, strides) of every column of a (rows, k * width) uint32
    matrix as Program.run_at reads them: column j is the `width`-word values
    starting at word j * width of each row (base columns: width 1; the
    extension columns of an auxiliary matrix: width 4)."""
    if mat.dtype != np.uint32 or mat.ndim != 2 or mat.shape[1] % width or mat.strides[1] != 4 \
            or mat.strides[0] % (4 * width) or mat.strides[0] < 4 * mat.shape[1]:
        raise ValueError(f"need a uint32 matrix with contiguous rows, {width}-word columns")
    k = mat.shape[1] // width
    addr = mat.ctypes.data + 4 * width * np.arange(k, dtype=np.uintp)
    return addr.astype(np.uintp), np.full(k, mat.strides[0] // (4 * width), dtype=np.uintp)


def _strided(col: np.ndarray, rows: int, width: int) -> np.ndarray:
    """`col` as the evaluator reads it: uint32, at least `rows` values of
    `width` words, each value contiguous and the values evenly spaced (a copy
    only when they are not)."""
    shape = (rows,) if width == 1 else (rows, width)
    if col.dtype != np.uint32 or col.ndim != len(shape) or col.shape[0] < rows \
            or col.shape[1:] != shape[1:]:
        raise ValueError(f"an input column must be uint32 of shape {shape} or longer, "
                         f"got {col.dtype} {col.shape}")
    unit = 4 * width
    if (width > 1 and col.strides[1] != 4) or col.strides[0] < unit or col.strides[0] % unit:
        col = np.ascontiguousarray(col)
    return col


#: compiled shapes by cache key (see Program), the most recent few
_SHAPES: "ShapeCache[_Shape]" = ShapeCache(8)


class _Shape:
    """The compiled form of a set of outputs, independent of the constants'
    values: code (constant slot i is the value of ``constants[i]``, and slot
    len(constants) + k output k's weight), register counts."""

    def __init__(self, exprs: list[Expr], accumulators: list[int], base_inputs: dict, ext_inputs: dict):
        code: list[tuple[int, int, int, int]] = []
        nodes = topological(exprs)

        # value numbering: structurally equal nodes (the same column named in
        # many constraints, the same "1 - x", the same constant) get one
        # number and are computed once per block.  Degree-0 nodes are typed
        # by what they contain (a challenge or derived value makes them
        # extension), so the shape does not depend on their values.
        number: dict[int, int] = {}    # node id -> value number
        numbers: dict[tuple, int] = {}
        const_node: dict[int, Expr] = {}   # value number -> a degree-0 node with it
        const_ext: dict[int, bool] = {}
        for node in nodes:
            if node.op == "var":
                key = ("var",) + tuple(node.args)
            elif node.op == "const":
                key = ("const", node.args[0])
            else:
                key = (node.op,) + tuple(number[id(a)] for a in node.args)
            v = number[id(node)] = numbers.setdefault(key, len(numbers))
            if node.degree == 0 and v not in const_node:
                const_node[v] = node
                if node.op == "var":
                    const_ext[v] = node.args[0] in (CHALLENGE, DERIVED)
                elif node.op == "const":
                    const_ext[v] = False
                else:
                    const_ext[v] = any(const_ext[number[id(a)]] for a in node.args)
        forms, absorbed = _linear_forms(nodes, number, const_ext, base_inputs, ext_inputs,
                                        {number[id(e)] for e in exprs})
        last_use: dict[int, int] = {}  # value number -> index of its last reader
        for i, node in enumerate(nodes):
            v = number[id(node)]
            if node.degree > 0 and node.op not in ("var", "const") and v not in absorbed:
                # a linear form reads its terms' base values, not its operands
                reads = [u for _, u in forms[v][1]] if v in forms else [number[id(a)] for a in node.args]
                for u in reads:
                    last_use[u] = i
        # each output is accumulated as soon as it is computed (below), so its
        # register lives only as long as other nodes read it: with every
        # output held to the end of the program, the order book's ~240
        # constraint values kept ~350 registers (350 KiB a block) live, and
        # the evaluator worked out of L2 instead of L1
        outputs: dict[int, list[int]] = {}     # value number -> its output indices
        for k, e in enumerate(exprs):
            if e.degree == 0:
                raise ValueError("a constraint output must involve the trace")
            outputs.setdefault(number[id(e)], []).append(k)
        weight_at: list[int] = []     # the accumulations' places in code (weight slots set at the end)

        reg: dict[int, int] = {}       # value number -> register
        is_ext: dict[int, bool] = {}
        self.constants: list[Expr] = []   # degree-0 nodes, in constant-slot order
        # two register files: base registers hold a block of base values,
        # extension registers four times as much; extension registers are
        # numbered EXT + i while compiling and placed after the base ones
        free: dict[bool, list[int]] = {False: [], True: []}
        count = {False: 0, True: 0}

        # base outputs are accumulated ACC_GROUP at a time: the evaluator
        # runs consecutive ACC_Bs of one accumulator as one pass (each lazy
        # sum loaded and stored once for the group); a value waiting in
        # `pending` keeps its register until the group is emitted
        pending: list[tuple[int, int]] = []     # (value number, output index)
        held: set[int] = set()                  # values in pending
        dead: set[int] = set()                  # ... whose register is free after it

        def release(u: int) -> None:
            if u in held:
                dead.add(u)
            else:
                free[is_ext[u]].append(reg.pop(u))

        def flush() -> None:
            for v, k in sorted(pending, key=lambda p: accumulators[p[1]]):
                weight_at.append(len(code))
                code.append((OP["ACC_B"], accumulators[k], reg[v], k))
            for u in dead:
                free[False].append(reg.pop(u))
            pending.clear(), held.clear(), dead.clear()

        def computed(v: int) -> None:
            """v is in its register: accumulate the outputs it is, and free it
            if nothing reads it later."""
            for k in outputs.pop(v, ()):
                if is_ext[v]:
                    weight_at.append(len(code))
                    code.append((OP["ACC_E"], accumulators[k], reg[v], k))
                else:
                    pending.append((v, k))
                    held.add(v)
            if v not in last_use:
                release(v)
            if len(pending) >= ACC_GROUP:
                flush()

        slots: dict[tuple, int] = {}     # a sum of monomials (_linear_forms) -> its constant slot

        def slot(monomials: tuple) -> int:
            if monomials not in slots:
                slots[monomials] = len(self.constants)
                total = None
                for key in monomials:
                    e = _monomial(key, const_node)
                    total = e if total is None else total + e
                self.constants.append(const(0) if total is None else total)
            return slots[monomials]

        def alloc(ext: bool) -> int:
            if free[ext]:
                return free[ext].pop()
            count[ext] += 1
            return count[ext] - 1 + (EXT if ext else 0)

        imm: dict[int, int] = {}         # a base constant's value number -> its slot as an operand

        def operand(arg: Expr) -> tuple[int, bool]:
            """(register holding `arg`, is it extension); a degree-0 value is
            loaded into a register on its first use and kept to its last."""
            v = number[id(arg)]
            if v not in reg:
                is_ext[v] = const_ext[v]
                reg[v] = alloc(is_ext[v])
                code.append((OP["CONST_E" if is_ext[v] else "CONST_B"], reg[v], len(self.constants), 0))
                self.constants.append(const_node[v])
            return reg[v], is_ext[v]

        for i, node in enumerate(nodes):
            v = number[id(node)]
            if node.degree == 0 or v in reg or v in absorbed:
                continue
            if v in forms:
                # c0 + sum_t s_t * base value t: LIN_E, then one TERM per term
                consts, terms = forms[v]
                r = alloc(True)
                code.append((OP["LIN_E"], r, slot(tuple(sorted(consts))), len(terms)))
                for key, u in terms:
                    code.append((OP["TERM"], 0, reg[u], slot((key,))))
                for u in {u for _, u in terms}:
                    if last_use.get(u) == i:
                        release(u)
                reg[v], is_ext[v] = r, True
                computed(v)
                continue
            if node.op == "var":
                kind, *key = node.args
                if kind == TRACE:
                    col, nxt = key
                    ext = (TRACE, col) in ext_inputs
                    src = (ext_inputs if ext else base_inputs)[(TRACE, col)]
                elif kind == PERIODIC:
                    # base on the LDE; extension at a point (the verifier's z)
                    ext, nxt = (PERIODIC, key[0]) in ext_inputs, 0
                    src = (ext_inputs if ext else base_inputs)[(PERIODIC, key[0])]
                else:  # pragma: no cover - other kinds have degree 0
                    raise KeyError(node.args)
                r = alloc(ext)
                code.append((OP["LOAD_E" if ext else "LOAD_B"], r, src, int(nxt)))
            elif node.op != "neg" and (k := _immediate(node, number, const_ext, is_ext)) is not None:
                # a base value and a base constant: the constant is the
                # instruction's operand (no register, no CONST_B)
                x = node.args[1 - k]
                op = {"add": "ADD_BC", "mul": "MUL_BC", "sub": "SUB_BC" if k == 1 else "SUB_CB"}[node.op]
                c = number[id(node.args[k])]
                if c not in imm:
                    imm[c] = len(self.constants)
                    self.constants.append(const_node[c])
                ext, r = False, alloc(False)
                code.append((OP[op], r, reg[number[id(x)]], imm[c]))
                for u in {number[id(arg)] for arg in node.args}:
                    if last_use.get(u) == i and u in reg:
                        release(u)
            else:
                ra, a_ext = operand(node.args[0])
                if node.op == "neg":
                    ext = a_ext
                    r = alloc(ext)
                    code.append((OP["NEG_E" if ext else "NEG_B"], r, ra, 0))
                else:
                    rb, b_ext = operand(node.args[1])
                    # the result gets a register of its own (allocated before
                    # any operand's is freed): a base operand and an extension
                    # result would overlap differently in one register
                    ext = a_ext or b_ext
                    r = alloc(ext)
                    code.append(Program._binary(node.op, a_ext, b_ext, r, ra, rb))
                for u in {number[id(arg)] for arg in node.args}:
                    if last_use.get(u) == i and u in reg:
                        release(u)
            reg[v], is_ext[v] = r, ext
            computed(v)
        flush()
        for at in weight_at:         # output k's weight is constant slot len(constants) + k
            op, acc, r, k = code[at]
            code[at] = (op, acc, r, len(self.constants) + k)
        self.n_base_regs = count[False]
        self.n_regs = max(count[False] + count[True], 1)
        self.code = np.array([Program._place(c, count[False]) for c in code], dtype=np.uint32).reshape(-1, 4)
        # the constants are evaluated once a proof (_constant_words): their
        # walk order depends on the shape alone
        self.constant_order = topological(self.constants)


def _immediate(node: Expr, number: dict[int, int], const_ext: dict[int, bool], is_ext: dict[int, bool]):
    """For a sum, difference or product of a base value and a base constant:
    the index (0, 1) of the constant among its arguments, else None."""
    if node.op not in ("add", "sub", "mul"):
        return None
    for k in (0, 1):
        c, x = node.args[k], node.args[1 - k]
        if c.degree == 0 and not const_ext[number[id(c)]] and x.degree > 0 and not is_ext[number[id(x)]]:
            return k
    return None


def _monomial(key: tuple[int, tuple[int, ...]], const_node: dict[int, Expr]) -> Expr:
    """The degree-0 expression of a coefficient key (m, factors): the
    integer m times the product of the constant values `factors` (value
    numbers)."""
    m, factors = key
    out = None
    for f in factors:
        out = const_node[f] if out is None else out * const_node[f]
    if out is None:
        return const(m % P)
    # (a negation is cheaper than a product when the constants are
    # evaluated for each proof)
    return out if m == 1 else -out if m == -1 else const(m % P) * out


def _linear_forms(nodes: list[Expr], number: dict[int, int], const_ext: dict[int, bool],
                  base_inputs: dict, ext_inputs: dict, outputs: set[int]):
    """The extension values compiled as one LIN_E each, and the values that
    live only inside them: (forms, absorbed).  forms maps a value number to
    (constants, terms): the value is the sum of the monomials `constants`
    plus the sum over `terms` ((m, factors), u) of that monomial times base
    value u (each pair once).  A monomial (m, factors) is the integer m
    times the product of the degree-0 values numbered `factors` (sorted), so
    that equal coefficients are one constant slot however often a form, or
    many forms, use them (a LogUp denominator's -beta_j: every tuple with an
    entry j).  A value has a form when it is a degree-0 node, a base value
    (one term, coefficient 1), or a sum, difference, negation or constant
    multiple of values with forms; an extension value with a form is
    compiled as LIN_E unless every reader is itself such a value (then it is
    absorbed: no instruction, no register) and it is not an output."""
    ext: dict[int, bool] = {}
    form: dict[int, tuple[list, list]] = {}
    linear: set[int] = set()        # extension values whose form was built here
    readers: dict[int, set[int]] = {}

    def scaled(f, m: int, factor: int | None):
        times = lambda key: (key[0] * m, tuple(sorted(key[1] + ((factor,) if factor is not None else ()))))  # noqa
        return [times(c) for c in f[0]], [(times(c), u) for c, u in f[1]]

    for node in nodes:
        v = number[id(node)]
        if v in ext:
            continue
        args = [number[id(a)] for a in node.args] if node.op not in ("var", "const") else []
        if node.degree == 0:
            ext[v] = const_ext[v]
            form[v] = ([(1, (v,))], [])
            continue
        if node.op == "var":
            kind, key = node.args[0], node.args[1]
            ext[v] = (kind, key) in ext_inputs
        else:
            ext[v] = any(ext[u] for u in args)
            for u in args:
                readers.setdefault(u, set()).add(v)
        if not ext[v]:
            form[v] = ([], [((1, ()), v)])
            continue
        f = None
        if node.op in ("add", "sub") and all(u in form for u in args):
            a, b = form[args[0]], form[args[1]]
            if node.op == "sub":
                b = scaled(b, -1, None)
            f = (a[0] + b[0], a[1] + b[1])
        elif node.op == "neg" and args[0] in form:
            f = scaled(form[args[0]], -1, None)
        elif node.op == "mul":
            for k_, other in ((0, 1), (1, 0)):
                if node.args[k_].degree == 0 and args[other] in form:
                    f = scaled(form[args[other]], 1, args[k_])
                    break
        if f is not None:
            form[v] = f
            linear.add(v)
    absorbed = {v for v in linear
                if v not in outputs and readers.get(v) and readers[v] <= linear}
    forms = {}
    for v in linear - absorbed:
        consts, terms = form[v]
        merged: dict[tuple, int] = {}          # (factors, u) -> multiplier
        for (m, factors), u in terms:
            merged[(factors, u)] = merged.get((factors, u), 0) + m
        forms[v] = (consts, [((m, factors), u) for (factors, u), m in merged.items() if m % P])
    return forms, absorbed
