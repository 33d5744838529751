"""Helpers for the packages' test suites (no ROS import here: the rclpy tests use them before rclpy starts)."""
