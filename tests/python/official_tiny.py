"""The official segment_anything modules at the test model's sizes (a config.json like
tests/data/config.json), with its checkpoint loaded: the reference side of the equivalence test
and of scripts/sam_tiny_sensitivity.py. Needs torch and segment_anything."""

import functools
import json

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer


def official_tiny_model(config_path, checkpoint_path):
    c = json.loads(config_path.read_text())
    emb = c["img_size"] // c["patch_size"]
    model = Sam(
        image_encoder=ImageEncoderViT(
            img_size=c["img_size"], patch_size=c["patch_size"], embed_dim=c["encoder_embed_dim"],
            depth=c["encoder_depth"], num_heads=c["encoder_num_heads"], mlp_ratio=c["mlp_ratio"],
            out_chans=c["prompt_embed_dim"], qkv_bias=True,
            norm_layer=functools.partial(torch.nn.LayerNorm, eps=c["layer_norm_eps_encoder"]),
            use_rel_pos=True, window_size=c["window_size"], global_attn_indexes=c["encoder_global_attn_indexes"]),
        prompt_encoder=PromptEncoder(
            embed_dim=c["prompt_embed_dim"], image_embedding_size=(emb, emb),
            input_image_size=(c["img_size"], c["img_size"]), mask_in_chans=c["mask_in_chans"]),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=c["num_multimask_outputs"],
            transformer=TwoWayTransformer(depth=c["decoder_depth"], embedding_dim=c["prompt_embed_dim"],
                                          mlp_dim=c["decoder_mlp_dim"], num_heads=c["decoder_num_heads"]),
            transformer_dim=c["prompt_embed_dim"], iou_head_depth=c["iou_head_depth"],
            iou_head_hidden_dim=c["iou_head_hidden_dim"]),
        pixel_mean=c["pixel_mean"], pixel_std=c["pixel_std"],
    )
    model.load_state_dict(torch.load(str(checkpoint_path), map_location="cpu"))
    return model.eval()
