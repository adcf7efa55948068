"""The reference implementation's approach, for the benchmarks to measure
pet_keras against (bojone/Pattern-Exploiting-Training, sentiment.py on
bert4keras 0.8.8), written here and not in the library:

- the generator yields full-length ``[token_ids, segment_ids, output_ids]``,
  output ids 0 where nothing is predicted; labeled texts get the prefix with
  the slot masked, unlabeled texts none; training batches mask ~15% of all
  tokens (80% [MASK], 10% kept, 10% random);
- the model is ``build_transformer_model(..., with_mlm=True)``: a softmax over
  the vocabulary at every position, and the loss is a ``CrossEntropy`` Loss
  layer over every position, masked by ``y_true > 0``;
- evaluation calls ``model.predict`` on fixed batches in file order and reads
  ``y_pred[:, mask_idx, label_token_ids]`` afterwards.
"""

import numpy as np

import pet_keras  # noqa: F401  (before bert4keras)
from bert4keras.backend import K, keras
from bert4keras.layers import Loss
from bert4keras.models import build_transformer_model
from bert4keras.snippets import DataGenerator, sequence_padding


def reference_prefix(pvp):
    """(prefix text, mask_idx, label token ids) of a pattern ``<prefix with
    the slot>{text}``, the only form the reference handles: one slot token in
    a prefix. The slot is filled with the first label word (it is masked)."""
    template = pvp.pattern.template
    parts = pvp.pattern.parts
    kinds = [kind for kind, _ in parts]
    if pvp.slot_length != 1 or kinds[-1] != 'field' or kinds.count('field') != 1:
        raise ValueError('the reference handles "<prefix with one slot token>{text}" patterns, not %r' % template)
    if len(pvp.label_token_ids) != len(pvp.labels):
        raise ValueError(
            'the reference reads one word per label; %r has %d words for %d labels'
            % (pvp.verbalizer, len(pvp.label_token_ids), len(pvp.labels))
        )
    slot = kinds.index('slot')
    before = ''.join(text for _, text in parts[:slot])
    after = ''.join(text for _, text in parts[slot + 1 : -1])
    word = pvp.verbalizer.label_words[pvp.labels[0]][0]
    mask_idx = 1 + len(pvp.text_ids(before))
    return before + word + after, mask_idx, pvp.label_token_ids[:, 0]


def random_masking(tokenizer, token_ids):
    """The reference's masking: every token (special ones too) with
    probability 0.15; 80% [MASK], 10% unchanged, 10% a random token."""
    rands = np.random.random(len(token_ids))
    source, target = [], []
    for r, t in zip(rands, token_ids):
        if r < 0.15 * 0.8:
            source.append(tokenizer._token_mask_id)
            target.append(t)
        elif r < 0.15 * 0.9:
            source.append(t)
            target.append(t)
        elif r < 0.15:
            source.append(np.random.choice(tokenizer._vocab_size - 1) + 1)
            target.append(t)
        else:
            source.append(t)
            target.append(0)
    return source, target


class ReferenceGenerator(DataGenerator):
    """The reference's data_generator. ``data`` is (text, label index) pairs,
    label None for unlabeled text (the reference's label 2)."""

    def __init__(self, tokenizer, data, prefix, mask_idx, label_token_ids, maxlen=128, batch_size=32):
        super().__init__(data, batch_size=batch_size)
        self.tokenizer, self.prefix, self.mask_idx, self.maxlen = tokenizer, prefix, mask_idx, maxlen
        self.label_token_ids = list(label_token_ids)

    def __iter__(self, random=False):
        tokenizer = self.tokenizer
        batch_token_ids, batch_segment_ids, batch_output_ids = [], [], []
        for is_end, (text, label) in self.sample(random):
            if label is not None:
                text = self.prefix + text
            token_ids, segment_ids = tokenizer.encode(text, maxlen=self.maxlen)
            if random:
                source_ids, target_ids = random_masking(tokenizer, token_ids)
            else:
                source_ids, target_ids = token_ids[:], token_ids[:]
            if label is not None:
                source_ids[self.mask_idx] = tokenizer._token_mask_id
                target_ids[self.mask_idx] = self.label_token_ids[label]
            batch_token_ids.append(source_ids)
            batch_segment_ids.append(segment_ids)
            batch_output_ids.append(target_ids)
            if len(batch_token_ids) == self.batch_size or is_end:
                yield (
                    [
                        sequence_padding(batch_token_ids),
                        sequence_padding(batch_segment_ids),
                        sequence_padding(batch_output_ids),
                    ],
                    None,
                )
                batch_token_ids, batch_segment_ids, batch_output_ids = [], [], []


class CrossEntropy(Loss):
    """The reference's loss: cross-entropy on the softmax output at every
    position, averaged where y_true > 0, with the accuracy there as a metric."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_pred = inputs
        y_mask = K.cast(K.not_equal(y_true, 0), K.floatx())
        accuracy = keras.metrics.sparse_categorical_accuracy(y_true, y_pred)
        accuracy = K.sum(accuracy * y_mask) / K.sum(y_mask)
        self.add_metric(accuracy, name='accuracy')
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        loss = K.sum(loss * y_mask) / K.sum(y_mask)
        return loss


def build_reference_model(config_path, checkpoint_path=None, **kwargs):
    """bert4keras' BERT with the softmax MLM head at every position."""
    return build_transformer_model(config_path, checkpoint_path, with_mlm=True, **kwargs)


def reference_training_model(model):
    """The reference's train_model: inputs [token ids, segment ids, output ids]."""
    y_in = keras.layers.Input(shape=(None,))
    outputs = CrossEntropy(1)([y_in, model.output])
    return keras.models.Model(model.inputs + [y_in], outputs)


def reference_predict(model, generator, mask_idx, label_token_ids):
    """The reference's evaluate(): ``model.predict`` batch by batch in file
    order, then the label columns at the slot, renormalised over the labels
    (the reference takes their argmax; the ratio is the label distribution)."""
    columns = []
    for x_true, _ in generator:
        y_pred = model.predict(x_true[:2], verbose=0)
        columns.append(y_pred[:, mask_idx, list(label_token_ids)])
    columns = np.concatenate(columns)
    return columns / columns.sum(axis=1, keepdims=True)
