"""Registry-driven checks: every registered model is covered by being registered."""
import pytest
import torch

import zoo
from zoo.flops import count_params
from zoo.models import check_input
from zoo.models._registry import get_entry

ALL = zoo.list_models()


def small_input(info, batch=2):
    return torch.randn(batch, 3, info.num_frames, info.min_size, info.min_size)


def test_registry_is_populated_by_import():
    assert {"tsn_r50", "tsm_r50", "tsm_r101"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_small(name):
    model = zoo.build(name, num_classes=5)
    model.train()
    x = small_input(model.info)
    out = model(x)
    assert out.shape == (2, 5)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None)]
    assert not no_grad, f"parameters without gradient: {no_grad}"


@pytest.mark.parametrize("name", ALL)
def test_info_consistent_with_model(name):
    model = zoo.build(name, num_classes=5)
    info = model.info
    assert info is not zoo.model_info(name) and info.num_classes == 5 and model.num_classes == 5
    assert info.name == get_entry(name).info.name
    c, t, h, w = info.input_shape
    assert (c, t, h) == (3, info.num_frames, info.crop_size) and h == w
    if info.sampling == "segment":
        assert info.num_segments * info.segment_length == info.num_frames == model.num_frames
    assert info.test_views[0] >= 1 and info.test_views[1] in (1, 3)
    weights = zoo.models.model_weights(name)
    assert all(r.source for w in weights for r in w.results), "published results must cite a source"
    assert any(w.results for w in weights) or info.notes, "no published result: the notes must say why"
    emb = model.eval().forward_head(model.forward_features(small_input(info, 1)), pre_logits=True)
    assert emb.shape == (1, model.num_features)


@pytest.mark.parametrize("name", ALL)
def test_reset_classifier(name):
    model = zoo.build(name, num_classes=5).eval()
    model.reset_classifier(7)
    assert model(small_input(model.info, 1)).shape == (1, 7)


@pytest.mark.parametrize("name", ALL)
def test_wrong_input_shape_names_expected_shape(name):
    model = zoo.build(name, num_classes=5).eval()
    info = model.info
    bad = [torch.randn(1, 4, info.num_frames, info.min_size, info.min_size),  # channels
           torch.randn(3, info.num_frames, info.min_size, info.min_size)]  # rank
    for x in bad:
        with pytest.raises(ValueError, match=r"expects input \[B, 3, "):
            model(x)


def test_wrong_frame_count_for_segment_models():
    model = zoo.build("tsm_r50", num_classes=5, backbone="resnet18").eval()
    with pytest.raises(ValueError, match=r"\[B, 3, 8, H, W\]"):
        model(torch.randn(1, 3, 6, 32, 32))


def test_check_input_accepts_matching_tensor():
    check_input(torch.zeros(1, 3, 8, 4, 4), num_frames=8)
    with pytest.raises(ValueError, match="multiple of 4"):
        check_input(torch.zeros(1, 3, 6, 4, 4), frames_multiple=4)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="did you mean tsm_r50"):
        zoo.build("tsm_r5")
    with pytest.raises(KeyError, match="tsm_r50"):
        zoo.model_info("tsm-r50")


def test_unknown_override_lists_accepted():
    with pytest.raises(TypeError, match=r"unknown override\(s\) 'shift_dvi'.*accepted: .*shift_div"):
        zoo.build("tsm_r50", shift_dvi=4)


def test_none_overrides_keep_defaults():
    model = zoo.build("tsm_r50", num_classes=3, dropout=None, backbone="resnet18")
    assert model.dropout.p == 0.5


def test_list_models_pattern():
    assert zoo.list_models("tsm_*") == ["tsm_r50", "tsm_r101"]  # natural sort
    assert zoo.list_models("nothing*") == []


def test_duplicate_registration_raises():
    info = zoo.model_info("tsm_r50")

    def tsm_r50(**kwargs):
        raise AssertionError("never built")

    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model(info)(tsm_r50)


def test_params_of_small_build_are_counted_from_the_model():
    model = zoo.build("tsm_r50", num_classes=5, backbone="resnet18")
    fc = 512 * 5 + 5
    assert count_params(model) == count_params(model.backbone) + fc


def test_info_follows_segment_overrides():
    info = zoo.build("tsm_r50", num_classes=3, backbone="resnet18", num_segments=4).info
    assert (info.num_frames, info.num_segments, info.input_shape[1]) == (4, 4, 4)
    pan = zoo.build("pan_lite_r50", num_classes=3, backbone="resnet18", num_segments=4).info
    assert (pan.num_frames, pan.num_segments, pan.frames_per_segment) == (16, 4, 4)
