"""EAN: what the motion code reads (frame differences at half resolution, the middle frame to the trunk),
the dynamic-scale blocks and the head at their start, the official layout (TSN keys, the modules the
official forward never uses), position embeddings at other sizes and segment counts, ImageNet into the
trunk, the clip of 5-frame segments."""
import pytest
import torch

import zoo
from zoo.benchmark.latency import randomize_bn_stats
from zoo.models.ean import DynamicScaleBlock, SparseTransformerHead

SMALL = dict(backbone="resnet18", num_segments=4, num_classes=5)


def _features(model, x):
    with torch.no_grad():
        return model.forward_features(x)


def test_trunk_sees_the_middle_frames_and_the_code_their_differences():
    """With the code's projection at zero, only each segment's middle frame reaches the features; with it
    open, the other frames do, but only through differences (a brightness shift of a whole segment and
    the pixels that half resolution skips change nothing)."""
    model = randomize_bn_stats(zoo.build("ean_r50_8f", **SMALL)).eval()
    x = torch.randn(1, 3, 20, 64, 64)
    others = x.clone()
    others[:, :, [0, 1, 3, 4]] += torch.randn(1, 3, 4, 64, 64)  # segment 0's frames but the middle one
    last = model.lmc.proj_back[-1].weight
    kept = last.detach().clone()
    with torch.no_grad():
        last.zero_()
    assert torch.equal(_features(model, x), _features(model, others))
    with torch.no_grad():
        last.copy_(kept * 100)
    base = _features(model, x)
    assert not torch.allclose(base, _features(model, others))
    brighter = x.clone()
    brighter[:, :, 5:10] += 0.5  # all 5 frames of segment 1 except the middle one, and the middle one too
    skipped = x.clone()
    skipped[:, :, [5, 6, 8, 9], 1::2, :] += 1.0  # odd rows of segment 1's non-middle frames
    torch.testing.assert_close(_features(model, skipped), base, rtol=0, atol=0)
    code = model.lmc.codes(model.frames_to_batch(x).view(-1, 5, 3, 64, 64).transpose(1, 2))[0]
    moved = model.lmc.codes(model.frames_to_batch(brighter).view(-1, 5, 3, 64, 64).transpose(1, 2))[0]
    torch.testing.assert_close(code, moved, rtol=0, atol=1e-5)


def test_dynamic_scale_block_and_head_start_as_the_identity_and_the_pool():
    block = randomize_bn_stats(DynamicScaleBlock(64, num_segments=4)).eval()
    x = torch.randn(8, 64, 6, 6)  # 2 clips of 4 frames
    with torch.no_grad():
        assert not torch.allclose(block(x), x)
        block.expand_c1.weight.zero_()
        assert torch.equal(block(x), x)
    with pytest.raises(zoo.ZooError, match="divisible by 16"):
        DynamicScaleBlock(72, num_segments=4)
    head = randomize_bn_stats(SparseTransformerHead(256, num_segments=4)).eval()
    feats = torch.randn(2, 256, 4, 3, 3)  # a 3x3 map: the 7x7 position embedding resized
    with torch.no_grad():
        torch.testing.assert_close(head(feats), feats.mean((2, 3, 4)), rtol=0, atol=0)  # Tr_BN starts at zero
        head.Tr_BN.weight.fill_(1.0)
        assert not torch.allclose(head(feats), feats.mean((2, 3, 4)))
    assert torch.equal(head.position(4, 7, 7), head.pos_embedding.view(64, 4, 7, 7))


def _official_layout(state_dict):
    """zoo keys -> the official TSN(EAN) checkpoint keys (DataParallel), the unused modules added back."""
    heads = {"norm1": "0.fn.norm", "to_qkv": "0.fn.fn.to_qkv", "to_out": "0.fn.fn.to_out.0", "norm2": "1.fn.norm",
             "net": "1.fn.fn.net"}
    out = {}
    for k, v in state_dict.items():
        if k.startswith("fc."):
            k = "new_fc." + k[3:]
        elif k.startswith("lmc."):
            k = "base_model." + k[4:]
        elif k.startswith("relation1."):
            k = "base_model." + k
        elif k.startswith("backbone.after_layer"):
            stage, tail = k[len("backbone.after_layer"):].split(".", 1)
            k = f"base_model.relation{int(stage) + 1}.{tail}"
        elif k.startswith("head.layers."):
            i, name, tail = k[len("head.layers."):].split(".", 2)
            k = f"base_model.sparse_transformer.transformer.layers.{i}.{heads[name]}.{tail}"
        elif k.startswith("head."):
            k = "base_model.sparse_transformer." + k[5:]
        else:
            k = "base_model." + k[len("backbone."):].replace(".post_conv1.", ".")
        out["module." + k] = v.clone()
    for unused, width in (("bn2", 128), ("relation1.bn2", 64), ("relation2.bn2", 256), ("relation3.bn2", 512),
                          ("relation4.bn2", 1024), ("stm_proj2.1", 256)):
        out.update({f"module.base_model.{unused}.{s}": torch.ones(width) for s in ("weight", "bias", "running_mean",
                                                                                     "running_var")})
        out[f"module.base_model.{unused}.num_batches_tracked"] = torch.tensor(0)
    out["module.base_model.stm_proj2.0.weight"] = torch.ones(256, 512, 1, 1, 1)
    return out


# keys of the official TSN(EAN_8f, resnet50, 174 classes) (932 tensors, 31 of them in modules its forward never uses)
OFFICIAL_KEYS = {
    "module.base_model.layer1.0.t_conv.conv.weight": (64, 1, 3),
    "module.base_model.layer1.0.me.conv2.weight": (4, 1, 3, 3),
    "module.base_model.relation1.compress_c1.weight": (16, 16, 1, 1, 1),
    "module.base_model.relation1.t_part3_conv.weight": (6, 6, 3, 1, 1),
    "module.base_model.relation1.p_prod1.18.weight": (4, 2, 3, 3, 3),
    "module.base_model.relation1.p_prod2.0.weight": (256, 4),
    "module.base_model.relation2.expand_c1.weight": (256, 16, 1, 1, 1),
    "module.base_model.relation2.t_part2_conv.weight": (21, 21, 3, 1, 1),
    "module.base_model.stm_proj1.0.weight": (256, 768, 1, 1, 1),
    "module.base_model.proj_back.0.weight": (1024, 256, 1, 1, 1),
    "module.base_model.sparse_transformer.pos_embedding": (512, 392),
    "module.base_model.sparse_transformer.transformer.layers.1.0.fn.fn.to_qkv.weight": (1536, 512),
    "module.base_model.sparse_transformer.transformer.layers.0.1.fn.fn.net.4.running_var": (512,),
    "module.base_model.sparse_transformer.Tr_BN.weight": (2048,),
    "module.new_fc.weight": (174, 2048),
}


def test_official_layout_loads_exactly(tmp_path):
    import torchvision

    model = zoo.build("ean_r50_8f")
    official = _official_layout(model.state_dict())
    assert len(official) == 932
    for k, shape in OFFICIAL_KEYS.items():
        assert tuple(official[k].shape) == shape, k
    resnet = torchvision.models.resnet50()
    from zoo.models.ean import checkpoint_filter_fn

    model = zoo.build("ean_r50_8f", num_classes=1000)
    start = model.relation1.compress_c1.weight.clone()
    model.load_state_dict(checkpoint_filter_fn(resnet.state_dict(), model))
    assert torch.equal(model.backbone.layer3[2].conv2.weight, resnet.layer3[2].conv2.weight)
    assert torch.equal(model.fc.weight, resnet.fc.weight) and torch.equal(model.relation1.compress_c1.weight, start)

    small = randomize_bn_stats(zoo.build("ean_r50_16f", **SMALL), affine=True).eval()
    path = tmp_path / "Somethingv1.RGB_LMC_16f.pth.tar"
    torch.save({"state_dict": _official_layout(small.state_dict()), "epoch": 1}, path)
    loaded = zoo.build("ean_r50_16f", weights=str(path), **SMALL).eval()
    assert loaded.load_report.loaded
    x = torch.randn(1, 3, 20, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))
    # into another segment count: the position embedding resized over time
    longer = zoo.build("ean_r50_16f", weights=str(path), **{**SMALL, "num_segments": 8}).eval()
    assert longer.head.pos_embedding.shape == (128, 8 * 49)
    assert longer(torch.randn(1, 3, 40, 64, 64)).shape == (1, 5)


def test_clip_is_segments_of_five_frames_at_multiples_of_32():
    info = zoo.model_info("ean_r50_16f")
    assert (info.num_segments, info.frames_per_segment, info.num_frames, info.test_views) == (16, 5, 80, (2, 1))
    spec = zoo.resolve("ean_r50_8f", frames=80)
    assert spec.model_args["num_segments"] == 16 and spec.info.num_frames == 80
    model = zoo.build("ean_r50_8f", **SMALL)
    with pytest.raises(zoo.ZooError, match=r"\[B, 3, 20, H, W\]"):
        model(torch.randn(1, 3, 8, 64, 64))
    with pytest.raises(zoo.ZooError, match="multiples of 32, got 48x64"):
        model(torch.randn(1, 3, 20, 48, 64))
