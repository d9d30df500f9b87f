"""Admin forms that keep a project's rows in their project.

Jobs, reviews and the role checks follow a scope to its project: a capture set holding another
project's images, or a detection in another project's occurrence, let a role on one project
write to and read another's rows. The importers never link across projects; these forms refuse
the same in the admin, naming the first row that would.
"""

from __future__ import annotations

from django import forms

from taxopost.errors import InputError
from taxopost.io.predictions.records import check_pixel_box, is_finite
from taxopost.observations.models import CaptureSet, Detection, SourceImage


class CaptureSetForm(forms.ModelForm):
    class Meta:
        model = CaptureSet
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        project, images = cleaned.get("project"), cleaned.get("images")
        if project is not None and images is not None:
            other = images.exclude(project=project).select_related("project").first()
            if other is not None:
                n = images.exclude(project=project).count()
                self.add_error(
                    "images",
                    f"{n} of these images belong to another project (image {other.pk}, {other.path!r}, "
                    f"is in {other.project.name!r}): a capture set holds images of its own project only",
                )
        return cleaned


class DetectionForm(forms.ModelForm):
    """Also a box as the importers take one: ``[x1, y1, x2, y2]``, four finite pixel numbers within
    the image (JSON's form field took NaN and Infinity, which the database refused: a server error)."""

    class Meta:
        model = Detection
        fields = "__all__"

    def clean_bbox(self):
        box = self.cleaned_data.get("bbox")
        if box is None:
            return None
        finite = isinstance(box, list) and len(box) == 4 and all(is_finite(v) for v in box)
        if not finite:
            raise forms.ValidationError("a box is [x1, y1, x2, y2]: four finite numbers, in pixels")
        return [float(v) for v in box]

    def clean_relative_area(self):
        area = self.cleaned_data.get("relative_area")
        if area is not None and not 0 <= area <= 1:
            raise forms.ValidationError("a share of the image: between 0 and 1")
        return area

    def clean(self):
        cleaned = super().clean()
        image, box = cleaned.get("source_image"), cleaned.get("bbox")
        if box is not None:
            try:
                check_pixel_box(box, image and image.width, image and image.height, field="bbox", value=box, source="")
            except InputError as exc:
                self.add_error("bbox", exc.reason)
        image, occurrence = cleaned.get("source_image"), cleaned.get("occurrence")
        if image is not None and occurrence is not None and occurrence.project_id != image.project_id:
            self.add_error(
                "occurrence",
                f"occurrence {occurrence.key!r} is of project {occurrence.project.name!r}, the image of "
                f"project {image.project.name!r}: a detection's occurrence is of its image's project",
            )
        return cleaned


class SourceImageForm(forms.ModelForm):
    class Meta:
        model = SourceImage
        fields = "__all__"

    def clean_project(self):
        project = self.cleaned_data["project"]
        image = self.instance
        moved = image.pk is not None and project.pk != image.project_id
        if moved and (image.capture_sets.exists() or Detection.objects.filter(source_image=image).exists()):
            raise forms.ValidationError(
                "the image is in capture sets or holds detections of its project: it cannot move to another project"
            )
        return project
