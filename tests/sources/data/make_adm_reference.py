"""Writes adm_tiny_reference.pt: tiny networks built by guided-diffusion's own code (openai/guided-diffusion,
MIT), their perturbed state dicts in the released key layout, fixed inputs and guided-diffusion's outputs.
tests/sources/test_sources.py checks that bench/models/adm.py loads these strictly and reproduces the outputs.

Run with guided-diffusion importable (it is not a dependency of this project):
    PYTHONPATH=/path/to/guided-diffusion python tests/sources/data/make_adm_reference.py
"""
from pathlib import Path

import torch
from guided_diffusion.unet import EncoderUNetModel, UNetModel

torch.manual_seed(0)
common = dict(image_size=8, in_channels=1, model_channels=32, num_res_blocks=1, attention_resolutions=(2,),
              channel_mult=(1, 1), num_head_channels=32, use_scale_shift_norm=True, resblock_updown=True)
nets = {"tiny": UNetModel(out_channels=2, num_classes=10, use_new_attention_order=True, **common),
        "tiny-classifier": EncoderUNetModel(out_channels=10, pool="attention", **common)}
x, t, y = torch.randn(3, 1, 8, 8), torch.tensor([0.0, 250.5, 999.0]), torch.tensor([0, 4, 9])
out = {"x": x, "t": t, "y": y}
for name, net in nets.items():
    state = {k: v + 0.05 * torch.randn_like(v) for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    with torch.no_grad():
        out[name] = {"state_dict": state, "output": net.eval()(x, t, y) if name == "tiny" else net.eval()(x, t)}
torch.save(out, Path(__file__).with_name("adm_tiny_reference.pt"))
