"""pet-keras convert: a Hugging Face BertForMaskedLM folder (tests/fixtures/hf_tiny_bert, made by
make_hf_tiny_bert.py with transformers) becomes a Google-format folder whose masked-LM logits equal
the original implementation's, which pet-keras train uses; what it cannot convert faithfully is refused."""

import pet_keras  # noqa: F401  (before tensorflow / bert4keras)

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from pet_keras import commands
from pet_keras.convert import convert_huggingface
from pet_keras.model import build_mlm

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'hf_tiny_bert'


def converted(tmp_path):
    out = tmp_path / 'google'
    convert_huggingface(str(FIXTURE), str(out))
    return out


def test_converted_logits_equal_the_original_implementations(tmp_path):
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FIXTURE.iterdir()}
    out = converted(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [
        'bert_config.json',
        'bert_model.ckpt.data-00000-of-00001',
        'bert_model.ckpt.index',
        'vocab.txt',
    ]
    expected = json.loads((FIXTURE / 'expected.json').read_text(encoding='utf-8'))
    mlm = build_mlm(str(out / 'bert_config.json'), str(out / 'bert_model.ckpt'))
    ids = np.array(expected['input_ids'], dtype='int32')
    logits = mlm.full_model.predict([ids, np.array(expected['token_type_ids'], dtype='int32')], verbose=0)
    want = np.array(expected['logits'], dtype='float32')
    real = np.array(expected['attention_mask'], dtype=bool)  # bert4keras masks padding by id 0, as HF's mask
    assert np.abs(logits[real] - want[real]).max() < 1e-5  # the fixture rounds to 1e-6
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in FIXTURE.iterdir()} == before


def test_pet_keras_train_runs_zero_shot_and_few_shot_on_the_converted_folder(tmp_path, capsys):
    out = converted(tmp_path)
    rows = [{'text': t, 'label': y} for t, y in [('这趟旅我很满意', 'good'), ('我不满意', 'bad')] * 4]
    for split in ('train', 'valid', 'test'):
        (tmp_path / ('%s.jsonl' % split)).write_text(
            ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows), encoding='utf-8'
        )
    for mode in ('zero-shot', 'few-shot'):
        argv = ['train', '--checkpoint-dir', str(out), '--pattern', '____{text}', '--mode', mode]
        argv += ['--label-words', json.dumps({'good': '很', 'bad': '不'}), '--maxlen', '24', '--steps', '2']
        argv += ['--eval-every', '2', '--out', str(tmp_path / mode)]
        for split in ('train', 'valid', 'test'):
            argv += ['--' + split, str(tmp_path / (split + '.jsonl'))]
        assert commands.main(argv) == 0, capsys.readouterr().err
        results = json.loads((tmp_path / mode / 'results.json').read_text(encoding='utf-8'))
        assert 0 <= results['valid'] <= 1


def hf_copy(tmp_path, config=None, drop=(), extra=None, rename=None):
    """A copy of the fixture with ``config`` keys changed, tensors dropped, added or renamed."""
    folder = tmp_path / 'hf'
    shutil.copytree(FIXTURE, folder)
    tensors = load_file(str(folder / 'model.safetensors'))
    tensors = {(rename or {}).get(k, k): v for k, v in tensors.items() if k not in drop}
    tensors.update(extra or {})
    save_file(tensors, str(folder / 'model.safetensors'))
    if config:
        values = json.loads((folder / 'config.json').read_text(encoding='utf-8'))
        values.update(config)
        (folder / 'config.json').write_text(json.dumps(values), encoding='utf-8')
    return folder


def convert_error(capsys, source, out):
    try:
        code = commands.main(['convert', '--from', str(source), '--out', str(out)])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert not Path(out).exists() or not any(Path(out).iterdir())  # nothing left behind
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    'change, message',
    [
        (dict(drop=('cls.predictions.transform.dense.weight', 'cls.predictions.bias')), 'has no masked-LM head'),
        (dict(config={'model_type': 'roberta'}), "model_type 'roberta'"),
        (dict(config={'layer_norm_eps': 1e-5}), 'layer_norm_eps'),
        (dict(config={'position_embedding_type': 'relative_key'}), 'position_embedding_type'),
        (dict(extra={'bert.encoder.layer.0.adapter.weight': np.zeros((2, 2), 'float32')}), 'does not know'),
        ('untied decoder', 'differs from bert/embeddings/word_embeddings'),
    ],
)
def test_what_cannot_be_converted_faithfully_is_refused(tmp_path, capsys, change, message):
    if change == 'untied decoder':
        embeddings = load_file(str(FIXTURE / 'model.safetensors'))['bert.embeddings.word_embeddings.weight']
        change = dict(extra={'cls.predictions.decoder.weight': embeddings + 1})
    line = convert_error(capsys, hf_copy(tmp_path, **change), tmp_path / 'out')
    assert line.startswith('error: ') and message in line, line


def test_a_pickle_only_folder_is_refused_with_the_way_out(tmp_path, capsys):
    folder = tmp_path / 'hf'
    folder.mkdir()
    for name in ('config.json', 'vocab.txt'):
        shutil.copy(FIXTURE / name, folder / name)
    (folder / 'pytorch_model.bin').write_bytes(b'\x80\x04not read')
    line = convert_error(capsys, folder, tmp_path / 'out')
    assert 'never loads' in line and 'model.safetensors' in line and 'save_pretrained' in line


def test_a_sharded_folder_converts_like_a_single_file(tmp_path):
    folder = tmp_path / 'sharded'
    folder.mkdir()
    for name in ('config.json', 'vocab.txt'):
        shutil.copy(FIXTURE / name, folder / name)
    tensors = load_file(str(FIXTURE / 'model.safetensors'))
    names = sorted(tensors)
    shards = {'model-00001-of-00002.safetensors': names[::2], 'model-00002-of-00002.safetensors': names[1::2]}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, str(folder / file))
    weight_map = {n: file for file, part in shards.items() for n in part}
    (folder / 'model.safetensors.index.json').write_text(json.dumps({'weight_map': weight_map}), encoding='utf-8')
    convert_huggingface(str(folder), str(tmp_path / 'a'))
    convert_huggingface(str(FIXTURE), str(tmp_path / 'b'))
    for name in ('bert_model.ckpt.index', 'bert_model.ckpt.data-00000-of-00001'):
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()


def test_convert_refuses_an_out_inside_its_source_or_a_taken_folder(tmp_path, capsys):
    source = hf_copy(tmp_path)
    line = convert_error(capsys, source, source / 'google')
    assert 'which this command reads' in line
    taken = tmp_path / 'taken'
    taken.mkdir()
    (taken / 'mine.txt').write_text('mine')
    try:
        commands.main(['convert', '--from', str(source), '--out', str(taken)])
    except SystemExit as e:
        assert e.code == 2
    assert 'not empty' in capsys.readouterr().err and (taken / 'mine.txt').read_text() == 'mine'


def test_a_hugging_face_folder_given_as_a_checkpoint_says_to_convert_it(tmp_path, capsys):
    data = tmp_path / 'data.jsonl'
    data.write_text('{"text": "很好", "label": "a"}\n{"text": "不好", "label": "b"}\n', encoding='utf-8')
    argv = ['train', '--checkpoint-dir', str(FIXTURE), '--pattern', '____{text}', '--out', str(tmp_path / 'o')]
    argv += ['--train', str(data), '--valid', str(data), '--test', str(data)]
    try:
        commands.main(argv)
    except SystemExit as e:
        assert e.code == 2
    assert 'pet-keras convert --from' in capsys.readouterr().err
