"""The daemon: node lifecycle, the worker loop, periodic work, systemd notify and watchdog."""
