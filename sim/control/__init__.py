"""Control: waypoint plans, minimum-jerk timing, IK (mink), joint-target actions."""
