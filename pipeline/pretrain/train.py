"""Strategy selection and the custom training loop: several steps per ``tf.function`` call, checkpoints
every N steps, exact resume (step, optimizer state, data position), logs to stdout, TensorBoard and
``OUTPUT_DIR/metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from pipeline.pretrain import data as pdata
from pipeline.pretrain import losses
from pipeline.pretrain.config import BertConfig, check_against_manifest, preset
from pipeline.pretrain.model import BertPretrainer
from pipeline.pretrain.optimization import Optimizer, WarmupLinearDecay


# tf.summary.scalar needs the tensorboard package (TF 2.21 no longer installs it); tf.summary.write with the
# scalars plugin's metadata writes the same event records from TensorFlow alone.
SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")).SerializeToString()


@dataclass
class TrainOptions:
    shards: str                                   # directory with part-*.tfrecord + manifest.json
    output_dir: str
    bert_config_file: str = ""                    # bert_config.json; else the preset
    preset: str = "base"
    train_batch_size: int = 32                    # global
    num_train_steps: int = 1000
    num_warmup_steps: int = -1                    # < 0: auto, see warmup_steps
    learning_rate: float = 1e-4
    optimizer: str = "adamw"                      # adamw | lamb
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    steps_per_loop: int = 100
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    seed: int = 12345
    mode: str = ""                                # bert (MLM + NSP) | roberta (MLM only); default: the manifest's
    tpu: str = ""                                 # TPU name or "local"; empty: GPUs if any, else CPU
    cpu_replicas: int = 0                         # > 1: MirroredStrategy over that many logical CPUs (tests)
    mixed_precision: str = "auto"                 # auto (bf16 on TPU/GPU) | bf16 | fp32
    jit_compile: str = "auto"                     # XLA for forward+backward: auto (on GPU) | on | off
    init_checkpoint: str = ""
    vocab: str = ""                               # vocab.txt when the manifest's path is not here
    shuffle_buffer: int = 10_000
    cycle_length: int = 8
    stop_after_steps: int = 0                     # stop this run early at this step (checkpointed)
    export: bool = True


def warmup_steps(num_train_steps: int, num_warmup_steps: int) -> tuple[int, str | None]:
    """The warm-up to use, and a warning when it leaves the run no time at the peak learning rate.

    A negative ``num_warmup_steps`` is "auto": 10% of the steps, at most 10,000 (google-research/bert's
    10,000 of 100,000). A warm-up given explicitly is kept, but one as long as the run or longer means the
    learning rate never reaches its peak (a 60-step run with 10,000 warm-up steps ends at 0.6% of it).
    """
    if num_warmup_steps < 0:
        return min(10_000, num_train_steps // 10), None
    if num_train_steps > 0 and num_warmup_steps >= num_train_steps:
        reached = num_train_steps / max(num_warmup_steps, 1)
        return num_warmup_steps, (f"warning: --num_warmup_steps {num_warmup_steps:,} >= --num_train_steps "
                                  f"{num_train_steps:,}: the learning rate only reaches {reached:.1%} of its peak "
                                  f"(leave --num_warmup_steps out for 10% of the steps)")
    return num_warmup_steps, None


def eta(seconds: float) -> str:
    """``H:MM:SS`` (days as ``Dd H:MM:SS``)."""
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86_400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def get_strategy(tpu: str = "", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """TPUStrategy for ``tpu`` (a name or "local"), MirroredStrategy over the GPUs, else the CPU.

    Call before any other TensorFlow op (TPU initialisation and logical CPUs need a fresh runtime).
    """
    if tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu not in ("", "local"):
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy([g.name for g in tf.config.list_logical_devices("GPU")])
    if cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    return tf.distribute.get_strategy()


def strategy_kind(strategy) -> str:
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "tpu"
    if isinstance(strategy, tf.distribute.MirroredStrategy) and any(
            "GPU" in d.upper() for d in strategy.extended.worker_devices):
        return "gpu"
    return "cpu"


def load_bert_config(options: TrainOptions, manifest: dict) -> BertConfig:
    if options.bert_config_file:
        config = BertConfig.from_json(options.bert_config_file)
    else:
        config = preset(options.preset, vocab_size=manifest["vocab_size"])
    check_against_manifest(config, manifest)
    return config


class Trainer:
    """Model, optimizer, checkpoint and the compiled loop for one strategy."""

    def __init__(self, options: TrainOptions, strategy=None, log=print):
        self.options, self.log = options, log
        self.strategy = strategy or get_strategy(options.tpu, options.cpu_replicas)
        self.kind = strategy_kind(self.strategy)
        self.manifest = pdata.read_manifest(options.shards)
        self.config = load_bert_config(options, self.manifest)
        self.mode = options.mode or self.manifest.get("settings", {}).get("mode", "bert")
        if self.mode not in ("bert", "roberta"):
            raise ValueError(f"mode {self.mode!r}: bert or roberta")
        precision = options.mixed_precision
        if precision == "auto":
            precision = "fp32" if self.kind == "cpu" else "bf16"
        self.compute_dtype = tf.bfloat16 if precision == "bf16" else tf.float32
        self.replicas = self.strategy.num_replicas_in_sync
        if options.train_batch_size % self.replicas:
            raise ValueError(f"train_batch_size {options.train_batch_size} is not a multiple of the "
                             f"{self.replicas} replicas")
        self.masking = None
        if self.manifest["features"] == "unmasked":
            self.masking = pdata.Masking.from_manifest(self.manifest, options.vocab or None)
        self.warmup, warning = warmup_steps(options.num_train_steps, options.num_warmup_steps)
        if warning:
            log(warning)
        with self.strategy.scope():
            self.model = BertPretrainer(self.config, seed=options.seed, compute_dtype=self.compute_dtype)
            schedule = WarmupLinearDecay(options.learning_rate, options.num_train_steps, self.warmup)
            self.optimizer = Optimizer(self.model.weights, schedule, kind=options.optimizer,
                                       weight_decay=options.weight_decay, clip_norm=options.clip_norm)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(options.output_dir, "checkpoints"),
                                                  max_to_keep=options.keep_checkpoint_max)
        # roberta mode trains no pooler and no NSP head (they get no gradient)
        self.trained = [n for n in self.optimizer.names
                        if self.mode == "bert" or not n.startswith(("bert/pooler/", "cls/seq_relationship/"))]
        jit = options.jit_compile == "on" or (options.jit_compile == "auto" and self.kind == "gpu")
        self.jit = jit
        self._compute = tf.function(self._forward_backward, jit_compile=True) if jit else self._forward_backward
        self._loop = None

    # ---- one replica's step
    def _forward_backward(self, features, seed, total_weight):
        """Loss, dense gradients of ``self.trained`` and the metric sums (XLA-compiled with --jit_compile)."""
        model = self.model
        with tf.GradientTape() as tape:
            outputs = model(features, dropout_seed=seed)
            nll, weight, correct = losses.mlm_sums(outputs["mlm_logits"], features["masked_lm_ids"],
                                                   features["masked_lm_weights"])
            loss = nll / (total_weight + 1e-5)
            nsp_nll, nsp_correct = losses.nsp_sums(outputs["nsp_logits"], features["next_sentence_labels"])
            if self.mode == "bert":
                loss += nsp_nll / float(self.options.train_batch_size)
        grads = tape.gradient(loss, [model.weights[n] for n in self.trained])
        grads = [tf.convert_to_tensor(g) for g in grads]
        examples = tf.cast(tf.shape(features["input_ids"])[0], tf.float32)
        return grads, tf.stack([loss, nll, weight, correct, nsp_nll, nsp_correct, examples])

    def _step(self, features):
        context = tf.distribute.get_replica_context()
        replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
        seed = tf.stack([tf.constant(self.options.seed, tf.int64) * 1000 + replica, self.optimizer.iterations])
        # the MLM loss is sum(w * nll) / sum(w) over the *global* batch
        total_weight = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(features["masked_lm_weights"]))
        grads, sums = self._compute(features, seed, total_weight)
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        self.optimizer.apply_gradients(self.model.weights, grads, self.trained)
        return sums

    def loop(self):
        if self._loop is None:
            strategy = self.strategy

            @tf.function
            def train_loop(iterator, steps):
                sums = tf.zeros([len(losses.SUMS)])
                for _ in tf.range(steps):
                    per_replica = strategy.run(self._step, args=(next(iterator),))
                    sums += strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
                return sums

            self._loop = train_loop
        return self._loop

    def dataset(self, start_step: int):
        o = self.options
        return pdata.distributed_dataset(self.strategy, o.shards, self.manifest, global_batch_size=o.train_batch_size,
                                         start_step=start_step, seed=o.seed, shuffle_buffer=o.shuffle_buffer,
                                         cycle_length=o.cycle_length, masking=self.masking)

    def restore_or_init(self) -> int:
        """Resume from OUTPUT_DIR/checkpoints, else ``--init_checkpoint``; returns the starting step."""
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            step = int(self.optimizer.iterations.numpy())
            self.log(f"resumed from {self.manager.latest_checkpoint} at step {step}")
            return step
        if self.options.init_checkpoint:
            from pipeline.pretrain.export import init_from_checkpoint

            for line in init_from_checkpoint(self.model, self.options.init_checkpoint):
                self.log(line)
        return 0

    def train(self) -> dict:
        o = self.options
        out = Path(o.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._check_run_settings(out)
        self.config.to_json(out / "bert_config.json")
        start = self.restore_or_init()
        end = o.num_train_steps if not o.stop_after_steps else min(o.num_train_steps, o.stop_after_steps)
        iterator = iter(self.dataset(start))
        loop = self.loop()
        writer = tf.summary.create_file_writer(str(out / "tensorboard"))
        self.log(f"pretrain: {self.kind} x{self.replicas} replicas, {self.mode} mode, "
                 f"{self.config.num_hidden_layers} layers x {self.config.hidden_size}, "
                 f"{'bf16' if self.compute_dtype == tf.bfloat16 else 'fp32'}{', XLA' if self.jit else ''}, {o.optimizer}, "
                 f"batch {o.train_batch_size}, steps {start} -> {end} of {o.num_train_steps}, warm-up {self.warmup}")
        step, last = start, {}
        timed_steps, timed_seconds = 0, 0.0     # after the first call (which traces and compiles)
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as metrics_file:
            while step < end:
                steps = min(o.steps_per_loop, end - step)
                if o.save_checkpoints_steps:
                    steps = min(steps, o.save_checkpoints_steps - step % o.save_checkpoints_steps)
                started = time.perf_counter()
                sums = loop(iterator, tf.constant(steps, tf.int32)).numpy()
                seconds = time.perf_counter() - started
                if step > start:
                    timed_steps, timed_seconds = timed_steps + steps, timed_seconds + seconds
                step += steps
                rate = (timed_steps / max(timed_seconds, 1e-9)) if timed_steps else steps / max(seconds, 1e-9)
                last = {"step": step, **losses.summarize(sums, steps),
                        "learning_rate": float(self.optimizer.learning_rate().numpy()),
                        "examples_per_second": float(sums[-1]) / max(seconds, 1e-9),
                        "steps_per_second": rate, "eta_seconds": round((end - step) / max(rate, 1e-9), 1)}
                if self.mode != "bert":
                    last.pop("nsp_loss"), last.pop("nsp_accuracy")
                self.log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items()
                                  if k != "eta_seconds") + f" eta {eta(last['eta_seconds'])}")
                metrics_file.write(json.dumps(last) + "\n")
                metrics_file.flush()
                with writer.as_default(step=step):
                    for key, value in last.items():
                        if key not in ("step", "examples"):
                            tf.summary.write(key, tf.constant(value, tf.float32), metadata=SCALAR_METADATA)
                if (o.save_checkpoints_steps and step % o.save_checkpoints_steps == 0) or step == end:
                    self.manager.save(checkpoint_number=step)
        writer.flush()
        if o.export and step >= o.num_train_steps:
            from pipeline.pretrain.export import export_all

            for path in export_all(self.model, out / "export", vocab=o.vocab or self.manifest.get("vocab"),
                                   do_lower_case=bool(self.manifest.get("settings", {}).get("lowercase", True))):
                self.log(f"exported {path}")
        return last

    def _check_run_settings(self, out: Path) -> None:
        """A resumed run must read the same data the same way; OUTPUT_DIR/run_settings.json remembers."""
        o = self.options
        settings = {"shards": str(Path(o.shards).resolve()) if "://" not in o.shards else o.shards,
                    "train_batch_size": o.train_batch_size, "seed": o.seed, "replicas": self.replicas,
                    "shuffle_buffer": o.shuffle_buffer, "cycle_length": o.cycle_length,
                    "num_train_steps": o.num_train_steps, "bert_config": self.config.to_dict(), "mode": self.mode}
        path = out / "run_settings.json"
        if path.exists() and self.manager.latest_checkpoint:
            before = json.loads(path.read_text(encoding="utf-8"))
            changed = sorted(k for k in settings if before.get(k) != settings[k])
            if changed:
                self.log(f"warning: resuming with changed settings {changed}: the data position and schedule "
                         "are not those of the interrupted run")
        path.write_text(json.dumps({**settings, "options": dataclasses.asdict(o)}, indent=2) + "\n",
                        encoding="utf-8")


def train(options: TrainOptions, strategy=None, log=print) -> dict:
    return Trainer(options, strategy, log).train()
