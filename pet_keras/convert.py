"""Hugging Face BERT-family masked LMs → the Google-format checkpoint folder pet_keras loads.

A Hugging Face folder (``config.json``, ``model.safetensors`` or a sharded
``model.safetensors.index.json``, ``vocab.txt``) of a ``BertForMaskedLM`` or
``BertForPreTraining`` (bert-base-chinese, hfl/chinese-roberta-wwm-ext,
hfl/chinese-macbert-base, hfl/rbt3 …: they all use BERT's names) becomes
``bert_config.json``, ``bert_model.ckpt.*`` and ``vocab.txt`` under Google's
names, the MLM head included (``cls/predictions/*``; its decoder is the word
embeddings, tied, as Google's BERT has it). Every source tensor is used or the
conversion fails naming it; a model without the MLM head is refused, since PET
reads the masked-LM predictions. Tensors are read with safetensors' NumPy API:
nothing is unpickled, so a folder with only ``pytorch_model.bin`` is refused
with the way out. The output folder is written beside its place and renamed
there when complete; the source is only read.
"""

import os
import re

import numpy as np

from pet_keras.io import atomic_folder, read_json, refuse_overwriting_inputs, write_json, write_text

# config.json keys → bert_config.json (the same names in both)
CONFIG_KEYS = (
    'vocab_size',
    'hidden_size',
    'num_hidden_layers',
    'num_attention_heads',
    'intermediate_size',
    'hidden_act',
    'hidden_dropout_prob',
    'attention_probs_dropout_prob',
    'max_position_embeddings',
    'type_vocab_size',
    'initializer_range',
)
BERT_LAYER_NORM_EPS = 1e-12  # bert4keras' LayerNormalization epsilon
# Hugging Face name patterns → Google names; "T": a Linear weight, transposed into a kernel
RULES = [
    (r'bert\.embeddings\.(word|position|token_type)_embeddings\.weight', r'bert/embeddings/\1_embeddings', False),
    (r'bert\.embeddings\.LayerNorm\.(weight|gamma)', 'bert/embeddings/LayerNorm/gamma', False),
    (r'bert\.embeddings\.LayerNorm\.(bias|beta)', 'bert/embeddings/LayerNorm/beta', False),
    (
        r'bert\.encoder\.layer\.(\d+)\.(attention\.self\.(?:query|key|value)|attention\.output\.dense|'
        r'intermediate\.dense|output\.dense)\.weight',
        'bert/encoder/layer_{0}/{1}/kernel',
        True,
    ),
    (
        r'bert\.encoder\.layer\.(\d+)\.(attention\.self\.(?:query|key|value)|attention\.output\.dense|'
        r'intermediate\.dense|output\.dense)\.bias',
        'bert/encoder/layer_{0}/{1}/bias',
        False,
    ),
    (
        r'bert\.encoder\.layer\.(\d+)\.(attention\.output|output)\.LayerNorm\.(?:weight|gamma)',
        'bert/encoder/layer_{0}/{1}/LayerNorm/gamma',
        False,
    ),
    (
        r'bert\.encoder\.layer\.(\d+)\.(attention\.output|output)\.LayerNorm\.(?:bias|beta)',
        'bert/encoder/layer_{0}/{1}/LayerNorm/beta',
        False,
    ),
    (r'bert\.pooler\.dense\.weight', 'bert/pooler/dense/kernel', True),
    (r'bert\.pooler\.dense\.bias', 'bert/pooler/dense/bias', False),
    (r'cls\.predictions\.transform\.dense\.weight', 'cls/predictions/transform/dense/kernel', True),
    (r'cls\.predictions\.transform\.dense\.bias', 'cls/predictions/transform/dense/bias', False),
    (r'cls\.predictions\.transform\.LayerNorm\.(?:weight|gamma)', 'cls/predictions/transform/LayerNorm/gamma', False),
    (r'cls\.predictions\.transform\.LayerNorm\.(?:bias|beta)', 'cls/predictions/transform/LayerNorm/beta', False),
    (r'cls\.predictions\.bias', 'cls/predictions/output_bias', False),
    (r'cls\.seq_relationship\.weight', 'cls/seq_relationship/output_weights', False),
    (r'cls\.seq_relationship\.bias', 'cls/seq_relationship/output_bias', False),
]
BUFFERS = re.compile(r'bert\.embeddings\.position_ids')  # an index buffer, not a weight
# the MLM head's decoder: tied to the word embeddings (weight) and equal to cls.predictions.bias (bias)
DECODER = {
    'cls.predictions.decoder.weight': 'bert/embeddings/word_embeddings',
    'cls.predictions.decoder.bias': 'cls/predictions/output_bias',
}
MLM_HEAD = ('cls/predictions/transform/dense/kernel', 'cls/predictions/output_bias')


def google_name(name):
    """(Google name, transposed?) of a Hugging Face BERT tensor name, or None."""
    for pattern, target, transpose in RULES:
        match = re.fullmatch(pattern, name)
        if match:
            groups = [g.replace('.', '/') for g in match.groups()]
            return (target.format(*groups) if '{' in target else match.expand(target)), transpose
    return None


def read_tensors(source):
    """{name: array} of a Hugging Face folder's safetensors file(s), read without unpickling."""
    single = os.path.join(source, 'model.safetensors')
    index = os.path.join(source, 'model.safetensors.index.json')
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        weight_map = read_json(index).get('weight_map')
        if not isinstance(weight_map, dict):
            raise ValueError('%s: no "weight_map" object (a sharded safetensors index has one)' % index)
        files = [os.path.join(source, f) for f in sorted(set(weight_map.values()))]
    elif os.path.isfile(os.path.join(source, 'pytorch_model.bin')):
        raise ValueError(
            '%s holds only pytorch_model.bin, a pickle, which pet_keras never loads (it can run code). Download '
            "the model's model.safetensors from the hub instead, or convert it where you trust it: "
            'python -c "from transformers import BertForMaskedLM as M; '
            "M.from_pretrained('%s').save_pretrained('OUT', safe_serialization=True)\"" % (source, source)
        )
    else:
        raise FileNotFoundError('%s: no model.safetensors or model.safetensors.index.json' % source)
    from safetensors.numpy import load_file

    tensors = {}
    for path in files:
        try:
            tensors.update(load_file(path))
        except (OSError, ValueError, TypeError) as e:  # bfloat16 has no NumPy dtype; a cut file; not safetensors
            raise ValueError('%s: cannot read it as safetensors with NumPy (%s)' % (path, e)) from None
    return tensors


def bert_config(config, path):
    """bert_config.json's dict from a Hugging Face config.json, refusing what bert4keras' BERT is not."""
    model_type = config.get('model_type', 'bert')
    if model_type != 'bert':
        raise ValueError(
            "%s: model_type %r; this converter reads BERT-family masked LMs with BERT's names (model_type "
            '"bert": bert-base-chinese, chinese-roberta-wwm-ext, chinese-macbert …). RoBERTa\'s own layout '
            '(roberta.* names, positions offset by 2) and others are not converted' % (path, model_type)
        )
    if config.get('position_embedding_type', 'absolute') != 'absolute':
        raise ValueError(
            '%s: position_embedding_type %r; only "absolute" is converted' % (path, config['position_embedding_type'])
        )
    eps = config.get('layer_norm_eps', BERT_LAYER_NORM_EPS)
    if not np.isclose(eps, BERT_LAYER_NORM_EPS, rtol=0, atol=1e-13):
        raise ValueError(
            '%s: layer_norm_eps %g; bert4keras computes with %g, so outputs would differ'
            % (path, eps, BERT_LAYER_NORM_EPS)
        )
    missing = [k for k in CONFIG_KEYS if k not in config and k != 'initializer_range']
    if missing:
        raise ValueError('%s: missing %s' % (path, ', '.join(missing)))
    return {k: config[k] for k in CONFIG_KEYS if k in config}


def google_variables(tensors, source):
    """{Google name: array}: every Hugging Face tensor mapped, transposed where a Linear weight
    becomes a kernel; the decoder checked to be the tied embeddings and the head's bias."""
    variables, unknown = {}, []
    for name, value in tensors.items():
        if BUFFERS.fullmatch(name) or name in DECODER:
            continue
        mapped = google_name(name)
        if mapped is None:
            unknown.append(name)
            continue
        target, transpose = mapped
        variables[target] = np.ascontiguousarray(value.T if transpose else value).astype(np.float32)
    if unknown:
        raise ValueError(
            '%s: %d tensor(s) with names this converter does not know, e.g. %s (is it a BERT-family '
            'BertForMaskedLM?)' % (source, len(unknown), ', '.join(sorted(unknown)[:6]))
        )
    missing_head = [n for n in MLM_HEAD if n not in variables]
    if missing_head:
        raise ValueError(
            '%s has no masked-LM head (missing %s): PET reads the masked-LM predictions, so a model '
            'without them (BertModel, a classifier) gives meaningless zero-shot results. Use the model '
            'released with its MLM head (BertForMaskedLM / BertForPreTraining)' % (source, ', '.join(missing_head))
        )
    for name, tied in DECODER.items():
        if name in tensors and not np.array_equal(np.asarray(tensors[name], np.float32), variables[tied]):
            raise ValueError(
                "%s: %s differs from %s; Google's layout ties them, so this model cannot be written in it"
                % (source, name, tied)
            )
    return variables


def convert_huggingface(source, out):
    """Convert the Hugging Face folder ``source`` into the new Google-format folder ``out``
    (see the module docstring). Returns the number of variables written."""
    from pet_keras.compat import write_checkpoint  # TensorFlow only now: flag errors come first

    refuse_overwriting_inputs(out, '--out', {'--from': source})
    if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
        raise FileExistsError('%s: exists and is not empty (choose a new folder)' % out)
    config_path, vocab_path = os.path.join(source, 'config.json'), os.path.join(source, 'vocab.txt')
    for path in (config_path, vocab_path):
        if not os.path.isfile(path):
            raise FileNotFoundError('%s: missing (a Hugging Face BERT folder has config.json and vocab.txt)' % path)
    config = bert_config(read_json(config_path), config_path)
    variables = google_variables(read_tensors(source), source)
    vocab_size = variables['bert/embeddings/word_embeddings'].shape[0]
    if vocab_size != config['vocab_size']:
        raise ValueError(
            '%s: vocab_size %d, but the word embeddings have %d rows' % (config_path, config['vocab_size'], vocab_size)
        )
    with open(vocab_path, encoding='utf-8') as f:
        vocab = f.read()
    with atomic_folder(out) as tmp:  # out is missing or empty (checked above)
        write_checkpoint(os.path.join(tmp, 'bert_model.ckpt'), variables)
        write_json(os.path.join(tmp, 'bert_config.json'), config)
        write_text(os.path.join(tmp, 'vocab.txt'), vocab)
    return len(variables)


def describe(source):
    """A line on what ``source`` holds, for the command's report."""
    config = read_json(os.path.join(source, 'config.json'))
    return '%s (%s, %d layers, hidden %d, vocab %d)' % (
        source,
        ', '.join(config.get('architectures') or [config.get('model_type', 'bert')]),
        config.get('num_hidden_layers', 0),
        config.get('hidden_size', 0),
        config.get('vocab_size', 0),
    )


def is_huggingface_folder(folder):
    """Whether ``folder`` looks like a Hugging Face model folder (for a hint when one is given as a checkpoint)."""
    return os.path.isfile(os.path.join(folder, 'config.json')) and any(
        os.path.isfile(os.path.join(folder, n))
        for n in ('model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin')
    )
