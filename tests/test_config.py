import pytest

from pipeline.config import (
    Config,
    ConfigError,
    load_config,
    load_config_file,
    parse_assignments,
    save_config,
)


def test_defaults_are_the_papers_recipe():
    config = Config()
    train, model = config.train, config.model
    assert (train.epochs, train.lr, train.lr_step, train.lr_gamma) == (120, 5e-3, 40, 0.1)
    assert (train.ce_weight, train.triplet_weight, train.triplet_margin) == (0.7, 0.3, 0.3)
    assert (train.ids_per_batch, train.clips_per_id, train.seq_len) == (8, 4, 8)
    assert (train.height, train.width) == (256, 128)
    assert train.weight_decay == 0.0  # the paper's Adam has none
    assert model.refine_widths == (128, 512, 2048)
    assert model.stgat_channels == (128, 256)
    assert (model.gat_layers, model.hop_distance, model.backbone_depth) == (2, 3, 50)
    assert load_config("paper") == Config()


def test_demo_profile_is_lighter_than_paper():
    demo = load_config("demo")
    assert demo.profile == "demo"
    assert demo.model.backbone_depth < 50 and demo.train.epochs < 120
    assert demo.train.ce_weight == 0.7  # untouched fields keep the paper's values


def test_toml_overrides_profile(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        '[train]\nepochs = 7\nlr = 0.001\n[model]\ngraph = "gcn"\nstgat_channels = [16, 32]\n'
    )
    config = load_config("demo", path)
    assert config.train.epochs == 7 and config.train.lr == 0.001
    assert config.model.graph == "gcn" and config.model.stgat_channels == (16, 32)
    assert config.model.backbone_depth == 18  # still from the demo profile


def test_cli_overrides_win_over_toml(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text("[train]\nepochs = 7\n")
    overrides = parse_assignments(["train.epochs=3", "model.use_gait=false", "train.amp=yes"])
    config = load_config("paper", path, overrides)
    assert config.train.epochs == 3
    assert config.model.use_gait is False and config.train.amp is True


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[train]\nepoch = 3\n", "unknown key 'train.epoch'"),
        ("[trian]\nepochs = 3\n", "unknown section [trian]"),
        ("[train]\nepochs = 'many'\n", "train.epochs"),
        ("[train\n", "not valid TOML"),
    ],
)
def test_bad_toml_gives_a_clear_error(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        load_config("paper", path)


def test_bad_assignments_are_rejected():
    with pytest.raises(ConfigError, match="SECTION.FIELD=VALUE"):
        parse_assignments(["epochs=3"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_config("paper", None, parse_assignments(["train.nope=1"]))
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config("huge")


def test_saved_config_round_trips(tmp_path):
    config = load_config(
        "demo", None, parse_assignments(["data.root=/data/my ccvid", "train.lr=1e-4"])
    )
    path = save_config(config, tmp_path / "config.toml")
    assert load_config_file(path) == config


def test_a_config_saved_before_the_prior_switches_keeps_the_papers_blocks(tmp_path):
    config = load_config("demo")
    model = config.model
    assert model.gat_prior and model.stgat_prior and model.stgat_attention_gate  # today's defaults
    path = save_config(config, tmp_path / "config.toml")
    old = "\n".join(
        line
        for line in path.read_text().splitlines()
        if not line.startswith(("gat_prior", "stgat_prior", "stgat_attention_gate"))
    )
    path.write_text(old)
    loaded = load_config_file(path).model
    assert not loaded.gat_prior and not loaded.stgat_prior and not loaded.stgat_attention_gate
    assert load_config_file(path).train == config.train


def test_benchmark_profile_calibrates_the_fusion_on_held_out_training_identities():
    config = load_config("benchmark")
    assert config.train.fusion_calibration == "val"
    assert 0 < config.train.val_ids < config.synth.identities // 2  # half the set trains
    assert load_config("paper").train.fusion_calibration == "off"  # the paper's fusion


def test_benchmark_profile_is_big_enough_to_compare_variants():
    """Issue 14's floor: ≥ 100 training identities, ≥ 150 CC queries over ≥ 75 test identities
    (a CC query has a gallery match on another camera in other clothes)."""
    from pipeline.synth.layout import plan_dataset

    config = load_config("benchmark")
    s = config.synth
    plan = plan_dataset(
        s.identities,
        s.outfits,
        s.cameras,
        s.tracklets_per_outfit,
        s.frames,
        (s.width, s.height),
        s.seed,
        s.occlusion,
    )
    gallery = [t for t in plan.tracklets if t.split == "gallery"]
    cc_queries = [
        q
        for q in plan.tracklets
        if q.split == "query"
        and any(g.pid == q.pid and g.camera != q.camera and g.outfit != q.outfit for g in gallery)
    ]
    assert len(plan.train_pids) >= 100
    assert len(cc_queries) >= 150 and len({q.pid for q in cc_queries}) >= 75
    assert (config.train.ids_per_batch, config.train.clips_per_id) == (8, 4)  # the paper's batch
    assert load_config("demo").synth.identities < s.identities  # the demo stays small


def test_branch_switches_mean_the_same_for_a_model_config_and_a_variant():
    from pipeline.config import ModelConfig, Variant

    for switches in [(True, True, True), (True, False, False), (False, True, False), (False,) * 3]:
        names = dict(zip(("use_appearance", "use_shape", "use_gait"), switches, strict=True))
        model, variant = ModelConfig(**names), Variant(**names)
        assert model.has_branch == variant.has_branch == any(switches)
        assert model.uses_skeleton == variant.uses_skeleton == (switches[1] or switches[2])
        assert Variant.from_model_config(model) == variant
