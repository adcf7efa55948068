"""Where and how a command computes: the dtype policy (--mixed-precision), the
tf.distribute strategy (--distribute) and the random seeds (--seed)."""

import os
import sys

import tensorflow as tf

from pet_keras.compat import keras


def set_precision(mixed_precision):
    """Keras' global dtype policy: bfloat16 compute with ``mixed_precision`` (--mixed-precision),
    else float32; call it before the model is built.
    Warns when the flag is given on a CPU without AMX and no GPU is visible: there bfloat16
    training measured slower than float32 (results/README.md, "Speed")."""
    keras.mixed_precision.set_global_policy('mixed_bfloat16' if mixed_precision else 'float32')
    if mixed_precision and cpu_has_amx() is False and not tf.config.list_physical_devices('GPU'):
        print(
            'warning: --mixed-precision on a CPU without AMX (no amx_bf16 among the flags of /proc/cpuinfo): '
            'bfloat16 matrix multiplies are slow there, and training measured slower than float32 '
            '(results/README.md, "Speed"); leave the flag off',
            file=sys.stderr,
        )


def cpu_has_amx(cpuinfo='/proc/cpuinfo'):
    """Whether the CPU has AMX bfloat16 tiles (Linux), None where /proc/cpuinfo cannot tell."""
    try:
        with open(cpuinfo, encoding='utf-8') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), None)
    except OSError:
        return None
    return None if flags is None else 'amx_bf16' in flags


def strategy(distribute=None):
    """The tf.distribute strategy of ``distribute`` (--distribute): MirroredStrategy over all
    local devices, MultiWorkerMirroredStrategy configured by TF_CONFIG, or
    the default (one device). Call it before anything else runs on TensorFlow:
    multi-worker training must set up its collective ops first."""
    if distribute == 'multi-worker':
        if 'TF_CONFIG' not in os.environ:
            raise ValueError(
                "--distribute multi-worker needs TF_CONFIG (the cluster and this worker's "
                'index; see docs/distributed.md)'
            )
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif distribute == 'mirrored':
        strategy = tf.distribute.MirroredStrategy()
    else:
        return tf.distribute.get_strategy()
    print('%s: %d replicas in sync' % (type(strategy).__name__, strategy.num_replicas_in_sync))
    return strategy


def seed(value):
    """Seed Python's random, NumPy and TensorFlow (keras.utils.set_random_seed)."""
    keras.utils.set_random_seed(value)


def fresh_session(value):
    """Start the next model of a run that builds several (folds, patterns, the distillation): Keras'
    session cleared and the seeds set to ``value`` again, so the model's initial head and dropout
    masks are the ones it would draw alone, whether the models before it trained or were loaded."""
    keras.backend.clear_session()
    seed(value)
