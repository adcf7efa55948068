"""Command-line flags shared by the scripts, and the checkpoint they default to."""
import argparse
import os
from pathlib import Path

from pet_keras.train import MODES

EMBEDDED_CHECKPOINT = Path(__file__).resolve().parents[1] / 'checkpoints' / 'chinese_bert_mini_pet'


def parser(description, patterns, default_pattern, data_help, several_patterns=False):
    """An argparse parser with the flags every PET script takes; with
    ``several_patterns`` it takes ``--patterns`` (a list) instead of ``--pattern``."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group('model (bert4keras names; default: the embedded checkpoint)')
    m.add_argument('--checkpoint-dir', help='a folder with bert_config.json, bert_model.ckpt.*, vocab.txt '
                   '(default: %s)' % os.path.relpath(EMBEDDED_CHECKPOINT))
    m.add_argument('--config-path', help='bert_config.json (overrides --checkpoint-dir)')
    m.add_argument('--checkpoint-path', help='checkpoint prefix, e.g. .../bert_model.ckpt')
    m.add_argument('--dict-path', help='vocab.txt')
    m.add_argument('--model', default='bert', help='bert4keras model family: bert, roberta, albert, nezha …')
    m.add_argument('--allow-random-mlm-head', action='store_true',
                   help='accept a checkpoint without cls/predictions/* (the head starts random)')
    d = p.add_argument_group('data')
    d.add_argument('--data-dir', help=data_help)
    d.add_argument('--labeled-fraction', type=float, default=0.01,
                   help='fraction of the training file kept labeled; the rest is unlabeled (default 0.01)')
    d.add_argument('--split-seed', type=int, default=None,
                   help='pick the labeled rows at random with this seed (default: the first rows, as the reference)')
    t = p.add_argument_group('task')
    t.add_argument('--mode', choices=MODES, default='few-shot',
                   help='zero-shot: no training; unsupervised: MLM on the unlabeled text, then zero-shot; '
                        'few-shot: labeled only; semi-supervised: labeled + unlabeled (default few-shot)')
    presets = ', '.join('%s = %s' % kv for kv in patterns.items())
    if several_patterns:
        t.add_argument('--patterns', nargs='+', default=list(patterns),
                       help='presets (%s) or templates with a ____ slot (default: all presets)' % presets)
    else:
        t.add_argument('--pattern', default=default_pattern,
                       help='a preset (%s) or a template with a ____ slot and {text}, e.g. "____满意。{text}" '
                            '(default %s)' % (presets, default_pattern))
    t.add_argument('--maxlen', type=int, default=128)
    r = p.add_argument_group('training')
    r.add_argument('--epochs', type=int, default=10, help='at most this many epochs (early stopping)')
    r.add_argument('--patience', type=int, default=3, help='epochs without a better validation accuracy')
    r.add_argument('--batch-size', type=int, default=32)
    r.add_argument('--lr', type=float, default=1e-4, help='learning rate (Adam)')
    r.add_argument('--mask-rate', type=float, default=0.15, help='random extra masking of training text')
    r.add_argument('--seed', type=int, default=0, help='seeds TensorFlow, NumPy and the masking')
    r.add_argument('--out', default=None, help='output folder (default runs/<script>-<mode>-<pattern>)')
    r.add_argument('--tensorboard', action='store_true', help='write TensorBoard logs to <out>/tensorboard')
    return p


def checkpoint_paths(args):
    """(config_path, checkpoint_path, dict_path) from the flags."""
    folder = Path(args.checkpoint_dir) if args.checkpoint_dir else EMBEDDED_CHECKPOINT
    config = args.config_path or str(folder / 'bert_config.json')
    checkpoint = args.checkpoint_path or str(folder / 'bert_model.ckpt')
    vocab = args.dict_path or str(folder / 'vocab.txt')
    for path in (config, vocab, checkpoint + '.index'):
        if not os.path.exists(path):
            raise SystemExit('error: %s not found (pass --checkpoint-dir or --config-path/--checkpoint-path/'
                             '--dict-path; see checkpoints/README.md)' % path)
    return config, checkpoint, vocab


def pattern_template(args, presets):
    return presets.get(args.pattern, args.pattern)


def seed_everything(seed):
    import random
    import numpy as np
    import tensorflow as tf
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
