#!/usr/bin/env python
"""MLM training throughput: vocabulary logits only at masked positions (pet_keras)
against a full-vocabulary softmax at every position (the reference approach),
on the embedded model's shape, in one run.

    python benchmarks/pretrain_throughput.py [--checkpoint-dir checkpoints/chinese_bert_mini_pet]
"""
import argparse
import json
import time

import numpy as np

import pet_keras  # noqa: F401
from pet_keras.cli import EMBEDDED_CHECKPOINT
from pet_keras.compat import keras
from pet_keras.generator import positions_batch
from pet_keras.losses import MaskedLMLoss
from pet_keras.model import build_mlm
from bert4keras.optimizers import Adam


def full_softmax_model(mlm):
    """The reference: logits at every position, loss where the target is non-zero."""
    targets = keras.layers.Input(shape=(None,), dtype='int32')
    logits = MaskedLMLoss(output_axis=1)([targets, mlm.full_model.output])
    return keras.Model(mlm.full_model.inputs[:2] + [targets], logits)


def tokens_per_second(model, batch, steps):
    model.train_on_batch(batch)  # build and trace
    model.train_on_batch(batch)
    started = time.time()
    for _ in range(steps):
        model.train_on_batch(batch)
    return batch[0].size * steps / (time.time() - started)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint-dir', default=str(EMBEDDED_CHECKPOINT))
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--seq-len', type=int, default=256)
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--jit', action='store_true')
    a = p.parse_args()
    mlm = build_mlm(a.checkpoint_dir + '/bert_config.json', dropout_rate=0, attention_dropout_rate=0)
    vocab = mlm.config['vocab_size']
    rng = np.random.default_rng(0)
    ids = rng.integers(30, vocab, (a.batch_size, a.seq_len)).astype('int32')
    targets = np.where(rng.random(ids.shape) < 0.15, ids, 0).astype('int32')
    _, positions, gathered = positions_batch(ids, targets)
    segments = np.zeros_like(ids)
    results = {'shape': [a.batch_size, a.seq_len], 'vocab_size': vocab, 'jit': a.jit}
    gathered_model = mlm.training_model()
    gathered_model.compile(optimizer=Adam(1e-5), jit_compile=a.jit)
    results['gathered_tokens_per_s'] = tokens_per_second(gathered_model, [ids, segments, positions, gathered], a.steps)
    full = full_softmax_model(mlm)
    full.compile(optimizer=Adam(1e-5), jit_compile=a.jit)
    results['full_softmax_tokens_per_s'] = tokens_per_second(full, [ids, segments, targets], a.steps)
    results['ratio'] = results['gathered_tokens_per_s'] / results['full_softmax_tokens_per_s']
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
