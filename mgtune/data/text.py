"""Text features from item descriptions: TF-IDF + truncated SVD offline, or a sentence-transformers model.

MMRec's ``3feat-encoder`` notebook encodes each item's sentence with sentence-transformers'
``all-MiniLM-L6-v2`` (384-d). That needs the optional extra ``pip install mgtune[text]`` and the
model's weights from the hub, so it is opt-in (``--text-encoder minilm``). The default,
``tfidf``, works offline: TF-IDF over words and bigrams, then truncated SVD (LSA) to at most
``dim`` components (fewer when there are fewer items or terms), each row L2-normalised. It is a
weaker encoder than MiniLM; a study's card records which one made the features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mgtune.errors import ConfigError

__all__ = ["TEXT_ENCODERS", "DEFAULT_TEXT_ENCODER", "check_text_encoder", "encode_texts"]

TEXT_ENCODERS = ("tfidf", "minilm")
DEFAULT_TEXT_ENCODER = "tfidf"  # applied only where there is text to encode
_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_MISSING = ("--text-encoder minilm needs sentence-transformers: pip install 'mgtune[text]' "
                   "(or use --text-encoder tfidf)")


def check_text_encoder(encoder: str) -> None:
    """Refuse an unknown encoder, or MiniLM without its extra, before any data work rather than after it."""
    if encoder not in TEXT_ENCODERS:
        raise ConfigError(f"--text-encoder must be one of {', '.join(TEXT_ENCODERS)}, got {encoder!r}")
    if encoder == "minilm":
        import importlib.util

        if importlib.util.find_spec("sentence_transformers") is None:
            raise ConfigError(_MINILM_MISSING)


def encode_texts(texts: Sequence[str], encoder: str = "tfidf", dim: int = 384, seed: int = 0) -> np.ndarray:
    """One float32 row per text.

    Shapes: returns ``(len(texts), d)``: ``d = 384`` for MiniLM, ``d <= dim`` for TF-IDF.
    """
    if encoder == "tfidf":
        return _tfidf_svd(texts, dim, seed)
    if encoder == "minilm":
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError(_MINILM_MISSING) from None
        model = SentenceTransformer(_MINILM)
        return np.asarray(model.encode(list(texts), batch_size=256, show_progress_bar=False), dtype=np.float32)
    raise ConfigError(f"--text-encoder must be one of {', '.join(TEXT_ENCODERS)}, got {encoder!r}")


def _tfidf_svd(texts: Sequence[str], dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=1, max_features=200_000, sublinear_tf=True,
                            token_pattern=r"(?u)\b\w+\b")
    try:
        x = tfidf.fit_transform(texts)
    except ValueError:  # every text empty: no vocabulary
        return np.zeros((len(texts), 1), dtype=np.float32)
    if min(x.shape) < 2:  # one text or one term: nothing to reduce
        return np.asarray(normalize(x).toarray(), dtype=np.float32)
    n_comp = max(1, min(dim, x.shape[0] - 1, x.shape[1] - 1))
    reduced = TruncatedSVD(n_components=n_comp, random_state=seed).fit_transform(x)
    return np.asarray(normalize(reduced), dtype=np.float32)
