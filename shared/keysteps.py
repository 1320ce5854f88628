"""Key tokens of a target against a wrong answer to the same question (EDIT: Dai et al., *Beyond
Imitation: Learning Key Reasoning Steps from Dual Chain-of-Thoughts*, 2405.19737).

A wrong solution and the right one mostly agree: the same forms, the same restated numbers. Where
they part is where the reasoning went wrong. The two token sequences are aligned by minimum edit
distance (unit costs for insertion, deletion and substitution); a target token that the alignment
does not pair with an equal token of the wrong answer is a key token, and training weighs its loss
more (`train.key_weight`).
"""

from __future__ import annotations

from collections.abc import Sequence


def key_tokens(target: Sequence[int], wrong: Sequence[int]) -> list[bool]:
    """For each token of `target`, whether it is a key token: not matched to an equal token of
    `wrong` by a minimum-edit-distance alignment. Among alignments of equal cost the backtrace
    prefers a match, then a substitution, then skipping a target token, so the marks are
    deterministic. An empty `wrong` makes every token key; an equal one makes none."""
    n, m = len(target), len(wrong)
    # cost[i][j]: edit distance between target[:i] and wrong[:j]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, above, t = cost[i], cost[i - 1], target[i - 1]
        for j in range(1, m + 1):
            row[j] = min(above[j - 1] + (t != wrong[j - 1]), above[j] + 1, row[j - 1] + 1)
    key = [True] * n
    i, j = n, m
    while i > 0 and j > 0:
        here = cost[i][j]
        if target[i - 1] == wrong[j - 1] and here == cost[i - 1][j - 1]:
            key[i - 1] = False
            i, j = i - 1, j - 1
        elif here == cost[i - 1][j - 1] + 1:
            i, j = i - 1, j - 1  # substituted: key
        elif here == cost[i - 1][j] + 1:
            i -= 1  # a target token the wrong answer lacks: key
        else:
            j -= 1  # a token only the wrong answer has
    return key


def token_weights(target: Sequence[int], wrong: Sequence[int], weight: float) -> list[float]:
    """`weight` for each key token of `target` (against `wrong`), 1 for the others."""
    return [weight if k else 1.0 for k in key_tokens(target, wrong)]
