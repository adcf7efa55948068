"""Pattern-Exploiting Training for Chinese text classification over bert4keras."""

from pet_keras import compat  # noqa: F401  (sets up TensorFlow/Keras before bert4keras)

__version__ = '0.1.0'
