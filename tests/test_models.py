"Every tiny model loads through the public load_* functions from a saved folder."
import torch, pytest
from vgot.models import Models, get_preset, load_i2v, load_image_encoder, load_ip_adapter_weights, load_llm, load_t2i, ModelRef
from vgot.tiny import ensure_tiny_models
from vgot.core import VgotError

def test_tiny_set_is_saved_in_library_folders():
    root = ensure_tiny_models()
    for name in ["sd/model_index.json", "sd/unet/config.json", "image_encoder/config.json", "ip_adapter/ip_adapter.safetensors",
                 "svd/model_index.json", "i2vgen-xl/model_index.json", "llm/config.json", "llm/tokenizer_config.json"]:
        assert (root / name).exists(), name

def test_load_every_tiny_model_from_its_folder():
    root = ensure_tiny_models()
    sd = load_t2i(str(root / "sd"))                                   # a plain folder path, as a user would give
    assert type(sd).__name__ == "StableDiffusionPipeline"
    enc, proc = load_image_encoder(str(root / "image_encoder"))
    assert enc.config.projection_dim == 32
    w = load_ip_adapter_weights(ModelRef(str(root / "ip_adapter"), weight_name="ip_adapter.safetensors"))
    assert w["image_proj"]["proj.weight"].shape == (4 * 32, 32)
    assert type(load_i2v(str(root / "svd"), "svd")).__name__ == "StableVideoDiffusionPipeline"
    assert type(load_i2v(str(root / "i2vgen-xl"), "i2vgen-xl")).__name__ == "I2VGenXLPipeline"
    model, tok = load_llm(str(root / "llm"))
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True).endswith("assistant\n")

def test_wan_vae_runs_in_fp32_beside_a_bf16_transformer():
    "As diffusers' reference runs Wan: the transformer in the asked dtype, the VAE (and image encoder) in fp32."
    import torch
    pipe = load_i2v("tiny:wan", "wan", dtype=torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.vae.dtype == torch.float32
    if getattr(pipe, "image_encoder", None) is not None:
        assert pipe.image_encoder.dtype == torch.float32
    assert load_i2v("tiny:ltx", "ltx", dtype=torch.bfloat16).vae.dtype == torch.bfloat16   # LTX: as asked

def test_pickle_weights_are_refused(tmp_path):
    with pytest.raises(VgotError, match="pickled .bin files are not loaded"):
        load_ip_adapter_weights(ModelRef(str(tmp_path), weight_name="ip-adapter.bin"))

def test_bad_references_are_clear():
    with pytest.raises(VgotError, match="unknown preset"): get_preset("nope")
    with pytest.raises(VgotError, match="no such tiny model"): load_t2i("tiny:nothing")
    with pytest.raises(VgotError, match="video backend 'sora'"): load_i2v("tiny:svd", "sora")

def test_models_loads_once_and_frees(tiny_models):
    assert tiny_models.t2i is tiny_models.t2i
    assert tiny_models.dtype == torch.float32 or torch.cuda.is_available()


def test_first_build_of_the_tiny_models_says_so_in_one_line(tmp_path, capfd):
    "The first run builds the tiny set: one line naming where (not just the libraries' 'Writing model shards' bars)."
    capfd.readouterr()
    root = ensure_tiny_models(home=tmp_path)
    out, err = capfd.readouterr()
    lines = [l for l in (out + err).splitlines() if l.strip()]
    assert lines == [f"vgot: building the tiny models once into {root} (VGOT_HOME; later runs reuse them)"], lines
    assert "Writing model shards" not in err and "\r" not in err
    assert ensure_tiny_models(home=tmp_path) == root                    # built: nothing said
    assert capfd.readouterr() == ("", "")
