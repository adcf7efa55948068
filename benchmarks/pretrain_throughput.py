#!/usr/bin/env python
"""MLM training throughput: vocabulary logits only at masked positions (pet_keras)
against the reference approach (benchmarks/reference.py: a softmax over the
vocabulary at every position and its CrossEntropy loss), on the embedded
model's shape, fixed random batches, in one run; with achieved GFLOP/s
(benchmarks/common.py) against a float32 matmul peak.

    python benchmarks/pretrain_throughput.py [--checkpoint-dir checkpoints/chinese_bert_mini_pet] [--jit]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (imports pet_keras first)
from reference import build_reference_model, reference_training_model  # noqa: E402

from bert4keras.optimizers import Adam  # noqa: E402
from pet_keras.budget import EMBEDDED_CHECKPOINT  # noqa: E402
from pet_keras.batching import positions_batch  # noqa: E402
from pet_keras.model import build_mlm  # noqa: E402


def seconds_per_step(model, batch, steps):
    model.train_on_batch(batch)  # build and trace
    model.train_on_batch(batch)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(batch)
    return (time.perf_counter() - started) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint-dir', default=str(EMBEDDED_CHECKPOINT))
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--seq-len', type=int, default=256)
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--jit', action='store_true')
    a = p.parse_args()
    config_path = a.checkpoint_dir + '/bert_config.json'
    no_dropout = {'dropout_rate': 0, 'attention_dropout_rate': 0}
    mlm = build_mlm(config_path, **no_dropout)
    vocab = mlm.config['vocab_size']
    rng = np.random.default_rng(0)
    ids = rng.integers(30, vocab, (a.batch_size, a.seq_len)).astype('int32')
    targets = np.where(rng.random(ids.shape) < 0.15, ids, 0).astype('int32')
    _, positions, gathered = positions_batch(ids, targets)
    segments = np.zeros_like(ids)
    peak = common.matmul_peak_gflops()
    results = {'shape': [a.batch_size, a.seq_len], 'vocab_size': vocab, 'jit': a.jit, 'matmul_peak_gflops': peak}
    approaches = {
        'gathered': (
            mlm.training_model(),
            [ids, segments, positions, gathered],
            positions.size,
            mlm.last_layer is not None,
        ),
        'full_softmax': (
            reference_training_model(build_reference_model(config_path, **no_dropout)),
            [ids, segments, targets],
            ids.size,
            False,
        ),
    }
    for name, (model, batch, vocab_positions, last_layer_at_positions) in approaches.items():
        model.compile(optimizer=Adam(1e-5), jit_compile=a.jit)
        seconds = seconds_per_step(model, batch, a.steps)
        flops = 3 * common.forward_flops(
            mlm.config, a.batch_size, a.seq_len, vocab_positions, vocab, last_layer_at_positions
        )
        results[name + '_tokens_per_s'] = ids.size / seconds
        results[name + '_gflops_per_s'] = flops / seconds / 1e9
        results[name + '_peak_fraction'] = flops / seconds / 1e9 / peak
    results['ratio'] = results['gathered_tokens_per_s'] / results['full_softmax_tokens_per_s']
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
