"""FLOPs and parameters at each model's canonical input, against the reference counts (1%)."""
import pytest

import zoo
from zoo.flops import count_flops, count_params

WITH_REF = [n for n in zoo.list_models() if zoo.model_info(n).ref_gflops or zoo.model_info(n).ref_params_m]


@pytest.mark.parametrize("name", WITH_REF)
def test_flops_and_params_match_reference(name):
    info = zoo.model_info(name)
    model = zoo.build(name)  # default num_classes: the one the reference counts use
    if info.ref_params_m:
        params_m = count_params(model) / 1e6
        assert params_m == pytest.approx(info.ref_params_m, rel=0.01), f"{name}: {params_m:.3f} M params"
    if info.ref_gflops:
        gflops = count_flops(model, (1, *info.input_shape)).gflops
        assert gflops == pytest.approx(info.ref_gflops, rel=0.01), f"{name}: {gflops:.3f} GFLOPs"


def test_flop_report_states_input_and_breakdown():
    model = zoo.build("tsm_r50", num_classes=10, backbone="resnet18")
    report = count_flops(model, (1, 3, 8, 64, 64))
    assert report.input_shape == (1, 3, 8, 64, 64)
    assert report.by_operator["conv"] > 0.9 * report.total  # a ResNet is almost all conv
    assert "backbone" in report.table


def test_fvcore_deprecation_warning_does_not_reach_users():
    """fvcore's import-time torch.jit.script FutureWarning is not the user's concern (fresh process:
    fvcore is imported once)."""
    import subprocess
    import sys

    code = ("import zoo; from zoo.flops import count_flops; "
            "print(count_flops(zoo.build('p3d_63', num_classes=2), (1, 3, 4, 32, 32)).total > 0)")
    proc = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
