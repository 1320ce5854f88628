"""A small, safe calculator for GSM8K-style annotations (`<<48/2=24>>`).

The text it reads is written by a model, so it is untrusted: this is a recursive-descent parser
over numbers, `+ - * /`, parentheses, unary signs and powers (`**` or `^`), nothing else; no
`eval`, no names, no calls. Arithmetic is exact (`Fraction`: `0.1+0.2` is `0.3`), and every step
is bounded — input length, nesting depth, exponent, magnitude and the size of every intermediate
number — so no input can take noticeable time or memory. Anything it cannot or will not compute
(division by zero, `9**9**9`, letters, an empty string) gives None: the model then goes on
writing unaided, and no value is ever made up.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_CHARS = 200  # longer than any GSM8K annotation (their longest is well under 100)
MAX_DEPTH = 32  # nested parentheses / signs / powers; keeps the recursion far from Python's limit
MAX_EXPONENT = 64  # |n| in x**n; also requires an integer n (no roots)
MAX_ABS = Fraction(10**15)  # every intermediate and the result
MAX_BITS = 512  # numerator and denominator of every intermediate: tiny values cannot blow up either
PLACES = 4  # a result that is no short decimal is rounded to this many places

_TOKEN = re.compile(r"\s*(?:(\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)|(\*\*|[-+*/^()]))", re.ASCII)  # ASCII digits only


class _Refused(Exception):
    """The expression is not one this calculator computes (parse error or a bound hit)."""


def _tokens(expr: str) -> list[str]:
    out, pos = [], 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise _Refused
        out.append(m.group(1) or m.group(2))
        pos = m.end()
    return out


def _checked(value: Fraction) -> Fraction:
    if abs(value) > MAX_ABS or value.denominator.bit_length() > MAX_BITS or value.numerator.bit_length() > MAX_BITS:
        raise _Refused
    return value


class _Parser:
    """expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ;
    unary := ('+'|'-') unary | power ; power := atom (('**'|'^') unary)? ; atom := number | '(' expr ')'.
    As in Python, `-2**2` is -4 and powers group to the right (`2**3**2` is 2**9)."""

    def __init__(self, tokens: list[str]) -> None:
        self.toks, self.i, self.depth = tokens, 0, 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise _Refused
        self.i += 1
        return tok

    def parse(self) -> Fraction:
        value = self.expr()
        if self.peek() is not None:
            raise _Refused  # trailing tokens, e.g. `2 3`
        return value

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term()
            value = _checked(value + rhs if op == "+" else value - rhs)
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op, rhs = self.take(), self.unary()
            if op == "/" and rhs == 0:
                raise _Refused
            value = _checked(value * rhs if op == "*" else value / rhs)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            op = self.take()
            value = self.nested(self.unary)
            return -value if op == "-" else value
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() in ("**", "^"):
            self.take()
            return _power(base, self.nested(self.unary))
        return base

    def atom(self) -> Fraction:
        tok = self.take()
        if tok == "(":
            value = self.nested(self.expr)
            if self.take() != ")":
                raise _Refused
            return value
        if tok[0].isdigit() or tok[0] == ".":
            return _checked(Fraction(tok.replace(",", "")))
        raise _Refused  # an operator where a number belongs

    def nested(self, rule) -> Fraction:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused
        try:
            return rule()
        finally:
            self.depth -= 1


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    """Integer exponents only, and only when the result's size is known to stay in bounds
    before it is computed (`10^999999` is refused without computing anything)."""
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise _Refused
    n = int(exponent)
    if base == 0 and n < 0:
        raise _Refused  # 0 ** -1 is a division by zero
    if max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(n) > MAX_BITS:
        raise _Refused
    return _checked(base**n)


def evaluate(expr: str) -> Fraction | None:
    """The exact value of an arithmetic expression, or None when it is refused."""
    if not expr or len(expr) > MAX_CHARS:
        return None
    try:
        tokens = _tokens(expr)
        return _Parser(tokens).parse() if tokens else None
    except _Refused:
        return None


def format_value(value: Fraction) -> str:
    """`24`, `2.5`, `-0.75`; a value with more than PLACES decimals is rounded (1/3 → 0.3333)."""
    rounded = round(value, PLACES)
    whole, frac = divmod(abs(rounded.numerator) * 10**PLACES // rounded.denominator, 10**PLACES)
    digits = f"{frac:0{PLACES}d}".rstrip("0")
    sign = "-" if rounded < 0 else ""
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def calculate(expr: str) -> str | None:
    """`48/2` → `24`: the text a calculator annotation's result is written as, or None."""
    value = evaluate(expr)
    return None if value is None else format_value(value)
