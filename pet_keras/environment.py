"""What must be settled before TensorFlow loads, without loading it.

``import pet_keras`` runs this and nothing heavier, so ``pet-keras --help`` and a flag error
answer before TensorFlow starts (seconds). It

1. sets ``TF_KERAS=1`` (bert4keras then uses ``tf.keras``) and ``TF_USE_LEGACY_KERAS=1``
   (``tf.keras`` is then tf-keras, the Keras 2 API bert4keras was written for);
2. gives CPU tensors TensorFlow's BFC allocator (``TF_CPU_ALLOCATOR_USE_BFC``), which reuses
   freed memory instead of handing it back to the kernel (docs/kernel_time.md);
3. hides TensorFlow's start-up log (CUDA stubs, oneDNN, absl) unless the command line has
   ``--verbose``, whoever imports TensorFlow first;
4. applies ``pet_keras.compat``'s fixes to bert4keras as soon as bert4keras is imported, so
   ``import pet_keras`` before bert4keras is all a script needs, as before.
"""

import contextlib
import importlib
import importlib.abc
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


def keep_tensor_memory():
    """TensorFlow's best-fit-with-coalescing allocator for CPU tensors.

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


@contextlib.contextmanager
def quiet_start_up():
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


def _quietly(exec_module):
    def run(module):
        with quiet_start_up():
            exec_module(module)
        if not VERBOSE:
            logging.getLogger('tensorflow').setLevel(logging.ERROR)
            logging.getLogger('absl').setLevel(logging.ERROR)

    return run


def _then_fix_bert4keras(exec_module):
    def run(module):
        exec_module(module)
        importlib.import_module('pet_keras.compat')  # its fixes, before bert4keras' models are used

    return run


class _FirstImports(importlib.abc.MetaPathFinder):
    """Wraps the loading of tensorflow (quietly) and of bert4keras (then pet_keras.compat)."""

    WRAPPERS = {'tensorflow': _quietly, 'bert4keras.backend': _quietly, 'bert4keras': _then_fix_bert4keras}

    def find_spec(self, name, path=None, target=None):
        if name not in self.WRAPPERS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, 'exec_module'):
                    spec.loader.exec_module = self.WRAPPERS[name](spec.loader.exec_module)
                return spec
        return None


keep_tensor_memory()
if not any(isinstance(finder, _FirstImports) for finder in sys.meta_path):
    sys.meta_path.insert(0, _FirstImports())
