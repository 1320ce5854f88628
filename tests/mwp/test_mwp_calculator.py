"""The safe calculator: exact arithmetic on what a model writes, and refusal of everything else."""

import time
from fractions import Fraction

import pytest

from mwp.calculator import MAX_CHARS, calculate, evaluate, format_value


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("48/2", "24"),
        ("4*2.5", "10"),
        ("20-11.75", "8.25"),
        ("(15+10)*2", "50"),
        ("1200/3", "400"),
        (".5*4", "2"),
        ("0.1+0.2", "0.3"),  # exact, not 0.30000000000000004
        ("-3+1", "-2"),
        ("-(2+3)", "-5"),
        ("2--3", "5"),
        ("+4", "4"),
        ("2+3*4", "14"),  # precedence
        ("(2+3)*4", "20"),
        ("10-4-3", "3"),  # left-associative
        ("64/4/2", "8"),
        ("2**10", "1024"),
        ("2^3", "8"),
        ("2**3**2", "512"),  # powers group to the right
        ("-2**2", "-4"),  # as in Python: the power first
        ("2**-2", "0.25"),
        ("1/3", "0.3333"),  # no finite decimal: rounded
        ("2/3", "0.6667"),
        ("-1/8", "-0.125"),
        (" 7 * 6 ", "42"),
        ("1,000*3", "3000"),
        ("5.", "5"),
        ("(1/7)**20", "0"),
    ],
)
def test_arithmetic(expr, expected):
    assert calculate(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "   ",
        "5/0",
        "1/(3-3)",
        "0**-1",
        "9**9**9",  # 9**387420489: refused before computing
        "10^999999",
        "2**65",
        "2**0.5",  # no roots
        "99999999999999999999",  # beyond the magnitude bound
        "10**15*10",
        "((1/7)**30)**30",  # tiny values are bounded too (their denominators)
        "__import__('os')",
        "__import__('os').system('echo hi')",
        "open('/etc/passwd')",
        "lambda: 1",
        "x+1",
        "2e3",
        "5 apples",
        "3 4",
        "2++",
        "(2+3",
        "2+3)",
        "()",
        "*5",
        "2//3",
        "7%2",
        "1 = 1",
        "1_000",
        "١٢",  # non-ASCII digits
        "(" * 40 + "1" + ")" * 40,  # too deep
        "-" * 50 + "1",
        "1+" * 150 + "1",  # longer than MAX_CHARS
    ],
)
def test_refuses(expr):
    assert evaluate(expr) is None and calculate(expr) is None


def test_length_bound_is_exact():
    ok = "1+" * ((MAX_CHARS - 1) // 2) + "1"
    assert len(ok) <= MAX_CHARS and calculate(ok) == str((MAX_CHARS - 1) // 2 + 1)
    assert calculate(ok + "+1") is None


def test_hostile_inputs_return_fast():
    hostile = [
        "9**9**9",
        "10^999999",
        "((2**64)**64)**64",
        "(" * 1000 + "1" + ")" * 1000,
        "9" * 100_000,
        "1" + "*1" * 10_000,
    ]
    start = time.perf_counter()
    assert all(evaluate(h) is None for h in hostile)
    assert time.perf_counter() - start < 0.5


def test_exact_values_and_formatting():
    assert evaluate("1/3") == Fraction(1, 3)  # the value stays exact; only the text is rounded
    assert evaluate("1/3*3") == 1
    assert format_value(Fraction(-1, 100000)) == "0"  # rounds to zero without a sign
    assert format_value(Fraction(5, 2)) == "2.5"


def test_never_evaluates_code(tmp_path, monkeypatch):
    # Were anything evaluated, this would create a file.
    marker = tmp_path / "pwned"
    monkeypatch.chdir(tmp_path)
    assert calculate(f"__import__('pathlib').Path('{marker}').touch()") is None
    assert not marker.exists()
