"""nbgrader settings for every user of the course server (students and instructors).

The hub passes KDLIB_COURSE_ID and KDLIB_EXCHANGE to each user server (deploy/jupyterhub_config.py);
in a shell outside the hub, set them or rely on the defaults below.
"""
import os

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = os.environ.get("KDLIB_COURSE_ID", "kdlib")
c.Exchange.root = os.environ.get("KDLIB_EXCHANGE", "/srv/nbgrader/exchange")
