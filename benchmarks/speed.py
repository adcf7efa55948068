#!/usr/bin/env python
"""Speed of pet_keras against the reference approach (benchmarks/reference.py)
and HF transformers on PyTorch, in one run, on the sentiment data:

  scoring   the valid + test reviews with pattern P1: pet_keras' Scorer (label
            tokens only at the slot, length-bucketed batches; and with each
            switched off) against the reference (softmax over the vocabulary
            at every position, fixed batches in file order, label columns read
            afterwards) and BertForMaskedLM (full logits, then label columns).
            pet_keras' predictions must agree: the run fails if an argmax
            differs (outside near-ties) from the reference's; HF's agreement
            is reported.
  training  steps of a semi-supervised epoch (first 1% of train labeled with
            the pattern, the rest unlabeled, 15% random masking) after warm-up
            steps: PetDataGenerator (length-bucketed; and in shuffled order)
            + tf.data + loss on gathered positions against the reference
            generator + loss at every position, and
            BertForMaskedLM on batches from the reference generator. --jit compiles
            pet_keras' training step with XLA (the others run as they are).

--mixed-precision adds pet_keras under Keras' mixed_bfloat16 policy (rows
pet_keras_mixed_bfloat16, float32 weights): its share of the peak is of a
bfloat16 matmul peak, and its predictions are compared with the reference's
but may differ near ties (bfloat16 keeps 8 significant bits).

each on the given checkpoint (default: the embedded model) and on a
BERT-base-shaped model (12 layers, hidden 768, the 21,128-token Chinese
vocabulary, random weights written as a temporary Google checkpoint).
Achieved GFLOP/s use the analytic count in benchmarks/common.py at the shapes
actually run (padding included), against a float32 matmul peak measured at
the start. Writes --out (JSON) and prints a Markdown table.

The approaches take turns (common.run_in_turns): each scoring pass, and each
timed training step, of one approach, then of the next, round-robin. A shared
host's speed drifts over minutes; in turns every approach meets the same
drift, where one after the other the approach running at a slow moment alone
would pay for it.

    python benchmarks/speed.py                                   # full run (long)
    python benchmarks/speed.py --quick --skip-base --skip-hf     # smoke run

HF/PyTorch needs `pip install -r benchmarks/requirements.txt`; it is skipped
with a message otherwise.
"""

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (imports pet_keras first)
from baselines import ComparisonScorer  # noqa: E402
from common import BatchShape, RecordsBatchShapes, throughput, totals  # noqa: E402
from reference import (
    ReferenceGenerator,
    build_reference_model,
    reference_predict,  # noqa: E402
    reference_prefix,
    reference_training_model,
)

import tensorflow as tf  # noqa: E402
from bert4keras.optimizers import Adam  # noqa: E402
from pet_keras import budget, startup  # noqa: E402
from pet_keras.compat import keras  # noqa: E402
from pet_keras.data import split_labeled  # noqa: E402
from pet_keras.presets import load_sentiment  # noqa: E402
from pet_keras.batching import PetDataGenerator  # noqa: E402
from pet_keras.model import build_mlm, load_config, load_tokenizer  # noqa: E402
from pet_keras.pattern import PVP  # noqa: E402
from pet_keras.verbalizer import Verbalizer  # noqa: E402
from pet_keras.scoring import Scorer  # noqa: E402
from pet_keras.presets import SENTIMENT_PATTERNS, SENTIMENT_WORDS  # noqa: E402

BERT_BASE = {'hidden_size': 768, 'num_hidden_layers': 12, 'num_attention_heads': 12, 'intermediate_size': 3072}
TINY_BASE = {'hidden_size': 32, 'num_hidden_layers': 2, 'num_attention_heads': 2, 'intermediate_size': 64}
BASE_REST = {
    'hidden_act': 'gelu',
    'hidden_dropout_prob': 0.1,
    'attention_probs_dropout_prob': 0.1,
    'max_position_embeddings': 512,
    'type_vocab_size': 2,
    'initializer_range': 0.02,
}
# --quick: a smoke run with tiny shapes and few batches
QUICK = {
    'score_examples': 64,
    'train_steps': 2,
    'warmup_steps': 1,
    'base_score_examples': 32,
    'base_train_steps': 2,
    'maxlen': 64,
    'repeats': 2,
    'matmul_size': 256,
}
DEFAULTS = {
    'score_examples': None,
    'train_steps': 20,
    'warmup_steps': 3,
    'base_score_examples': 256,
    'base_train_steps': 3,
    'maxlen': 128,
    'repeats': 2,
    'matmul_size': 2048,
}
MIXED = 'pet_keras_mixed_bfloat16'
MIXED_POLICIES = {MIXED: 'mixed_bfloat16'}  # the dtype policy each job needs in its turns
TIE = 1e-4  # label probabilities closer than this are a tie: either argmax is right
# settings that are paths: recorded relative to the repository
PATH_SETTINGS = ('checkpoint_dir', 'data_dir', 'base_vocab', 'out')


class MeasuredPetGenerator(RecordsBatchShapes, PetDataGenerator):
    pass


class MeasuredReferenceGenerator(RecordsBatchShapes, ReferenceGenerator):
    pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        '--checkpoint-dir',
        default=str(budget.EMBEDDED_CHECKPOINT),
        help='bert_config.json, bert_model.ckpt.*, vocab.txt (default: the embedded model)',
    )
    p.add_argument('--data-dir', default=str(common.SENTIMENT_DIR), help='sentiment.{train,valid,test}.data')
    p.add_argument(
        '--base-vocab',
        default=str(common.CHINESE_BERT_VOCAB),
        help='vocab.txt of the BERT-base-shaped model (default: the 21,128-token Chinese vocabulary)',
    )
    p.add_argument('--out', default=str(common.REPO / 'results' / 'speed.json'))
    p.add_argument('--pattern', default='P1', help='a prefix pattern the reference handles: P1, P3, P4, P5')
    p.add_argument('--batch-size', type=int, default=32, help='scoring and training batches, all approaches')
    p.add_argument('--maxlen', type=int, help='default %d (quick %d)' % (DEFAULTS['maxlen'], QUICK['maxlen']))
    p.add_argument('--score-examples', type=int, help='score the first N of valid + test (default all)')
    p.add_argument('--train-steps', type=int, help='timed training steps (default %d)' % DEFAULTS['train_steps'])
    p.add_argument('--warmup-steps', type=int, help='untimed steps first (default %d)' % DEFAULTS['warmup_steps'])
    p.add_argument(
        '--base-score-examples',
        type=int,
        help='examples scored on the BERT-base shape (default %d)' % DEFAULTS['base_score_examples'],
    )
    p.add_argument(
        '--base-train-steps',
        type=int,
        help='timed training steps on the BERT-base shape (default %d)' % DEFAULTS['base_train_steps'],
    )
    p.add_argument('--repeats', type=int, help='scoring passes, the first untimed (default %d)' % DEFAULTS['repeats'])
    p.add_argument('--matmul-size', type=int, help='square matrices of the peak (default %d)' % DEFAULTS['matmul_size'])
    p.add_argument('--lr', type=float, default=1e-5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--jit', action='store_true', help='compile pet_keras training with XLA (jit_compile)')
    p.add_argument(
        '--pet-input',
        choices=('tf.data', 'generator'),
        default='tf.data',
        help='feed pet_keras training through PetDataGenerator.to_dataset (default) or the '
        'bert4keras generator (forfit), to measure what tf.data adds',
    )
    p.add_argument(
        '--mixed-precision',
        action='store_true',
        help='also measure pet_keras under mixed_bfloat16 (float32 weights, bfloat16 compute)',
    )
    p.add_argument('--hf-threads', type=int, default=2, help='torch.set_num_threads for HF/PyTorch')
    p.add_argument('--quick', action='store_true', help='tiny BERT-base stand-in, few batches: a smoke run')
    p.add_argument('--skip-base', action='store_true', help='skip the BERT-base-shaped model')
    p.add_argument('--skip-hf', action='store_true', help='skip HF transformers / PyTorch')
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.repeats < 2:
        p.error('--repeats must be at least 2 (the first pass is untimed warm-up)')
    if args.pattern not in SENTIMENT_PATTERNS:
        p.error('--pattern must be one of %s' % ', '.join(SENTIMENT_PATTERNS))
    return args


class Task:
    """The model files, tokenizer, pattern and data of one benchmarked model."""

    def __init__(self, args, folder):
        self.config_path, self.checkpoint_path, self.dict_path = startup.checkpoint_files(folder)
        self.config = load_config(self.config_path)
        self.tokenizer = load_tokenizer(self.dict_path, self.config, self.config_path)
        self.pvp = PVP(SENTIMENT_PATTERNS[args.pattern], Verbalizer(SENTIMENT_WORDS), self.tokenizer, args.maxlen)
        self.prefix, self.mask_idx, self.label_token_ids = reference_prefix(self.pvp)

    def reference_data(self, examples):
        """(text, label index or None) pairs, as the reference reads them."""
        return [(e.fields['text'], None if e.label is None else self.pvp.label_index[e.label]) for e in examples]

    def reference_generator(self, examples, batch_size, maxlen):
        return MeasuredReferenceGenerator(
            self.tokenizer,
            self.reference_data(examples),
            self.prefix,
            self.mask_idx,
            self.label_token_ids,
            maxlen,
            batch_size,
        )


def compare_predictions(probs, reference):
    """Agreement of label probabilities with the reference's."""
    agree = probs.argmax(1) == reference.argmax(1)
    top = np.sort(reference, axis=1)
    tie = (top[:, -1] - top[:, -2]) < TIE
    return {
        'examples': len(probs),
        'argmax_equal': int(agree.sum()),
        'near_ties': int(tie.sum()),
        'disagreements_outside_ties': int((~agree & ~tie).sum()),
        'max_prob_diff': float(np.abs(probs - reference).max()),
    }


def timed_passes(function, repeats, turns, name):
    """``repeats`` passes of ``function``, each in its own turn: (its result,
    the first pass's seconds, the best of the others')."""
    seconds = []
    for _ in range(repeats):
        turns.wait(name)
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
        turns.done()
    return result, seconds[0], min(seconds[1:])


def pet_scoring(mlm, task, examples, args, peak, bucket=True, label_tokens_only=True):
    """pet_keras' scoring, a job for ``common.run_in_turns`` → (probabilities,
    measurement); the Scorer is built now, in the caller's dtype policy."""
    switches = {} if bucket and label_tokens_only else {'bucket': bucket, 'label_tokens_only': label_tokens_only}
    scorer = (ComparisonScorer if switches else Scorer)(mlm, task.pvp, batch_size=args.batch_size, **switches)
    shapes = [
        BatchShape.of(inputs[0], inputs[2] if label_tokens_only else None) for _, inputs in scorer.batches(examples)
    ]
    columns = len(task.pvp.label_token_ids) if label_tokens_only else task.config['vocab_size']
    last_layer_at_positions = label_tokens_only and mlm.last_layer is not None  # scoring_model's path

    def job(turns, name):
        probs, first, seconds = timed_passes(
            lambda: scorer.predict_proba(examples, verbose=False), args.repeats, turns, name
        )
        result = throughput(seconds, totals(task.config, shapes, columns, 1, last_layer_at_positions), peak)
        result.update(
            first_pass_seconds=round(first, 4), batches=len(shapes), bucket=bucket, label_tokens_only=label_tokens_only
        )
        return probs, result

    return job


def full_vocabulary_scoring(predict_batches, task, examples, args, peak):
    """Scoring that computes the vocabulary at every position of the
    reference generator's batches (``predict_batches(generator)`` → label
    probabilities), a job for ``common.run_in_turns``."""
    generator = task.reference_generator(examples, args.batch_size, args.maxlen)

    def predict():
        generator.batch_shapes = []
        return predict_batches(generator)

    def job(turns, name):
        probs, first, seconds = timed_passes(predict, args.repeats, turns, name)
        result = throughput(seconds, totals(task.config, generator.batch_shapes, task.config['vocab_size']), peak)
        result.update(first_pass_seconds=round(first, 4), batches=len(generator.batch_shapes))
        return probs, result

    return job


def reference_scoring(model, task, examples, args, peak):
    """The reference's scoring, a job for ``common.run_in_turns``."""
    return full_vocabulary_scoring(
        lambda generator: reference_predict(model, generator, task.mask_idx, task.label_token_ids),
        task,
        examples,
        args,
        peak,
    )


def step_measurement(step_seconds, config, generator, warmup, columns, peak, last_layer_at_positions=False):
    """Throughput of the timed training steps, from the shapes of the batches
    ``generator`` made for them."""
    shapes = generator.batch_shapes[warmup : warmup + len(step_seconds)]
    result = throughput(
        sum(step_seconds), totals(config, shapes, columns, 3, last_layer_at_positions), peak, len(step_seconds)
    )
    result['step_seconds'] = [round(t, 3) for t in step_seconds]
    return result


def pet_training(mlm, task, labeled, unlabeled, args, peak, steps, bucket=True):
    """pet_keras' semi-supervised training steps, a job for
    ``common.run_in_turns``; the model is built now, in the caller's dtype policy."""
    generator = MeasuredPetGenerator(task.pvp, labeled, unlabeled, args.batch_size, seed=args.seed, bucket=bucket)
    model = mlm.training_model(task.pvp)
    model.compile(optimizer=Adam(args.lr), jit_compile=args.jit)
    data = generator.to_dataset(random=True) if args.pet_input == 'tf.data' else generator.forfit()

    def job(turns, name):
        step_seconds = common.timed_fit(model, data, args.warmup_steps, steps, args.seed, turns, name)
        result = step_measurement(
            step_seconds,
            task.config,
            generator,
            args.warmup_steps,
            task.config['vocab_size'],
            peak,
            mlm.last_layer is not None,
        )
        result.update(jit_compile=args.jit, input=args.pet_input, bucket=bucket)
        return result

    return job


def reference_training(model, task, labeled, unlabeled, args, peak, steps):
    """The reference's training steps, a job for ``common.run_in_turns``."""
    generator = task.reference_generator(labeled + unlabeled, args.batch_size, args.maxlen)
    train_model = reference_training_model(model)
    train_model.compile(optimizer=Adam(args.lr))

    def job(turns, name):
        step_seconds = common.timed_fit(
            train_model, generator.forfit(), args.warmup_steps, steps, args.seed, turns, name
        )
        return step_measurement(
            step_seconds, task.config, generator, args.warmup_steps, task.config['vocab_size'], peak
        )

    return job


class HuggingFace:
    """BertForMaskedLM on PyTorch (CPU) with the checkpoint's weights, on
    batches from the reference generator (in training, its random masks come
    from NumPy's global generator, which the reference's job draws from too:
    the same kind of batches, not the same ones; each job counts its own)."""

    def __init__(self, task, args):
        import torch
        import transformers
        from transformers import BertConfig, BertForMaskedLM

        torch.manual_seed(args.seed)
        self.torch, self.task, self.args = torch, task, args
        config = BertConfig.from_json_file(task.config_path)
        self.model = BertForMaskedLM(config)
        self.load_checkpoint(task.checkpoint_path)
        self.versions = {
            'torch': torch.__version__,
            'transformers': transformers.__version__,
            'torch_threads': torch.get_num_threads(),
        }

    def load_checkpoint(self, checkpoint_path):
        """The Google checkpoint's variables under BertForMaskedLM's names
        (transformers' own load_tf_weights_in_bert stops at variables the
        masked-LM model lacks, such as the pooler)."""
        state = self.model.state_dict()
        loaded = {}
        for name, _ in tf.train.list_variables(checkpoint_path):
            array = tf.train.load_variable(checkpoint_path, name)
            key = re.sub(r'layer_(\d+)', r'layer.\1', name).replace('/', '.')
            key = key.replace('cls.predictions.output_bias', 'cls.predictions.bias')
            if key.endswith('.kernel'):
                key, array = key[: -len('kernel')] + 'weight', array.T
            elif key.endswith('.gamma'):
                key = key[: -len('gamma')] + 'weight'
            elif key.endswith('.beta'):
                key = key[: -len('beta')] + 'bias'
            elif key.endswith('_embeddings'):
                key += '.weight'
            if key in state:
                loaded[key] = self.torch.from_numpy(np.ascontiguousarray(array))
        tied = {'cls.predictions.decoder.weight', 'cls.predictions.decoder.bias'}  # = word embeddings, bias
        missing = sorted(set(state) - set(loaded) - tied)
        if missing:
            raise ValueError("%s: no variables for BertForMaskedLM's %s" % (checkpoint_path, ', '.join(missing)))
        self.model.load_state_dict(loaded, strict=False)

    def tensors(self, inputs):
        ids, segments = (self.torch.from_numpy(np.asarray(a, dtype='int64')) for a in inputs[:2])
        return ids, segments, (ids != 0).long()

    def scoring(self, examples, peak):
        """Its scoring, a job for ``common.run_in_turns``."""
        task, torch = self.task, self.torch
        self.model.eval()

        def predict(generator):
            probs = []
            with torch.inference_mode():
                for inputs, _ in generator:
                    ids, segments, mask = self.tensors(inputs)
                    logits = self.model(input_ids=ids, token_type_ids=segments, attention_mask=mask).logits
                    columns = logits[:, task.mask_idx, list(task.label_token_ids)]
                    probs.append(torch.softmax(columns, -1).numpy())
            return np.concatenate(probs)

        return full_vocabulary_scoring(predict, task, examples, self.args, peak)

    def training(self, labeled, unlabeled, peak, steps):
        """Adam steps with the loss at the predicted positions (labels -100
        elsewhere), a job for ``common.run_in_turns``, timed as Keras' steps
        are (``common.StepTimer``)."""
        torch, args, task = self.torch, self.args, self.task
        generator = task.reference_generator(labeled + unlabeled, args.batch_size, args.maxlen)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr, eps=1e-6)

        def job(turns, name):
            timer = common.StepTimer(args.warmup_steps, turns, name)
            timer.start(args.seed)
            batches = generator.forfit()
            self.model.train()
            for step in range(args.warmup_steps + steps):
                timer.on_train_batch_begin(step)
                inputs, _ = next(batches)
                ids, segments, mask = self.tensors(inputs)
                labels = torch.from_numpy(np.where(inputs[2] > 0, inputs[2], -100).astype('int64'))
                loss = self.model(input_ids=ids, token_type_ids=segments, attention_mask=mask, labels=labels).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                timer.on_train_batch_end(step)
            return step_measurement(
                timer.step_seconds, task.config, generator, args.warmup_steps, task.config['vocab_size'], peak
            )

        return job


def torch_matmul_peak_gflops(size, repeats=5):
    """float32 GFLOP/s of a PyTorch matmul, as ``common.matmul_peak_gflops``."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    (a @ b).sum().item()
    return 2 * size**3 / common.best_seconds(lambda: (a @ b).sum().item(), repeats) / 1e9


def hf_available(args):
    if args.skip_hf:
        print('HF transformers / PyTorch: skipped (--skip-hf)')
        return False
    os.environ.setdefault('USE_TF', '0')  # transformers: its PyTorch classes only
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        print('HF transformers / PyTorch: skipped, not installed (%s); pip install -r benchmarks/requirements.txt' % e)
        return False
    torch.set_num_threads(args.hf_threads)
    return True


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' global dtype policy ``name`` while models are built and run."""
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy('float32')


def ratio(numerator, denominator, key):
    return numerator[key] / denominator[key]


def scoring_in_turns(task, mlm, reference_model, scored, args, peaks, with_hf):
    """Scoring measurements: the approaches take their passes in turns.
    Returns (the JSON part, the mixed-precision MaskedLM or None, HuggingFace or None)."""
    peak = peaks['tensorflow']
    jobs = {'reference': reference_scoring(reference_model, task, scored, args, peak)}
    for key, switches in (
        ('pet_keras', {}),
        ('pet_keras_no_bucket', {'bucket': False}),
        ('pet_keras_full_vocabulary', {'label_tokens_only': False}),
    ):
        jobs[key] = pet_scoring(mlm, task, scored, args, peak, **switches)
    mixed_mlm = None
    if args.mixed_precision:
        with dtype_policy(MIXED_POLICIES[MIXED]):
            mixed_mlm = build_mlm(task.config_path, task.checkpoint_path, dict_path=task.dict_path)
            jobs[MIXED] = pet_scoring(mixed_mlm, task, scored, args, peaks['tensorflow_bfloat16'])
    hf = HuggingFace(task, args) if with_hf else None
    if hf:
        jobs['hf_pytorch'] = hf.scoring(scored, peak)
    print(
        'scoring %d examples, %d passes each, in turns: %s' % (len(scored), args.repeats, ', '.join(jobs)), flush=True
    )
    measured = common.run_in_turns(jobs, MIXED_POLICIES)
    scoring = {'examples': len(scored)}
    scoring.update((key, result) for key, (_, result) in measured.items())
    reference_probs = measured['reference'][0]
    scoring['agreement_with_reference'] = {
        key: compare_predictions(probs, reference_probs) for key, (probs, _) in measured.items() if key != 'reference'
    }
    scoring['ratios'] = {
        '%s/reference' % k: ratio(scoring[k], scoring['reference'], 'rows_per_s')
        for k in scoring
        if k.startswith(('pet_keras', 'hf'))
    }
    if hf:
        scoring['ratios']['pet_keras/hf_pytorch'] = ratio(scoring['pet_keras'], scoring['hf_pytorch'], 'rows_per_s')
    return scoring, mixed_mlm, hf


def training_in_turns(task, models, labeled, unlabeled, args, peaks, train_steps):
    """Training measurements: the approaches take their steps in turns.
    ``models``: the MaskedLM, the mixed-precision one (or None), the
    reference's model and HuggingFace (or None)."""
    mlm, mixed_mlm, reference_model, hf = models
    peak = peaks['tensorflow']
    jobs = {
        'pet_keras': pet_training(mlm, task, labeled, unlabeled, args, peak, train_steps),
        'pet_keras_no_bucket': pet_training(mlm, task, labeled, unlabeled, args, peak, train_steps, bucket=False),
    }
    if args.mixed_precision:
        with dtype_policy(MIXED_POLICIES[MIXED]):
            jobs[MIXED] = pet_training(
                mixed_mlm, task, labeled, unlabeled, args, peaks['tensorflow_bfloat16'], train_steps
            )
    jobs['reference'] = reference_training(reference_model, task, labeled, unlabeled, args, peak, train_steps)
    if hf:
        jobs['hf_pytorch'] = hf.training(labeled, unlabeled, peak, train_steps)
    print(
        'training %d steps each after %d warm-up, in turns: %s' % (train_steps, args.warmup_steps, ', '.join(jobs)),
        flush=True,
    )
    training = {'labeled': len(labeled), 'unlabeled': len(unlabeled), 'warmup_steps': args.warmup_steps}
    training.update(common.run_in_turns(jobs, MIXED_POLICIES))
    training['ratios'] = {
        '%s/reference' % k: ratio(training[k], training['reference'], 'tokens_per_s')
        for k in training
        if k in ('pet_keras', 'pet_keras_no_bucket', MIXED, 'hf_pytorch')
    }
    if hf:
        training['ratios']['pet_keras/hf_pytorch'] = ratio(
            training['pet_keras'], training['hf_pytorch'], 'tokens_per_s'
        )
    return training


def benchmark_model(name, folder, args, data, peaks, score_examples, train_steps, with_hf):
    """Scoring and training measurements of one model; returns its JSON part."""
    print('\n== %s (%s) ==' % (name, folder), flush=True)
    task = Task(args, folder)
    (labeled, unlabeled), scored = data['train'], data['scored'][:score_examples]
    part = {
        'checkpoint': common.portable_path(folder),
        'config': task.config,
        'pattern': task.pvp.pattern.template,
        'batch_size': args.batch_size,
        'maxlen': args.maxlen,
    }
    mlm = build_mlm(task.config_path, task.checkpoint_path, dict_path=task.dict_path)
    reference_model = build_reference_model(task.config_path, task.checkpoint_path)
    part['scoring'], mixed_mlm, hf = scoring_in_turns(task, mlm, reference_model, scored, args, peaks, with_hf)
    training = training_in_turns(
        task, (mlm, mixed_mlm, reference_model, hf), labeled, unlabeled, args, peaks, train_steps
    )
    if hf:
        part['hf'] = hf.versions
    part['training'] = training
    keras.backend.clear_session()
    return part


def write_random_checkpoint(directory, shape, vocab_path):
    """A random-weight BERT with its MLM head as a Google-format checkpoint folder."""
    with open(vocab_path, encoding='utf-8') as f:
        vocab_size = sum(1 for _ in f)
    config = dict(shape, vocab_size=vocab_size, **BASE_REST)
    config_path = os.path.join(directory, 'bert_config.json')
    with open(config_path, 'w', encoding='utf-8') as f:
        json.dump(config, f, indent=2)
    build_mlm(config_path).save_checkpoint(directory, config, vocab_path)
    keras.backend.clear_session()


def markdown(results):
    rows = []
    for name, part in results['models'].items():
        for phase, rate in (('scoring', 'rows_per_s'), ('training', 'tokens_per_s')):
            section = part[phase]
            for approach, r in section.items():
                if not isinstance(r, dict) or 'seconds' not in r:
                    continue
                vs = r[rate] / section['reference'][rate]
                rows.append(
                    [
                        name,
                        phase,
                        approach,
                        '%.2f' % r['seconds'],
                        '%.1f' % r['rows_per_s'],
                        '%.0f' % r['tokens_per_s'],
                        '%.1f' % r['gflops_per_s'],
                        '%.0f%%' % (100 * r['peak_fraction']),
                        '%.2f×' % vs,
                    ]
                )
    return common.markdown_table(
        ['model', 'phase', 'approach', 'seconds', 'examples/s', 'tokens/s', 'GFLOP/s', 'of peak', 'vs reference'], rows
    )


def main(argv=None):
    args = parse_args(argv)
    train, valid, test = load_sentiment(args.data_dir)
    labeled, unlabeled = split_labeled(train, 0.01)
    data = {'train': (labeled, unlabeled), 'scored': list(valid) + list(test)}
    with_hf = hf_available(args)
    settings = {k: common.portable_path(v) if k in PATH_SETTINGS else v for k, v in vars(args).items()}
    results = {'settings': settings, 'machine': common.machine_info()}
    print('matmul peak (%d × %d) …' % (args.matmul_size, args.matmul_size), flush=True)
    peaks = {'tensorflow': common.matmul_peak_gflops(args.matmul_size)}
    results['peak_fraction_of'] = 'matmul_peak_gflops.tensorflow (every approach, HF/PyTorch too)'
    if args.mixed_precision:
        peaks['tensorflow_bfloat16'] = common.matmul_peak_gflops(args.matmul_size, dtype='bfloat16')
        results['peak_fraction_of'] += '; %s: matmul_peak_gflops.tensorflow_bfloat16' % MIXED
    results['matmul_peak_gflops'] = peaks
    if with_hf:
        results['matmul_peak_gflops']['torch'] = torch_matmul_peak_gflops(args.matmul_size)
    results['models'] = {
        'checkpoint': benchmark_model(
            'checkpoint', args.checkpoint_dir, args, data, peaks, args.score_examples, args.train_steps, with_hf
        )
    }
    if args.skip_base:
        print('BERT-base shape: skipped (--skip-base)')
    elif not os.path.exists(args.base_vocab):
        print('BERT-base shape: skipped, no vocabulary at %s (pass --base-vocab)' % args.base_vocab)
    else:
        with tempfile.TemporaryDirectory(prefix='bert_base_random_') as folder:
            write_random_checkpoint(folder, TINY_BASE if args.quick else BERT_BASE, args.base_vocab)
            name = 'bert_base_shape' + ('_tiny (--quick)' if args.quick else '')
            results['models'][name] = benchmark_model(
                name, folder, args, data, peaks, args.base_score_examples, args.base_train_steps, with_hf
            )
            results['models'][name]['checkpoint'] = 'random weights (%s)' % settings['base_vocab']
    common.write_json(args.out, results)
    print('\n' + markdown(results))
    print(
        'vs reference: examples/s ratio for scoring, tokens/s for training; of peak: of the TensorFlow float32 '
        'matmul peak (%s: of its bfloat16 peak)' % MIXED
    )
    print(
        '\nmatmul peak: %s GFLOP/s; written %s'
        % (', '.join('%s %.1f' % kv for kv in results['matmul_peak_gflops'].items()), args.out)
    )
    failed = [
        '%s %s: %d' % (name, key, a['disagreements_outside_ties'])
        for name, part in results['models'].items()
        for key, a in part['scoring']['agreement_with_reference'].items()
        if key.startswith('pet_keras') and key != MIXED and a['disagreements_outside_ties']
    ]
    if failed:
        raise SystemExit(
            "error: predictions differ from the reference's (argmax, outside near-ties): " + '; '.join(failed)
        )


if __name__ == '__main__':
    main()
