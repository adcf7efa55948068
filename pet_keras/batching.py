"""Masked-token batches for MLM and PET training.

``RandomMasker`` masks tokens by BERT's 80/10/10 rule. ``PetDataGenerator`` is
the bert4keras DataGenerator PET trains on: labeled examples get the pattern,
their slot masked and the label word as target (a word of L tokens in the
cloze with an L-token slot, so training raises the log-probability the word is
scored by); unlabeled examples get no pattern (as in the reference) and only
random masking. Training batches also mask ~15% of the other tokens (80%
[MASK], 10% random, 10% unchanged), never special tokens nor the slot. Batches
carry the positions to predict (a labeled row's slot first) and their targets
(see ``positions_batch``), so the vocabulary projection runs only there, and
each row's gold word, so the slot can train by a label loss (``layers.PetLoss``). Batch lengths are padded to a
multiple (``pad_to_multiple``), so few distinct shapes are traced.
"""

import numpy as np
import tensorflow as tf

from pet_keras import budget, compat  # noqa: F401  (compat before bert4keras)
from bert4keras.snippets import DataGenerator, sequence_padding

BUCKET_BATCHES = 64  # batches per length-sorted chunk of a shuffled epoch
LENGTH_MULTIPLE = 8  # batch lengths are padded to a multiple of this (few distinct shapes)


def pad_to_multiple(n, multiple=LENGTH_MULTIPLE):
    """The smallest multiple of ``multiple`` that is >= ``n``: a padded length."""
    return -(-n // multiple) * multiple


class RandomMasker:
    """Masks ~``rate`` of the maskable tokens of a sequence.

    A chosen token becomes [MASK] 80% of the time, a random ordinary token
    10%, and stays unchanged 10%; its target is the original id. Targets are 0
    where nothing is predicted. Special tokens ([CLS], [SEP], [PAD], [MASK],
    [UNK], [unused*]) are never chosen, nor positions the caller excludes (a
    PET slot). With ``word_ids`` (whole-word masking) the choice is per word:
    all tokens of a chosen word are masked together.
    """

    def __init__(self, tokenizer, rate=0.15, seed=None):
        self.rate = rate
        self.mask_id = tokenizer._token_mask_id
        vocab = tokenizer._token_dict
        special = {i for t, i in vocab.items() if t.startswith('[') and t.endswith(']')}
        self.special_ids = np.array(sorted(special), dtype='int64')
        self.ordinary_ids = np.array(sorted(set(vocab.values()) - special), dtype='int64')
        self.rng = np.random.default_rng(seed)

    def maskable(self, token_ids):
        return ~np.isin(token_ids, self.special_ids)

    def __call__(self, token_ids, exclude=None, word_ids=None):
        """Returns (source ids, target ids) as int arrays of the input's length."""
        token_ids = np.asarray(token_ids, dtype='int64')
        candidates = self.maskable(token_ids)
        if exclude is not None:
            candidates[np.asarray(exclude, dtype='int64')] = False
        if word_ids is None:
            chosen = candidates & (self.rng.random(len(token_ids)) < self.rate)
        else:
            word_ids = np.asarray(word_ids)
            draw = self.rng.random(word_ids.max() + 1 if len(word_ids) else 0) < self.rate
            chosen = candidates & draw[word_ids]
        action = self.rng.random(len(token_ids))
        source = token_ids.copy()
        to_mask = chosen & (action < 0.8)
        to_random = chosen & (action >= 0.8) & (action < 0.9)
        source[to_mask] = self.mask_id
        source[to_random] = self.rng.choice(self.ordinary_ids, int(to_random.sum()))
        target = np.where(chosen, token_ids, 0)
        return source, target


def labeled_repeats(labeled, unlabeled, share):
    """How many times each of ``labeled`` examples appears in an epoch with
    ``unlabeled`` ones so that they are about ``share`` of it (at least once;
    ``None``: once)."""
    if share is None or not labeled or not unlabeled:
        return 1
    return max(1, round(share / (1 - share) * unlabeled / labeled))


def positions_batch(sources, targets, multiple=16, first=None, width=1):
    """(token ids, positions, targets at positions) from padded (batch, length)
    sources/targets: the token ids are ``sources`` as given; positions are padded
    with 0 and target 0 (ignored) to a multiple of ``multiple`` (few distinct shapes),
    at least ``width``. ``first``: each row's positions to put first (a PET slot), or None."""
    where = targets > 0
    width = pad_to_multiple(max(width, int(where.sum(1).max())), multiple)
    positions = np.zeros((len(sources), width), dtype='int32')
    gathered = np.zeros((len(sources), width), dtype='int32')
    for i, row in enumerate(where):
        p = np.flatnonzero(row)
        if first is not None and first[i]:
            p = np.concatenate([first[i], np.setdiff1d(p, first[i])])
        positions[i, : len(p)] = p
        gathered[i, : len(p)] = targets[i, p]
    return sources, positions, gathered


class PetDataGenerator(DataGenerator):
    """Batches ``((token_ids, segment_ids, positions, targets, words), None)``:
    ``words`` is each row's gold word (its index in ``PVP.word_ids``, −1 for
    unlabeled text), whose slot positions come first in its row of
    ``positions`` (what ``layers.PetLoss`` reads).

    ``labeled``/``unlabeled`` are ``data.Example`` lists; they are encoded
    once here. With several words for a label, each epoch draws one of them as
    the slot's target. ``mask_rate=0`` turns random masking off.
    ``bucket=False`` batches a shuffled epoch in its shuffled order (as the
    reference does) instead of by length. ``labeled_share`` (with both kinds
    of example) repeats the labeled examples in every epoch so that they are
    about that share of it: 168 labeled among 16,715 unlabeled texts are 1% of
    the stream, a few passes over them in a whole budget. ``None`` keeps
    their natural share, as the reference does (default: ``budget.LABELED_SHARE``).
    """

    def __init__(
        self,
        pvp,
        labeled=(),
        unlabeled=(),
        batch_size=32,
        mask_rate=0.15,
        seed=None,
        bucket=True,
        labeled_share=budget.LABELED_SHARE,
    ):
        # with the pattern's windows, each window of a long text is an example of its own
        labeled = [window for e in labeled for window in pvp.text_windows(e)]
        unlabeled = [window for e in unlabeled for window in pvp.text_windows(e)]
        encoded = [pvp.encode_training(e) for e in labeled] + [pvp.encode_plain(e) for e in unlabeled]
        if not encoded:
            raise ValueError('no training examples')
        if labeled_share is not None and not 0 < labeled_share < 1:
            raise ValueError('labeled_share must be in (0, 1), got %r' % (labeled_share,))
        self.labeled_share = labeled_share if labeled and unlabeled else None
        repeats = labeled_repeats(len(labeled), len(unlabeled), self.labeled_share)
        # an epoch: every example once, and the labeled ones (encoded first) repeats - 1 times more
        self.epoch = np.concatenate([np.arange(len(encoded))] + [np.arange(len(labeled))] * (repeats - 1))
        super().__init__(encoded, batch_size=batch_size)
        self.steps = pad_to_multiple(len(self.epoch), batch_size) // batch_size
        self.pvp = pvp
        self.mask_rate = mask_rate
        self.masker = RandomMasker(pvp.tokenizer, mask_rate, seed=seed)
        self.rng = self.masker.rng
        self.words_of_label = [np.flatnonzero(pvp.word_label == i) for i in range(len(pvp.labels))]
        self.bucket = bucket
        self.padded_lengths = pad_to_multiple(np.array([len(e.token_ids) for e in encoded]))

    def batch_indices(self, random=False):
        """The example indices of each batch of one epoch: file order, or
        shuffled (NumPy's global state, as bert4keras' ``sample``). Shuffled
        and bucketed, each chunk of ``BUCKET_BATCHES`` batches is sorted by
        padded length before it is cut into batches, and the full batches are
        shuffled: random batches of one padded length (a last, smaller batch
        stays last). Only the padded length: rows of one padded length stay in
        shuffled order, so the copies of a repeated labeled example (whose
        length is the same) do not fill a batch together. A set that fits in
        one chunk (few-shot) is not sorted: its batches would be the same
        every epoch."""
        n, size, chunk = len(self.epoch), self.batch_size, self.batch_size * BUCKET_BATCHES
        order = self.epoch[np.random.permutation(n)] if random else self.epoch
        bucket = random and self.bucket and n > chunk
        if bucket:
            chunks = np.split(order, range(chunk, n, chunk))
            order = np.concatenate([c[np.argsort(self.padded_lengths[c], kind='stable')] for c in chunks])
        batches = [order[i : i + size] for i in range(0, n, size)]
        if bucket:
            full = n // size
            batches[:full] = [batches[i] for i in np.random.permutation(full)]
        return batches

    def example_arrays(self, item):
        """(source ids, segment ids, target ids, gold word or −1, slot positions or None)
        of one encoded example; a labeled one in the cloze of the length of the word drawn
        for it."""
        word = -1
        if item.label is not None:
            word = self.rng.choice(self.words_of_label[item.label])
            item = item.at_length[self.pvp.word_length[word]]
        token_ids = np.asarray(item.token_ids, dtype='int64')
        if self.mask_rate > 0:
            source, target = self.masker(token_ids, exclude=item.slots)
        else:
            source, target = token_ids.copy(), np.zeros_like(token_ids)
        if word >= 0:
            target[item.slots] = self.pvp.word_ids[word]
            return source, item.segment_ids, target, word, item.slots
        return source, item.segment_ids, target, word, None

    def __iter__(self, random=False):
        for indices in self.batch_indices(random):
            sources, segments, targets, words, slots = zip(*(self.example_arrays(self.data[i]) for i in indices))
            length = pad_to_multiple(max(len(s) for s in sources), LENGTH_MULTIPLE)
            ids, positions, gathered = positions_batch(
                sequence_padding(sources, length), sequence_padding(targets, length), first=slots,
                width=self.pvp.slot_length,
            )  # fmt: skip
            yield [ids, sequence_padding(segments, length), positions, gathered, np.array(words)], None

    def to_dataset(self, random=True):
        """An endless, prefetched tf.data pipeline over the batches."""
        return to_dataset(lambda: (tuple(np.asarray(a, dtype='int32') for a in x) for x, _ in self.forfit(random)))


def to_dataset(batches, prefetch=tf.data.AUTOTUNE):
    """A prefetched tf.data pipeline over ``batches()``, a new iterator of (token ids,
    segment ids, positions, targets, words) int32 arrays; each element is the model's inputs ``(x,)``."""
    rows = tf.TensorSpec((None, None), tf.int32)
    dataset = tf.data.Dataset.from_generator(
        batches, output_signature=(rows,) * 4 + (tf.TensorSpec((None,), tf.int32),)
    )
    return dataset.map(lambda *x: (x,)).prefetch(prefetch)
