"""Coverage-guided fuzzing with atheris (libFuzzer for Python), for runs of millions of inputs by hand.

    python -m tests.fuzz.fuzz sip|stream|manscdp [libFuzzer options, e.g. -runs=5000000 -max_len=4096 CORPUS_DIR]

See tests/fuzz/README.md. Without atheris installed, ``--hypothesis N`` runs the same target on N
hypothesis-generated inputs instead (slower, not coverage-guided).
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in ("sip", "stream", "manscdp"):
        sys.exit("usage: python -m tests.fuzz.fuzz sip|stream|manscdp [libFuzzer options] | --hypothesis N")
    kind = argv[1]
    logging.disable(logging.CRITICAL)  # encoding warnings for odd inputs would flood the terminal
    if len(argv) >= 4 and argv[2] == "--hypothesis":
        _hypothesis(kind, int(argv[3]))
        return
    import atheris

    with atheris.instrument_imports(include=["sip", "gb28181"]):
        from tests.fuzz import targets
    target = targets.TARGETS[kind]
    seed_inputs = targets.seeds(kind)

    def one_input(data: bytes) -> None:
        target(data)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        # libFuzzer's byte mutations, sometimes started from a fixture so the structure stays plausible
        if seed % 8 == 0 and seed_inputs:
            data = seed_inputs[seed // 8 % len(seed_inputs)]
        return atheris.Mutate(data, max_size)

    atheris.Setup([argv[0], *argv[2:]], one_input, custom_mutator=mutator)
    atheris.Fuzz()


def _hypothesis(kind: str, count: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.fuzz import targets

    seed_inputs = targets.seeds(kind)
    target = targets.TARGETS[kind]

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.binary(max_size=4096), st.builds(_mutate, st.sampled_from(seed_inputs), st.binary(max_size=16),
                                                          st.integers(0, 1 << 30))))  # fmt: skip
    def run(data: bytes) -> None:
        target(data)

    run()
    print(f"{kind}: {count} inputs, no crash")


def _mutate(seed: bytes, insert: bytes, at: int) -> bytes:
    """A fixture with bytes inserted, and a byte flipped, at positions chosen by ``at``."""
    data = bytearray(seed)
    pos = at % (len(data) + 1)
    data[pos:pos] = insert
    if data:
        data[(at >> 8) % len(data)] ^= 1 << (at >> 20) % 8
    return bytes(data)


if __name__ == "__main__":
    main(sys.argv)
