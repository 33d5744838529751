"""AgileX PiPER driver: piper_sdk and MuJoCo backends behind one interface, safety envelope, simulated
tasks, driver, sim and camera nodes.
"""
