r"""Math that more than one model needs, written once. A map of what is here and what is for what.

**Sparse matrices: four forms, because they change differently.** All are CSR (about 3x faster
than COO for ``A @ X`` on CPU). Pick by "is the matrix constant, symmetric, or learned?":

===========================  ==========================================  ===========================
form (module)                for                                         product
===========================  ==========================================  ===========================
plain CSR ``Tensor``         symmetric constant graphs (the normalised   `sparse.symmetric_spmm`
(`sparse.sparse_matrix`)     user-item graph, `propagation`); graphs      (its own transpose), or
                             drawn anew per batch (SELFCFED_LGN's         ``torch.sparse.mm`` for a
                             `edge_dropout.sparse_dropout`)               per-batch matrix
`sparse.FixedSparse`         constant non-symmetric graphs: item kNN     `sparse.spmm`
                             graphs, MGCN's user-item block, the user-
                             user graph (`user_graph`)
`mean_aggregation.`          :math:`D^{-1}(A + I)` of MMGCN, MVGAE,       `mean_aggregation.`
``MeanAdjacency``            LATTICE: the symmetric 0/1 ``A + I`` plus    ``mean_aggregate``
                             the inverse degrees
`edge_list.EdgeGraph`        a fixed pattern whose *values* are learned  ``EdgeGraph.spmm`` /
                             (LATTICE's item graph, GRCN's attention-     ``.sddmm``
                             weighted user-item graph)
===========================  ==========================================  ===========================

Why not fewer: ``torch.sparse.mm`` rebuilds a CSR transpose on every backward call (a sort of all
entries), so constant graphs keep theirs (`FixedSparse`) or are their own (symmetric ones); a
symmetric plain CSR needs no second copy. ``MeanAdjacency`` stays a symmetric matrix times a
vector of inverse degrees so the backward can reuse it: folding the degrees into the matrix would
round differently (``(A x) / d`` is not ``(A / d) x`` in floating point) and change every result of
MMGCN, MVGAE and LATTICE. ``EdgeGraph`` is the only form differentiable in its values.

**Two autograd products, for the same reason.** `sparse` (``_ConstantSpmm``) differentiates only
the dense operand and reuses a transpose built once; `edge_list` (``_EdgeSpmm``) also returns the
gradient of the edge values (a sampled dense-dense product) and must rebuild the transpose from the
current values each call. The second one on a constant graph would pay that rebuild every
backward; the first one on a learned graph would drop the values' gradient.

**Cosine kNN: one search loop** (`knn`). `knn.knn_indices` (neighbours only: FREEDOM, DRAGON),
`knn.cosine_knn_edges` (the same neighbours with differentiable similarity values: LATTICE, MGCN)
and `knn.topk_similarity` (ItemKNNCBF's shrunk cosine with its values) share `knn._chunked_topk`.
Their arithmetic stays apart: normalising rows first and dividing the dot product afterwards round
differently, which can swap near-tied neighbours.

**One normalisation** :math:`D^{-1/2} A D^{-1/2}`: `propagation.sym_norm_values`. The references'
two variants are its ``eps``: weighted graphs with empty rows mapped to 0 (LATTICE, MGCN;
``eps = 0``) and 0/1 graphs with ``1e-7`` added to every degree (the user-item graph, FREEDOM's and
DRAGON's kNN graphs; `propagation.binary_sym_norm_values`).

**The graphs built from these**, each cached on disk keyed by all its inputs (`cache`):

- `propagation.bipartite_norm_adj`: the normalised user-item graph, and `propagation.layer_mean`
  (LightGCN's mean of layers); `edge_dropout.PrunableGraph` re-samples it per epoch (FREEDOM,
  LayerGCN);
- `mixed_knn_graph.mixed_knn_adj`: FREEDOM's and DRAGON's frozen item graph, 0/1 kNN graphs of
  the modalities, normalised and mixed;
- `similarity_graph.similarity_knn_adj`: LATTICE's and MGCN's frozen item graph, kNN graphs that
  keep the cosine similarity as the edge weight;
- `user_graph`: DualGNN's and DRAGON's user co-interaction graph, sampled per epoch.

**Everything else:** `interactions` (training pairs, required modalities), `feature_tables`
(trainable raw features and their projections), `losses` (BPR, L2, InfoNCE), `bootstrap`
(BYOL-style targets of SelfCF and BM3), `modality_gcn` (the skeleton DualGNN and DRAGON share).
"""
