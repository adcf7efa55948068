"""What the benchmarks share: paths, a float32 matmul peak, the analytic FLOP
count of a BERT pass, timing in turns, batch-shape records, machine
information and strict JSON / Markdown output.

FLOPs (a multiply-add counts 2) of a BERT forward pass on a batch padded to
``rows × length`` tokens, with hidden size H, intermediate size I, N layers:

    encoder  N · rows · length · (8·H² + 4·H·I + 4·length·H)
             (Q, K, V and output projections 4·2H², feed-forward 2·2HI,
              attention scores Q·Kᵀ and their weighted sum of V 2·2·length·H)
    MLM head positions · (2·H² + 2·H·columns)
             (the head's dense transform, then the projection onto
              ``columns`` vocabulary rows at ``positions`` positions)

pet_keras runs the last layer's queries, output projection and feed-forward
only at the ``positions`` it reads (``MaskedLM.encoder_at``): that layer
costs rows · length · 4·H² (keys, values) + positions · (4·H² + 4·H·I +
4·length·H).

Embedding look-ups, LayerNorms, activations, softmaxes and biases are
left out (a few % at these shapes). Training counts 3× the forward pass
(the backward pass computes gradients for inputs and weights: 2× forward).
"""

import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)
import pet_keras.io
import tensorflow as tf
from pet_keras.compat import keras

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'
SENTIMENT_DIR = SHARED / 'datasets' / 'sentiment'
TNEWS_DIR = SHARED / 'datasets' / 'tnews'
CHINESE_BERT_VOCAB = SHARED / 'reference' / 'chinese_bert_vocab.txt'


def encoder_flops(config, rows, length, outputs=None):
    """``outputs``: the positions where the last layer runs its queries and
    feed-forward (default: every position)."""
    h, i, n = config['hidden_size'], config['intermediate_size'], config['num_hidden_layers']
    per_position = 8 * h * h + 4 * h * i + 4 * length * h
    if outputs is None:
        return n * rows * length * per_position
    return (n - 1) * rows * length * per_position + rows * length * 4 * h * h + outputs * (per_position - 4 * h * h)


def head_flops(config, positions, columns):
    h = config['hidden_size']
    return positions * (2 * h * h + 2 * h * columns)


def forward_flops(config, rows, length, positions, columns, last_layer_at_positions=False):
    """FLOPs of one forward pass (module docstring): encoder on rows × length
    (its last layer's queries and feed-forward only at ``positions`` if
    ``last_layer_at_positions``), MLM head at ``positions`` positions onto
    ``columns`` vocabulary rows."""
    outputs = positions if last_layer_at_positions else None
    return encoder_flops(config, rows, length, outputs) + head_flops(config, positions, columns)


class BatchShape:
    """The shape of one model batch: rows, padded length, real (non-padding)
    tokens, and the positions where vocabulary logits are computed."""

    __slots__ = ('rows', 'length', 'tokens', 'positions')

    def __init__(self, rows, length, tokens, positions):
        self.rows, self.length, self.tokens, self.positions = int(rows), int(length), int(tokens), int(positions)

    @classmethod
    def of(cls, token_ids, positions=None):
        """From padded token ids; ``positions`` (rows × width) where the
        vocabulary projection runs, default every position."""
        token_ids = np.asarray(token_ids)
        width = token_ids.size if positions is None else np.asarray(positions).size
        return cls(token_ids.shape[0], token_ids.shape[1], np.count_nonzero(token_ids), width)


class RecordsBatchShapes:
    """Mixin for a bert4keras DataGenerator whose batches are
    ``([token_ids, segment_ids, ...], labels)``: remembers each yielded batch's
    ``BatchShape`` in order (``batch_shapes``), so the FLOPs and tokens of the
    timed steps are known. Batches with a positions input (pet_keras' 5 inputs)
    compute vocabulary logits there, others (3) at every position."""

    def __iter__(self, random=False):
        shapes = self.__dict__.setdefault('batch_shapes', [])
        for inputs, labels in super().__iter__(random):
            shapes.append(BatchShape.of(inputs[0], inputs[2] if len(inputs) > 3 else None))
            yield inputs, labels


def totals(config, shapes, columns, factor=1, last_layer_at_positions=False):
    """{'rows', 'padded_tokens', 'tokens', 'flops'} of batches
    (``factor`` 3 for training steps)."""
    return {
        'rows': sum(s.rows for s in shapes),
        'padded_tokens': sum(s.rows * s.length for s in shapes),
        'tokens': sum(s.tokens for s in shapes),
        'flops': factor
        * sum(forward_flops(config, s.rows, s.length, s.positions, columns, last_layer_at_positions) for s in shapes),
    }


def throughput(seconds, counts, peak_gflops, steps=None):
    """Seconds, rates and the share of the matmul peak of a measured run."""
    result = dict(counts, seconds=round(seconds, 4))
    result['rows_per_s'] = counts['rows'] / seconds
    result['tokens_per_s'] = counts['tokens'] / seconds
    result['gflops_per_s'] = counts['flops'] / seconds / 1e9
    result['peak_fraction'] = result['gflops_per_s'] / peak_gflops
    if steps is not None:
        result['steps'] = steps
        result['steps_per_s'] = steps / seconds
    return result


class Turns:
    """Round-robin turns of approaches measured in one run, one step each
    (``run_in_turns``): the host's speed drifts over minutes on a shared
    machine, and taken in turns every approach meets the same drift, where
    one after the other the approach that ran at a slow moment alone pays."""

    def __init__(self, names, dtype_policies=None):
        self.order, self.turn = list(names), 0
        self.condition = threading.Condition()
        self.default_policy = keras.mixed_precision.global_policy()
        self.dtype_policies = dtype_policies or {}

    def wait(self, name):
        with self.condition:
            self.condition.wait_for(lambda: self.order[self.turn] == name)
        # Keras' dtype policy is global, and bert4keras builds some layers
        # when called (attention dropout): each job runs under its own
        keras.mixed_precision.set_global_policy(self.dtype_policies.get(name, self.default_policy))

    def done(self):
        """The approach whose turn it was has taken its step."""
        with self.condition:
            self.turn = (self.turn + 1) % len(self.order)
            self.condition.notify_all()

    def leave(self, name):
        """``name`` has finished (or failed): the others go on without it."""
        with self.condition:
            i = self.order.index(name)
            del self.order[i]
            if i < self.turn:
                self.turn -= 1
            if self.order:
                self.turn %= len(self.order)
            self.condition.notify_all()


def run_in_turns(jobs, dtype_policies=None):
    """Run ``{name: job(turns, name)}``, each in its own thread, taking steps
    in turn in the order given; ``{name: result}``. A job waits for its turn
    before its set-up and before each step, and ends each turn with
    ``turns.done()``; in its turns Keras' global dtype policy is
    ``dtype_policies[name]`` (default: the caller's). A failure in any job is
    raised here."""
    turns = Turns(jobs, dtype_policies)
    results, errors = {}, []

    def run(name, job):
        try:
            results[name] = job(turns, name)
        except BaseException as e:  # noqa: B036  (re-raised in the caller's thread)
            errors.append((name, e))
        finally:
            turns.leave(name)

    threads = [threading.Thread(target=run, args=item, name=item[0]) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keras.mixed_precision.set_global_policy(turns.default_policy)
    if errors:
        name, error = errors[0]
        raise RuntimeError('%s failed: %s' % (name, error)) from error
    return {name: results[name] for name in jobs}


class StepTimer(keras.callbacks.Callback):
    """Each training step's wall time after the first ``warmup`` ones (input
    pipeline included). With ``turns`` (``run_in_turns``), as job ``name``:
    set-up and warm-up make the first turn (``start``), each timed step one."""

    def __init__(self, warmup, turns=None, name=None):
        super().__init__()
        self.warmup, self.turns, self.name = warmup, turns, name
        self.step_started = None
        self.step_seconds = []

    def start(self, seed):
        """Wait for the first turn, then seed NumPy's global generator (batch
        orders are drawn from it) so they do not depend on the other jobs."""
        if self.turns:
            self.turns.wait(self.name)
        np.random.seed(seed)

    def on_train_batch_begin(self, batch, logs=None):
        if self.turns and batch >= self.warmup:
            self.turns.wait(self.name)
        self.step_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        seconds = time.perf_counter() - self.step_started  # fit has synced the logs: the step is done
        if batch >= self.warmup:
            self.step_seconds.append(seconds)
        if self.turns and batch >= self.warmup - 1:
            self.turns.done()


def timed_fit(model, data, warmup, steps, seed, turns=None, name=None):
    """Train ``warmup + steps`` steps with Keras ``fit`` (``StepTimer``); the
    seconds of each of the last ``steps``."""
    timer = StepTimer(warmup, turns, name)
    timer.start(seed)
    model.fit(data, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
    return timer.step_seconds


def best_seconds(function, repeats):
    """The shortest wall time of ``repeats`` calls."""
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_peak_gflops(size=2048, repeats=5, dtype='float32'):
    """GFLOP/s of ``tf.linalg.matmul`` on two size × size matrices of
    ``dtype``, the best of ``repeats`` (after one untimed call)."""
    a = tf.cast(tf.random.normal((size, size), seed=1), dtype)
    b = tf.cast(tf.random.normal((size, size), seed=2), dtype)
    product = tf.function(lambda: tf.linalg.matmul(a, b))
    product().numpy()
    return 2 * size**3 / best_seconds(lambda: product().numpy(), repeats) / 1e9


def machine_info():
    """What the numbers depend on: CPU, cores, load at the start, versions."""
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), cpu)
    except OSError:
        pass
    return {
        'cpu': cpu,
        'cores': os.cpu_count(),
        'load_average_1_5_15': list(os.getloadavg()),
        'platform': platform.platform(),
        'python': sys.version.split()[0],
        'tensorflow': tf.__version__,
        'numpy': np.__version__,
        'tf_intra_op_threads': tf.config.threading.get_intra_op_parallelism_threads(),
        'tf_inter_op_threads': tf.config.threading.get_inter_op_parallelism_threads(),
    }


def portable_path(path):
    """A path as results record it: relative to the repository, so no machine's paths get committed."""
    return os.path.relpath(os.path.abspath(path), REPO)


def command_line(script, argv):
    """The command that made a result, as results record it: absolute paths made portable."""
    words = [portable_path(a) if os.path.isabs(a) else a for a in map(str, argv)]
    return ' '.join(['python', script] + words)


def write_json(path, obj):
    """pet_keras.io.write_json, creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pet_keras.io.write_json(str(path), obj)


def markdown_table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)
