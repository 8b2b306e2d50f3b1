"""The block evaluator against the column-by-column evaluator, on random
expression DAGs mixing base and extension columns (contiguous, and strided
columns of row-major matrices read in place), constants, next-row loads that
wrap from the last row to the first, and periodic columns; and malformed
programs are refused."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zksidecar.prover import constraints as C
from zksidecar.prover import field as F
from zksidecar.prover.constraint_program import OP, Output, Program
from zksidecar.prover.expr import CHALLENGE, PERIODIC, PUBLIC, TRACE, const, evaluate, var
from zksidecar.prover.ext_scalar import Ext

ROWS, STEP = 700, 2          # not a multiple of the block: a short last block
P = F.P


def columns(seed, rows=ROWS):
    """Base columns 0, 1 are columns of one row-major matrix, 2 is contiguous;
    extension column 0 is four words of a row-major matrix, 1 contiguous."""
    rng = np.random.default_rng(seed)
    mat = F.encode(rng.integers(0, P, (rows, 5)))
    base = [mat[:, 3], mat[:, 1], F.encode(rng.integers(0, P, rows))]
    wide = F.encode(rng.integers(0, P, (rows, 12)))
    ext = [wide[:, 4:8], F.encode(rng.integers(0, P, (rows, 4)))]
    per = F.encode(rng.integers(0, P, rows))
    return base, ext, per


def leaves():
    return ([var(TRACE, c, nxt) for c in range(5) for nxt in (0, 1)]
            + [var(PERIODIC, "p"), var(PUBLIC, "k"), var(CHALLENGE, 0), const(7), const(P - 1)])


def expressions(draw_ops, n_nodes):
    pool = leaves()
    for op, i, j in draw_ops[:n_nodes]:
        a, b = pool[i % len(pool)], pool[j % len(pool)]
        pool.append({"add": a + b, "sub": a - b, "mul": a * b, "neg": -a}[op])
    return [e for e in pool[len(leaves()):] if e.degree > 0][-6:]


def resolve(challenge):
    def constants(key):
        return {PUBLIC: Ext(12345), CHALLENGE: challenge}[key[0]]
    return constants


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "sub", "mul", "neg"]), st.integers(0, 99),
                          st.integers(0, 99)), min_size=1, max_size=40),
       st.integers(0, 2**32 - 1))
def test_matches_column_evaluation(ops, seed):
    check(ops, seed, ROWS)


def test_matches_column_evaluation_on_every_isa(each_isa):
    """The accumulation and load paths of every ISA, with short tails for the
    8- and 4-lane loops (701 rows: the last block has 189)."""
    rng = np.random.default_rng(2026)
    for seed in range(12):
        ops = [(str(rng.choice(["add", "sub", "mul", "neg"])), int(rng.integers(100)), int(rng.integers(100)))
               for _ in range(30)]
        check(ops, seed, 701)


@pytest.mark.parametrize("step", [0, 1, 255, 256, 257, 699])
def test_every_shift_matches_column_evaluation(step):
    """Next-row loads `step` rows on: within the block's gathered window (up
    to a block, 256 rows, past it) and beyond it (read from the columns
    where they lie), and the last row's shift, which wraps almost all rows."""
    rng = np.random.default_rng(step)
    for seed in range(4):
        ops = [(str(rng.choice(["add", "sub", "mul", "neg"])), int(rng.integers(100)), int(rng.integers(100)))
               for _ in range(30)]
        check(ops, seed, ROWS, step)


def check(ops, seed, rows, step=STEP):
    """The block evaluator against the column-by-column one."""
    exprs = expressions(ops, len(ops))
    if exprs:
        check_exprs(exprs, seed, rows, step)


def check_exprs(exprs, seed, rows, step=STEP) -> Program:
    """check, on these expressions; returns the program."""
    base, ext, per = columns(seed, rows)
    challenge = Ext(3, 1, 4, 1)
    constants = resolve(challenge)
    base_inputs = {(TRACE, c): c for c in range(3)} | {(PERIODIC, "p"): 3}
    ext_inputs = {(TRACE, 3): 0, (TRACE, 4): 1}
    weights = [Ext(i + 1, i, 2 * i, 5) for i in range(len(exprs))]
    # each expression twice, into different accumulators: the lazy base sums
    # of several outputs per accumulator and block
    outputs = [Output(i % 2, e, w) for i, (e, w) in enumerate(zip(exprs, weights))] \
        + [Output((i + 1) % 2, e, w * w) for i, (e, w) in enumerate(zip(exprs, weights))]
    program = Program(outputs, constants, base_inputs, ext_inputs, 2)
    got = program.run(base + [per], ext, rows, step)

    def column(key):
        kind = key[0]
        if kind == TRACE:
            col, nxt = key[1], key[2]
            src = base[col] if col < 3 else ext[col - 3]
            return np.ascontiguousarray(np.roll(src, -step, axis=0) if nxt else src)
        if kind == PERIODIC:
            return per
        return constants(key)

    alg = C.ColumnAlgebra(rows, column)
    want = [np.zeros((rows, 4), np.uint32) for _ in range(2)]
    values = evaluate(exprs, alg)
    for out, v in zip(outputs, values + values):
        term = C.as_column(alg.mul(v, out.weight), rows, True)
        want[out.accumulator] = F.add(want[out.accumulator], term)
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    return program


def test_wide_matrices_and_many_outputs_match_column_evaluation(each_isa):
    """Every column of a wide row-major matrix loaded (runs of adjacent
    columns, gathered by a transpose on the vector paths, around a column
    no constraint reads and one that is not of the matrix), next-row loads
    in the gathered window, constants, and forty base outputs over two
    accumulators (the evaluator sums runs of accumulations in one pass):
    the column evaluator's values, 701 rows."""
    rows, step, width = 701, 3, 37
    rng = np.random.default_rng(37)
    mat = F.encode(rng.integers(0, P, (rows, width)))
    lone = F.encode(rng.integers(0, P, rows))
    base = [mat[:, c] for c in range(width)] + [lone]
    used = [c for c in range(width + 1) if c != 20]
    x = lambda c, nxt=0: var(TRACE, c, nxt)    # noqa: E731
    exprs = [x(c) * x(used[(i + 1) % len(used)], 1) + const(i + 2) * x(c) - var(PUBLIC, "k")
             for i, c in enumerate(used)][:40]
    exprs += [x(used[i]) - x(used[-i - 1], 1) for i in range(40 - len(exprs))]
    outputs = [Output(i % 3 // 2, e, Ext(i + 1, 2, i, 7)) for i, e in enumerate(exprs)]
    constants = resolve(Ext(3, 1, 4, 1))
    program = Program(outputs, constants, {(TRACE, c): c for c in range(width + 1)}, {}, 2)
    got = program.run(base, [], rows, step)

    def column(key):
        if key[0] == TRACE:
            src = base[key[1]]
            return np.ascontiguousarray(np.roll(src, -step) if key[2] else src)
        return constants(key)

    alg = C.ColumnAlgebra(rows, column)
    want = [np.zeros((rows, 4), np.uint32) for _ in range(2)]
    for out, v in zip(outputs, evaluate(exprs, alg)):
        want[out.accumulator] = F.add(want[out.accumulator], C.as_column(alg.mul(v, out.weight), rows, True))
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_linear_forms_are_one_instruction(each_isa):
    """A LogUp-shaped denominator, alpha - (tag + sum of challenge multiples
    of base values: columns, next-row loads, a product, one column twice),
    and the relation that uses two of them: each denominator is one LIN_E
    (its sums and products by constants get no instruction), and the values
    are the column evaluator's on every ISA, the vector loops' tails
    included (701 rows)."""
    alpha, beta = var(CHALLENGE, 0), var(PUBLIC, "k")
    x = [var(TRACE, c, nxt) for c in range(3) for nxt in (0, 1)]
    d1 = alpha - (const(1) + beta * x[0] + alpha * beta * x[1] + const(5) * beta * (x[2] * x[4]) - beta * x[0])
    d2 = alpha - (const(2) + alpha * x[3] + beta * var(PERIODIC, "p"))
    h = var(TRACE, 3, 0)
    relation = h * d1 * d2 - x[5] * d2 - d1
    program = check_exprs([relation, d1 * x[1]], 11, 701)
    ops = program.code[:, 0].tolist()
    assert ops.count(OP["LIN_E"]) == 2 and OP["MUL_EB"] in ops and OP["ADD_EE"] not in ops
    # a form whose term is missing, or is not a TERM, or names an extension register
    base, ext, per = columns(11, 701)
    form = [OP["LIN_E"], program.n_regs - 1, 0, 1]
    for tail in ([form], [form, [OP["ADD_BB"], 0, 0, 0]], [form, [OP["TERM"], 0, program.n_regs - 1, 0]]):
        bad = object.__new__(Program)
        bad.__dict__.update(program.__dict__)
        bad.code = np.vstack([program.code, np.array(tail, dtype=np.uint32)])
        with pytest.raises(ValueError, match="malformed"):
            bad.run(base + [per], ext, 701, STEP)


def test_a_cached_shape_gets_each_calls_constants():
    """The shape is compiled once per key; constants (challenges, weights)
    are evaluated per program, and another `keep` object misses the cache."""
    rng = np.random.default_rng(7)
    ops = [(str(rng.choice(["add", "sub", "mul", "neg"])), int(rng.integers(100)), int(rng.integers(100)))
           for _ in range(40)]
    exprs = expressions(ops, len(ops))
    base, ext, per = columns(3)
    base_inputs = {(TRACE, c): c for c in range(3)} | {(PERIODIC, "p"): 3}
    ext_inputs = {(TRACE, 3): 0, (TRACE, 4): 1}
    owner, key = object(), ("test_a_cached_shape", len(exprs))
    results, codes = {}, set()
    cases = ((Ext(3, 1, 4, 1), Ext(2)), (Ext(5, 9, 2, 6), Ext(7, 1)), (Ext(3, 1, 4, 1), Ext(2)))
    for challenge, weight in cases:
        outputs = [Output(0, e, weight) for e in exprs]
        fresh = Program(outputs, resolve(challenge), base_inputs, ext_inputs, 1)
        cached = Program(outputs, resolve(challenge), base_inputs, ext_inputs, 1, cache_key=key, keep=owner)
        want = fresh.run(base + [per], ext, ROWS, STEP)[0]
        assert np.array_equal(cached.run(base + [per], ext, ROWS, STEP)[0], want)
        results.setdefault((challenge.c, weight.c), []).append(want)
        codes.add(id(cached.code))
    assert len(codes) == 1                        # compiled once
    assert len(results) == 2                      # the second challenge gave other values
    other = Program([Output(0, exprs[0], Ext(1))], resolve(Ext(1)), base_inputs, ext_inputs, 1,
                    cache_key=key, keep=object())
    assert len(other.code) < len(Program([Output(0, e, Ext(1)) for e in exprs], resolve(Ext(1)),
                                         base_inputs, ext_inputs, 1).code)


def test_malformed_programs_are_refused():
    base, ext, per = columns(1)
    prog = Program([Output(0, var(TRACE, 0, 0) * var(TRACE, 1, 1), Ext(1))], resolve(Ext(2)),
                   {(TRACE, 0): 0, (TRACE, 1): 1}, {}, 1)
    prog.run(base, ext, ROWS, STEP)
    for bad in ([999, 0, 0, 0], [OP["LOAD_B"], 0, 77, 0], [OP["ADD_BB"], 0, 0, 500],
                [OP["ACC_B"], 9, 0, 0],
                [OP["MUL_EE"], 0, 0, 0],          # an extension product into a base register
                [OP["LOAD_E"], 0, 0, 0],          # an extension column into a base register
                [OP["TERM"], 0, 0, 0],            # a term of no linear form
                [OP["MUL_BC"], 0, 0, 10**6],      # a constant operand out of range
                [OP["ADD_BC"], 0, 500, 0]):
        prog.code = np.vstack([prog.code, np.array(bad, dtype=np.uint32)])
        with pytest.raises(ValueError, match="malformed"):
            prog.run(base, ext, ROWS, STEP)
        prog.code = prog.code[:-1]


def test_columns_shorter_than_the_rows_are_refused():
    base, ext, per = columns(1)
    prog = Program([Output(0, var(TRACE, 0, 0) * var(TRACE, 1, 1), Ext(1))], resolve(Ext(2)),
                   {(TRACE, 0): 0, (TRACE, 1): 1}, {}, 1)
    with pytest.raises(ValueError, match="shape"):
        prog.run([base[0], base[1][:-1]], ext, ROWS, STEP)
    with pytest.raises(ValueError, match="step"):
        prog.run(base, ext, ROWS, ROWS)


def test_an_output_without_the_trace_is_refused():
    with pytest.raises(ValueError, match="involve the trace"):
        Program([Output(0, const(3) + var(PUBLIC, "k"), Ext(1))], resolve(Ext(1)), {}, {}, 1)


def test_a_bound_program_by_address_matches_a_fresh_one(each_isa):
    """Program.bind (another proof's constants and weights on the compiled
    shape) run by address (run_at, columns located by matrix_columns) gives
    what a program compiled with those values gives run on column views."""
    from zksidecar.prover.constraint_program import matrix_columns

    rng = np.random.default_rng(11)
    ops = [(str(rng.choice(["add", "sub", "mul", "neg"])), int(rng.integers(100)), int(rng.integers(100)))
           for _ in range(30)]
    exprs = expressions(ops, len(ops))
    rows = 300
    mat = F.encode(rng.integers(0, P, (rows, 3)))          # base columns 0..2
    per = F.encode(rng.integers(0, P, rows))
    aux = F.encode(rng.integers(0, P, (rows, 8)))          # extension columns 3, 4
    base_inputs = {(TRACE, c): c for c in range(3)} | {(PERIODIC, "p"): 3}
    ext_inputs = {(TRACE, 3): 0, (TRACE, 4): 1}
    template = Program([Output(i % 2, e, Ext(0)) for i, e in enumerate(exprs)], resolve(Ext(0)),
                       base_inputs, ext_inputs, 2)
    weights = [Ext(int(rng.integers(P)), 3, 1, int(rng.integers(P))) for _ in exprs]
    fresh = Program([Output(i % 2, e, w) for i, (e, w) in enumerate(zip(exprs, weights))],
                    resolve(Ext(2, 7, 1, 8)), base_inputs, ext_inputs, 2)
    want = fresh.run([mat[:, 0], mat[:, 1], mat[:, 2], per], [aux[:, :4], aux[:, 4:]], rows, STEP)
    bound = template.bind(resolve(Ext(2, 7, 1, 8)), F.encode(np.array([w.c for w in weights], np.uint32)))
    (ba, bs), (ea, es) = matrix_columns(mat), matrix_columns(aux, 4)
    got = bound.run_at(np.r_[ba, per.ctypes.data].astype(np.uintp), np.r_[bs, 1].astype(np.uintp),
                       ea, es, rows, STEP, keep=(mat, per, aux))
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    with pytest.raises(ValueError, match="weights of shape"):
        template.bind(resolve(Ext(1)), np.zeros((len(exprs) + 1, 4), np.uint32))


def test_the_largest_words_match_column_evaluation(each_isa):
    """Every input, constant and weight word p - 1 (the largest a field
    element's Montgomery form takes): the lazy sums (ACC_B, and LIN_E's
    forms of one to nine terms) take two products between folds on the
    vector paths and are exact only while they stay below 2^64, which
    these words test at the bound; against the column evaluator, with the
    vector loops' tails (701 rows)."""
    rows, width = 701, 9
    top = F.decode_int(P - 1)                 # the value whose Montgomery word is p - 1
    mat = np.full((rows, width), P - 1, np.uint32)
    alpha = var(CHALLENGE, 0)
    x = [var(TRACE, c, 0) for c in range(width)]
    exprs = [alpha + sum((alpha * x[j] for j in range(1, k)), alpha * x[0]) for k in range(1, width + 1)]
    exprs += [x[j] * x[(j + 1) % width] for j in range(width)] + x
    outputs = [Output(0, e, Ext(top, top, top, top)) for e in exprs]
    constants = lambda key: Ext(top, top, top, top)   # noqa: E731
    program = Program(outputs, constants, {(TRACE, c): c for c in range(width)}, {}, 1)
    ops = program.code[:, 0].tolist()
    assert ops.count(OP["LIN_E"]) == width and ops.count(OP["ACC_B"]) == 2 * width
    got = program.run([mat[:, c] for c in range(width)], [], rows, 1)
    alg = C.ColumnAlgebra(rows, lambda key: np.ascontiguousarray(mat[:, key[1]]) if key[0] == TRACE
                          else constants(key))
    want = np.zeros((rows, 4), np.uint32)
    for out, v in zip(outputs, evaluate(exprs, alg)):
        want = F.add(want, C.as_column(alg.mul(v, out.weight), rows, True))
    assert np.array_equal(got[0], want)
