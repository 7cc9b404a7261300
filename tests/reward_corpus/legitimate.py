"""Legitimate reward programs for the tiny Pendulum task of the tests: every one must be accepted."""

from __future__ import annotations

LEGITIMATE: dict[str, str] = {
    "baseline_with_params": """\
PARAMS = {
    "angle_weight": {"default": 1.0, "low": 0.1, "high": 10.0, "log": True},
    "speed_weight": {"default": 0.1, "low": 0.01, "high": 1.0},
}


def compute_reward(m, p):
    components = {
        "angle": -p["angle_weight"] * m.angle**2,
        "speed": -p["speed_weight"] * m.speed**2,
    }
    return sum(components.values()), components
""",
    "no_params": """\
def compute_reward(m, p):
    return m.upright, {"upright": m.upright}
""",
    "helpers_and_math": '''\
"""Shaped by a smooth bump around upright."""

SCALE = 2.0


def bump(x, width=0.5):
    return math.exp(-(x / width) ** 2)


def effort(u):
    return math.sqrt(u * u + 1e-6)


def compute_reward(m, p):
    shaped = SCALE * bump(m.angle)
    cost = 0.01 * effort(m.torque)
    return shaped - cost, {"shaped": shaped, "effort": -cost}
''',
    "numpy_functions": """\
PARAMS = {"w": {"default": 0.5, "low": 0.0, "high": 1.0}}


def compute_reward(m, p):
    head = np.clip(m.obs[:2], -1.0, 1.0)
    distance = float(np.linalg.norm(head - np.array([1.0, 0.0])))
    smooth = float(np.tanh(-distance))
    bonus = float(np.where(m.upright > 0.95, 1.0, 0.0))
    action_cost = float(np.sum(np.abs(m.action))) * p["w"] * 0.01
    total = smooth + bonus - action_cost
    return total, {"distance": smooth, "bonus": bonus, "action": -action_cost}
""",
    "small_loops": """\
def compute_reward(m, p):
    velocity_terms = 0.0
    for k in range(1, 4):
        velocity_terms += (m.speed / k) ** 2
    features = [m.angle, m.speed, m.torque]
    weights = [1.0, 0.1, 0.001]
    cost = 0.0
    for weight, value in zip(weights, features):
        cost += weight * value * value
    total = -cost - 0.001 * velocity_terms
    return total, {"cost": -cost, "velocity": -0.001 * velocity_terms}
""",
    "comprehensions": """\
def compute_reward(m, p):
    squares = [v * v for v in m.obs.tolist()]
    parts = {f"obs{i}": -0.1 * value for i, value in enumerate(squares)}
    parts["upright"] = sum(x for x in [m.upright, m.upright]) / 2.0
    return sum(parts.values()), parts
""",
    "params_get_and_log": """\
PARAMS = {
    "upright_weight": {"default": 2.0, "low": 0.5, "high": 8.0, "log": True},
    "torque_weight": {"default": 0.001, "low": 0.0001, "high": 0.1, "log": True},
}


def compute_reward(m, p):
    weight = p.get("upright_weight", 1.0)
    up = weight * m.upright
    torque = -p["torque_weight"] * abs(m.torque)
    return up + torque, {"up": up, "torque": torque}
""",
    "nested_helper_and_conditionals": """\
def compute_reward(m, p):
    def band(x, low, high):
        return 1.0 if low <= x <= high else 0.0

    near = band(m.angle, -0.3, 0.3)
    calm = band(m.speed, -1.0, 1.0)
    score = near * (0.5 + 0.5 * calm) if near else -0.1
    return score, {"near": near, "calm": calm, "score": score}
""",
    "annotations_and_constants": """\
LIMIT: float = 8.0
NAMES = ("angle", "speed")


def normalised(value: float, limit: float = LIMIT) -> float:
    return max(-1.0, min(1.0, value / limit))


def compute_reward(m, p) -> tuple:
    values: dict = {NAMES[0]: -abs(m.angle) / math.pi, NAMES[1]: -abs(normalised(m.speed))}
    total = values["angle"] + 0.1 * values["speed"]
    return total, values
""",
    "power_and_augmented": """\
def compute_reward(m, p):
    x = m.angle
    x **= 2
    y = pow(m.speed, 2) + 2 ** 3 * 0.0
    cost = x + 0.1 * y
    return -cost, {"angle": -x, "speed": -0.1 * y}
""",
    "array_methods_and_builtins": """\
def compute_reward(m, p):
    obs = m.obs
    spread = float(obs.max() - obs.min())
    mean = float(obs.mean())
    size = len(obs) + obs.shape[0] + obs.size + obs.ndim
    ordered = sorted([abs(m.angle), abs(m.speed)])
    rounded = round(ordered[0], 6)
    flag = int(isinstance(rounded, float)) + int(bool(m.upright > 0))
    action = m.action.copy()
    action[0] = 0.0
    total = -spread * 0.01 + mean * 0.0 + size * 0.0 + flag * 0.001 + float(action.sum())
    return total, {"spread": -spread * 0.01, "flag": flag * 0.001}
""",
    "next_obs_progress": """\
def compute_reward(m, p):
    before = float(m.obs[0])
    after = float(m.next_obs[0])
    progress = after - before
    return 10.0 * progress + m.upright, {"progress": 10.0 * progress, "upright": m.upright}
""",
}
