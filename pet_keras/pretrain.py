"""Masked-LM pretraining of a BERT model, from scratch or continued.

The output folder is a Google-format checkpoint (bert_config.json,
bert_model.ckpt.*, vocab.txt) with its MLM head, loaded by pet_keras like any
downloaded one, plus ``pretraining.json`` (the recipe and progress) and
``SHA256SUMS``. Optimizer state for resuming lives in ``resume/`` beside it;
an interrupted run started again with the same folder continues from its last
save. Vocabulary logits are computed only at masked positions.
"""
import json
import os
import time
from collections import Counter

import numpy as np
import tensorflow as tf

from pet_keras.io import sha256, write_json, write_text
from pet_keras.compat import keras
from pet_keras.batching import RandomMasker, positions_batch
from pet_keras.model import build_mlm, load_tokenizer
from pet_keras.train import fit_interruptibly
from bert4keras.optimizers import Adam, extend_with_piecewise_linear_lr
from bert4keras.snippets import lowercase_and_normalize
from bert4keras.tokenizers import Tokenizer

SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
CKPT_FILES = ('bert_config.json', 'bert_model.ckpt.index', 'bert_model.ckpt.data-00000-of-00001', 'vocab.txt')


def basic_tokens(text):
    """What bert4keras' Tokenizer splits a text into before word pieces (lower-cased):
    each CJK character and punctuation mark alone, other runs as words."""
    text = lowercase_and_normalize(text)
    words, word = [], ''
    for ch in text:
        if Tokenizer._is_punctuation(ch) or Tokenizer._is_cjk_character(ch):
            if word:
                words.append(word)
                word = ''
            words.append(ch)
        elif ord(ch) == 0 or ord(ch) == 0xfffd or Tokenizer._is_control(ch):
            continue  # dropped by the tokenizer without ending the word
        elif Tokenizer._is_space(ch):
            if word:
                words.append(word)
                word = ''
        else:
            word += ch
    if word:
        words.append(word)
    return words


def build_vocab(docs, max_size=8000, min_count=3, unused=20):
    """A character vocabulary in bert4keras' vocab.txt order: the special tokens,
    ``unused`` [unused*] slots, then characters by frequency (characters inside
    non-CJK words also as ##continuations, so any such word tokenizes)."""
    counts = Counter()
    for doc in docs:
        for word in basic_tokens(doc):
            counts[word[0]] += 1
            counts.update('##' + ch for ch in word[1:])
    tokens = SPECIAL_TOKENS + ['[unused%d]' % i for i in range(1, unused + 1)]
    room = max_size - len(tokens)
    if room <= 0:
        raise ValueError('max_size %d leaves no room beside %d special and [unused*] tokens' % (max_size, len(tokens)))
    ranked = sorted(((c, t) for t, c in counts.items() if c >= min_count), key=lambda x: (-x[0], x[1]))
    return tokens + [t for _, t in ranked[:room]]


def write_vocab(path, tokens):
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(tokens) + '\n')


def tokenize_corpus(docs, tokenizer, whole_word=False):
    """Token ids of all documents as one stream, joined by [SEP], and a word
    index per token (jieba words with ``whole_word``, else one per token)."""
    if whole_word:
        import jieba
    ids, words = [], []
    sep = tokenizer._token_end_id
    word = 0
    for doc in _progress(docs, 'tokenize'):
        pieces = jieba.lcut(doc) if whole_word else [doc]
        for piece in pieces:
            tokens = tokenizer.tokens_to_ids(tokenizer._tokenize(piece))
            ids.extend(tokens)
            if whole_word:
                words.extend([word] * len(tokens))
                word += 1
            else:
                words.extend(range(word, word + len(tokens)))
                word += len(tokens)
        ids.append(sep)
        words.append(word)
        word += 1
    return np.array(ids, dtype='int32'), np.array(words, dtype='int32')


def _progress(items, name):
    bar = keras.utils.Progbar(len(items), unit_name=name)
    for i, item in enumerate(items):
        yield item
        if i % 200 == 0 or i == len(items) - 1:
            bar.update(i + 1)


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
            block_ids = order[k * self.batch_size:(k + 1) * self.batch_size]
        self.masker.rng = np.random.default_rng([self.seed, step, 1])
        cls, sep = self.tokenizer._token_start_id, self.tokenizer._token_end_id
        sources, targets = [], []
        for b in block_ids:
            start = b * self.body
            ids = np.concatenate([[cls], self.ids[start:start + self.body], [sep]])
            words = None
            if self.whole_word:
                words = np.concatenate([[-1], self.words[start:start + self.body], [-2]])
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
        self.state.update({
            'steps': step,
            'tokens_seen': step * self.tokens_per_step,
            'hours': round(self.hours_before + (time.time() - self.started) / 3600, 3),
            'train_loss': round(float(logs.get('loss', float('nan'))), 4),
            'train_masked_accuracy': round(float(logs.get('accuracy', float('nan'))), 4),
            'heldout_masked_accuracy': round(hits / max(count, 1), 4),
            'heldout_masked_tokens': int(count),
            'dtype_policy': keras.mixed_precision.global_policy().name,
        })
        self.state.setdefault('history', []).append(
            {k: self.state[k] for k in ('steps', 'hours', 'train_loss', 'heldout_masked_accuracy', 'dtype_policy')})
        self.manager.save(checkpoint_number=step)
        self.mlm.save_checkpoint(self.out_dir, self.state['config'])
        self.state['sha256'] = {f: sha256(os.path.join(self.out_dir, f)) for f in CKPT_FILES}
        write_json(os.path.join(self.out_dir, 'pretraining.json'), self.state)
        write_text(os.path.join(self.out_dir, 'SHA256SUMS'),
                   ''.join('%s  %s\n' % (h, n) for n, h in sorted(self.state['sha256'].items())))
        print('\nsaved step %d: held-out masked accuracy %.4f, %.2f h in all'
              % (step, self.state['heldout_masked_accuracy'], self.state['hours']), flush=True)


def pretrain(out_dir, corpus, config=None, init_checkpoint=None, steps=20000, batch_size=32,
             seq_len=256, learning_rate=5e-4, warmup=1000, save_every=200, whole_word=False,
             vocab_size=8000, heldout_blocks=128, seed=0, dropout=0.0, jit_compile=False):
    """Pretrain (or continue) a masked LM; see the module docstring.

    ``corpus`` is a list of documents; ``config`` a dict of BERT sizes for a
    model from scratch; ``init_checkpoint`` a Google-format folder to continue
    from (its vocab is kept). Returns the state written to pretraining.json.
    """
    os.makedirs(out_dir, exist_ok=True)
    state_path = os.path.join(out_dir, 'pretraining.json')
    dict_path = os.path.join(out_dir, 'vocab.txt')
    config_path = os.path.join(out_dir, 'bert_config.json')
    saved_weights = os.path.join(out_dir, 'bert_model.ckpt')
    # Resume with the optimizer state when it is there, else from the saved weights.
    resuming = os.path.exists(os.path.join(out_dir, 'resume', 'checkpoint'))
    continuing = not resuming and os.path.exists(state_path) and os.path.exists(saved_weights + '.index')
    if resuming or continuing:
        with open(state_path, encoding='utf-8') as f:
            state = json.load(f)
        # The recipe is fixed by the first run (the batches and held-out split depend on it).
        asked = {'seq_len': seq_len, 'batch_size': batch_size, 'learning_rate': learning_rate,
                 'warmup_steps': warmup, 'whole_word_masking': whole_word, 'dropout': dropout, 'seed': seed,
                 'heldout_blocks': heldout_blocks}
        state.setdefault('heldout_blocks', 128)  # runs before it was recorded used 128
        ignored = ['%s %s (recorded %s)' % (k, v, state[k]) for k, v in asked.items() if v != state[k]]
        if ignored:
            print('note: %s continues its recorded recipe; ignoring %s' % (out_dir, ', '.join(ignored)))
    else:
        if init_checkpoint:
            with open(os.path.join(init_checkpoint, 'vocab.txt'), encoding='utf-8') as f:
                tokens = [line.rstrip('\n') for line in f]
            with open(os.path.join(init_checkpoint, 'bert_config.json'), encoding='utf-8') as f:
                config = json.load(f)
        else:
            tokens = build_vocab(corpus, max_size=vocab_size)
            config = dict(config, vocab_size=len(tokens))
        write_vocab(dict_path, tokens)
        with open(config_path, 'w', encoding='utf-8') as f:
            json.dump(config, f, indent=2)
        state = {
            'config': config, 'init_checkpoint': init_checkpoint, 'corpus_documents': len(corpus),
            'corpus_characters': int(sum(len(d) for d in corpus)), 'vocab_size': len(tokens),
            'seq_len': seq_len, 'batch_size': batch_size, 'learning_rate': learning_rate,
            'warmup_steps': warmup, 'schedule_steps': steps, 'whole_word_masking': whole_word,
            'mask_rate': 0.15, 'dropout': dropout, 'seed': seed, 'heldout_blocks': heldout_blocks, 'hours': 0.0,
        }
    config = state['config']
    heldout_blocks = state['heldout_blocks']
    tokenizer = load_tokenizer(dict_path, config, config_path)
    ids, words = tokenize_corpus(corpus, tokenizer, state['whole_word_masking'])
    state['corpus_tokens'] = int(len(ids))
    n_blocks = len(ids) // (state['seq_len'] - 2)
    if n_blocks < heldout_blocks + state['batch_size']:
        raise ValueError('corpus too small: %d tokens make %d blocks of %d, fewer than %d held-out + one batch of %d'
                         % (len(ids), n_blocks, state['seq_len'], heldout_blocks, state['batch_size']))
    blocks = BlockBatches(ids, words, tokenizer, state['seq_len'], state['batch_size'],
                          np.arange(n_blocks - heldout_blocks), seed=state['seed'],
                          whole_word=state['whole_word_masking'])
    heldout_ids = np.arange(n_blocks - heldout_blocks, n_blocks)
    heldout = [blocks.batch(10**9 + i, heldout_ids[i:i + state['batch_size']])
               for i in range(0, heldout_blocks, state['batch_size'])]

    initial = saved_weights if continuing else \
        os.path.join(init_checkpoint, 'bert_model.ckpt') if init_checkpoint and not resuming else None
    mlm = build_mlm(config_path, initial, dropout_rate=state['dropout'], attention_dropout_rate=state['dropout'])
    model = mlm.training_model()
    optimizer = extend_with_piecewise_linear_lr(Adam, name='AdamLR')(
        learning_rate=state['learning_rate'],
        lr_schedule={state['warmup_steps']: 1.0, state['schedule_steps']: 0.1},
    )
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    resume = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(resume, os.path.join(out_dir, 'resume'), max_to_keep=1)
    start = 0
    if resuming:
        optimizer._create_all_weights(model.trainable_variables)  # slots to restore into
        resume.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        start = int(optimizer.iterations.numpy())
        print('resuming at step %d' % start)
    elif continuing:
        start = int(state['steps'])
        optimizer.iterations.assign(start)
        print('no optimizer state in %s: continuing from the saved weights at step %d with fresh '
              'Adam moments' % (os.path.join(out_dir, 'resume'), start))
    if start >= steps:
        return state

    def generator():
        for (x, s, p, t), _ in blocks.forever(start):
            yield (x, s, p, t)

    spec = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(generator, output_signature=(spec,) * 4)
    dataset = dataset.map(lambda *x: (x,)).prefetch(4)
    tokens_per_step = state['batch_size'] * state['seq_len']
    fit_interruptibly(
        model, 'the same command continues from its last save', dataset, steps_per_epoch=save_every,
        epochs=-(-steps // save_every), initial_epoch=start // save_every,
        callbacks=[SaveAndReport(mlm, out_dir, manager, state, heldout, tokens_per_step)],
    )
    return state
