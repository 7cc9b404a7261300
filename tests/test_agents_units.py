"""Unit tests of the agents layer: config, replay buffer, TD3 target and Polyak step, each enhancer module,
and the action adapters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from autogai.agents import ActionAdapter, ReplayBatch, ReplayBuffer, TD3Agent, TD3Config, make_agent
from autogai.agents.backbones import TransformerBackbone, default_token_groups
from autogai.agents.critics import BellmanDiscriminator, GANCritic
from autogai.agents.encoders import VAEEncoder
from autogai.agents.policies import DiffusionPolicy, vp_beta_schedule
from autogai.agents.td3 import clipped_double_q_target, target_policy_smoothing
from autogai.core.errors import ConfigError, TrainingDivergedError

torch.set_num_threads(1)

TINY = TD3Config(
    net_arch=(16, 16),
    batch_size=8,
    learning_starts=8,
    buffer_size=256,
    diffusion_steps=3,
    diffusion_hidden=16,
    transformer_dim=8,
    vae_latent_dim=3,
    vae_hidden=16,
    device="cpu",
)
OBS = spaces.Box(-1.0, 1.0, (5,), np.float32)
BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _filled_agent(enhancers: str = "plain", config: TD3Config = TINY, n: int = 32, seed: int = 0) -> TD3Agent:
    agent = make_agent(OBS, BOX, enhancers, config, seed=seed)
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 5)).astype(np.float32)
    agent.add_transition(
        obs, rng.uniform(-1, 1, (n, 2)), rng.normal(size=n), np.roll(obs, 1, 0), np.zeros(n, bool)
    )
    return agent


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


def test_config_from_dict_names_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="policy_delays"):
        TD3Config.from_dict({"policy_delays": 2})


# ----------------------------------------------------------------------------------------------- buffer
def test_replay_buffer_is_preallocated_and_wraps() -> None:
    buffer = ReplayBuffer(4, 3, 2, rng=np.random.default_rng(0))
    assert buffer.obs.shape == (4, 3) and buffer.obs.dtype == np.float32
    for i in range(6):
        buffer.add(np.full(3, i), np.zeros(2), float(i), np.full(3, i + 1), i == 5)
    assert len(buffer) == 4 and buffer.position == 2
    assert sorted(buffer.rewards[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0]
    batch = buffer.sample(7)
    assert isinstance(batch, ReplayBatch)
    assert batch.obs.shape == (7, 3) and batch.rewards.shape == (7, 1) and batch.terminated.shape == (7, 1)
    assert torch.equal(batch.next_obs, batch.obs + 1)


# ----------------------------------------------------------------------------------------------- TD3 core
def test_target_policy_smoothing_and_clipped_double_q_by_hand() -> None:
    actions = torch.tensor([[0.9, -0.2], [0.0, 0.0]])
    noise = torch.tensor([[0.3, -0.7], [-0.1, 0.6]])  # clip 0.5 -> [[0.3, -0.5], [-0.1, 0.5]]
    smoothed = target_policy_smoothing(actions, noise, 0.5)
    assert torch.allclose(smoothed, torch.tensor([[1.0, -0.7], [-0.1, 0.5]]))  # 1.2 clipped to 1
    rewards = torch.tensor([[1.0], [2.0]])
    terminated = torch.tensor([[0.0], [1.0]])
    next_q = torch.tensor([[[5.0], [7.0]], [[4.0], [9.0]]])  # Q'_1, Q'_2 for two transitions
    y = clipped_double_q_target(rewards, terminated, 0.9, next_q)
    assert torch.allclose(y, torch.tensor([[1.0 + 0.9 * 4.0], [2.0]]))


def test_update_uses_clipped_double_q_target() -> None:
    """Constant critics make the whole critic loss computable by hand."""
    agent = _filled_agent(config=TINY.replace(gamma=0.5, learning_rate=1e-9))
    agent.buffer.rewards[:] = 1.0
    agent.buffer.terminated[:] = 0.0
    agent.buffer.terminated[:5] = 1.0
    with torch.no_grad():
        for net, (c1, c2) in ((agent.critic_target, (3.0, 2.0)), (agent.critic, (0.5, -1.0))):
            for p in net.parameters():
                p.zero_()
            net.q_networks.biases[-1][:, 0, 0] = torch.tensor([c1, c2])
    np_state = agent.buffer.rng.bit_generator.state
    stats = agent._update()
    agent.buffer.rng.bit_generator.state = np_state
    batch = agent.buffer.sample(TINY.batch_size)
    y = 1.0 + 0.5 * (1.0 - batch.terminated) * 2.0  # min(3, 2) = 2
    expected = ((0.5 - y) ** 2).mean() + ((-1.0 - y) ** 2).mean()
    assert float(stats["critic_loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_polyak_update_after_delayed_actor_step() -> None:
    agent = _filled_agent(config=TINY.replace(tau=0.25, policy_delay=2))
    before = [p.detach().clone() for p in agent._target_params]
    agent._update()  # critic only
    assert all(torch.equal(a, b) for a, b in zip(before, agent._target_params, strict=True))
    stats = agent._update()  # critic + actor + Polyak
    assert "actor_loss" in stats
    for old, target, online in zip(before, agent._target_params, agent._online_params, strict=True):
        assert torch.allclose(target, 0.75 * old + 0.25 * online, atol=1e-6)


def test_warmup_random_actions_and_no_updates() -> None:
    agent = make_agent(OBS, BOX, "plain", TINY.replace(learning_starts=20), seed=0)
    assert agent.train_step(1) == {}
    a1 = agent.act(np.zeros(5, np.float32), explore=True)
    a2 = agent.act(np.zeros(5, np.float32), explore=True)
    assert a1.shape == (2,) and not np.array_equal(a1, a2)
    assert agent.act(np.zeros((3, 5), np.float32), explore=False).shape == (3, 2)


def test_non_finite_loss_raises_training_diverged() -> None:
    agent = _filled_agent()
    agent.buffer.rewards[:] = np.nan
    with pytest.raises(TrainingDivergedError, match="critic_loss"):
        agent.train_step(1)


# ----------------------------------------------------------------------------------------------- diffusion
def test_vp_schedule_matches_diffusion_ql() -> None:
    betas = vp_beta_schedule(5, 0.1, 10.0)
    t = np.arange(1, 6)
    expected = 1 - np.exp(-0.1 / 5 - 0.5 * 9.9 * (2 * t - 1) / 25)
    assert np.allclose(betas, expected) and np.all(np.diff(betas) > 0)


def test_diffusion_chain_shapes_clamping_and_gradients() -> None:
    torch.manual_seed(0)
    policy = DiffusionPolicy(6, 3, hidden=16, steps=4)
    embedding = torch.randn(5, 6, requires_grad=True)
    noise = torch.randn(4, 5, 3, requires_grad=True)
    actions, trajectory = policy.sample(embedding, noise=noise)
    assert actions.shape == (5, 3) and len(trajectory) == 5
    assert actions.abs().max() <= 1.0
    # The actor loss back-propagates through the whole chain: to the denoiser, the state and x_T.
    (-actions.sum()).backward()
    for name in ("action_branch", "state_branch", "hidden_layer", "output_layer"):
        assert getattr(policy, name).weight.grad.abs().sum() > 0, name
    assert policy.time_mlp[0].weight.grad.abs().sum() > 0
    assert embedding.grad.abs().sum() > 0 and noise.grad[0].abs().sum() > 0
    # Clamping holds even for a denoiser that pushes far outside [-1, 1].
    with torch.no_grad():
        policy.output_layer.bias.fill_(-50.0)
    assert policy(torch.randn(7, 6)).abs().max() <= 1.0
    bc = policy.bc_loss(torch.randn(5, 6), torch.rand(5, 3) * 2 - 1)
    assert bc.ndim == 0 and torch.isfinite(bc)


def test_diffusion_agent_actor_step_changes_denoiser_and_target_is_diffusion() -> None:
    agent = _filled_agent("gdm", TINY.replace(bc_weight=0.5))
    assert isinstance(agent.actor_target.head, DiffusionPolicy)
    before = agent.actor.head.hidden_layer.weight.detach().clone()
    agent._update()
    stats = agent._update()
    assert "bc_loss" in stats and "actor_loss" in stats
    assert not torch.equal(before, agent.actor.head.hidden_layer.weight)
    obs = np.zeros((4, 5), np.float32)
    assert np.array_equal(agent.act(obs, explore=False), agent.act(obs, explore=False))


# ----------------------------------------------------------------------------------------------- GAN critic
def test_gan_adversarial_gradient_reaches_generator() -> None:
    torch.manual_seed(0)
    critic = GANCritic(4, 2, (16, 16), noise_dim=3)
    discriminator = BellmanDiscriminator(4, 2, (16, 16))
    feats, actions = torch.randn(8, 4), torch.rand(8, 2)
    q = critic(feats, actions)  # [2, 8, 1], z sampled per critic
    logits = discriminator(feats.expand(2, -1, -1), actions.expand(2, -1, -1), q)
    assert logits.shape == (2, 8, 1)
    adversarial = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert torch.isfinite(adversarial)
    adversarial.backward()
    for weight in critic.generators.weights:
        assert weight.grad is not None and weight.grad[0].abs().sum() > 0 and weight.grad[1].abs().sum() > 0
    # The generator really depends on z; the actor's expected Q is deterministic at z = 0.
    assert not torch.equal(critic(feats, actions), critic(feats, actions))
    assert torch.equal(critic.q1(feats, actions), critic.q1(feats, actions))


def test_gan_agent_adversarial_term_changes_the_update_and_syncs_both_targets() -> None:
    results = []
    for weight in (0.0, 1.0):
        agent = _filled_agent("gan", TINY.replace(gan_adv_weight=weight, tau=0.5))
        target_before = [w.detach().clone() for w in agent.critic_target.generators.weights]
        agent._update()
        stats = agent._update()
        assert np.isfinite(float(stats["discriminator_loss"])) and np.isfinite(
            float(stats["adversarial_loss"])
        )
        for old, new in zip(target_before, agent.critic_target.generators.weights, strict=True):
            assert not torch.equal(old[0], new[0]) and not torch.equal(old[1], new[1])  # both targets move
        results.append(agent.critic.generators.weights[0].detach().clone())
    assert not torch.allclose(results[0], results[1])


def test_gan_wasserstein_variant_trains() -> None:
    agent = _filled_agent("gan", TINY.replace(gan_loss="wasserstein", gan_z_samples=3))
    stats = agent.train_step(4)
    assert all(np.isfinite(v) for v in stats.values())
    assert max(p.abs().max().item() for p in agent.discriminator.parameters()) <= 0.01 + 1e-7


# ----------------------------------------------------------------------------------------------- VAE
def test_vae_elbo_terms_and_reconstruction_improves() -> None:
    torch.manual_seed(0)
    vae = VAEEncoder(8, 2, 32, beta=0.5)
    # KL of a standard-normal posterior is zero.
    with torch.no_grad():
        for head in (vae.mean_head, vae.logvar_head):
            head.weight.zero_()
            head.bias.zero_()
    obs = torch.randn(16, 8)
    with torch.no_grad():
        terms = vae.elbo(obs)
    assert float(terms.kl) == pytest.approx(0.0, abs=1e-6)
    assert float(terms.loss) == pytest.approx(float(terms.reconstruction + 0.5 * terms.kl))
    assert terms.latent.shape == (16, 2)
    # Data on a 2-D manifold in 8-D: training the ELBO must cut the reconstruction error.
    vae = VAEEncoder(8, 2, 32, beta=0.1)
    basis = torch.randn(2, 8)
    data = torch.randn(256, 2) @ basis
    optimizer = torch.optim.Adam(vae.parameters(), lr=3e-3)
    start = vae.elbo(data).reconstruction.item()
    for _ in range(300):
        loss = vae.elbo(data).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        terms = vae.elbo(data)
    assert float(terms.reconstruction) < 0.5 * start and float(terms.kl) > 0


def test_vae_agent_trains_encoder_every_update() -> None:
    agent = _filled_agent("vae")
    before = agent.encoder.mean_head.weight.detach().clone()
    stats = agent.train_step(1)
    assert "vae_loss" in stats
    assert not torch.equal(before, agent.encoder.mean_head.weight)
    # Latent features are consumed by the actor and critics.
    assert agent.feat_dim == TINY.vae_latent_dim


# ----------------------------------------------------------------------------------------------- Transformer
def test_transformer_attention_depends_on_input() -> None:
    torch.manual_seed(0)
    groups = [np.array([[0, 1], [2, 3], [4, 5]]), np.array([[6, 7, 8]])]
    backbone = TransformerBackbone(9, groups, dim=8, heads=2, layers=2, out_dim=12)
    x = torch.randn(4, 9)
    maps = backbone.attention_maps(x)
    assert len(maps) == 2 and maps[0].shape == (4, 2, 4, 4)
    assert torch.allclose(maps[0].sum(-1), torch.ones(4, 2, 4))
    assert not torch.allclose(maps[0][0], maps[0][1])  # different states -> different attention
    assert backbone(x).shape == (4, 12)
    out = backbone(x)
    out.sum().backward()
    assert backbone.blocks[0].attention.qkv.weight.grad.abs().sum() > 0


def test_transformer_default_tokens_and_token_cap() -> None:
    assert default_token_groups(5)[0].shape == (5, 1)
    antenna = np.stack([np.arange(50), 50 + np.arange(50)], axis=1)
    groups = [antenna, np.array([[100, 101, 102, 103, 104, 105]])]
    exact = TransformerBackbone(106, groups, dim=8, heads=2, layers=1, out_dim=4)
    capped = TransformerBackbone(106, groups, dim=8, heads=2, layers=1, out_dim=4, max_tokens=32)
    assert exact.n_tokens == 51 and capped.n_tokens == 26
    assert capped(torch.randn(3, 106)).shape == (3, 4)
    # Merging with padding: 5 one-feature tokens capped at 2 -> tokens of features (0, 1, 2) and (3, 4, pad).
    padded = TransformerBackbone(
        5, default_token_groups(5), dim=8, heads=2, layers=1, out_dim=4, max_tokens=2
    )
    assert padded.n_tokens == 2 and padded.pad
    x = torch.randn(3, 5, requires_grad=True)
    padded(x).sum().backward()
    assert torch.all(x.grad.abs().sum(0) > 0)  # every feature still reaches the output
    with pytest.raises(ConfigError):
        TransformerBackbone(4, [np.array([[0, 9]])], dim=8, heads=2, layers=1, out_dim=4)


def test_transformer_agent_uses_env_token_groups() -> None:
    groups = [np.array([[0, 1], [2, 3]]), np.array([[4]])]
    agent = make_agent(OBS, BOX, "transformer", TINY, token_groups=groups)
    assert agent.actor.backbone.n_tokens == 3
    vae_agent = make_agent(OBS, BOX, "transformer+vae", TINY, token_groups=groups)
    assert vae_agent.actor.backbone.n_tokens == TINY.vae_latent_dim  # one token per latent feature


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
    agent = make_agent(OBS, spaces.MultiDiscrete([3, 3]), "plain", TINY.replace(learning_starts=0), seed=0)
    greedy = agent.act(np.zeros(5, np.float32), explore=False)
    explored = np.stack([agent.act(np.zeros(5, np.float32), explore=True) for _ in range(200)])
    changed = np.mean(np.any(explored != greedy, axis=1))
    assert 0.05 < changed < 0.6
