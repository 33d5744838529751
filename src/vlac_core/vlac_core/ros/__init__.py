"""ROS 2 helpers shared by every node (imports rclpy; only nodes use this)."""
