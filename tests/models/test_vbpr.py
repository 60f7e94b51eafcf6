"""VBPR: an item is its id embedding next to a projection of its text+image features; the loss is
MMRec's BPR with gamma plus reg_weight times the embedding norms."""

from __future__ import annotations

import dataclasses

import torch

from mgtune.data import Batch, Dataset
from mgtune.models.vbpr import VBPR, VBPRConfig


def _batch(data: Dataset, n: int = 64) -> Batch:
    gen = torch.Generator().manual_seed(1)
    return Batch(torch.as_tensor(data.train.users[:n]), torch.as_tensor(data.train.items[:n]),
                 torch.randint(data.n_items, (n,), generator=gen))


def test_item_is_id_embedding_next_to_projected_text_then_image(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    model = VBPR.from_dataset(tiny_dataset, VBPRConfig(embedding_size=8))
    raw = torch.cat([torch.as_tensor(tiny_dataset.text_feat), torch.as_tensor(tiny_dataset.image_feat)], 1)
    assert torch.equal(model.item_raw, raw)  # text first, as MMRec concatenates
    assert model.user_emb.shape == (tiny_dataset.n_users, 16)
    with torch.no_grad():
        expected = torch.cat([model.item_emb, raw @ model.item_linear.weight.T + model.item_linear.bias], 1)
        items = model._items()
        torch.testing.assert_close(items, expected)
        # the training path (projection of the batch's distinct rows only) gives the same rows
        rows = torch.tensor([4, 0, 4, 9])
        torch.testing.assert_close(model._items(rows), items[rows])
        model.eval()
        users = torch.tensor([0, 3])
        torch.testing.assert_close(model.score(users), model.user_emb[users] @ expected.T)

    # the projection is what carries the features: other features, other items and scores
    image = torch.as_tensor(tiny_dataset.image_feat).numpy()
    other = VBPR.from_dataset(dataclasses.replace(tiny_dataset, image_feat=image * 2), VBPRConfig(embedding_size=8))
    with torch.no_grad():  # the same weights (item_raw, a buffer, keeps the other features)
        other.item_emb.copy_(model.item_emb)
        other.item_linear.load_state_dict(model.item_linear.state_dict())
        other_items = other._items()
    assert torch.equal(other_items[:, :8], items[:, :8]) and not torch.allclose(other_items[:, 8:], items[:, 8:])


def test_reg_weight_adds_the_embedding_norms(tiny_dataset: Dataset) -> None:
    torch.manual_seed(0)
    plain = VBPR.from_dataset(tiny_dataset, VBPRConfig(reg_weight=0.0))
    regularised = VBPR.from_dataset(tiny_dataset, VBPRConfig(reg_weight=0.25))
    regularised.load_state_dict(plain.state_dict())
    batch = _batch(tiny_dataset)
    n = len(batch.users)
    with torch.no_grad():
        items = plain._items()
        u, pos, neg = plain.user_emb[batch.users], items[batch.pos_items], items[batch.neg_items]
        bpr = -torch.log(1e-10 + torch.sigmoid((u * pos).sum(1) - (u * neg).sum(1))).mean()
        norms = (u.norm() + pos.norm() + neg.norm()) / n
        torch.testing.assert_close(plain.loss(batch), bpr)
        torch.testing.assert_close(regularised.loss(batch), bpr + 0.25 * norms)

    # the regulariser shrinks: its gradient on the batch's user rows points along the rows themselves
    plain.loss(batch).backward()
    regularised.loss(batch).backward()
    assert plain.user_emb.grad is not None and regularised.user_emb.grad is not None
    extra = regularised.user_emb.grad - plain.user_emb.grad
    rows = torch.unique(batch.users)
    assert (extra[rows] * regularised.user_emb.detach()[rows]).sum() > 0
    untouched = torch.ones(tiny_dataset.n_users, dtype=torch.bool)
    untouched[rows] = False
    assert torch.equal(extra[untouched], torch.zeros_like(extra[untouched]))
