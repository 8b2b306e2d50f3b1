"""A statement: one or more domains proven together in one proof.

Each **domain** is an AIR (air.py) with its own trace length, segments,
auxiliary columns and constraints; what binds them is what they share
(docs/STATE_DOMAIN.md, docs/STARK.md "Statements of several domains"):

* the challenges, drawn once: domain d's challenge i is the statement's
  challenge i, so a tuple compresses to the same value whichever domain
  supplies or consumes it (the statement draws the most any domain needs);
* one LogUp sum split across domains: a domain whose AIR has a
  ``shared_argument`` claims that argument's total t_d (carried by the
  proof, bound before alpha and z), its relation closes on t_d, and the
  claims must add up to the statement's ``target`` (a function of the
  challenges and the public data, 0 unless given; what it reads besides
  the challenges is the statement's ``public``, which the transcript binds);
* one constraint-combination challenge alpha, one out-of-domain point z,
  one FRI: the tall domain's DEEP function is FRI's first layer, every other
  domain's joins where the folding reaches its height.

A one-domain statement (``Statement.of(air)``) is exactly the single-AIR
proof system: the same transcript, the same proof bytes.  In a statement of
several domains a matrix is named ``domain.matrix`` (``cells.init``,
``steps.aux``); in a one-domain statement by its own name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .air import Air
from .ext_scalar import Ext
from .params import MAX_LOG_TRACE


@dataclass(frozen=True)
class Domain:
    name: str
    air: Air

    @property
    def log_length(self) -> int:
        return self.air.trace_length.bit_length() - 1


class Statement:
    """Domains in order, and what binds them.  `target(challenges)` gives
    the value the claimed sums add up to ((k, 4) Montgomery challenges in,
    an Ext out; the same function on both sides); `public` the bytes of
    everything the target reads besides the challenges (public tables the
    target closes over), which the transcript binds in addition to each
    domain's own ``public_bytes``: a statement with a target must be given
    it (b"" when the domains' public bytes already cover what the target
    reads), or a prover could choose those tables after the challenges;
    `public_fractions` the fractions the target sums itself (public tables),
    which the LogUp soundness term counts."""

    def __init__(self, name: str, domains: Sequence[tuple[str, Air]],
                 target: Callable[[np.ndarray], Ext] | None = None,
                 public: bytes | None = None, public_fractions: int = 0):
        if not domains:
            raise ValueError("a statement needs at least one domain")
        self.name = name
        self.domains = tuple(Domain(n, a) for n, a in domains)
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f"statement {name!r} names a domain twice: {names}")
        if len(self.domains) > 1:
            for d in names:
                if not d or "." in d:
                    raise ValueError(f"statement {name!r}: domain name {d!r} must be non-empty "
                                     "and without a dot (matrices are named domain.matrix)")
        for d in self.domains:
            if d.log_length > MAX_LOG_TRACE:
                raise ValueError(f"statement {name!r}: domain {d.name!r} has 2^{d.log_length} rows, "
                                 f"over the 2^{MAX_LOG_TRACE} a proof may have")
        if len(self.domains) > 255:
            raise ValueError(f"statement {name!r} has {len(self.domains)} domains, at most 255")
        if target is not None and public is None:
            raise ValueError(f"statement {name!r} has a target but no `public`: give the bytes of "
                             "everything the target reads besides the challenges (b\"\" if the "
                             "domains' public bytes already cover it), so the transcript binds them")
        if public is not None and not isinstance(public, bytes):
            raise TypeError(f"statement {name!r}: `public` must be bytes, got {type(public).__name__}")
        self._target = target
        self.public = public
        self.public_fractions = public_fractions
        self._check_shared_arguments()
        if not self.single:
            self._check_degree_hooks()

    def _check_shared_arguments(self) -> None:
        """The claimed sums are sound only if every claiming domain's
        relation closes on its claim and a tuple compresses to the same
        value in every domain: each shared argument is one of its AIR's
        lookup arguments, its target is the claimed sum, and all use the
        same alpha and beta challenge indices; a target needs a claim."""
        first = None
        for d in self.claiming:
            dom = self.domains[d]
            arg, label = dom.air.shared_argument, f"statement {self.name!r}, domain {dom.name!r}"
            if not any(a is arg for a in dom.air.lookup_arguments):
                raise ValueError(f"{label}: {type(dom.air).__name__}'s shared argument must be one of "
                                 "its lookup_arguments")
            if not arg.targets_claimed_sum(dom.air):
                raise ValueError(f"{label}: the shared argument {arg.name!r} must have the domain's "
                                 "claimed sum (Frame.claimed_sum()) as its target")
            if first is None:
                first = (dom.name, arg)
            elif (arg.alpha, arg.beta) != (first[1].alpha, first[1].beta):
                raise ValueError(f"{label}: the shared argument draws alpha and beta at challenges "
                                 f"{arg.alpha} and {arg.beta}, domain {first[0]!r}'s at "
                                 f"{first[1].alpha} and {first[1].beta}: a tuple would compress "
                                 "differently in the two")
        if self._target is not None and not self.claiming:
            raise ValueError(f"statement {self.name!r} has a target but no domain claims a sum "
                             "(no AIR has a shared_argument)")

    def _check_degree_hooks(self) -> None:
        """A statement of several domains builds its D from each AIR's
        identity_degree and lookup_degree (algebraic_degree): an AIR whose
        own algebraic_degree says more would have it dropped, so refuse it."""
        for dom in self.domains:
            air, n = dom.air, dom.air.trace_length
            if type(air).algebraic_degree is not Air.algebraic_degree and \
                    air.algebraic_degree(n) != max(air.identity_degree(n), air.lookup_degree(n)):
                raise ValueError(f"statement {self.name!r}, domain {dom.name!r}: "
                                 f"{type(air).__name__} overrides algebraic_degree, which a statement "
                                 "of several domains does not read: override identity_degree or "
                                 "lookup_degree instead (lookup_degree for public fractions)")

    @classmethod
    def of(cls, air: Air) -> "Statement":
        """The one-domain statement of `air`: today's single-AIR proof."""
        return cls(type(air).__name__, [(type(air).__name__, air)])

    # ----------------------------------------------------------- shape --
    @property
    def single(self) -> bool:
        return len(self.domains) == 1

    def matrix_name(self, d: int, name: str) -> str:
        """A matrix of domain `d` as the proof and the caller name it."""
        return name if self.single else f"{self.domains[d].name}.{name}"

    @property
    def log_lengths(self) -> tuple[int, ...]:
        return tuple(d.log_length for d in self.domains)

    @property
    def tall(self) -> int:
        """The domain of the largest height (the first, among equals): its
        DEEP function is FRI's first layer, its LDE is where queries are drawn."""
        lengths = self.log_lengths
        return lengths.index(max(lengths))

    @property
    def num_challenges(self) -> int:
        return max(d.air.num_challenges for d in self.domains)

    def challenges_of(self, d: int, challenges: np.ndarray) -> np.ndarray:
        """Domain d's challenges: the first of the statement's it declares."""
        return challenges[: self.domains[d].air.num_challenges]

    @property
    def claiming(self) -> tuple[int, ...]:
        """The domains that claim a sum (their AIR shares a LogUp argument)."""
        return tuple(i for i, d in enumerate(self.domains) if d.air.shared_argument is not None)

    # ------------------------------------------------------- public data --
    def target(self, challenges: np.ndarray) -> Ext:
        return Ext(0) if self._target is None else self._target(challenges)

    # ---------------------------------------------------------- security --
    def algebraic_degree(self, log_blowup: int) -> int:
        """D of the security formula (docs/SECURITY.md) at blowup
        2^log_blowup: one domain's is its AIR's; for several,
        max(sum_d d_d N_d, 3 F_total) + 2 (k - 1) M_1: one z serves every
        domain, so it avoids every domain's identity (a union bound); the
        LogUp sums share their challenges, so their fractions count
        together, with the target's public ones; and each of the k - 1
        domains besides the tall one adds a DEEP batching and an injection
        gamma into FRI, each of degree at most M_1, the tall domain's LDE
        size (the "- 1" of the formula covers one domain's M-sized terms,
        not these)."""
        if self.single:
            air = self.domains[0].air
            return air.algebraic_degree(air.trace_length)
        m1 = self.domains[self.tall].air.trace_length << log_blowup
        return max(sum(d.air.identity_degree(d.air.trace_length) for d in self.domains),
                   sum(d.air.lookup_degree(d.air.trace_length) for d in self.domains)
                   + 3 * self.public_fractions) + 2 * (len(self.domains) - 1) * m1

    def validate(self) -> None:
        """Check every domain's declaration (raises ValueError); the
        statement's own was checked when it was made."""
        for d in self.domains:
            d.air.validate()


def as_statement(subject: "Air | Statement") -> Statement:
    """A statement, given one or an AIR (its one-domain statement)."""
    return subject if isinstance(subject, Statement) else Statement.of(subject)
