"""Command-line flags shared by the scripts, and the checkpoint they default to."""
import argparse
import json
import os
import sys
from pathlib import Path

from pet_keras import budget
from pet_keras.budget import EMBEDDED_CHECKPOINT
from pet_keras.pattern import AGGREGATIONS, Verbalizer
from pet_keras.train import MODES

CLASSIFIER = 'classifier'  # the --mode of the fine-tuned [CLS] classifier baseline


def parser(description, patterns, default_pattern, data_help, several_patterns=False, labeled_fraction=0.01,
           maxlen=128, p=None):
    """An argparse parser with the flags every PET script takes; with
    ``several_patterns`` (an ensemble) it takes ``--patterns`` (a list)
    instead of ``--pattern``, and no classifier mode. ``labeled_fraction``
    and ``maxlen`` are the script's defaults. ``p``: add the flags to this
    parser (a ``pet-keras`` subcommand) instead; ``data_help=None``: no --data-dir."""
    p = p or argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_flags(p)
    d = p.add_argument_group('data')
    if data_help:
        d.add_argument('--data-dir', help=data_help)
    d.add_argument('--labeled-fraction', type=float, default=labeled_fraction,
                   help='fraction of the training file kept labeled; the rest is unlabeled (default %g)'
                   % labeled_fraction)
    d.add_argument('--split-seed', type=int, default=None,
                   help='pick the labeled rows at random with this seed (default: the first rows, as the reference)')
    t = p.add_argument_group('task')
    t.add_argument('--mode', choices=MODES + (() if several_patterns else (CLASSIFIER,)), default='few-shot',
                   help='zero-shot: no training; unsupervised: MLM on the unlabeled text, then zero-shot; '
                        'few-shot: labeled only; semi-supervised: labeled + unlabeled; classifier: a [CLS] '
                        'classifier fine-tuned on the labeled examples, the baseline (default few-shot)')
    presets = ', '.join('%s = %s' % kv for kv in patterns.items())
    if several_patterns:
        t.add_argument('--patterns', nargs='+', default=list(patterns),
                       help='presets (%s) or templates with a ____ slot (default: all presets)' % presets)
    else:
        t.add_argument('--pattern', default=default_pattern,
                       help='%s a template with a ____ slot and the task\'s fields (default %s)'
                       % ('a preset (%s) or' % presets if patterns else '', default_pattern))
    t.add_argument('--maxlen', type=int, default=maxlen, help='tokens per example (default %d)' % maxlen)
    t.add_argument('--label-words', default=None,
                   help='label → word or list of words, as a JSON object inline or in a JSON file, e.g. '
                        '\'{"negative": ["不", "难"], "positive": ["很", "挺", "太"]}\' (default: the script\'s '
                        'words, in its description); one key per label of the task; words may differ in length')
    t.add_argument('--aggregation', choices=AGGREGATIONS, default='sum',
                   help='score of a label with several words: sum of their probabilities, mean of their '
                        'log-probabilities, or max (default sum)')
    t.add_argument('--length-norm', action='store_true',
                   help='score a label word by its mean token log-probability instead of its log-probability '
                        '(words of different lengths)')
    t.add_argument('--calibrate', action='store_true',
                   help='contextual calibration: divide the label probabilities by those of content-free inputs '
                        '(the pattern with empty and "N/A" text), then renormalise')
    r = p.add_argument_group('training (README, "Training budget")')
    r.add_argument('--steps', type=int, default=budget.STEPS,
                   help='at most this many optimizer steps; the best evaluation is kept (default %d)' % budget.STEPS)
    r.add_argument('--eval-every', type=int, default=budget.EVAL_EVERY,
                   help='validation accuracy every N steps (default %d)' % budget.EVAL_EVERY)
    r.add_argument('--patience', type=int, default=budget.PATIENCE,
                   help='stop after N evaluations without a better validation accuracy (default %d; 0: never stop '
                        'early)' % budget.PATIENCE)
    r.add_argument('--batch-size', type=int, default=32)
    r.add_argument('--lr', type=float, default=None,
                   help='learning rate (Adam); default: for the embedded model the rate chosen on validation for '
                        'the mode (%s), for any other checkpoint %g, the reference\'s'
                        % (', '.join('%s %g' % kv for kv in budget.EMBEDDED_LEARNING_RATES.items()),
                           budget.REFERENCE_LEARNING_RATE))
    r.add_argument('--mask-rate', type=float, default=0.15, help='random extra masking of training text')
    r.add_argument('--seed', type=int, default=0, help='seeds TensorFlow, NumPy and the masking')
    r.add_argument('--out', default=None, help='output folder (default runs/<script>-<mode>-<pattern>)')
    r.add_argument('--tensorboard', action='store_true', help='write TensorBoard logs to <out>/tensorboard')
    r.add_argument('--resume', action='store_true',
                   help='continue the interrupted run in --out after its last evaluation (same flags; '
                        '--steps and --patience may change)')
    r.add_argument('--distribute', choices=DISTRIBUTE, default=None,
                   help='train on all local GPUs (mirrored) or on several machines configured by TF_CONFIG '
                        '(multi-worker); --batch-size is the global batch')
    return p


def model_flags(p):
    """The checkpoint flags (``checkpoint_paths`` reads them) on parser ``p``."""
    m = p.add_argument_group('model (bert4keras names; default: the embedded checkpoint)')
    m.add_argument('--checkpoint-dir', help='a folder with bert_config.json, bert_model.ckpt.*, vocab.txt '
                   '(default: %s)' % os.path.relpath(EMBEDDED_CHECKPOINT))
    m.add_argument('--config-path', help='bert_config.json (overrides --checkpoint-dir)')
    m.add_argument('--checkpoint-path', help='checkpoint prefix, e.g. .../bert_model.ckpt')
    m.add_argument('--dict-path', help='vocab.txt')
    m.add_argument('--model', default='bert', help='bert4keras model family: bert, roberta, albert, nezha …')
    m.add_argument('--allow-random-mlm-head', action='store_true',
                   help='accept a checkpoint without cls/predictions/* (the head starts random)')
    m.add_argument('--mixed-precision', action='store_true', help=MIXED_PRECISION_HELP)


def budget_args(args):
    """``fit_pet``'s and ``fit_classifier``'s budget and learning rate from the flags."""
    return {'steps': args.steps, 'eval_every': args.eval_every, 'patience': args.patience or None,
            'learning_rate': args.lr}


DISTRIBUTE = ('mirrored', 'multi-worker')
MIXED_PRECISION_HELP = (
    'compute in bfloat16 with float32 weights (Keras policy mixed_bfloat16): faster where bfloat16 matmuls '
    'are (CPUs with AMX); slower than float32 on CPUs without AMX. Predictions can differ from float32 near ties')


def set_precision(args):
    """Keras' global dtype policy from --mixed-precision; call it before the model is built.
    Warns when the flag is given on a CPU without AMX and no GPU is visible: there bfloat16
    training measured slower than float32 (README, "Speed, measured")."""
    import tensorflow as tf
    from pet_keras.compat import keras
    keras.mixed_precision.set_global_policy('mixed_bfloat16' if args.mixed_precision else 'float32')
    if args.mixed_precision and cpu_has_amx() is False and not tf.config.list_physical_devices('GPU'):
        print('warning: --mixed-precision on a CPU without AMX (no amx_bf16 among the flags of /proc/cpuinfo): '
              'bfloat16 matrix multiplies are slow there, and training measured slower than float32 '
              '(README, "Speed, measured"); leave the flag off', file=sys.stderr)


def cpu_has_amx(cpuinfo='/proc/cpuinfo'):
    """Whether the CPU has AMX bfloat16 tiles (Linux), None where /proc/cpuinfo cannot tell."""
    try:
        with open(cpuinfo, encoding='utf-8') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), None)
    except OSError:
        return None
    return None if flags is None else 'amx_bf16' in flags


def strategy(args):
    """The tf.distribute strategy of --distribute: MirroredStrategy over all
    local devices, MultiWorkerMirroredStrategy configured by TF_CONFIG, or
    the default (one device). Call it before anything else runs on TensorFlow:
    multi-worker training must set up its collective ops first."""
    import tensorflow as tf
    if args.distribute == 'multi-worker':
        if 'TF_CONFIG' not in os.environ:
            raise SystemExit('error: --distribute multi-worker needs TF_CONFIG (the cluster and this worker\'s '
                             'index; see README, "Training on several GPUs or machines")')
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif args.distribute == 'mirrored':
        strategy = tf.distribute.MirroredStrategy()
    else:
        return tf.distribute.get_strategy()
    print('%s: %d replicas in sync' % (type(strategy).__name__, strategy.num_replicas_in_sync))
    return strategy


def checkpoint_paths(args):
    """(config_path, checkpoint_path, dict_path) from the flags."""
    return checkpoint_files(args.checkpoint_dir or EMBEDDED_CHECKPOINT, args.config_path, args.checkpoint_path,
                            args.dict_path)


def checkpoint_files(folder, config=None, checkpoint=None, vocab=None):
    """(config_path, checkpoint_path, dict_path) of a Google-format checkpoint
    ``folder``, each overridable; a missing file is an error."""
    folder = Path(folder)
    config = config or str(folder / 'bert_config.json')
    checkpoint = checkpoint or str(folder / 'bert_model.ckpt')
    vocab = vocab or str(folder / 'vocab.txt')
    for path in (config, vocab, checkpoint + '.index'):
        if not os.path.exists(path):
            raise SystemExit('error: %s not found (pass --checkpoint-dir or --config-path/--checkpoint-path/'
                             '--dict-path; see checkpoints/README.md)' % path)
    return config, checkpoint, vocab


def pattern_template(args, presets):
    return presets.get(args.pattern, args.pattern)


def verbalizer(args, default_words):
    """The ``Verbalizer`` of --label-words (default ``default_words``) and
    --aggregation. The JSON must have exactly the labels of ``default_words``
    (the task's labels); they keep that order."""
    words = default_words
    if args.label_words is not None:
        words = read_label_words(args.label_words)
        unknown = [label for label in words if label not in default_words]
        missing = [label for label in default_words if label not in words]
        if unknown or missing:
            raise SystemExit('error: --label-words: expected exactly the labels %s; unknown: %s; missing: %s'
                             % (', '.join(default_words), ', '.join(unknown) or 'none', ', '.join(missing) or 'none'))
        words = {label: words[label] for label in default_words}
    try:
        return Verbalizer(words, args.aggregation, args.length_norm)
    except ValueError as e:
        raise SystemExit('error: --label-words: %s' % e) from None


def read_label_words(value):
    """The JSON object of --label-words: the file ``value`` if it exists, else ``value`` itself."""
    if os.path.isfile(value):
        where = value
        try:
            with open(value, encoding='utf-8') as f:
                value = f.read()
        except UnicodeDecodeError:
            raise SystemExit('error: --label-words: %s is not UTF-8 text' % where) from None
    else:
        where = 'inline JSON %r (no file of that name)' % value
    try:
        words = json.loads(value)
    except json.JSONDecodeError as e:
        raise SystemExit('error: --label-words: %s: malformed JSON (%s at line %d column %d)'
                         % (where, e.msg, e.lineno, e.colno)) from None
    if not isinstance(words, dict):
        raise SystemExit('error: --label-words: %s: expected a JSON object label → list of words, found %s'
                         % (where, type(words).__name__))
    return words


def data_file(data_dir, names, required=True):
    """The first of the file ``names`` present in ``data_dir``; None when
    none is and the file is not ``required`` (a missing required file is an error)."""
    for name in names:
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    if required:
        raise SystemExit('error: %s has none of %s' % (data_dir, ', '.join(names)))
    return None


def seed_everything(seed):
    import random
    import numpy as np
    import tensorflow as tf
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
