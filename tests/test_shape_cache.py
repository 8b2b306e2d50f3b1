"""prover/shape_cache.py: kept by key for the same `keep` object, rebuilt for
another, the least recently used dropped past the size."""
from zksidecar.prover.shape_cache import ShapeCache


def test_kept_for_the_same_object_rebuilt_for_another():
    cache, built = ShapeCache(2), []

    def build(v):
        built.append(v)
        return v

    owner, other = object(), object()
    assert cache.get("k", owner, lambda: build(1)) == 1
    assert cache.get("k", owner, lambda: build(2)) == 1          # a hit
    assert cache.get("k", other, lambda: build(3)) == 3          # same key, another object
    assert cache.get("k", other, lambda: build(4)) == 3
    assert built == [1, 3]


def test_the_least_recently_used_goes_first():
    cache, owner = ShapeCache(2), object()
    cache.get("a", owner, lambda: 1)
    cache.get("b", owner, lambda: 2)
    cache.get("a", owner, lambda: 0)          # a is now the most recent
    cache.get("c", owner, lambda: 3)          # b goes
    assert len(cache) == 2 and cache.values() == [1, 3]
    assert cache.get("b", owner, lambda: 5) == 5
