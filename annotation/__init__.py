"""DensePose annotation IO and conversion (imported as ``densemap.annotation``)."""

from .coco import check_annotation, read_coco, write_coco
from .convert import (
    REFERENCE_NAMES,
    AnnotationConverter,
    PointResult,
    convert_annotations,
    convert_file,
    reference_converter,
)
from .report import AnnotationRecord, ConversionReport

__all__ = [
    "read_coco",
    "write_coco",
    "check_annotation",
    "REFERENCE_NAMES",
    "AnnotationConverter",
    "PointResult",
    "convert_annotations",
    "convert_file",
    "reference_converter",
    "AnnotationRecord",
    "ConversionReport",
    "example_annotations_path",
]


def example_annotations_path():
    """Path of the shipped example: a few instances labelled on the embedded chimpanzee."""
    from densemap.data import data_path

    return data_path("example_chimp_annotations.json")
