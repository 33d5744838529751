"""``SimBackend``: a MuJoCo PiPER behind the same ``RobotBackend`` interface as the real arm.

Actions: a delta end-pose action is added to the *observed* end pose (what the actor saw in
its state text), per component with angles wrapped, exactly like ``RobotBackend.move_to``'s
contract, and solved by damped-least-squares IK to joint targets. Joint position targets
are interpolated linearly over the control period (default 0.2 s of simulated time), so a
move takes the time it would take on the arm and can be observed half-way.

Time: the simulation only advances when it is stepped. Two modes, chosen at construction:
- ``on_execute`` (default, for embedded sessions, data collection, tests): ``execute`` /
  ``move_to`` step the physics for one control period before returning. Runs are
  deterministic per seed, and as fast as the CPU allows.
- ``external``: ``execute`` only sets the target; whoever owns the clock (the arm node's
  timer, through ``SimArm.tick``) calls ``advance(duration_s)``, so observations taken meanwhile see the arm moving,
  as on the real arm. ``wait_until_still`` steps the simulation itself in both modes.

Timestamps (``stamp_s``) are simulated time in seconds: monotonic, and what matters when
comparing an observation's age with a control period. ``SimArm`` (``sim/arm.py``) puts
this backend behind ``SafeArm`` on the matching clock: simulated seconds, or the arm node's ROS time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from piper_driver.robot import ArmState, MotionRefused, RobotBackend, RobotState, RobotStatus
from piper_driver.sim.gl import configure_headless_gl
from piper_driver.sim.ik import solve_ik
from piper_driver.sim.kinematics import forward_kinematics
from piper_driver.sim.model import ARM_JOINTS, FINGER_JOINTS, FINGER_TRAVEL_M, build_model, menagerie_dir
from piper_driver.sim.render import CameraRenderer, check_image_size
from piper_driver.sim.tasks.base import SimTask, wrap_deg
from piper_driver.sim.variation import SceneVariation, VariationApplier, VariationSwitches
from vlac_core.types import DeltaAction, EndPose, Observation, TaskTruth

STEP_MODES = ("on_execute", "external")
#: Joint speed below which the arm counts as still (rad/s).
STILL_SPEED_RAD_S = 0.03
#: Finger speed below which the gripper counts as still (m/s).
STILL_FINGER_SPEED_M_S = 0.002
#: Simulated time objects get to come to rest after a reset.
SETTLE_S = 0.3
#: Physics steps between task hooks (grasp checks): 10 steps = 20 ms.
_HOOK_EVERY_STEPS = 10
_HOME_SEED_JOINTS_RAD = np.array([0.0, 1.4, -1.2, 0.0, 1.0, 0.0])


@dataclass(frozen=True)
class SimConfig:
    """Settings of one simulated arm; validated at construction."""

    control_period_s: float = 0.2
    image_size_px: int = 128
    wrist_camera: bool = False
    step_mode: str = "on_execute"
    gripper_open_mm: float = 70.0
    variation: VariationSwitches = field(default_factory=VariationSwitches)

    def __post_init__(self) -> None:
        if not 0.01 <= self.control_period_s <= 2.0:
            raise ValueError(f"control_period_s: expected 0.01..2.0 s, got {self.control_period_s!r}")
        check_image_size(self.image_size_px)
        if self.step_mode not in STEP_MODES:
            raise ValueError(f"step_mode: expected one of {STEP_MODES}, got {self.step_mode!r}")
        if not 0.0 < self.gripper_open_mm <= 2000 * FINGER_TRAVEL_M:
            limit_mm = 2000 * FINGER_TRAVEL_M
            raise ValueError(f"gripper_open_mm: expected 0..{limit_mm:.0f} mm, got {self.gripper_open_mm!r}")


@dataclass(frozen=True)
class SimSnapshot:
    """Everything needed to continue a simulation exactly: physics, motion in progress, task, looks."""

    task_name: str
    physics: np.ndarray  # mj_getState(mjSTATE_INTEGRATION): time, qpos, qvel, act, ctrl, warm start, eq_active, mocap
    task_state: dict
    motion: tuple
    variation: SceneVariation
    seed: int


class SimBackend(RobotBackend):
    """One simulated PiPER in a task scene."""

    def __init__(self, task: SimTask, config: SimConfig | None = None) -> None:
        self.task = task
        self.config = config or SimConfig()
        self._lock = threading.RLock()
        self._state = RobotState.DISCONNECTED
        self._message = ""
        self._counters: dict[str, int] = {}
        self._model = None
        self._data = None
        self._renderer: CameraRenderer | None = None
        self._seed = 0
        self._variation = SceneVariation()

    # --- link ---------------------------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self._model is not None:
                self._state = RobotState.CONNECTED if self._state is RobotState.DISCONNECTED else self._state
                return
            configure_headless_gl()  # must precede the first `import mujoco`
            import mujoco

            self._mj = mujoco
            try:
                model = build_model(self.task.xml(), menagerie=menagerie_dir())
            except (ValueError, FileNotFoundError) as error:
                raise ConnectionError(f"sim: could not build the {self.task.name} scene: {error}") from error
            self._model = model
            self._data = mujoco.MjData(model)
            self.task.bind(model)
            self._bind_ids()
            self._applier = VariationApplier(model)
            self._home_joints = self._solve_home_joints()
            self._state = RobotState.CONNECTED
            self._message = "simulation ready"
            self.reset(0)

    def disconnect(self) -> None:
        with self._lock:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
            self._state = RobotState.DISCONNECTED

    def enable(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            if self._model is None:
                raise ConnectionError("sim: connect() before enable()")
            if self._state is RobotState.ESTOPPED:
                raise MotionRefused("sim: emergency stop latched; call resume() first")
            self._hold_here()
            self._state = RobotState.ENABLED
            self._message = "enabled"

    def disable(self) -> None:
        with self._lock:
            if self._state is RobotState.ENABLED:
                # The simulated controller keeps holding position (gravity-compensated links): nothing falls.
                self._hold_here()
                self._state = RobotState.CONNECTED
                self._message = "disabled"

    # --- scene --------------------------------------------------------------------------------
    def reset(self, seed: int, variation: SceneVariation | None = None) -> None:
        """New episode: arm at home, objects placed from ``seed``, scene looks sampled from ``seed``.

        Allowed in any connected state (it is a simulator reset, not a motion command); an
        emergency stop stays latched.
        """
        with self._lock:
            self._require_model()
            mj, model, data = self._mj, self._model, self._data
            self._seed = int(seed)
            mj.mj_resetData(model, data)
            data.qpos[self._arm_qadr] = self._home_joints
            data.qpos[self._finger_qadr] = self.config.gripper_open_mm / 2000.0
            mj.mj_forward(model, data)
            self.task.reset(model, data, np.random.default_rng([self._seed, 1]))
            self._variation = variation or SceneVariation.sample(
                np.random.default_rng([self._seed, 2]), self.config.variation
            )
            self._applier.apply(self._variation)
            mj.mj_forward(model, data)
            self._hold_here(gripper_mm=self.config.gripper_open_mm)
            self._step_physics(round(SETTLE_S / model.opt.timestep))
            self._hold_here(gripper_mm=self.config.gripper_open_mm)

    def sim_time_s(self) -> float:
        """Simulated time now, s: the clock of this backend's observation stamps."""
        with self._lock:
            return float(self._data.time) if self._data is not None else 0.0

    @property
    def model(self):
        """The compiled ``mujoco.MjModel`` (for tools and tests; scene edits belong in tasks)."""
        return self._model

    @property
    def data(self):
        """The live ``mujoco.MjData``; change it only while nothing else steps the simulation."""
        return self._data

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def variation(self) -> SceneVariation:
        return self._variation

    def success(self) -> bool:
        """Ground-truth task success."""
        with self._lock:
            self._require_model()
            return self.task.success(self._model, self._data)

    def truth(self) -> TaskTruth:
        """Ground truth of the current state: task-phase potential, success, phase (``SimTask.truth``)."""
        with self._lock:
            self._require_model()
            return self.task.truth(self._model, self._data)

    def describe(self) -> dict:
        """Privileged object state for scripted experts (simulation only)."""
        with self._lock:
            self._require_model()
            return self.task.describe(self._model, self._data)

    def object_mm(self) -> list[float] | None:
        """Centre of the object the task moves (``SimTask.object_key``) in the world, mm to 0.01; None for a task
        that names none. Recorded per frame by every simulated recorder (``meta["object_mm"]``) for the actor's
        auxiliary object loss and bench/object_probe.py."""
        key = self.task.object_key
        return [round(float(v) * 1000.0, 2) for v in self.describe()[key]] if key else None

    def goal_mm(self) -> list[float] | None:
        """Where the task's object must end (``SimTask.goal_key``) in the world, mm; None for a task that names none.
        Fixed within an episode: bench/object_probe.py's goal target and the rollout audit's done by the object's
        distance to its goal read it after a reset to the episode's seed."""
        key = self.task.goal_key
        return [float(v) * 1000.0 for v in self.describe()[key]] if key else None

    # --- observation --------------------------------------------------------------------------
    def observe(self) -> ArmState:
        with self._lock:
            self._require_model()
            joints = self._data.qpos[self._arm_qadr].copy()
            return ArmState(
                end_pose=EndPose.from_array(forward_kinematics(joints)),
                joints_rad=tuple(float(q) for q in joints),
                gripper_mm=self._gripper_mm(),
                stamp_s=float(self._data.time),
                moving=self._moving(),
            )

    def render(self, camera: str = "front") -> np.ndarray:
        """One RGB frame (HxWx3 uint8) of a named camera at the configured size."""
        with self._lock:
            self._require_model()
            if self._renderer is None:
                self._renderer = CameraRenderer(self._model, self.config.image_size_px)
            return self._renderer.render(self._data, camera)

    def images(self) -> tuple[np.ndarray, ...]:
        """The camera views of an observation: front, then wrist when enabled."""
        cameras = ("front", "wrist") if self.config.wrist_camera else ("front",)
        return tuple(self.render(camera) for camera in cameras)

    def observation(self, robot_id: str = "sim_0", seq: int = 0) -> Observation:
        """A full VLAC observation: task text, camera views, end pose, gripper."""
        with self._lock:
            arm = self.observe()
            return Observation(
                robot_id=robot_id,
                task=self.task.text,
                images=self.images(),
                end_pose=arm.end_pose,
                gripper_open=arm.gripper_mm >= self.GRIPPER_OPEN_THRESHOLD_MM,
                gripper_mm=arm.gripper_mm,
                joints_rad=arm.joints_rad,
                stamp_s=arm.stamp_s,
                seq=seq,
            )

    # --- motion -------------------------------------------------------------------------------
    def execute(self, delta: DeltaAction) -> None:
        with self._lock:
            self._refuse_unless_enabled()
            here = self.observe().end_pose.as_array()
            target = here + np.array(delta.as_tuple()[:6], dtype=np.float64)
            target[3:] = [wrap_deg(a) for a in target[3:]]
            gripper_mm = self.config.gripper_open_mm if delta.open else 0.0
            self.move_to(EndPose.from_array(target), gripper_mm)

    def move_to(self, target: EndPose, gripper_mm: float) -> None:
        with self._lock:
            self._refuse_unless_enabled()
            if not np.isfinite(gripper_mm):
                raise ValueError(f"gripper_mm: expected a finite opening in mm, got {gripper_mm!r}")
            joints_now = self._data.qpos[self._arm_qadr].copy()
            result = solve_ik(target.as_array(), joints_now)
            if not result.converged:
                # The closest reachable pose is still a sensible place to go; count it for diagnostics.
                self._count("ik_not_converged")
            finger_m = float(np.clip(gripper_mm, 0.0, self.config.gripper_open_mm)) / 2000.0
            goal = np.concatenate([result.joints_rad, [finger_m, finger_m]])
            self._start_motion(goal, gripper_closing=gripper_mm < self.GRIPPER_OPEN_THRESHOLD_MM)
            if self.config.step_mode == "on_execute":
                self._advance_locked(self.config.control_period_s)

    def advance(self, duration_s: float) -> None:
        """Step the simulation by ``duration_s`` of simulated time (the external clock's call)."""
        with self._lock:
            self._require_model()
            self._advance_locked(duration_s)

    def wait_until_still(self, timeout_s: float) -> bool:
        """Step the simulation until the move has ended and the joints are still (simulated time)."""
        with self._lock:
            self._require_model()
            deadline = self._data.time + float(timeout_s)
            while self._moving():
                if self._data.time >= deadline:
                    return False
                self._advance_locked(0.02)
            return True

    def home(self) -> None:
        """Joint-space move to the task's home pose over 1 s of simulated time (stepped here, in any mode)."""
        with self._lock:
            self._refuse_unless_enabled()
            goal = np.concatenate([self._home_joints, [self.config.gripper_open_mm / 2000.0] * 2])
            self._start_motion(goal, gripper_closing=False, duration_s=1.0)
            self._advance_locked(1.0)
            self.wait_until_still(2.0)

    def emergency_stop(self) -> None:
        with self._lock:
            self._require_model()
            self._hold_here()
            self._state = RobotState.ESTOPPED
            self._message = "emergency stop latched (resume() releases it)"
            self._count("emergency_stop")

    def resume(self) -> None:
        with self._lock:
            if self._state is RobotState.ESTOPPED:
                self._hold_here()
                self._state = RobotState.ENABLED
                self._message = "resumed after emergency stop"

    def status(self) -> RobotStatus:
        with self._lock:
            return RobotStatus(self._state, self._message, dict(self._counters))

    # --- snapshots ----------------------------------------------------------------------------
    def save_state(self) -> SimSnapshot:
        with self._lock:
            self._require_model()
            mj = self._mj
            spec = mj.mjtState.mjSTATE_INTEGRATION
            physics = np.empty(mj.mj_stateSize(self._model, spec))
            mj.mj_getState(self._model, self._data, physics, spec)
            task_state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.task.get_state().items()}
            motion = (
                self._ctrl_start.copy(),
                self._ctrl_goal.copy(),
                self._steps_total,
                self._steps_done,
                self._closing,
            )
            return SimSnapshot(self.task.name, physics, task_state, motion, self._variation, self._seed)

    def restore_state(self, snapshot: SimSnapshot) -> None:
        with self._lock:
            self._require_model()
            if snapshot.task_name != self.task.name:
                raise ValueError(
                    f"snapshot: taken in task {snapshot.task_name!r}, this backend runs {self.task.name!r}"
                )
            mj = self._mj
            mj.mj_setState(self._model, self._data, snapshot.physics, mj.mjtState.mjSTATE_INTEGRATION)
            self.task.set_state(snapshot.task_state)
            start, goal, total, done, closing = snapshot.motion
            self._ctrl_start, self._ctrl_goal = start.copy(), goal.copy()
            self._steps_total, self._steps_done, self._closing = total, done, closing
            self._variation = snapshot.variation
            self._seed = snapshot.seed
            self._applier.apply(self._variation)
            mj.mj_forward(self._model, self._data)

    # --- internals ----------------------------------------------------------------------------
    def _bind_ids(self) -> None:
        mj, model = self._mj, self._model

        def joint_id(name: str) -> int:
            index = mj.mj_name2id(model, mj.mjtObj.mjOBJ_JOINT, name)
            if index < 0:
                raise ConnectionError(f"sim: the arm model has no joint {name!r}")
            return index

        joints = [joint_id(n) for n in (*ARM_JOINTS, *FINGER_JOINTS)]
        self._arm_qadr = np.array([model.jnt_qposadr[j] for j in joints[:6]])
        self._finger_qadr = np.array([model.jnt_qposadr[j] for j in joints[6:]])
        self._arm_dofadr = np.array([model.jnt_dofadr[j] for j in joints[:6]])
        self._finger_dofadr = np.array([model.jnt_dofadr[j] for j in joints[6:]])
        actuator_of_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)}
        missing = [n for n, j in zip((*ARM_JOINTS, *FINGER_JOINTS), joints, strict=True) if j not in actuator_of_joint]
        if missing:
            raise ConnectionError(f"sim: no position actuator drives joint(s) {missing}")
        self._actuators = np.array([actuator_of_joint[j] for j in joints])
        self._tcp_site = mj.mj_name2id(model, mj.mjtObj.mjOBJ_SITE, "tcp")
        self._ctrl_start = np.zeros(8)
        self._ctrl_goal = np.zeros(8)
        self._steps_total = 0
        self._steps_done = 0
        self._closing = False

    def _solve_home_joints(self) -> np.ndarray:
        result = solve_ik(np.asarray(self.task.home_pose, float), _HOME_SEED_JOINTS_RAD, max_iterations=300)
        if not result.converged:
            raise ConnectionError(f"sim: the {self.task.name} home pose {self.task.home_pose} is out of reach")
        return result.joints_rad

    def _require_model(self) -> None:
        if self._model is None:
            raise ConnectionError("sim: not connected (call connect())")

    def _refuse_unless_enabled(self) -> None:
        if self._state is not RobotState.ENABLED:
            self._count(f"refused_{self._state.value}")
            reason = self._message if self._state is RobotState.ESTOPPED else f"state is {self._state.value}"
            raise MotionRefused(f"sim: motion refused: {reason}")

    def _count(self, key: str) -> None:
        self._counters[key] = self._counters.get(key, 0) + 1

    def _gripper_mm(self) -> float:
        return float(np.sum(self._data.qpos[self._finger_qadr]) * 1000.0)

    def _moving(self) -> bool:
        if self._steps_done < self._steps_total:
            return True
        if np.max(np.abs(self._data.qvel[self._arm_dofadr])) > STILL_SPEED_RAD_S:
            return True
        return bool(np.max(np.abs(self._data.qvel[self._finger_dofadr])) > STILL_FINGER_SPEED_M_S)

    def _hold_here(self, gripper_mm: float | None = None) -> None:
        """Targets = where the joints are now (no motion in progress)."""
        current = np.concatenate([self._data.qpos[self._arm_qadr], self._data.qpos[self._finger_qadr]])
        if gripper_mm is not None:
            current[6:] = gripper_mm / 2000.0
        elif self._steps_total:  # keep commanding the gripper what it was commanded
            current[6:] = self._ctrl_goal[6:]
        self._ctrl_start = current.copy()
        self._ctrl_goal = current.copy()
        self._steps_total = self._steps_done = 0
        self._data.ctrl[self._actuators] = current

    def _start_motion(self, goal: np.ndarray, *, gripper_closing: bool, duration_s: float | None = None) -> None:
        steps = max(1, round((duration_s or self.config.control_period_s) / self._model.opt.timestep))
        self._ctrl_start = self._data.ctrl[self._actuators].copy()
        self._ctrl_goal = goal.copy()
        self._steps_total, self._steps_done = steps, 0
        self._closing = gripper_closing

    def _advance_locked(self, duration_s: float) -> None:
        if not np.isfinite(duration_s) or duration_s < 0:
            raise ValueError(f"duration_s: expected a finite non-negative time in s, got {duration_s!r}")
        self._step_physics(round(duration_s / self._model.opt.timestep))

    def _step_physics(self, n_steps: int) -> None:
        mj, model, data = self._mj, self._model, self._data
        for _ in range(n_steps):
            if self._steps_done < self._steps_total:
                self._steps_done += 1
                fraction = self._steps_done / self._steps_total
                data.ctrl[self._actuators] = self._ctrl_start + fraction * (self._ctrl_goal - self._ctrl_start)
            mj.mj_step(model, data)
            if round(data.time / model.opt.timestep) % _HOOK_EVERY_STEPS == 0:
                self.task.on_physics(model, data, self._closing, data.site_xpos[self._tcp_site])
        if n_steps:
            # mj_step leaves positions (xpos, site_xpos) of the state before its last integration;
            # recompute them so success checks and snapshots see the state they describe.
            mj.mj_forward(model, data)
