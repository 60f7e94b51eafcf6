"""The symmetric normalisation D^-1/2 A D^-1/2 on graphs small enough to write the values out."""

from __future__ import annotations

import math

import torch

from mgtune.models._blocks.propagation import BINARY_EPS, bipartite_norm_adj, sym_norm_values

# a path 0 - 1 - 2 and a node 3 with no edge: degrees 1, 2, 1, 0
ROWS = torch.tensor([0, 1, 1, 2])
COLS = torch.tensor([1, 0, 2, 1])


def test_binary_graph_values_without_epsilon() -> None:
    values = sym_norm_values(ROWS, COLS, torch.ones(4, dtype=torch.float64), 4)
    assert values.tolist() == [1 / math.sqrt(2)] * 4


def test_binary_graph_values_with_mmrecs_epsilon() -> None:
    values = sym_norm_values(ROWS, COLS, torch.ones(4, dtype=torch.float64), 4, eps=BINARY_EPS)
    expected = 1 / math.sqrt((1 + BINARY_EPS) * (2 + BINARY_EPS))
    assert torch.allclose(values, torch.full((4,), expected, dtype=torch.float64), rtol=0, atol=1e-15)
    assert values[0].item() != 1 / math.sqrt(2)  # the epsilon is applied, not dropped


def test_weighted_graph_uses_weighted_degrees_and_zero_rows_stay_zero() -> None:
    # weights 2 on 0-1, 3 on 1-2: degrees 2, 5, 3; node 3 has degree 0 and no entries
    values = sym_norm_values(ROWS, COLS, torch.tensor([2.0, 2.0, 3.0, 3.0], dtype=torch.float64), 4)
    expected = [2 / math.sqrt(2 * 5), 2 / math.sqrt(5 * 2), 3 / math.sqrt(5 * 3), 3 / math.sqrt(3 * 5)]
    assert torch.allclose(values, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-15)
    # an entry whose row sums to 0 (a weight of 0) is 0, not NaN (MMRec's inf -> 0)
    zero = sym_norm_values(torch.tensor([0, 3]), torch.tensor([3, 0]), torch.tensor([0.0, 0.0]), 4)
    assert zero.tolist() == [0.0, 0.0]


def test_bipartite_adjacency_of_one_user_and_two_items() -> None:
    # user 0 rated items 0 and 1 (item 1 twice: counted once): degrees 2 (user), 1, 1 (items)
    adj = bipartite_norm_adj(torch.tensor([0, 0, 0]), torch.tensor([0, 1, 1]), 1, 2).to_dense()
    w = 1 / math.sqrt((2 + BINARY_EPS) * (1 + BINARY_EPS))
    expected = torch.tensor([[0.0, w, w], [w, 0.0, 0.0], [w, 0.0, 0.0]])
    assert torch.allclose(adj, expected, rtol=0, atol=1e-7)
