"""The config loader refuses a document nested deeper than any config before anything recurses
on it, and leaves nothing for the garbage collector to finalise at an unknown depth.

The fuzz run once failed at random with a RecursionError in pytest's unraisable-exception hook:
the loader let PyYAML recurse until the stack ran out and caught the RecursionError, and an
object the garbage collector finalised down there failed in turn (see tests/fuzz)."""

from __future__ import annotations

import gc
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config_loader import MAX_DEPTH, load_config, parse_yaml
from core.errors import ConfigError
from edge_agent.config import AgentConfig

TOO_DEEP = f"YAML nested too deeply (more than {MAX_DEPTH} levels of lists and mappings)"


def nested_sequences(levels: int) -> str:
    """``levels`` block sequences, one inside the other, holding one scalar."""
    return "- " * levels + "x\n"


def nested_mappings(levels: int) -> str:
    """``levels`` block mappings, one inside the other, holding one scalar."""
    return "".join(" " * i + "k:\n" for i in range(levels - 1)) + " " * (levels - 1) + "k: x\n"


def refusal(path: Path) -> str:
    """The reason the loader gives for refusing ``path`` (the error itself is let go)."""
    try:
        load_config(path, AgentConfig)
    except ConfigError as exc:
        return str(exc)
    raise AssertionError(f"{path} was accepted")


@pytest.fixture
def little_stack() -> Iterator[None]:
    """A recursion limit 400 frames above the caller's: ample for a config of MAX_DEPTH levels
    (the loader's recursion is bounded by it), far from enough for a document as deep as its
    text (the loader used to recurse until the stack ran out)."""
    limit = sys.getrecursionlimit()
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
    sys.setrecursionlimit(depth + 400)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a:\n  " + nested_sequences(100_000), 2),
        ("a:\n" + "".join(" " * (i + 1) + "k:\n" for i in range(5000)), 2 + MAX_DEPTH - 1),
        ("- " * 70 + "{a: 1}\n", 1),
    ],
    ids=["block-sequences", "block-mappings", "sequences-around-a-flow-mapping"],
)
def test_a_deep_document_is_refused_by_its_depth_not_by_the_stack(
    tmp_path: Path, little_stack: None, text: str, line: int
) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    assert refusal(path) == f"{path}:{line}: {TOO_DEEP}"


def test_nesting_through_aliases_counts(tmp_path: Path, little_stack: None) -> None:
    path = tmp_path / "aliases.yaml"
    lines = ["a0: &a0 [x]", *(f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 200))]
    path.write_text("\n".join(lines) + "\n")
    assert refusal(path) == (
        f"{path}: YAML nested too deeply (its aliases nest lists and mappings 201 levels deep,"
        f" at most {MAX_DEPTH})"
    )


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("site: lab-1\ninstruments: &all\n  - name: x\n  - *all\n")
    assert refusal(path) == f"{path}:2: an alias makes this list or mapping hold itself"


def test_the_limit_is_on_lists_and_mappings_not_on_the_values_in_them() -> None:
    data, _ = parse_yaml("a:\n" + "  " + nested_sequences(MAX_DEPTH - 1), "limit.yaml")
    for _ in range(MAX_DEPTH):
        data = data["a"] if isinstance(data, dict) else data[0]
    assert data == "x"  # MAX_DEPTH levels, the last holding a scalar: a config
    data, _ = parse_yaml(nested_mappings(MAX_DEPTH), "limit.yaml")
    assert isinstance(data, dict)
    with pytest.raises(ConfigError, match="levels of lists and mappings"):
        parse_yaml(nested_mappings(MAX_DEPTH + 1), "limit.yaml")


def test_a_refused_construction_leaves_no_generator_for_the_garbage_collector(
    tmp_path: Path,
) -> None:
    """PyYAML builds each list and mapping in a generator; an error stops them half-way, in a
    reference cycle with the loader. The loader closes them, or the garbage collector would,
    wherever the stack happens to be when it runs."""
    path = tmp_path / "unhashable.yaml"
    path.write_text("a: {b: 1}\nc:\n  ? [x]\n  : 1\nd: {e: 2}\n")
    gc.collect()
    gc.disable()
    try:
        assert "found unhashable key" in refusal(path)
        suspended = [
            o
            for o in gc.get_objects()
            if inspect.isgenerator(o)
            and o.gi_frame is not None
            and o.gi_code.co_filename.endswith("constructor.py")
        ]
    finally:
        gc.enable()
    assert suspended == []
