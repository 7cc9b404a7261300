"""Unit tests of the agents layer: config and population shape rules, the population replay buffer, the TD3
target and Polyak step (per agent), each enhancer module on stacked parameters, and the action adapters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from training_helpers import tiny_agent_config

from autogai.agents import ActionAdapter, ReplayBatch, ReplayBuffer, TD3Config, TD3Population
from autogai.agents.backbones import TransformerBackbone, default_token_groups
from autogai.agents.config import check_same_population
from autogai.agents.critics import BellmanDiscriminator, GANCritic
from autogai.agents.encoders import VAEEncoder
from autogai.agents.policies import DiffusionPolicy, vp_beta_schedule
from autogai.agents.stacked import agent_generators
from autogai.core.errors import ConfigError
from autogai.training.evaluation import nonfinite_rows

torch.set_num_threads(1)

TINY = tiny_agent_config(batch_size=8, learning_starts=8, diffusion_steps=3)
OBS = spaces.Box(-1.0, 1.0, (5,), np.float32)
BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _filled_population(
    enhancers: str = "plain",
    configs: TD3Config | list[TD3Config] = TINY,
    n: int = 32,
    seeds: tuple[int, ...] = (0,),
) -> TD3Population:
    """A population whose agents each hold ``n`` random transitions (agent ``i``'s drawn from seed ``i``)."""
    population = TD3Population(OBS, BOX, enhancers, configs, seeds=list(seeds))
    rngs = [np.random.default_rng(i) for i in range(len(seeds))]
    obs = np.stack([rng.uniform(-1, 1, (n, 5)) for rng in rngs]).astype(np.float32)
    actions = np.stack([rng.uniform(-1, 1, (n, 2)) for rng in rngs])
    rewards = np.stack([rng.normal(size=n) for rng in rngs])
    population.add_transitions(obs, actions, rewards, np.roll(obs, 1, 1), np.zeros((len(seeds), n), bool))
    return population


# ----------------------------------------------------------------------------------------------- config
def test_config_roundtrip_and_sb3_names() -> None:
    cfg = TD3Config(net_arch=[64, 64], gamma=0.98)  # type: ignore[arg-type]
    assert cfg.net_arch == (64, 64)
    data = cfg.to_dict()
    for name in ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "train_freq",
                 "gradient_steps", "policy_delay", "target_policy_noise", "target_noise_clip",
                 "exploration_noise", "net_arch"):  # fmt: skip
        assert name in data
    assert TD3Config.from_dict(data) == cfg
    assert cfg.replace(tau=0.01).tau == 0.01


@pytest.mark.parametrize(
    "changes",
    [
        {"tau": 0.0},
        {"device": "tpu"},
        {"batch_size": 0},
        {"transformer_dim": 10, "transformer_heads": 3},
        {"gamma": 1.5},
        {"net_arch": ()},
        {"gan_loss": "hinge"},
    ],
)
def test_config_rejects_bad_values(changes: dict) -> None:
    with pytest.raises(ConfigError):
        TD3Config(**changes)


def test_every_enhancer_combo_choice_is_declared_once_and_its_knobs_are_config_fields() -> None:
    from autogai.agents.enhancers import ENHANCERS
    from autogai.core.types import SLOT_CHOICES

    declared = [(e.slot, e.name) for e in ENHANCERS]
    assert sorted(declared) == sorted((slot, name) for slot, names in SLOT_CHOICES.items() for name in names)
    flat = TD3Config().to_dict()
    for e in ENHANCERS:
        for knob in e.knobs:
            assert flat[knob.flat_name] == knob.default, knob.flat_name
    changed = TD3Config(diffusion_steps=7, vae_beta=0.5)
    assert changed.enhancer("diffusion").steps == 7 and changed.get("vae_beta") == 0.5
    assert TD3Config.from_dict(changed.to_dict()) == changed


def test_config_from_dict_names_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="policy_delays"):
        TD3Config.from_dict({"policy_delays": 2})


def test_population_configs_may_differ_only_in_per_agent_scalars() -> None:
    mixed = [TINY, TINY.replace(learning_rate=3e-4, tau=0.02, gamma=0.9, exploration_noise=0.3)]
    assert check_same_population(mixed) == TINY
    for field, value in (("net_arch", (32, 16)), ("batch_size", 16), ("policy_delay", 3)):
        with pytest.raises(ConfigError, match=f"agent 1 differs from agent 0 in {field}"):
            check_same_population([TINY, TINY.replace(**{field: value})])
        with pytest.raises(ConfigError, match=field):
            TD3Population(OBS, BOX, "plain", [TINY, TINY.replace(**{field: value})], seeds=[0, 1])
    with pytest.raises(ConfigError, match="at least one agent"):
        TD3Population(OBS, BOX, "plain", TINY, seeds=[])
    with pytest.raises(ConfigError, match="2 configurations for 3 seeds"):
        TD3Population(OBS, BOX, "plain", [TINY, TINY], seeds=[0, 1, 2])


# ----------------------------------------------------------------------------------------------- buffer
def test_replay_buffer_is_preallocated_per_agent_and_wraps() -> None:
    buffer = ReplayBuffer(2, 4, 3, 2)
    assert buffer.obs.shape == (2, 4, 3) and buffer.obs.dtype == torch.float32
    assert ReplayBuffer.bytes_needed(2, 4, 3, 2) == sum(
        getattr(buffer, name).numel() * 4 for name in ReplayBuffer.FIELDS
    )
    for i in range(6):  # agent 0 stores i, agent 1 stores 100 + i
        obs = torch.tensor([[[float(i)] * 3], [[100.0 + i] * 3]])
        rewards = torch.tensor([[float(i)], [100.0 + i]])
        buffer.add(obs, torch.zeros(2, 1, 2), rewards, obs + 1, torch.full((2, 1), float(i == 5)))
    assert len(buffer) == 4 and buffer.position == 2
    assert sorted(buffer.rewards[0, :, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert sorted(buffer.rewards[1, :, 0].tolist()) == [102.0, 103.0, 104.0, 105.0]
    batch = buffer.sample(7, torch.Generator().manual_seed(0))
    assert isinstance(batch, ReplayBatch)
    assert (
        batch.obs.shape == (2, 7, 3)
        and batch.rewards.shape == (2, 7, 1)
        and batch.terminated.shape == (2, 7, 1)
    )
    assert torch.equal(batch.next_obs, batch.obs + 1)
    assert torch.all(batch.obs[0] < 10) and torch.all(batch.obs[1] >= 100)  # each agent samples its own rows
    assert torch.equal(batch.rewards[..., 0], batch.obs[..., 0])
    buffer.keep(torch.tensor([1]))
    assert buffer.obs.shape == (1, 4, 3) and sorted(buffer.rewards[0, :, 0].tolist()) == [
        102.0,
        103.0,
        104.0,
        105.0,
    ]


# ----------------------------------------------------------------------------------------------- TD3 core
def _set_constant_critic(critic: torch.nn.Module, values: list[tuple[float, float]]) -> None:
    """Twin critics that output ``values[agent][member]`` whatever the input."""
    with torch.no_grad():
        for p in critic.parameters():
            p.zero_()
        critic.q_networks.layers[-1].bias[:, :, 0, 0] = torch.tensor(values)


def test_update_target_is_smoothed_clipped_double_q_per_agent() -> None:
    """Every term of the Bellman target computed by hand, with each agent's own gamma and target noise.

    The target actor outputs 0.9 on coord 0, the target critics Q'_m = c_m * (a_0 + 2), so the target
    y = r + gamma (1 - d) min_m c_m (clip(0.9 + clip(noise_std * eps, +-noise_clip), +-1) + 2) depends on the
    smoothing noise, its clip, the action clip and the clipped double Q.
    """
    configs = [
        TINY.replace(gamma=0.5, target_policy_noise=0.3, target_noise_clip=0.2, learning_rate=1e-9),
        TINY.replace(gamma=0.9, target_policy_noise=1.0, target_noise_clip=0.5, learning_rate=1e-9),
    ]
    population = _filled_population(configs=configs, seeds=(0, 1))
    buffer = population._buffer
    assert buffer is not None
    buffer.rewards[:] = 1.0
    buffer.terminated[:] = 0.0
    buffer.terminated[:, :5] = 1.0
    with torch.no_grad():
        for p in population.actor_target.parameters():
            p.zero_()
        population.actor_target.head.linear.bias[:, 0, 0] = float(np.arctanh(0.9))
        layers = population.critic_target.q_networks.layers
        for p in population.critic_target.parameters():
            p.zero_()
        layers[0].weight[:, :, 5, 0] = 1.0  # hidden unit 0 = relu(a_0 + 2) = a_0 + 2
        layers[0].bias[:, :, 0, 0] = 2.0
        layers[1].weight[:, :, 0, 0] = 1.0
        layers[2].weight[:, :, 0, 0] = torch.tensor([[1.0, 3.0], [2.0, 0.5]])  # c_m per agent
    _set_constant_critic(population.critic, [(0.5, -1.0), (2.0, 0.0)])

    state = population.generator.get_state()
    stats = population._update()
    population.generator.set_state(state)  # replay the update's draws: the batch, then the target noise
    batch = buffer.sample(TINY.batch_size, population.generator)
    eps = torch.randn((2, TINY.batch_size, 2), generator=population.generator)
    expected = []
    for i, (config, c, q) in enumerate(
        zip(configs, [(1.0, 3.0), (2.0, 0.5)], [(0.5, -1.0), (2.0, 0.0)], strict=True)
    ):
        noise = (config.target_policy_noise * eps[i, :, 0]).clamp(
            -config.target_noise_clip, config.target_noise_clip
        )
        a0 = (0.9 + noise).clamp(-1.0, 1.0)
        next_q = torch.minimum(c[0] * (a0 + 2.0), c[1] * (a0 + 2.0))
        y = 1.0 + config.gamma * (1.0 - batch.terminated[i, :, 0]) * next_q
        expected.append(float(((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean()))
    assert stats["critic_loss"].tolist() == pytest.approx(expected, rel=1e-5)
    # The clip really binds for both agents on some samples, so the check above covers it.
    assert (eps[0, :, 0].abs() * 0.3 > 0.2).any() and (eps[1, :, 0].abs() > 0.5).any()


def test_polyak_update_after_delayed_actor_step_with_per_agent_tau() -> None:
    population = _filled_population(configs=[TINY.replace(tau=0.25), TINY.replace(tau=0.5)], seeds=(0, 1))
    before = [p.detach().clone() for p in population._target_params]
    population._update()  # critic only
    assert all(torch.equal(a, b) for a, b in zip(before, population._target_params, strict=True))
    stats = population._update()  # critic + actor + Polyak
    assert "actor_loss" in stats and stats["actor_loss"].shape == (2,)
    for old, target, online in zip(before, population._target_params, population._online_params, strict=True):
        assert torch.allclose(target[0], 0.75 * old[0] + 0.25 * online[0], atol=1e-6)
        assert torch.allclose(target[1], 0.5 * old[1] + 0.5 * online[1], atol=1e-6)


def test_warmup_random_actions_and_no_updates() -> None:
    population = TD3Population(OBS, BOX, "plain", TINY.replace(learning_starts=20), seeds=[0, 1])
    assert population.train_step(1) == {}
    a1 = population.act(np.zeros((2, 1, 5), np.float32), explore=True)
    a2 = population.act(np.zeros((2, 1, 5), np.float32), explore=True)
    assert a1.shape == (2, 1, 2) and not np.array_equal(a1, a2) and not np.array_equal(a1[0], a1[1])
    assert population.act(np.zeros((2, 3, 5), np.float32), explore=False).shape == (2, 3, 2)


def test_non_finite_loss_marks_only_that_agent() -> None:
    population = _filled_population(seeds=(0, 1, 2))
    assert population._buffer is not None
    population._buffer.rewards[1] = float("nan")
    losses = population.train_step(1)
    assert losses["critic_loss"].shape == (3,)
    assert nonfinite_rows(np.stack(list(losses.values()), axis=1)).tolist() == [False, True, False]
    assert population.nonfinite_agents() == [1]  # the NaN reached agent 1's weights, and only them


# ----------------------------------------------------------------------------------------------- diffusion
def test_vp_schedule_matches_diffusion_ql() -> None:
    betas = vp_beta_schedule(5, 0.1, 10.0)
    t = np.arange(1, 6)
    expected = 1 - np.exp(-0.1 / 5 - 0.5 * 9.9 * (2 * t - 1) / 25)
    assert np.allclose(betas, expected) and np.all(np.diff(betas) > 0)


def test_diffusion_chain_shapes_clamping_and_gradients() -> None:
    torch.manual_seed(0)
    policy = DiffusionPolicy(6, 3, agent_generators([0, 1]), hidden=16, steps=4)
    embedding = torch.randn(2, 5, 6, requires_grad=True)
    noise = torch.randn(4, 2, 5, 3, requires_grad=True)
    actions, trajectory = policy.sample(embedding, noise=noise)
    assert actions.shape == (2, 5, 3) and len(trajectory) == 5
    assert actions.abs().max() <= 1.0
    # The actor loss back-propagates through the whole chain: to the denoiser, the state and x_T.
    (-actions[0].sum()).backward()
    for name in ("action_branch", "state_branch", "hidden_layer", "output_layer"):
        grad = getattr(policy, name).weight.grad
        assert grad[0].abs().sum() > 0 and grad[1].abs().sum() == 0, name  # agent 1 got no gradient
    assert policy.time_mlp.layers[0].weight.grad[0].abs().sum() > 0
    assert embedding.grad[0].abs().sum() > 0 and noise.grad[0, 0].abs().sum() > 0
    # Clamping holds even for a denoiser that pushes far outside [-1, 1].
    with torch.no_grad():
        policy.output_layer.bias.fill_(-50.0)
    assert policy(torch.randn(2, 7, 6)).abs().max() <= 1.0
    bc = policy.bc_loss(torch.randn(2, 5, 6), torch.rand(2, 5, 3) * 2 - 1)
    assert bc.shape == (2,) and torch.isfinite(bc).all()


def test_diffusion_population_actor_step_changes_denoiser_and_target_is_diffusion() -> None:
    population = _filled_population("gdm", TINY.replace(bc_weight=0.5))
    assert isinstance(population.actor_target.head, DiffusionPolicy)
    before = population.actor.head.hidden_layer.weight.detach().clone()
    population._update()
    stats = population._update()
    assert "bc_loss" in stats and "actor_loss" in stats
    assert not torch.equal(before, population.actor.head.hidden_layer.weight)
    obs = np.zeros((1, 4, 5), np.float32)
    assert np.array_equal(population.act(obs, explore=False), population.act(obs, explore=False))


# ----------------------------------------------------------------------------------------------- GAN critic
def test_gan_adversarial_gradient_reaches_generator() -> None:
    torch.manual_seed(0)
    generators = agent_generators([0, 1])
    critic = GANCritic(4, 2, (16, 16), generators, noise_dim=3)
    discriminator = BellmanDiscriminator(4, 2, (16, 16), generators)
    feats, actions = torch.randn(2, 8, 4), torch.rand(2, 8, 2)
    q = critic(feats, actions)  # [P, 2, 8, 1], z sampled per critic
    assert q.shape == (2, 2, 8, 1)
    logits = discriminator(
        feats.unsqueeze(1).expand(-1, 2, -1, -1), actions.unsqueeze(1).expand(-1, 2, -1, -1), q
    )
    assert logits.shape == (2, 2, 8, 1)
    adversarial = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert torch.isfinite(adversarial)
    adversarial.backward()
    for layer in critic.generators.layers:
        grad = layer.weight.grad  # [P, 2 members, in, out]
        assert grad is not None and all(grad[i, m].abs().sum() > 0 for i in range(2) for m in range(2))
    # The generator really depends on z; the actor's expected Q is deterministic at z = 0.
    assert not torch.equal(critic(feats, actions), critic(feats, actions))
    assert torch.equal(critic.q1(feats, actions), critic.q1(feats, actions))


def test_gan_population_adversarial_term_changes_the_update_and_syncs_both_targets() -> None:
    results = []
    for weight in (0.0, 1.0):
        population = _filled_population("gan", TINY.replace(gan_adv_weight=weight, tau=0.5))
        target_before = [
            layer.weight.detach().clone() for layer in population.critic_target.generators.layers
        ]
        population._update()
        stats = population._update()
        assert np.isfinite(stats["discriminator_loss"].numpy()).all()
        assert np.isfinite(stats["adversarial_loss"].numpy()).all()
        for old, layer in zip(target_before, population.critic_target.generators.layers, strict=True):
            new = layer.weight
            assert not torch.equal(old[:, 0], new[:, 0]) and not torch.equal(
                old[:, 1], new[:, 1]
            )  # both move
        results.append(population.critic.generators.layers[0].weight.detach().clone())
    assert not torch.allclose(results[0], results[1])


def test_gan_wasserstein_variant_trains() -> None:
    population = _filled_population(
        "gan", TINY.replace(gan_loss="wasserstein", gan_z_samples=3), seeds=(0, 1)
    )
    stats = population.train_step(4)
    assert all(np.isfinite(v).all() and v.shape == (2,) for v in stats.values())
    assert population.discriminator is not None
    assert max(p.abs().max().item() for p in population.discriminator.parameters()) <= 0.01 + 1e-7


# ----------------------------------------------------------------------------------------------- VAE
def test_vae_elbo_terms_and_reconstruction_improves() -> None:
    torch.manual_seed(0)
    vae = VAEEncoder(8, 2, 32, agent_generators([0, 1]))
    beta = torch.tensor([0.5, 2.0])
    # KL of a standard-normal posterior is zero.
    with torch.no_grad():
        for head in (vae.mean_head, vae.logvar_head):
            head.weight.zero_()
            head.bias.zero_()
    obs = torch.randn(2, 16, 8)
    with torch.no_grad():
        terms = vae.elbo(obs, beta)
    assert terms.kl.tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    assert terms.loss.tolist() == pytest.approx((terms.reconstruction + beta * terms.kl).tolist())
    assert terms.latent.shape == (2, 16, 2)
    # Data on a 2-D manifold in 8-D: training the ELBO must cut the reconstruction error of both agents.
    vae = VAEEncoder(8, 2, 32, agent_generators([0, 1]))
    beta = torch.tensor([0.1, 0.1])
    basis = torch.randn(2, 8)
    data = torch.randn(2, 256, 2) @ basis
    optimizer = torch.optim.Adam(vae.parameters(), lr=3e-3)
    start = vae.elbo(data, beta).reconstruction.detach()
    for _ in range(300):
        loss = vae.elbo(data, beta).loss.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        terms = vae.elbo(data, beta)
    assert torch.all(terms.reconstruction < 0.5 * start) and torch.all(terms.kl > 0)


def test_vae_population_trains_encoder_every_update() -> None:
    population = _filled_population("vae")
    assert population.encoder is not None
    before = population.encoder.mean_head.weight.detach().clone()
    stats = population.train_step(1)
    assert "vae_loss" in stats
    assert not torch.equal(before, population.encoder.mean_head.weight)
    # Latent features are consumed by the actor and critics.
    assert population.feat_dim == TINY.enhancer("vae").latent_dim


# ----------------------------------------------------------------------------------------------- Transformer
def test_transformer_attention_depends_on_input() -> None:
    torch.manual_seed(0)
    groups = [np.array([[0, 1], [2, 3], [4, 5]]), np.array([[6, 7, 8]])]
    backbone = TransformerBackbone(9, groups, agent_generators([0, 1]), dim=8, heads=2, layers=2, out_dim=12)
    x = torch.randn(2, 4, 9)
    maps = backbone.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 2, 4, 4)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 4, 2, 4))
    assert not torch.allclose(maps[0][0, 0], maps[0][0, 1])  # different states -> different attention
    assert not torch.allclose(maps[0][0], maps[0][1])  # different agents -> different attention
    assert backbone(x).shape == (2, 4, 12)
    backbone(x).sum().backward()
    assert backbone.blocks[0].attention.qkv.weight.grad.abs().sum() > 0


def test_transformer_default_tokens_and_token_cap() -> None:
    generators = agent_generators([0])
    assert default_token_groups(5)[0].shape == (5, 1)
    antenna = np.stack([np.arange(50), 50 + np.arange(50)], axis=1)
    groups = [antenna, np.array([[100, 101, 102, 103, 104, 105]])]
    exact = TransformerBackbone(106, groups, generators, dim=8, heads=2, layers=1, out_dim=4)
    capped = TransformerBackbone(106, groups, generators, dim=8, heads=2, layers=1, out_dim=4, max_tokens=32)
    assert exact.n_tokens == 51 and capped.n_tokens == 26
    assert capped(torch.randn(1, 3, 106)).shape == (1, 3, 4)
    # Merging with padding: 5 one-feature tokens capped at 2 -> tokens of features (0, 1, 2) and (3, 4, pad).
    padded = TransformerBackbone(
        5, default_token_groups(5), generators, dim=8, heads=2, layers=1, out_dim=4, max_tokens=2
    )
    assert padded.n_tokens == 2 and padded.pad
    x = torch.randn(1, 3, 5, requires_grad=True)
    padded(x).sum().backward()
    assert torch.all(x.grad.abs().sum(1) > 0)  # every feature still reaches the output
    with pytest.raises(ConfigError):
        TransformerBackbone(4, [np.array([[0, 9]])], generators, dim=8, heads=2, layers=1, out_dim=4)


def test_transformer_population_uses_env_token_groups() -> None:
    groups = [np.array([[0, 1], [2, 3]]), np.array([[4]])]
    population = TD3Population(OBS, BOX, "transformer", TINY, token_groups=groups)
    assert population.actor.backbone.n_tokens == 3
    vae_population = TD3Population(OBS, BOX, "transformer+vae", TINY, token_groups=groups)
    assert (
        vae_population.actor.backbone.n_tokens == TINY.enhancer("vae").latent_dim
    )  # one token per latent feature


# ----------------------------------------------------------------------------------------------- adapters
HYBRID = spaces.Tuple((spaces.Discrete(9), spaces.Box(-1.0, 1.0, (2,), np.float32)))


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-2.0, 2.0, (1,), np.float32),
        spaces.Box(-1.0, 1.0, (4,), np.float32),
        spaces.MultiDiscrete([3, 3, 5, 5]),
        HYBRID,
        spaces.Discrete(4),
    ],
)
def test_adapter_round_trips(space: spaces.Space) -> None:
    space.seed(0)
    adapter = ActionAdapter(space)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = space.sample()
        coords = adapter.from_env(action)
        assert coords.shape == (adapter.dim,) and np.all(np.abs(coords) <= 1.0 + 1e-6)
        again = adapter.to_env(coords)
        if isinstance(space, spaces.Tuple):
            assert again[0] == action[0] and np.allclose(again[1], action[1], atol=1e-5)
        else:
            assert np.allclose(np.asarray(again, dtype=float), np.asarray(action, dtype=float), atol=1e-5)
        raw = rng.uniform(-1.3, 1.3, adapter.dim).astype(np.float32)
        executed = adapter.quantize(raw)
        assert space.contains(adapter.to_env(raw)) and space.contains(adapter.to_env(executed))
        assert np.array_equal(adapter.quantize(executed), executed)  # idempotent
        assert np.allclose(adapter.from_env(adapter.to_env(raw)), executed, atol=1e-5)
    batch = rng.uniform(-1, 1, (64, adapter.dim)).astype(np.float32)
    assert np.allclose(
        adapter.quantize_torch(torch.from_numpy(batch)).numpy(), adapter.quantize(batch), atol=1e-6
    )


def test_hybrid_waypoint_layout_and_custom_codebook() -> None:
    adapter = ActionAdapter(HYBRID)
    assert adapter.dim == 4
    assert adapter.to_env(np.array([0.1, -0.2, 0.5, -1.0]))[0] == 4  # (0, 0) -> hover
    assert adapter.to_env(np.array([1.0, -1.0, 0.0, 0.0]))[0] == 6  # (+1, -1) -> index 2 * 3 + 0
    np.testing.assert_allclose(adapter.from_env((5, np.array([0.5, 0.5]))), [0.0, 1.0, 0.5, 0.5])
    assert np.allclose(adapter.quantize(np.array([0.4, 0.6, 0.3, 0.2])), [0.0, 1.0, 0.3, 0.2])
    # An env that orders its way-points differently: hover first, then the 8 compass moves.
    book = np.array(
        [[0, 0], [0, 1], [1, 1], [1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1]], np.float32
    )
    custom = ActionAdapter(HYBRID, codebook=book)
    assert custom.to_env(np.array([0.1, 0.1, 0.0, 0.0]))[0] == 0
    assert custom.to_env(np.array([0.9, 0.8, 0.0, 0.0]))[0] == 2
    md = ActionAdapter(spaces.MultiDiscrete([3, 3, 5, 5]))
    assert list(md.to_env(np.array([-1.0, 0.2, 0.5, 0.74]))) == [0, 1, 3, 3]


def test_unsupported_action_space_is_config_error() -> None:
    with pytest.raises(ConfigError):
        ActionAdapter(spaces.MultiBinary(3))


def test_discrete_coords_get_exploration_scaled_to_level_spacing() -> None:
    adapter = ActionAdapter(spaces.Tuple((spaces.Discrete(9), spaces.MultiDiscrete([5]), BOX)))
    np.testing.assert_allclose(adapter.level_spacing, [1.0, 1.0, 0.5, 0.0, 0.0])
    population = TD3Population(OBS, spaces.MultiDiscrete([3, 3]), "plain", TINY.replace(learning_starts=0))
    obs = np.zeros((1, 1, 5), np.float32)
    greedy = population.act(obs, explore=False)
    explored = np.stack([population.act(obs, explore=True) for _ in range(200)])
    changed = np.mean(np.any(explored != greedy, axis=-1))
    assert 0.05 < changed < 0.6
