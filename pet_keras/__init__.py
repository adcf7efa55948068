"""Pattern-Exploiting Training for Chinese text classification over bert4keras."""

from pet_keras import environment  # noqa: F401  (what TensorFlow reads at start-up; bert4keras' fixes on import)

__version__ = '0.1.0'
