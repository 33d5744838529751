"""Bring-up of the VLAC RL stack: episode manager, human in the loop, recording, the vlac command
line, launch and config files.
"""
