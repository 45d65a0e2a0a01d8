"""BERT for pretraining on ``tf.Module``: encoder (post-LN, as BERT), tied masked-LM head, NSP head.

Every weight is a ``tf.Variable`` held in ``model.weights`` under its google-research/bert name
(``bert/embeddings/word_embeddings``, ``bert/encoder/layer_0/attention/self/query/kernel``, ...,
``cls/predictions/output_bias``, ``cls/seq_relationship/output_weights``), so the export to google's
``bert_model.ckpt`` and ``--init_checkpoint`` are name-for-name copies, and the optimizer excludes LayerNorm
and bias weights by name as google's does. Variables are float32; with ``compute_dtype=tf.bfloat16`` the
matmuls run in bf16 while LayerNorm, softmax and the logits stay float32.

Dropout is stateless: its masks come from ``dropout_seed`` (the trainer folds in the step and the replica),
so a resumed run draws exactly the masks an uninterrupted run would.
"""

from __future__ import annotations

import math
import zlib

import tensorflow as tf

from pipeline.pretrain.config import BertConfig

LAYER_WEIGHTS = (  # (suffix, shape kind, init) for each encoder layer; shapes filled in by weight_shapes()
    ("attention/self/query/kernel", "hh", "normal"), ("attention/self/query/bias", "h", "zeros"),
    ("attention/self/key/kernel", "hh", "normal"), ("attention/self/key/bias", "h", "zeros"),
    ("attention/self/value/kernel", "hh", "normal"), ("attention/self/value/bias", "h", "zeros"),
    ("attention/output/dense/kernel", "hh", "normal"), ("attention/output/dense/bias", "h", "zeros"),
    ("attention/output/LayerNorm/gamma", "h", "ones"), ("attention/output/LayerNorm/beta", "h", "zeros"),
    ("intermediate/dense/kernel", "hi", "normal"), ("intermediate/dense/bias", "i", "zeros"),
    ("output/dense/kernel", "ih", "normal"), ("output/dense/bias", "h", "zeros"),
    ("output/LayerNorm/gamma", "h", "ones"), ("output/LayerNorm/beta", "h", "zeros"),
)


def weight_shapes(config: BertConfig) -> list[tuple[str, tuple[int, ...], str]]:
    """(google name, shape, initializer) of every weight, in google's order."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    dims = {"hh": (h, h), "h": (h,), "hi": (h, i), "i": (i,), "ih": (i, h)}
    out = [("bert/embeddings/word_embeddings", (v, h), "normal"),
           ("bert/embeddings/token_type_embeddings", (config.type_vocab_size, h), "normal"),
           ("bert/embeddings/position_embeddings", (config.max_position_embeddings, h), "normal"),
           ("bert/embeddings/LayerNorm/gamma", (h,), "ones"), ("bert/embeddings/LayerNorm/beta", (h,), "zeros")]
    for layer in range(config.num_hidden_layers):
        out += [(f"bert/encoder/layer_{layer}/{suffix}", dims[kind], init) for suffix, kind, init in LAYER_WEIGHTS]
    out += [("bert/pooler/dense/kernel", (h, h), "normal"), ("bert/pooler/dense/bias", (h,), "zeros"),
            ("cls/predictions/transform/dense/kernel", (h, h), "normal"),
            ("cls/predictions/transform/dense/bias", (h,), "zeros"),
            ("cls/predictions/transform/LayerNorm/gamma", (h,), "ones"),
            ("cls/predictions/transform/LayerNorm/beta", (h,), "zeros"),
            ("cls/predictions/output_bias", (v,), "zeros"),
            ("cls/seq_relationship/output_weights", (2, h), "normal"),
            ("cls/seq_relationship/output_bias", (2,), "zeros")]
    return out


def activation(name: str):
    if name == "gelu":
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: tf.nn.gelu(x, approximate=True)
    if name == "relu":
        return tf.nn.relu
    raise ValueError(f"unknown hidden_act {name!r}")


class BertPretrainer(tf.Module):
    def __init__(self, config: BertConfig, seed: int = 0, compute_dtype=tf.float32, name: str = "bert_pretrainer"):
        super().__init__(name=name)
        self.config = config
        self.compute_dtype = tf.as_dtype(compute_dtype)
        self.act = activation(config.hidden_act)
        self.weights = {}
        for wname, shape, init in weight_shapes(config):
            if init == "normal":
                value = tf.random.stateless_truncated_normal(
                    shape, seed=[seed, zlib.crc32(wname.encode())], stddev=config.initializer_range)
            else:
                value = tf.ones(shape) if init == "ones" else tf.zeros(shape)
            self.weights[wname] = tf.Variable(value, name=wname)

    # ---- pieces
    def w(self, name: str) -> tf.Tensor:
        value = self.weights[name]
        return tf.cast(value, self.compute_dtype) if self.compute_dtype != tf.float32 else value

    def dense(self, x, prefix: str):
        return tf.matmul(x, self.w(prefix + "/kernel")) + self.w(prefix + "/bias")

    def layer_norm(self, x, prefix: str):
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
        out = (x32 - mean) * tf.math.rsqrt(variance + 1e-12) * self.weights[prefix + "/gamma"] \
            + self.weights[prefix + "/beta"]
        return tf.cast(out, self.compute_dtype)

    @staticmethod
    def dropout(x, rate: float, seed, site: int):
        if seed is None or rate <= 0:
            return x
        return tf.nn.experimental.stateless_dropout(
            x, rate, seed=tf.random.experimental.stateless_fold_in(seed, site))

    # ---- the model
    def encode(self, input_ids, input_mask, segment_ids, dropout_seed=None):
        """(sequence output [B, L, H], pooled output [B, H]); dropout only when ``dropout_seed`` is given."""
        c = self.config
        batch, length = input_ids.shape[0], input_ids.shape[1]
        if batch is None:
            batch = tf.shape(input_ids)[0]
        heads, size = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        hidden_rate, attention_rate = c.hidden_dropout_prob, c.attention_probs_dropout_prob
        x = (tf.gather(self.weights["bert/embeddings/word_embeddings"], input_ids)
             + tf.gather(self.weights["bert/embeddings/token_type_embeddings"], segment_ids)
             + self.weights["bert/embeddings/position_embeddings"][:length][None])
        x = self.layer_norm(tf.cast(x, self.compute_dtype), "bert/embeddings/LayerNorm")
        x = self.dropout(x, hidden_rate, dropout_seed, 0)
        bias = (1.0 - tf.cast(input_mask, tf.float32))[:, None, None, :] * -10000.0

        def split(t):
            return tf.transpose(tf.reshape(t, [batch, length, heads, size]), [0, 2, 1, 3])

        for layer in range(c.num_hidden_layers):
            p = f"bert/encoder/layer_{layer}/"
            q = split(self.dense(x, p + "attention/self/query"))
            k = split(self.dense(x, p + "attention/self/key"))
            v = split(self.dense(x, p + "attention/self/value"))
            scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) / math.sqrt(size) + bias
            probs = self.dropout(tf.cast(tf.nn.softmax(scores, axis=-1), self.compute_dtype), attention_rate,
                                 dropout_seed, 3 * layer + 1)
            context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), [batch, length, c.hidden_size])
            attended = self.dropout(self.dense(context, p + "attention/output/dense"), hidden_rate, dropout_seed,
                                    3 * layer + 2)
            x = self.layer_norm(attended + x, p + "attention/output/LayerNorm")
            inner = self.act(self.dense(x, p + "intermediate/dense"))
            out = self.dropout(self.dense(inner, p + "output/dense"), hidden_rate, dropout_seed, 3 * layer + 3)
            x = self.layer_norm(out + x, p + "output/LayerNorm")
        pooled = tf.tanh(self.dense(x[:, 0], "bert/pooler/dense"))
        return x, pooled

    def mlm_logits(self, sequence, positions):
        """float32 logits [B, P, V] at ``positions`` [B, P]; the output embedding is the input one (tied)."""
        x = tf.gather(sequence, positions, batch_dims=1)
        x = self.act(self.dense(x, "cls/predictions/transform/dense"))
        x = self.layer_norm(x, "cls/predictions/transform/LayerNorm")
        logits = tf.einsum("bph,vh->bpv", x, self.w("bert/embeddings/word_embeddings"))
        return tf.cast(logits, tf.float32) + self.weights["cls/predictions/output_bias"]

    def nsp_logits(self, pooled):
        logits = tf.matmul(pooled, self.w("cls/seq_relationship/output_weights"), transpose_b=True)
        return tf.cast(logits, tf.float32) + self.weights["cls/seq_relationship/output_bias"]

    def __call__(self, features: dict, dropout_seed=None) -> dict:
        sequence, pooled = self.encode(features["input_ids"], features["input_mask"], features["segment_ids"],
                                       dropout_seed)
        return {"mlm_logits": self.mlm_logits(sequence, features["masked_lm_positions"]),
                "nsp_logits": self.nsp_logits(pooled)}

    def numpy_weights(self) -> dict:
        return {name: v.numpy() for name, v in self.weights.items()}
