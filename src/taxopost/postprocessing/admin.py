"""The task framework in the admin: jobs, and "Run <task>" on capture sets and occurrences.

The capture-set and occurrence admins belong to :mod:`taxopost.observations`, which knows
nothing of tasks; this module adds the run actions to them (Django imports each app's admin in
the order of ``INSTALLED_APPS``: observations before post-processing).
"""

from django.contrib import admin

from taxopost.jobs.models import Job, JobLog
from taxopost.observations.admin import CaptureSetAdmin, OccurrenceAdmin
from taxopost.postprocessing.running.job_admin import JobAdmin, JobLogAdmin
from taxopost.postprocessing.running.run_actions import run_task_actions

admin.site.register(Job, JobAdmin)
admin.site.register(JobLog, JobLogAdmin)
CaptureSetAdmin.action_providers.append(run_task_actions(Job.CAPTURE_SET))
OccurrenceAdmin.action_providers.append(run_task_actions(Job.OCCURRENCE))
