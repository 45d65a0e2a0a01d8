"""AdamW and LAMB as ``tf.Module`` optimizers, and warm-up then linear decay.

- AdamW is google-research/bert's ``AdamWeightDecayOptimizer``: Adam moments without bias correction,
  ``update = m / (sqrt(v) + eps) + weight_decay * w`` (decoupled weight decay), ``w -= lr * update``.
- LAMB follows the paper (You et al. 2019, Algorithm 2) as NVIDIA's and tf-models' BERT LAMB: bias-corrected
  moments, ``r = m_hat / (sqrt(v_hat) + eps) + weight_decay * w`` (decay *inside* the trust ratio), and
  ``w -= lr * (||w|| / ||r||) * r`` (ratio 1 when either norm is 0).
- LayerNorm and bias weights are excluded from weight decay and from LAMB's layer adaptation, by name.
- Gradients are clipped to a global norm (1.0 as google's) before the update.

``apply_gradients`` is called in replica context with gradients already summed over replicas; it updates
every copy through ``merge_call`` + ``strategy.extended.update``, so the same code runs on the default
strategy, MirroredStrategy and TPUStrategy. ``iterations`` is the training step (the checkpointed one).
"""

from __future__ import annotations

import functools

import tensorflow as tf

EXCLUDE = ("LayerNorm", "layer_norm", "bias")


class WarmupLinearDecay:
    """``peak * step / warmup`` for ``step < warmup``, then ``peak * (1 - step / total)``, floored at 0."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int):
        self.peak, self.total, self.warmup = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        decayed = self.peak * tf.maximum(0.0, 1.0 - step / float(max(self.total, 1)))
        if self.warmup <= 0:
            return decayed
        return tf.where(step < self.warmup, self.peak * step / float(self.warmup), decayed)


class Optimizer(tf.Module):
    def __init__(self, weights: dict, schedule, kind: str = "adamw", weight_decay: float = 0.01,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-6, clip_norm: float = 1.0,
                 exclude: tuple[str, ...] = EXCLUDE, name: str = "optimizer"):
        super().__init__(name=name)
        if kind not in ("adamw", "lamb"):
            raise ValueError(f"unknown optimizer {kind!r}: adamw or lamb")
        self.kind, self.schedule = kind, schedule
        self.weight_decay, self.beta_1, self.beta_2, self.epsilon, self.clip_norm = (
            weight_decay, beta_1, beta_2, epsilon, clip_norm)
        self.names = list(weights)
        self.decayed = {n: not any(x in n for x in exclude) for n in self.names}
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.m = {n: tf.Variable(tf.zeros_like(weights[n]), trainable=False, name=n + "/adam_m") for n in self.names}
        self.v = {n: tf.Variable(tf.zeros_like(weights[n]), trainable=False, name=n + "/adam_v") for n in self.names}

    def learning_rate(self):
        return self.schedule(self.iterations)

    def apply_gradients(self, weights: dict, grads: list, names: list[str] | None = None) -> tf.Tensor:
        """Clip, then update ``weights[names]`` (default: all, in ``self.names`` order) on every replica;
        returns the global norm. Weights without a gradient (NSP head and pooler in roberta mode) are left."""
        names = list(names or self.names)
        if self.clip_norm:
            grads, norm = tf.clip_by_global_norm(grads, self.clip_norm)
        else:
            norm = tf.linalg.global_norm(grads)
        context = tf.distribute.get_replica_context()
        context.merge_call(self._distributed_apply, args=(weights, grads, names))
        return norm

    def _distributed_apply(self, strategy, weights, grads, names):
        lr = self.schedule(self.iterations)
        t = tf.cast(self.iterations, tf.float32) + 1.0
        for name, grad in zip(names, grads):
            update = functools.partial(self._update, lr=lr, t=t, decay=self.decayed[name])
            strategy.extended.update(weights[name], update, args=(grad, self.m[name], self.v[name]), group=False)
        strategy.extended.update(self.iterations, lambda it: it.assign_add(1), group=False)

    def _update(self, var, grad, m, v, *, lr, t, decay):
        grad = tf.convert_to_tensor(grad)
        m_new = m.assign(self.beta_1 * m + (1.0 - self.beta_1) * grad)
        v_new = v.assign(self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad))
        if self.kind == "adamw":
            update = m_new / (tf.sqrt(v_new) + self.epsilon)
            if decay and self.weight_decay:
                update += self.weight_decay * var
            return var.assign_sub(lr * update)
        m_hat = m_new / (1.0 - tf.pow(self.beta_1, t))
        v_hat = v_new / (1.0 - tf.pow(self.beta_2, t))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        if decay and self.weight_decay:
            update += self.weight_decay * var
        ratio = 1.0
        if decay:                                   # layer adaptation excluded exactly where decay is
            w_norm, u_norm = tf.norm(var), tf.norm(update)
            ratio = tf.where((w_norm > 0) & (u_norm > 0), w_norm / tf.maximum(u_norm, 1e-30), 1.0)
        return var.assign_sub(lr * ratio * update)
