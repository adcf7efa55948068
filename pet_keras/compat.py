"""Run bert4keras 0.11.5 on current TensorFlow.

Import this module before bert4keras (``import pet_keras`` does). Each fix is
applied once, here, and nowhere else:

1. bert4keras reads ``TF_KERAS=1`` to use ``tf.keras``; on TF >= 2.16 ``tf.keras``
   is Keras 3 unless ``TF_USE_LEGACY_KERAS=1`` (then it is tf-keras, the Keras 2
   API bert4keras was written for). Both must be set before TensorFlow loads.
2. Its optimizers subclass the pre-2.11 ``OptimizerV2`` API, now
   ``keras.optimizers.legacy.Optimizer``.
3. ``save_weights_as_checkpoint`` builds a TF1 graph and session, which fails in
   eager mode: it is replaced by an eager writer of the same Google-format names.
4. Its weight initializer is one unseeded ``TruncatedNormal`` instance shared by
   many weights; current Keras makes such an instance return the same values on
   every call (identical Q/K/V/O kernels). It is replaced by one that draws
   fresh values per weight and still follows ``tf.random.set_seed``.
5. Keras unpacks generator batches only from tuples: ``DataGenerator.forfit``
   yields tuples.
6. Under a mixed-precision policy (``mixed_bfloat16``) its LayerNormalization
   would take the mean and variance in bfloat16 (8 significant bits): they are
   taken in float32, as Keras' own LayerNormalization does.

7. TensorFlow's CPU tensors come from its BFC allocator, which reuses freed
   memory instead of handing it back to the kernel (``_keep_tensor_memory``).

TensorFlow's start-up log (CUDA stubs, oneDNN, absl) is hidden unless the
command line has ``--verbose``: it is read here, before TensorFlow loads.
"""

import contextlib
import logging
import os
import sys

if 'bert4keras.backend' in sys.modules:
    raise ImportError('import pet_keras before bert4keras: its compatibility layer must run first')
os.environ.setdefault('TF_KERAS', '1')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
VERBOSE = '--verbose' in sys.argv[1:]
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0' if VERBOSE else '3')
if 'tensorflow' in sys.modules and os.environ['TF_KERAS'] != '1':
    raise ImportError('pet_keras needs TF_KERAS=1 before TensorFlow is imported')
if 'keras.src' in sys.modules:
    # TensorFlow imported without TF_USE_LEGACY_KERAS=1 loads Keras 3; bert4keras would then build
    # with Keras 3's layers next to tf-keras' and fail deep inside the model
    raise ImportError(
        'Keras 3 is already loaded (tensorflow was imported before pet_keras); import pet_keras '
        'before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the environment'
    )


@contextlib.contextmanager
def _quiet_start_up():
    """File descriptor 2 to /dev/null while TensorFlow loads: the lines absl writes before
    it is initialised (e.g. cudart_stub's "Could not find cuda drivers") ignore
    TF_CPP_MIN_LOG_LEVEL. A Python error is still shown: it is printed after."""
    if VERBOSE:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, 'w') as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _keep_tensor_memory():
    """TensorFlow's best-fit-with-coalescing allocator for CPU tensors, set before TensorFlow loads.

    Its default CPU allocator takes every tensor from malloc, which gives buffers of a few MB
    back to the kernel when they are freed (mmap/munmap, heap trimming): the next step's
    tensors fault in fresh zeroed pages again, hundreds of thousands a step where oneDNN's
    own caches do not hide it (docs/kernel_time.md). BFC keeps freed memory for reuse, up to
    this machine's physical memory. Results are unchanged: only where buffers live differs.
    ``TF_CPU_ALLOCATOR_USE_BFC=false`` in the environment keeps TensorFlow's default."""
    os.environ.setdefault('TF_CPU_ALLOCATOR_USE_BFC', 'true')
    try:
        physical_mb = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') // 2**20
    except (AttributeError, ValueError, OSError):
        return  # TensorFlow's own limit (64 GB) stands
    os.environ.setdefault('TF_CPU_BFC_MEM_LIMIT_IN_MB', str(physical_mb))


_keep_tensor_memory()
with _quiet_start_up():
    import numpy as np  # noqa: E402
    import tensorflow as tf  # noqa: E402
if not VERBOSE:
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
    logging.getLogger('absl').setLevel(logging.ERROR)

if not tf.keras.__name__.startswith('tf_keras'):
    raise ImportError(
        'tensorflow.keras is Keras 3 here; pet_keras needs the Keras 2 API. Set '
        'TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (import pet_keras first).'
    )

try:
    with _quiet_start_up():
        import bert4keras.backend  # noqa: E402  (sets sys.modules['keras'] = tf.keras)
except ModuleNotFoundError as e:
    if e.name != 'bert4keras':
        raise
    raise ImportError('bert4keras is not installed: pip install --no-deps bert4keras==0.11.5') from None

keras = bert4keras.backend.keras  # the tf.keras API bert4keras itself uses

# (2) bert4keras.optimizers subclasses keras.optimizers.Optimizer at import time.
_new_optimizer = keras.optimizers.Optimizer
keras.optimizers.Optimizer = keras.optimizers.legacy.Optimizer
try:
    import bert4keras.optimizers  # noqa: E402,F401
finally:
    keras.optimizers.Optimizer = _new_optimizer

from pet_keras.io import temporary_path  # noqa: E402
from bert4keras import layers as _layers  # noqa: E402
from bert4keras import models as _models  # noqa: E402
from bert4keras import snippets as _snippets  # noqa: E402


# (4) a fresh draw per weight, reproducible under tf.random.set_seed.
@keras.utils.register_keras_serializable(package='pet_keras')
class FreshTruncatedNormal(keras.initializers.TruncatedNormal):
    def __call__(self, shape, dtype=None, **kwargs):
        dtype = tf.as_dtype(dtype or keras.backend.floatx())
        return tf.random.truncated_normal(shape, self.mean, self.stddev, dtype)


_models.Transformer.initializer = property(lambda self: FreshTruncatedNormal(stddev=0.02))


def write_checkpoint(prefix, variables):
    """Write ``{name: array}`` as a TF checkpoint (``prefix.index`` + data)
    with exactly these variable names, as Google's BERT checkpoints have.

    Written under a temporary prefix and renamed, so a failed write leaves any
    previous checkpoint at ``prefix`` intact.
    """
    names = sorted(variables)
    tmp = temporary_path(prefix)  # a dead writer's are removed when its run lock is taken over
    tf.raw_ops.SaveV2(
        prefix=tmp,
        tensor_names=names,
        shape_and_slices=[''] * len(names),
        tensors=[tf.convert_to_tensor(np.asarray(variables[n])) for n in names],
    )
    data = tmp + '.data-00000-of-00001'
    os.replace(data, prefix + '.data-00000-of-00001')
    os.replace(tmp + '.index', prefix + '.index')  # the index last: it makes the pair valid


# (3) same names and dtype handling as bert4keras, written eagerly.
def _save_weights_as_checkpoint(self, filename, mapping=None, dtype=None):
    mapping = mapping or self.variable_mapping()
    mapping = {self.prefixed(k): v for k, v in mapping.items()}
    variables = {}
    for layer, names in mapping.items():
        if layer not in self.layers:
            continue
        values = keras.backend.batch_get_value(self.layers[layer].trainable_weights)
        for name, value in zip(names, values):
            if name == 'cls/seq_relationship/output_weights':
                value = value.T
            variables[name] = value.astype(dtype or keras.backend.floatx())
    write_checkpoint(filename, variables)


_models.Transformer.save_weights_as_checkpoint = _save_weights_as_checkpoint


# (5) tuples, not lists, for Keras' generator adapter (it reads a list inside (inputs, labels) as one input).
def _tupled(batch):
    return tuple(_tupled(b) for b in batch) if isinstance(batch, (list, tuple)) else batch


def _forfit(self, random=True):
    while True:
        for batch in self.__iter__(random):
            yield _tupled(batch)


_snippets.DataGenerator.forfit = _forfit


# (6) LayerNorm statistics in float32 whatever the compute dtype (bert4keras' computation otherwise).
def _layer_norm_float32_call(self, inputs):
    conds = None
    if self.conditional:
        inputs, conds = inputs
    x = tf.cast(inputs, 'float32')
    if self.zero_mean:
        x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    if self.unit_variance:
        variance = tf.reduce_mean(tf.square(x), axis=-1, keepdims=True)
        x = tf.math.divide_no_nan(x, tf.sqrt(variance + self.epsilon))
    x = tf.cast(x, self.compute_dtype)
    # the scale and offset (ScaleOffset.call), in the compute dtype
    return super(_layers.LayerNormalization, self).call([x, conds] if self.conditional else x)


_layers.LayerNormalization.call = _layer_norm_float32_call
