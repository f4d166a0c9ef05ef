"""Jupyter Server settings for every user server of the course hub."""
import os

c = get_config()  # noqa: F821 (provided by Jupyter Server)

# JupyterHub's user servers refuse to be shown in a frame (frame-ancestors 'none'); nbgrader's
# Formgrader tab is a frame of the instructor's own server, so allow the same origin.
c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}

# A kernel that has executed nothing for this long is shut down, even with its tab still open:
# its memory (0.3-0.6 GB for a lesson) goes back to the class. The learner reruns the notebook.
c.MappingKernelManager.cull_idle_timeout = int(os.environ.get("KDLIB_CULL_KERNELS_AFTER", "3600"))
c.MappingKernelManager.cull_interval = 300
c.MappingKernelManager.cull_connected = True
c.MappingKernelManager.cull_busy = False
