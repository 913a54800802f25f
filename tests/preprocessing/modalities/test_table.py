import pytest

from preprocessing.config import VideoPreprocessConfig
from preprocessing.modalities import MODALITIES, modality_config


def test_every_modality_has_a_config_and_an_importable_job():
    assert set(MODALITIES) == {"image", "audio", "video", "kinetics", "autoflow"}
    for name, spec in MODALITIES.items():
        assert spec.config.model_fields["modality"].default == name
        assert callable(spec.job_function())


def test_options_are_validated_by_the_modality_config():
    cfg = modality_config("video", {"num_frames": 8, "size": 64})
    assert isinstance(cfg, VideoPreprocessConfig) and (cfg.num_frames, cfg.size) == (8, 64)
    with pytest.raises(ValueError, match=r"--target-fps \(an option of kinetics\)"):
        modality_config("video", {"target_fps": 30})
    with pytest.raises(ValueError, match=r"--num-frames: Input should be greater than or equal"):
        modality_config("video", {"num_frames": 0})
    with pytest.raises(ValueError, match=r"crop_size=300 must not exceed resize_to=224"):
        modality_config("image", {"crop_size": 300})
    with pytest.raises(ValueError, match=r"unknown modality 'lidar'"):
        modality_config("lidar", {})
