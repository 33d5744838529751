"""Headless GL selection: an explicit MUJOCO_GL wins, a working backend is found, none working is a clear error."""

from __future__ import annotations

import sys

import pytest

from piper_driver.sim import gl


def test_an_explicit_mujoco_gl_is_kept(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert gl.configure_headless_gl() == "osmesa"


def test_the_first_backend_that_renders_is_chosen(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)
    tried = []

    def probe(name):
        tried.append(name)
        return "no EGL display" if name == "egl" else None

    monkeypatch.setattr(gl, "probe_backend", probe)
    assert gl.configure_headless_gl() == "osmesa"
    assert tried == ["egl", "osmesa"]
    import os

    assert os.environ["MUJOCO_GL"] == "osmesa"


def test_no_working_backend_is_an_error_that_says_what_was_tried(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)
    monkeypatch.setattr(gl, "probe_backend", lambda name: f"{name} library missing")
    with pytest.raises(gl.RenderingUnavailable, match=r"egl: egl library missing; osmesa: osmesa library missing"):
        gl.configure_headless_gl()


def test_probing_a_real_backend_in_a_subprocess():
    pytest.importorskip("mujoco", reason="probing renders with MuJoCo")
    assert gl.probe_backend("no_such_backend") is not None
