"""Masked-LM pretraining of a BERT model, from scratch or continued.

The output folder is a Google-format checkpoint (bert_config.json,
bert_model.ckpt.*, vocab.txt) with its MLM head, loaded by pet_keras like any
downloaded one, plus ``pretraining.json`` (the recipe and progress) and
``SHA256SUMS``. Optimizer state for resuming lives in ``resume/`` beside it;
an interrupted run started again with the same folder continues from its last
save. A run holds the folder's lock (``runlock``) while it writes there: a
second run into it is refused. Vocabulary logits are computed only at masked
positions.

It has its own loop, not ``pet_keras.loop``'s: there is no validation accuracy to choose
weights on, and resuming needs the optimizer's state in a tf.train.Checkpoint every
``save_every`` steps. The loop, its data and its checkpoint folder are one concept, so one
module of a little over 300 lines.
"""

import os
import time

import numpy as np
import tensorflow as tf

from pet_keras import runlock
from pet_keras.callbacks import fit_interruptibly
from pet_keras.compat import keras
from pet_keras.batching import RandomMasker, positions_batch
from pet_keras.corpus import build_vocab, tokenize_corpus, write_vocab
from pet_keras.io import read_json, sha256, write_json, write_text
from pet_keras.model import build_mlm, load_tokenizer
from bert4keras.optimizers import Adam, extend_with_piecewise_linear_lr

CKPT_FILES = ('bert_config.json', 'bert_model.ckpt.index', 'bert_model.ckpt.data-00000-of-00001', 'vocab.txt')
STATE = 'pretraining.json'  # the recipe and progress
RESUME = 'resume'  # the optimizer state's tf.train.CheckpointManager folder


class BlockBatches:
    """Batches of fixed-length blocks cut from the token stream, masked.

    Block order is a permutation per pass seeded by (seed, pass) and masking
    is seeded by (seed, step), so batch ``step`` is the same in a resumed run.
    """

    def __init__(self, ids, words, tokenizer, seq_len, batch_size, blocks, seed=0, rate=0.15, whole_word=False):
        self.ids, self.words = ids, words
        self.tokenizer = tokenizer
        self.body = seq_len - 2
        self.batch_size = batch_size
        self.blocks = np.asarray(blocks)
        self.seed = seed
        self.whole_word = whole_word
        self.masker = RandomMasker(tokenizer, rate)

    def batch(self, step, block_ids=None):
        if block_ids is None:
            per_pass = len(self.blocks) // self.batch_size
            order = np.random.default_rng([self.seed, step // per_pass]).permutation(self.blocks)
            k = step % per_pass
            block_ids = order[k * self.batch_size : (k + 1) * self.batch_size]
        self.masker.rng = np.random.default_rng([self.seed, step, 1])
        cls, sep = self.tokenizer._token_start_id, self.tokenizer._token_end_id
        sources, targets = [], []
        for b in block_ids:
            start = b * self.body
            ids = np.concatenate([[cls], self.ids[start : start + self.body], [sep]])
            words = None
            if self.whole_word:
                words = np.concatenate([[-1], self.words[start : start + self.body], [-2]])
                words = np.unique(words, return_inverse=True)[1]
            source, target = self.masker(ids, word_ids=words)
            sources.append(source)
            targets.append(target)
        ids, positions, gathered = positions_batch(np.array(sources, dtype='int32'), np.array(targets))
        return (ids, np.zeros_like(ids), positions, gathered), None

    def forever(self, start_step=0):
        step = start_step
        while True:
            yield self.batch(step)
            step += 1


class SaveAndReport(keras.callbacks.Callback):
    """At every save interval: held-out masked accuracy, the Google-format
    checkpoint, the resume state, and the recipe in pretraining.json."""

    def __init__(self, mlm, out_dir, manager, state, heldout, tokens_per_step):
        super().__init__()
        self.mlm, self.out_dir, self.manager, self.state = mlm, out_dir, manager, state
        self.heldout = heldout
        self.tokens_per_step = tokens_per_step

    def on_train_begin(self, logs=None):
        self.started = time.time()
        self.hours_before = self.state.get('hours', 0.0)

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.epoch_started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if logs is not None:
            logs['tokens/s'] = (batch + 1) * self.tokens_per_step / (time.time() - self.epoch_started)

    def on_epoch_end(self, epoch, logs=None):
        hits, count = 0.0, 0.0
        for x, _ in self.heldout:
            logits = self.model.predict_on_batch(x)
            targets = x[3]
            w = targets > 0
            hits += float((logits.argmax(-1) == targets)[w].sum())
            count += float(w.sum())
        step = int(self.model.optimizer.iterations.numpy())
        self.state.update(
            {
                'steps': step,
                'tokens_seen': step * self.tokens_per_step,
                'hours': round(self.hours_before + (time.time() - self.started) / 3600, 3),
                'train_loss': round(float(logs.get('loss', float('nan'))), 4),
                'train_masked_accuracy': round(float(logs.get('accuracy', float('nan'))), 4),
                'heldout_masked_accuracy': round(hits / max(count, 1), 4),
                'heldout_masked_tokens': int(count),
                'dtype_policy': keras.mixed_precision.global_policy().name,
            }
        )
        self.state.setdefault('history', []).append(
            {k: self.state[k] for k in ('steps', 'hours', 'train_loss', 'heldout_masked_accuracy', 'dtype_policy')}
        )
        self.manager.save(checkpoint_number=step)
        self.mlm.save_checkpoint(self.out_dir, self.state['config'])
        self.state['sha256'] = {f: sha256(os.path.join(self.out_dir, f)) for f in CKPT_FILES}
        write_json(os.path.join(self.out_dir, STATE), self.state)
        write_text(
            os.path.join(self.out_dir, 'SHA256SUMS'),
            ''.join('%s  %s\n' % (h, n) for n, h in sorted(self.state['sha256'].items())),
        )
        print(
            '\nsaved step %d: held-out masked accuracy %.4f, %.2f h in all'
            % (step, self.state['heldout_masked_accuracy'], self.state['hours']),
            flush=True,
        )


def pretrain(
    out_dir,
    corpus,
    config=None,
    init_checkpoint=None,
    steps=20000,
    batch_size=32,
    seq_len=256,
    learning_rate=5e-4,
    warmup=1000,
    save_every=200,
    whole_word=False,
    vocab_size=8000,
    heldout_blocks=128,
    seed=0,
    dropout=0.0,
    jit_compile=False,
):
    """Pretrain (or continue) a masked LM; see the module docstring.

    ``corpus`` is a list of documents; ``config`` a dict of BERT sizes for a
    model from scratch; ``init_checkpoint`` a Google-format folder to continue
    from (its vocab is kept). Returns the state written to pretraining.json.
    The set-up (model, data, resumed state) and the loop read in order, so one function.
    """
    recipe = {
        'seq_len': seq_len,
        'batch_size': batch_size,
        'learning_rate': learning_rate,
        'warmup_steps': warmup,
        'whole_word_masking': whole_word,
        'dropout': dropout,
        'seed': seed,
        'heldout_blocks': heldout_blocks,
    }
    with runlock.locked(out_dir):
        saved_weights = os.path.join(out_dir, 'bert_model.ckpt')
        # Resume with the optimizer state when it is there, else from the saved weights.
        resuming = os.path.exists(os.path.join(out_dir, RESUME, 'checkpoint'))
        continuing = (
            not resuming and os.path.exists(os.path.join(out_dir, STATE)) and os.path.exists(saved_weights + '.index')
        )
        if resuming or continuing:
            state = recorded_state(out_dir, recipe)
            initial = saved_weights if continuing else None  # resuming restores the weights from resume/
        else:
            # a new run writes vocab.txt and bert_config.json, and removes them if refused: never over a user's
            found = [name for name in CKPT_FILES if os.path.exists(os.path.join(out_dir, name))]
            if found:
                raise FileExistsError(
                    '%s holds %s but no %s: not a pretraining run to continue; choose another --out (a run killed '
                    'before its first save leaves these: remove them to start again)'
                    % (out_dir, ', '.join(found), STATE)
                )
            state = new_state(out_dir, corpus, config, init_checkpoint, vocab_size, steps, recipe)
            initial = os.path.join(init_checkpoint, 'bert_model.ckpt') if init_checkpoint else None
        try:
            blocks, heldout = corpus_batches(out_dir, corpus, state)
        except ValueError:
            if not (resuming or continuing):  # a refused new run leaves nothing behind
                for name in ('vocab.txt', 'bert_config.json'):
                    os.remove(os.path.join(out_dir, name))
            raise
        mlm, model, optimizer = compiled_mlm(out_dir, initial, state, jit_compile)
        manager, start = restored(out_dir, model, optimizer, state, resuming, continuing)
        if start >= steps:
            return state
        fit_interruptibly(
            model,
            'the same command continues from its last save',
            out_dir,
            block_dataset(blocks, start),
            steps_per_epoch=save_every,
            epochs=-(-steps // save_every),
            initial_epoch=start // save_every,
            callbacks=[SaveAndReport(mlm, out_dir, manager, state, heldout, state['batch_size'] * state['seq_len'])],
        )
        return state


def recorded_state(out_dir, recipe):
    """The state of the run in ``out_dir``: its recipe is fixed by the first run (the batches and
    the held-out split depend on it), so a different ``recipe`` asked for is noted and ignored."""
    state = read_json(os.path.join(out_dir, STATE))
    ignored = ['%s %s (recorded %s)' % (k, v, state[k]) for k, v in recipe.items() if v != state[k]]
    if ignored:
        print('note: %s continues its recorded recipe; ignoring %s' % (out_dir, ', '.join(ignored)))
    return state


def new_state(out_dir, corpus, config, init_checkpoint, vocab_size, steps, recipe):
    """A new run's state; its vocab.txt and bert_config.json written to ``out_dir``: the init
    checkpoint's, or ``config`` with a vocabulary built from the corpus."""
    if init_checkpoint:
        with open(os.path.join(init_checkpoint, 'vocab.txt'), encoding='utf-8') as f:
            tokens = [line.rstrip('\n') for line in f]
        config = read_json(os.path.join(init_checkpoint, 'bert_config.json'))
    else:
        tokens = build_vocab(corpus, max_size=vocab_size)
        config = dict(config, vocab_size=len(tokens))
    write_vocab(os.path.join(out_dir, 'vocab.txt'), tokens)
    write_json(os.path.join(out_dir, 'bert_config.json'), config)
    return {
        'config': config,
        'init_checkpoint': init_checkpoint,
        'corpus_documents': len(corpus),
        'corpus_characters': int(sum(len(d) for d in corpus)),
        'vocab_size': len(tokens),
        'seq_len': recipe['seq_len'],
        'batch_size': recipe['batch_size'],
        'learning_rate': recipe['learning_rate'],
        'warmup_steps': recipe['warmup_steps'],
        'schedule_steps': steps,
        'whole_word_masking': recipe['whole_word_masking'],
        'mask_rate': 0.15,
        'dropout': recipe['dropout'],
        'seed': recipe['seed'],
        'heldout_blocks': recipe['heldout_blocks'],
        'hours': 0.0,
    }


def corpus_batches(out_dir, corpus, state):
    """The corpus cut into blocks under the state's recipe: the training batches
    (``BlockBatches``) and the held-out batches (the last ``heldout_blocks`` blocks)."""
    tokenizer = load_tokenizer(
        os.path.join(out_dir, 'vocab.txt'), state['config'], os.path.join(out_dir, 'bert_config.json')
    )
    ids, words = tokenize_corpus(corpus, tokenizer, state['whole_word_masking'])
    state['corpus_tokens'] = int(len(ids))
    heldout_blocks, batch_size = state['heldout_blocks'], state['batch_size']
    n_blocks = len(ids) // (state['seq_len'] - 2)
    if n_blocks < heldout_blocks + batch_size:
        raise ValueError(
            'corpus too small: %d tokens make %d blocks of %d, fewer than %d held-out + one batch of %d'
            % (len(ids), n_blocks, state['seq_len'], heldout_blocks, batch_size)
        )
    blocks = BlockBatches(
        ids,
        words,
        tokenizer,
        state['seq_len'],
        batch_size,
        np.arange(n_blocks - heldout_blocks),
        seed=state['seed'],
        whole_word=state['whole_word_masking'],
    )
    heldout_ids = np.arange(n_blocks - heldout_blocks, n_blocks)
    heldout = [blocks.batch(10**9 + i, heldout_ids[i : i + batch_size]) for i in range(0, heldout_blocks, batch_size)]
    return blocks, heldout


def compiled_mlm(out_dir, initial, state, jit_compile):
    """(the MLM, its training model, the optimizer): the model from ``initial`` (a
    checkpoint prefix; None: random), compiled with Adam under the recipe's warm-up and decay."""
    mlm = build_mlm(
        os.path.join(out_dir, 'bert_config.json'),
        initial,
        dropout_rate=state['dropout'],
        attention_dropout_rate=state['dropout'],
    )
    model = mlm.training_model()
    optimizer = extend_with_piecewise_linear_lr(Adam, name='AdamLR')(
        learning_rate=state['learning_rate'], lr_schedule={state['warmup_steps']: 1.0, state['schedule_steps']: 0.1}
    )
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    return mlm, model, optimizer


def restored(out_dir, model, optimizer, state, resuming, continuing):
    """(the manager of the resume checkpoint, the step training starts at): the optimizer state
    restored when resuming; when continuing, the saved weights' step with fresh Adam moments."""
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(out_dir, RESUME), max_to_keep=1)
    start = 0
    if resuming:
        optimizer._create_all_weights(model.trainable_variables)  # slots to restore into
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(optimizer.iterations.numpy())
        print('resuming at step %d' % start)
    elif continuing:
        start = int(state['steps'])
        optimizer.iterations.assign(start)
        print(
            'no optimizer state in %s: continuing from the saved weights at step %d with fresh '
            'Adam moments' % (os.path.join(out_dir, RESUME), start)
        )
    return manager, start


def block_dataset(blocks, start):
    """The training batches from step ``start`` on as tf.data (inputs only: the loss is in the model)."""

    def generator():
        for (x, s, p, t), _ in blocks.forever(start):
            yield (x, s, p, t)

    spec = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(generator, output_signature=(spec,) * 4)
    return dataset.map(lambda *x: (x,)).prefetch(4)
