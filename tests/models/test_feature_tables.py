"""`project_rows` computes what plain indexing computes: the same values and the same gradients."""

import torch

from mgtune.models._blocks.feature_tables import project_rows


def test_project_rows_matches_indexing_in_values_and_gradients() -> None:
    torch.manual_seed(0)
    proj = torch.nn.Linear(16, 4)
    rows = torch.tensor([5, 1, 5, 0, 9, 1, 1])  # repeats, unsorted, as a batch of positives and negatives
    grads = []
    for fn in (lambda t: proj(t[rows]), lambda t: project_rows(proj, t, rows)):
        table = torch.randn(10, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
        proj.zero_grad()
        out = fn(table)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()  # weights differ per output entry
        grads.append((out.detach(), table.grad.clone(), proj.weight.grad.clone()))
    for plain, distinct in zip(*grads):
        torch.testing.assert_close(distinct, plain)
    assert grads[0][1][[2, 3, 4, 6, 7, 8]].abs().sum() == 0  # rows outside the batch get no gradient
