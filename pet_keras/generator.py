"""The masked-token data generator for PET training (a bert4keras DataGenerator).

Labeled examples get the pattern, their slot masked and the label word as
target (a word of L tokens in the cloze with an L-token slot, so training
raises the log-probability the word is scored by); unlabeled examples get no pattern (as in the reference) and only random
masking. Training batches also mask ~15% of the other tokens (80% [MASK], 10%
random, 10% unchanged), never special tokens nor the slot. Batches carry the
positions to predict and their targets (see ``positions_batch``), so the
vocabulary projection runs only there.
"""
import numpy as np
import tensorflow as tf

from pet_keras import compat  # noqa: F401
from bert4keras.snippets import DataGenerator, sequence_padding
from pet_keras.masking import RandomMasker

BUCKET_BATCHES = 64  # batches per length-sorted chunk of a shuffled epoch
LENGTH_MULTIPLE = 8  # batch lengths are padded to a multiple of this (few distinct shapes)


def positions_batch(sources, targets, multiple=16):
    """((token ids, segment ids, positions, targets at positions), None) from
    padded (batch, length) sources/targets; positions are padded with 0 and
    target 0 (ignored) to a multiple of ``multiple`` (few distinct shapes)."""
    where = targets > 0
    width = -(-max(1, int(where.sum(1).max())) // multiple) * multiple
    positions = np.zeros((len(sources), width), dtype='int32')
    gathered = np.zeros((len(sources), width), dtype='int32')
    for i, row in enumerate(where):
        p = np.flatnonzero(row)
        positions[i, :len(p)] = p
        gathered[i, :len(p)] = targets[i, p]
    return sources, positions, gathered


class PetDataGenerator(DataGenerator):
    """Batches ``((token_ids, segment_ids, positions, targets), None)``.

    ``labeled``/``unlabeled`` are ``data.Example`` lists; they are encoded
    once here. With several words for a label, each epoch draws one of them as
    the slot's target. ``mask_rate=0`` turns random masking off.
    ``bucket=False`` batches a shuffled epoch in its shuffled order (as the
    reference does) instead of by length.
    """

    def __init__(self, pvp, labeled=(), unlabeled=(), batch_size=32, mask_rate=0.15, seed=None, bucket=True):
        encoded = [pvp.encode_training(e) for e in labeled] + [pvp.encode_plain(e) for e in unlabeled]
        if not encoded:
            raise ValueError('no training examples')
        super().__init__(encoded, batch_size=batch_size)
        self.pvp = pvp
        self.mask_rate = mask_rate
        self.masker = RandomMasker(pvp.tokenizer, mask_rate, seed=seed)
        self.rng = self.masker.rng
        self.words_of_label = [np.flatnonzero(pvp.word_label == i) for i in range(len(pvp.labels))]
        self.bucket = bucket
        self.lengths = np.array([len(e.token_ids) for e in encoded])

    def batch_indices(self, random=False):
        """The example indices of each batch of one epoch: file order, or
        shuffled (NumPy's global state, as bert4keras' ``sample``). Shuffled
        and bucketed, each chunk of ``BUCKET_BATCHES`` batches is sorted by
        length before it is cut into batches, and the full batches are
        shuffled: random batches of similar lengths (a last, smaller batch
        stays last). A set that fits in one chunk (few-shot) is not sorted:
        its batches would be the same every epoch."""
        n, size, chunk = len(self.data), self.batch_size, self.batch_size * BUCKET_BATCHES
        order = np.random.permutation(n) if random else np.arange(n)
        bucket = random and self.bucket and n > chunk
        if bucket:
            chunks = np.split(order, range(chunk, n, chunk))
            order = np.concatenate([c[np.argsort(self.lengths[c], kind='stable')] for c in chunks])
        batches = [order[i:i + size] for i in range(0, n, size)]
        if bucket:
            full = n // size
            batches[:full] = [batches[i] for i in np.random.permutation(full)]
        return batches

    def example_arrays(self, item):
        """(source ids, segment ids, target ids) of one encoded example; a
        labeled one in the cloze of the length of the word drawn for it."""
        word = None
        if item.label is not None:
            word = self.rng.choice(self.words_of_label[item.label])
            item = item.at_length[self.pvp.word_length[word]]
        token_ids = np.asarray(item.token_ids, dtype='int64')
        if self.mask_rate > 0:
            source, target = self.masker(token_ids, exclude=item.slots)
        else:
            source, target = token_ids.copy(), np.zeros_like(token_ids)
        if word is not None:
            target[item.slots] = self.pvp.word_ids[word]
        return source, item.segment_ids, target

    def __iter__(self, random=False):
        for indices in self.batch_indices(random):
            sources, segments, targets = zip(*(self.example_arrays(self.data[i]) for i in indices))
            length = -(-max(len(s) for s in sources) // LENGTH_MULTIPLE) * LENGTH_MULTIPLE
            ids, positions, gathered = positions_batch(sequence_padding(sources, length),
                                                       sequence_padding(targets, length))
            yield [ids, sequence_padding(segments, length), positions, gathered], None

    def to_dataset(self, random=True):
        """An endless, prefetched tf.data pipeline over the batches."""
        spec = tf.TensorSpec((None, None), tf.int32)

        def batches():
            for x, _ in self.forfit(random):
                yield tuple(np.asarray(a, dtype='int32') for a in x)

        dataset = tf.data.Dataset.from_generator(batches, output_signature=(spec,) * 4)
        return dataset.map(lambda *x: (x,)).prefetch(tf.data.AUTOTUNE)
