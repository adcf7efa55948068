"""Run bert4keras 0.11.5 on current TensorFlow.

``pet_keras.environment`` (``import pet_keras``) sets what TensorFlow reads at start-up and
loads this module as soon as bert4keras is imported. Each fix is applied once, here, and
nowhere else:

1. ``tf.keras`` must be tf-keras (Keras 2), which ``TF_USE_LEGACY_KERAS=1`` selects
   (``pet_keras.environment``); checked here.
2. bert4keras' optimizers subclass the pre-2.11 ``OptimizerV2`` API, now
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
"""

from pet_keras import environment  # noqa: F401  (before TensorFlow loads)

import os  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

if not tf.keras.__name__.startswith('tf_keras'):
    raise ImportError(
        'tensorflow.keras is Keras 3 here; pet_keras needs the Keras 2 API. Set '
        'TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (import pet_keras first).'
    )

try:
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
