"""A BERT-family masked LM whose MLM head comes from the checkpoint.

``MaskedLM`` wraps bert4keras' ``build_transformer_model(..., with_mlm=True)``
(the backbone) and builds the Keras models PET needs on the same layers:

- ``training_model``: logits over the vocabulary only at the positions that are
  predicted (gathered before the projection), with the masked-LM loss;
- ``scoring_model``: the logits of the label tokens only, at the mask slot
  (for words of one length); ``word_log_prob_model``: the words'
  log-probabilities, the vocabulary-wide softmax taken at the slot only
  (for words of several lengths);
- ``full_model``: bert4keras' own model, the vocabulary logits at every
  position (the reference approach; benchmarks/baselines.py reads the label
  tokens' logits from it, for comparisons with ``scoring_model``).

The first two read the encoder only where they need it (``encoder_at``): in
BERT's layout the last layer's queries, feed-forward and norms run only at
those positions.
"""

import glob
import json
import os
import re

import numpy as np
import tensorflow as tf

from pet_keras.io import write_json, write_text
from pet_keras import compat  # noqa: F401  (before bert4keras)
from pet_keras.compat import keras
from pet_keras.layers import GatherPositions, LabelColumns, LabelTokenLogits, MaskedLMLoss, PetLoss
from bert4keras.models import BERT, build_transformer_model
from bert4keras.tokenizers import Tokenizer, load_vocab

MLM_HEAD_LAYERS = ('MLM-Dense', 'MLM-Norm', 'MLM-Bias')


def load_config(config_path):
    """A model config (JSON) as a dict, with the file named in any error."""
    try:
        with open(config_path, encoding='utf-8') as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError('%s:%d: not valid JSON (%s)' % (config_path, e.lineno, e.msg)) from None
    for key in ('vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads'):
        if key not in config:
            raise ValueError('%s: config has no "%s"' % (config_path, key))
    return config


def load_tokenizer(dict_path, config=None, config_path=None):
    """bert4keras' Tokenizer (lower-cased), checked against the config's vocab_size."""
    token_dict = load_vocab(dict_path)
    if config is not None and config['vocab_size'] != len(token_dict):
        raise ValueError(
            'vocab_size mismatch: %s says %d, %s has %d tokens'
            % (config_path or 'config', config['vocab_size'], dict_path, len(token_dict))
        )
    for token in ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'):
        if token not in token_dict:
            raise ValueError('%s: vocabulary has no %s token' % (dict_path, token))
    return Tokenizer(token_dict, do_lower_case=True)


class MaskedLM:
    """A bert4keras transformer with its MLM head, and the models built on it.

    Under a Keras mixed-precision policy (``mixed_bfloat16``) the encoder and
    head compute in bfloat16 with float32 weights; the loss and the label
    scores are float32 (their layers are pinned to it)."""

    def __init__(self, transformer):
        self.transformer = transformer
        self.layers = transformer.layers
        self.inputs = transformer.model.inputs[:2]
        # The encoder output is what the MLM head reads (one call, any model family).
        self.hidden = self.layers['MLM-Dense'].input
        self.full_model = transformer.model
        self.last_layer = self._last_layer_names()
        # the last layer's input: the encoder before it (BERT layout only)
        self.penultimate = self.layers[self.last_layer[0]].get_input_at(0)[0] if self.last_layer else None

    def _last_layer_names(self):
        """The last transformer layer's sublayer names, in order, when the model is
        plain BERT (post-LayerNorm, no attention bias); else None."""
        t = self.transformer
        if type(t) is not BERT or t.attention_bias is not None or t.layer_norm_conds[0] is not None:
            return None
        attention = 'Transformer-%d-MultiHeadSelfAttention' % (t.num_hidden_layers - 1)
        feed_forward = 'Transformer-%d-FeedForward' % (t.num_hidden_layers - 1)
        names = [
            attention,
            attention + '-Dropout',
            attention + '-Add',
            attention + '-Norm',
            feed_forward,
            feed_forward + '-Dropout',
            feed_forward + '-Add',
            feed_forward + '-Norm',
        ]
        return names if attention in self.layers else None

    def encoder_at(self, positions):
        """Encoder outputs at ``positions`` (batch, n) → (batch, n, hidden).

        The output at a position depends on the whole sequence only through
        the last layer's attention keys and values, so that layer's queries,
        feed-forward and norms run only at ``positions`` (on the same layers
        and weights): the same values, without a layer's work at the other
        positions. Other layouts gather the full encoder output."""
        if self.last_layer is None:
            return GatherPositions(name='Gather-Positions')([self.hidden, positions])

        def layer(name):
            return self.layers.get(name, lambda x: x)  # dropout layers exist only with rate > 0

        (
            attention,
            attention_dropout,
            attention_add,
            attention_norm,
            feed_forward,
            feed_forward_dropout,
            feed_forward_add,
            feed_forward_norm,
        ) = map(layer, self.last_layer)
        x = self.penultimate
        query = GatherPositions(name='Gather-Positions')([x, positions])
        # keys and values over the sequence; their padding mask comes with x
        h = attention([query, x, x], a_bias=None)
        h = attention_norm(attention_add([query, attention_dropout(h)]))
        return feed_forward_norm(feed_forward_add([h, feed_forward_dropout(feed_forward(h))]))

    def mlm_transform(self, hidden):
        """The head before the vocabulary projection: dense, activation, LayerNorm."""
        return self.layers['MLM-Norm'](self.layers['MLM-Dense'](hidden))

    def vocab_logits(self, hidden):
        """Vocabulary logits from encoder outputs (tied embeddings + output bias)."""
        x = self.layers['Embedding-Token'](self.mlm_transform(hidden), mode='dense')
        return self.layers['MLM-Bias'](x)

    def training_model(self, pvp=None, slot_loss='mlm'):
        """Inputs: token ids, segment ids, positions to predict, their targets
        (0 = padding), and with a ``pvp`` each row's gold word (``PetDataGenerator``'s
        batches). Output: vocabulary logits at those positions; the loss and the
        masked-token accuracy are attached: the masked-LM loss, or with a ``pvp``
        ``PetLoss`` with its slot trained by ``slot_loss`` (``budget.SLOT_LOSSES``)."""
        positions = keras.layers.Input(shape=(None,), dtype='int32', name='Input-Positions')
        targets = keras.layers.Input(shape=(None,), dtype='int32', name='Input-Targets')
        logits = self.vocab_logits(self.encoder_at(positions))
        if pvp is None:
            logits = MaskedLMLoss(output_axis=1, dtype='float32', name='MLM-Loss')([targets, logits])
            return keras.Model(self.inputs + [positions, targets], logits, name='mlm_training')
        words = keras.layers.Input(shape=(), dtype='int32', name='Input-Words')
        loss = PetLoss(slot_loss, pvp.word_ids, pvp.word_label, output_axis=2, dtype='float32', name='MLM-Loss')
        logits = loss([targets, words, logits])
        return keras.Model(self.inputs + [positions, targets, words], logits, name='pet_training')

    def scoring_model(self, label_token_ids):
        """Inputs: token ids, segment ids, slot positions (batch, slot_length).
        Output: each label word's summed slot logit (batch, words)."""
        label_token_ids = np.asarray(label_token_ids)
        slots = keras.layers.Input(shape=(label_token_ids.shape[1],), dtype='int32', name='Input-Slots')
        scores = LabelTokenLogits(
            self.layers['Embedding-Token'],
            self.layers['MLM-Bias'],
            label_token_ids,
            dtype='float32',
            name='Label-Token-Logits',
        )(self.mlm_transform(self.encoder_at(slots)))
        return keras.Model(self.inputs + [slots], scores, name='pet_scoring')

    def word_log_prob_model(self, label_token_ids, name='pet_word_log_probs'):
        """``scoring_model``'s inputs; output: each word's log-probability
        (batch, words), the sum over its tokens of the log-softmax over the
        whole vocabulary at its slot position. Words of different lengths are
        read from different clozes, so they do not share the softmax's
        normalisers: this is exact where label-token logits are not. The
        vocabulary projection still runs only at the slot."""
        label_token_ids = np.asarray(label_token_ids)
        slots = keras.layers.Input(shape=(label_token_ids.shape[1],), dtype='int32', name='Input-Slots')
        logits = self.vocab_logits(self.encoder_at(slots))
        log_probs = keras.layers.Lambda(
            lambda x: tf.nn.log_softmax(tf.cast(x, 'float32')), dtype='float32', name='Slot-Log-Softmax'
        )(logits)
        scores = LabelColumns(label_token_ids, dtype='float32', name='Label-Columns')(log_probs)
        return keras.Model(self.inputs + [slots], scores, name=name)

    def save_checkpoint(self, directory, config, dict_path=None):
        """Write a Google-format checkpoint folder: bert_config.json,
        bert_model.ckpt.*, vocab.txt (copied from ``dict_path``)."""
        os.makedirs(directory, exist_ok=True)
        self.transformer.save_weights_as_checkpoint(os.path.join(directory, 'bert_model.ckpt'))
        write_json(os.path.join(directory, 'bert_config.json'), config)
        if dict_path and os.path.abspath(dict_path) != os.path.abspath(os.path.join(directory, 'vocab.txt')):
            with open(dict_path, encoding='utf-8') as src:
                write_text(os.path.join(directory, 'vocab.txt'), src.read())


def checkpoint_variables(checkpoint_path):
    """{name: shape} of a checkpoint, from its .index. Its data files must be as long as
    the index's tensors need (a copy or download cut short fails only later, in
    bert4keras, as "Read less bytes than requested"): their size against the
    tensors' bytes, without reading them."""
    try:
        reader = tf.train.load_checkpoint(checkpoint_path)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as e:
        raise FileNotFoundError('%s: not a readable TF checkpoint (%s)' % (checkpoint_path, e)) from None
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    # numeric tensors are stored back to back; a string tensor takes at least nothing
    needed = sum(int(np.prod(shape)) * dtypes[name].size for name, shape in shapes.items() if dtypes[name] != tf.string)
    prefix = tf.train.latest_checkpoint(checkpoint_path) if os.path.isdir(checkpoint_path) else checkpoint_path
    data = glob.glob(glob.escape(prefix) + '.data-*-of-*')
    have = sum(os.path.getsize(path) for path in data)
    if have < needed:
        raise ValueError(
            '%s: incomplete checkpoint: %d bytes of the %d its .index lists (copy or download it again)'
            % (', '.join(data) or prefix + '.data-*', have, needed)
        )
    return {name: tuple(shape) for name, shape in shapes.items()}


def check_checkpoint(transformer, checkpoint_path, allow_random_mlm_head=False):
    """Compare the checkpoint with what the model will load from it: every
    variable present with the model's shape; the MLM head present unless the
    user accepts a random one. Returns the mapping to load."""
    available = checkpoint_variables(checkpoint_path)
    if any('/layer_shared/' in n for n in available):
        raise ValueError(
            "checkpoint %s has brightmart's early ALBERT layout (bert/encoder/layer_shared/*), which "
            'bert4keras does not read; use the Google-layout release (albert_*_zh_google).' % checkpoint_path
        )
    mapping = {
        layer: names
        for layer, names in transformer.variable_mapping().items()
        if transformer.prefixed(layer) in transformer.layers
    }
    refuse_unused_layers(transformer, mapping, available, checkpoint_path)
    missing, mismatched = [], []
    for layer, names in mapping.items():
        weights = transformer.layers[transformer.prefixed(layer)].trainable_weights
        for weight, name in zip(weights, names):
            if name not in available:
                missing.append(name)
                continue
            want = tuple(weight.shape)
            have = available[name]
            if name == 'cls/seq_relationship/output_weights':
                have = have[::-1]
            if transformer.keep_tokens is None and have != want:
                mismatched.append('%s: checkpoint %s, model (from config) %s' % (name, have, want))
    if mismatched:
        raise ValueError(
            'checkpoint %s does not match the config: %s (use the bert_config.json released with it)'
            % (checkpoint_path, '; '.join(mismatched))
        )
    head = [n for layer in MLM_HEAD_LAYERS for n in mapping.get(layer, []) if n in missing]
    body = [n for n in missing if n not in head]
    if body:
        raise ValueError(
            'checkpoint %s lacks %d variable(s) that model=%r needs, e.g. %s'
            % (checkpoint_path, len(body), getattr(transformer, 'model_type', '?'), ', '.join(body[:8]))
        )
    if head:
        if not allow_random_mlm_head:
            raise ValueError(
                'checkpoint %s has no MLM head: missing %s. PET reads the masked-LM '
                'predictions, so a random head gives meaningless zero-shot results. '
                'Use a checkpoint that keeps cls/predictions/* (see checkpoints/README.md), '
                'or pass allow_random_mlm_head=True (--allow-random-mlm-head) to train it '
                'from scratch.' % (checkpoint_path, ', '.join(head))
            )
        mapping = {k: v for k, v in mapping.items() if k not in MLM_HEAD_LAYERS}
    return mapping


def layer_numbers(names):
    """The encoder layer numbers (``.../layer_<n>/...``) among variable ``names``."""
    return {int(m.group(1)) for n in names for m in [re.search(r'/layer_(\d+)/', n)] if m}


def refuse_unused_layers(transformer, mapping, available, checkpoint_path):
    """A config with fewer layers than the checkpoint would silently ignore the rest: refused."""
    used = layer_numbers(name for names in mapping.values() for name in names)
    unused_layers = sorted(layer_numbers(available) - used)
    if unused_layers:
        raise ValueError(
            'checkpoint %s holds encoder layer(s) %s that the config (%d layers) leaves unused: the model would '
            'compute something else (use the bert_config.json saved with it)'
            % (checkpoint_path, ', '.join(map(str, unused_layers)), getattr(transformer, 'num_hidden_layers', -1))
        )


def load_checkpoint_weights(transformer, checkpoint_path, allow_random_mlm_head=False):
    """Load a checked checkpoint into a bert4keras transformer. Data that does not
    match its checksums (a copy gone wrong, a disk error) is one line naming the
    checkpoint, not TensorFlow's OpError."""
    mapping = check_checkpoint(transformer, checkpoint_path, allow_random_mlm_head)
    try:
        transformer.load_weights_from_checkpoint(checkpoint_path, mapping=mapping)
    except tf.errors.OpError as e:
        raise ValueError(
            '%s: checkpoint data is damaged (%s); copy or download it again' % (checkpoint_path, e.message)
        ) from None


def build_mlm(config_path, checkpoint_path=None, model='bert', allow_random_mlm_head=False, dict_path=None, **kwargs):
    """Build a ``MaskedLM`` from a bert4keras config (+ checkpoint).

    ``model`` is any bert4keras BERT-family name (bert, roberta, albert, nezha …).
    Without ``checkpoint_path`` the weights are random (for pretraining).
    ``dict_path`` (vocab.txt) is remembered for the checkpoints it saves.
    """
    config = load_config(config_path)
    transformer = build_transformer_model(
        config_path, None, model=model, with_mlm='linear', return_keras_model=False, **kwargs
    )
    transformer.model_type = model
    if checkpoint_path is not None:
        load_checkpoint_weights(transformer, checkpoint_path, allow_random_mlm_head)
    mlm = MaskedLM(transformer)
    mlm.config = config
    mlm.checkpoint_path = checkpoint_path  # the default learning rate depends on it (pet_keras.budget)
    mlm.dict_path = dict_path
    return mlm
