"""Convert Hugging Face's ``PerceiverForMultimodalAutoencoding`` (see ``perceiver.convert``).

The converted ``MultimodalAutoencoder`` takes the same dict inputs, except that video is
channels-last by default in our config and channels-first here (``channels_first=True``, as
Hugging Face: ``image`` (B, T, C, H, W)), and ``subsampled_output_points=`` (or our
``output_indices=``) takes Hugging Face's dict as it is. It returns the dict Hugging Face
returns as ``.logits``.

How the two line up:

- Hugging Face concatenates modalities in sorted name order (audio, image, label), as our
  builder does; the input and query paddings and the mask tokens are the same parameters.
- Hugging Face draws the input masks in eval mode too. With its probabilities of 0 (audio,
  image) and 1 (label) that is deterministic: our ``mask_probs`` (training) are Hugging
  Face's and ``eval_masked`` holds the modalities of probability 1, so eval outputs agree.
  A probability strictly between 0 and 1 makes Hugging Face's eval outputs random; such a
  model converts, and agrees with ours in eval mode only where Hugging Face happens to draw
  no mask.
- Hugging Face decodes only with ``subsampled_output_points`` (its unsubsampled path uses
  the input sizes); our decoder's Fourier queries use the coordinates of its subsampled path
  everywhere, so ``output_indices=None`` is Hugging Face with every index subsampled.
"""

from __future__ import annotations

from typing import Any

from perceiver.config import MultimodalAutoencoderConfig, MultimodalDecoderConfig
from perceiver.convert.blocks import cross_attention_fields, require
from perceiver.convert.weights import ModuleMap, layer_map

CLASS_NAME = "PerceiverForMultimodalAutoencoding"


def _fourier(encoding: Any, what: str) -> tuple[int, tuple[int, ...]]:
    """(num_bands, max_resolution) of a Hugging Face Fourier position encoding."""
    require(
        encoding.concat_pos and not encoding.sine_only,
        f"{what}: Fourier features with concat_pos={encoding.concat_pos}, "
        f"sine_only={encoding.sine_only} are not supported",
    )
    return int(encoding.num_bands), tuple(int(r) for r in encoding.max_resolution)


def _input_fields(hf_model: Any) -> tuple[dict[str, Any], ModuleMap]:
    config = hf_model.config
    pre = hf_model.perceiver.input_preprocessor  # PerceiverMultimodalPreprocessor
    require(
        sorted(pre.modalities) == ["audio", "image", "label"],
        f"modalities {sorted(pre.modalities)}: only audio, image and label are supported",
    )
    audio, image = pre.modalities["audio"], pre.modalities["image"]
    require(
        audio.position_encoding_type == "fourier"
        and audio.concat_or_add_pos == "concat"
        and audio.project_pos_dim <= 0,
        "audio preprocessing other than concatenated, unprojected Fourier features",
    )
    require(
        image.prep_type == "patches"
        and image.position_encoding_type == "fourier"
        and image.concat_or_add_pos == "concat"
        and image.project_pos_dim <= 0
        and not image.conv_after_patching,
        "video preprocessing other than patches with concatenated Fourier features",
    )
    num_samples = config.num_frames * config.audio_samples_per_frame
    audio_bands, audio_resolution = _fourier(audio.position_embeddings, "audio")
    image_bands, image_resolution = _fourier(image.position_embeddings, "video")
    size = config.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    fields = {
        "num_frames": config.num_frames,
        "image_size": (height, width),
        "num_image_channels": image.in_channels,
        "image_patch_shape": (
            image.temporal_downsample,
            image.spatial_downsample,
            image.spatial_downsample,
        ),
        "image_num_frequency_bands": image_bands,
        "image_max_resolution": image_resolution,
        "channels_first": True,
        "audio_samples_per_frame": config.audio_samples_per_frame,
        "samples_per_patch": audio.samples_per_patch,
        "audio_num_frequency_bands": audio_bands,
        "audio_max_resolution": audio_resolution[0] if len(audio_resolution) == 1 else None,
        "num_classes": config.num_labels,
        "min_padding_size": pre.min_padding_size,
        "mask_probs": {k: float(v) for k, v in pre.mask_probs.items()},
        "eval_masked": tuple(sorted(k for k, v in pre.mask_probs.items() if v == 1.0)),
    }
    require(
        len(audio_resolution) == 1,
        f"audio max_resolution {audio_resolution} must have one entry ({num_samples} samples)",
    )
    hf = "perceiver.input_preprocessor"
    ours = "encoder.input_adapter"
    modules = {f"{ours}.padding.{m}": f"{hf}.padding.{m}" for m in pre.padding}
    modules |= {f"{ours}.mask_tokens.{m}": f"{hf}.mask.{m}" for m in pre.mask}
    return fields, modules


def _decoder(hf_model: Any, fields: dict[str, Any]) -> tuple[MultimodalDecoderConfig, ModuleMap]:
    config = hf_model.config
    hf_decoder = hf_model.perceiver.decoder  # PerceiverMultimodalDecoder
    audio = hf_decoder.modalities["audio"]  # PerceiverBasicDecoder
    image = hf_decoder.modalities["image"].decoder  # PerceiverBasicDecoder of the video one
    label = hf_decoder.modalities["label"].decoder  # PerceiverBasicDecoder
    audio_bands, audio_resolution = _fourier(audio.output_position_encodings, "audio queries")
    image_bands, image_resolution = _fourier(image.output_position_encodings, "video queries")
    num_samples = config.num_frames * config.audio_samples_per_frame
    require(
        audio_resolution == (fields["audio_max_resolution"] or num_samples,)
        and image_resolution == fields["image_max_resolution"],
        f"query Fourier resolutions {audio_resolution}, {image_resolution} differ from the "
        f"inputs' ({fields['audio_max_resolution']}, {fields['image_max_resolution']})",
    )
    frames, (height, width) = fields["num_frames"], fields["image_size"]
    require(
        tuple(image.output_index_dims) == (frames, height, width),
        f"video queries on {tuple(image.output_index_dims)}, the video is "
        f"{(frames, height, width)}: output_shape[1:] must be (num_frames, image_size)",
    )
    audio_dims = audio.output_index_dims
    require(
        tuple(audio_dims) == (num_samples // fields["samples_per_patch"],),
        f"audio queries on {audio_dims}, the audio has "
        f"{num_samples // fields['samples_per_patch']} patches",
    )
    for name, sub in (("audio", audio), ("image", image), ("label", label)):
        require(
            not list(sub.positions_projection.parameters()),
            f"projected {name} queries are not supported",
        )
    shared = hf_decoder.decoder  # PerceiverBasicDecoder over the concatenated queries
    layer = shared.decoding_cross_attention
    require(
        shared.final_project and not layer.attention.use_query_residual,
        "the multimodal decoder must have a final projection and no query residual",
    )
    table = label.output_position_encodings.position_embeddings  # (1, C_label)
    decoder = MultimodalDecoderConfig(
        num_output_channels=shared.final_layer.out_features,
        min_padding_size=hf_decoder.min_padding_size,
        image_num_frequency_bands=image_bands,
        audio_num_frequency_bands=audio_bands,
        num_label_query_channels=table.shape[1],
        **cross_attention_fields(hf_model, layer),
    )
    hf = "perceiver.decoder"
    modules = layer_map("decoder.cross_attention", f"{hf}.decoder.decoding_cross_attention", True)
    modules["decoder.head"] = f"{hf}.decoder.final_layer"
    modules["decoder.output_query.queries.label.table"] = (
        f"{hf}.modalities.label.decoder.output_position_encodings.position_embeddings"
    )
    modules |= {
        f"decoder.output_query.padding.{m}": f"{hf}.padding.{m}" for m in hf_decoder.padding
    }
    post = "perceiver.output_postprocessor.modalities"
    modules |= {
        f"postprocessor.modalities.{m}.projection": f"{post}.{m}.classifier"
        for m in ("audio", "image", "label")
    }
    return decoder, modules


def read_multimodal(
    hf_model: Any, image_size: Any, encoder_reader: Any
) -> tuple[MultimodalAutoencoderConfig, ModuleMap]:
    """Our config and module map of a ``PerceiverForMultimodalAutoencoding``.

    ``encoder_reader`` is ``perceiver.convert.blocks.read_encoder`` (config, module map).
    """
    require(image_size is None, f"image_size={image_size!r} does not apply to {CLASS_NAME}")
    fields, input_modules = _input_fields(hf_model)
    encoder, encoder_modules = encoder_reader(hf_model)
    decoder, decoder_modules = _decoder(hf_model, fields)
    config = MultimodalAutoencoderConfig(encoder=encoder, decoder=decoder, **fields)
    return config, input_modules | encoder_modules | decoder_modules
